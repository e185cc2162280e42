"""Forgetting photos, sending their files to the system trash (never a hard delete), a
log of what photosim trashed, and restoring from the freedesktop trash where it can."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

from ..errors import PhotosimError
from . import merge


def forget(store, index, photo_ids: Iterable[int]) -> None:
    """Remove photos from the library (vectors, labels, index); the files are not touched."""
    ids = list(photo_ids)
    store.photos.delete(ids)
    index.remove(ids)
    index.save()


class TrashResult(list):
    """[(path, reason)] of the files that could not be trashed (those stay in the library),
    with ``merged``: what the keepers inherited (:class:`photosim.pipeline.merge.MergeReport`)."""

    def __init__(self, failed=(), merged=None):
        super().__init__(failed)
        self.merged = merged if merged is not None else merge.MergeReport()


def move_to_trash(store, index, photo_ids: Iterable[int], *, merge_into=None,
                  sidecar: bool = False) -> TrashResult:
    """Returns (path, reason) for files that could not be trashed; those stay in the
    library. What went to the trash is logged with its original path and the time.

    ``merge_into``: the keeper's id (or {copy id: keeper id}): before the copies leave the
    library their keeper inherits their albums, marks and verdicts; with ``sidecar`` also
    the date taken / GPS it lacks, in an XMP sidecar next to it (never over an existing
    one; the photo itself is not touched). See :mod:`photosim.pipeline.merge`."""
    from send2trash import send2trash

    ids = list(photo_ids)
    pairs = merge.keepers_of(merge_into, ids)
    photos = store.photos.photos_by_id(ids)
    plans = []
    if sidecar and pairs:  # read the copies' GPS while they are still there
        plans = merge.plan_sidecars(pairs, photos, store.photos.photos_by_id(sorted(set(pairs.values()))))
    trashed, failed, logged = [], [], []
    for pid, photo in photos.items():
        try:
            send2trash(photo.path)
            trashed.append(pid)
            logged.append((photo.path, photo.size, photo.content_hash))
        except FileNotFoundError:
            trashed.append(pid)  # already gone: nothing to keep
        except OSError as exc:
            failed.append((photo.path, str(exc) or type(exc).__name__))
    if logged:
        store.trash_log.add(logged)
    result = TrashResult(failed)
    if trashed:
        gone = set(trashed)
        merge.merge_labels(store, {c: k for c, k in pairs.items() if c in gone}, result.merged)
        merge.write_sidecars(plans, gone, result.merged)
        forget(store, index, trashed)
    return result


def _home_trash() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "Trash"


def _mount_point(path: str) -> str:
    path = os.path.dirname(os.path.abspath(path))
    while not os.path.ismount(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _trash_dirs(path: str) -> list[Path]:
    """The freedesktop trash folders a file at ``path`` may have gone to (home, then its volume's)."""
    top = Path(_mount_point(path))
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return [_home_trash(), top / ".Trash" / str(uid), top / f".Trash-{uid}"]


def _info(trashinfo: Path, topdir: Path) -> tuple[str, float] | None:
    try:
        text = trashinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if "Path" not in fields:
        return None
    original = os.fsdecode(unquote(fields["Path"]).encode("utf-8", "surrogateescape"))
    if not os.path.isabs(original):  # relative to the volume's top
        original = str(topdir / original)
    try:
        when = datetime.fromisoformat(fields.get("DeletionDate", "")).timestamp()
    except ValueError:
        when = 0.0
    return original, when


def find_in_trash(path: str, trashed_at: float) -> tuple[Path, Path] | None:
    """(file in the trash, its .trashinfo) for the entry that was ``path``, the one
    deleted closest to ``trashed_at``; None when no trash folder holds it."""
    best = None
    for trash in _trash_dirs(path):
        info_dir = trash / "info"
        if not info_dir.is_dir():
            continue
        topdir = trash.parent.parent if trash.parent.name == ".Trash" else trash.parent
        for info in info_dir.glob("*.trashinfo"):
            found = _info(info, topdir)
            if found is None or os.path.abspath(found[0]) != os.path.abspath(path):
                continue
            stored = trash / "files" / info.name[: -len(".trashinfo")]
            if not os.path.lexists(stored):
                continue
            gap = abs(found[1] - trashed_at)
            if best is None or gap < best[0]:
                best = (gap, stored, info)
    return None if best is None else (best[1], best[2])


class TrashBin:
    """The library's trash log and restore (freedesktop trash; elsewhere a clear message)."""

    def __init__(self, store):
        self.store = store

    def trash_log(self, *, restored: bool | None = False):
        """What photosim sent to the trash (``TrashRecord``: path, size, time), newest first."""
        return self.store.trash_log.list(restored=restored)

    def restore_from_trash(self, entries=None) -> tuple[list[str], list[tuple[str, str]]]:
        """Put files photosim trashed back where they were (``entries``: records, ids or
        original paths; default: every one not yet restored). Returns (restored paths,
        [(path, reason)]); a re-scan brings the photos back into the library."""
        if self.store.readonly:
            raise PhotosimError("this library was opened read-only")
        if sys.platform == "darwin" or os.name == "nt":
            raise PhotosimError("restoring from the trash is only possible with the freedesktop trash (Linux); "
                                "restore the files from your system's trash (Finder or Recycle Bin) instead")
        log = self.store.trash_log.list(restored=False)
        if entries is not None:
            wanted = {getattr(e, "id", e) for e in entries}
            log = [e for e in log if e.id in wanted or e.path in wanted or os.fspath(e.path) in wanted]
        restored, failed, done_ids = [], [], []
        for entry in log:
            if os.path.lexists(entry.path):
                failed.append((entry.path, "a file is there again; nothing was overwritten"))
                continue
            found = find_in_trash(entry.path, entry.trashed_at)
            if found is None:
                failed.append((entry.path, "not in the trash any more (emptied or restored by hand)"))
                continue
            stored, info = found
            try:
                os.makedirs(os.path.dirname(entry.path), exist_ok=True)
                shutil.move(os.fspath(stored), entry.path)
            except OSError as exc:
                failed.append((entry.path, exc.strerror or str(exc)))
                continue
            try:
                info.unlink()
            except OSError:
                pass  # the file is back; a stale .trashinfo is harmless
            restored.append(entry.path)
            done_ids.append(entry.id)
        if done_ids:
            self.store.trash_log.mark_restored(done_ids, time.time())
        return restored, failed
