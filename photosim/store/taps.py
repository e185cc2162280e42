"""Taps: the activations before one backbone block, kept for the photos a fine-tune learns from.

Standard fine-tuning trains the last backbone blocks and the head. Its input is the
output of the blocks before the cut, which a scan computes anyway: a scan asked to
keep taps (an album import) writes them here, so the fine-tune need not read those
photos again, and accepting its model re-embeds them from their taps instead of
decoding them (:func:`photosim.pipeline.switch.switch_model`).

Files, not database rows: ``<library>/taps/v1/<backbone id>-b<cut>/<n>.npz``, one per
scan batch, each holding the photos' content hashes (a photo edited since has another
hash, so its stale tap is never used) and float16 activations. About 49 KB a photo for
encoder v5; a scan keeps at most :data:`MAX_PHOTOS` photos' taps, and accepting a
model or deleting the library's models drops those of backbones no longer active.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

#: Format of the files (a new layout, a new folder: old taps are never misread).
FORMAT = 1
#: Most photos whose taps one backbone keeps (about 1 GB for encoder v5).
MAX_PHOTOS = 20_000


class TapStore:
    """Taps of one library, by (backbone id, cut) and photo content hash."""

    def __init__(self, root: Path | str, *, readonly: bool = False):
        self.root = Path(root) / f"v{FORMAT}"
        self.readonly = readonly
        self._lock = threading.Lock()
        self._kept: dict[Path, tuple[int, int]] = {}  # folder -> (photos kept, last file number)

    def _dir(self, backbone_id: str, cut: int) -> Path:
        return self.root / f"{backbone_id}-b{int(cut)}"

    def _chunks(self, backbone_id: str, cut: int) -> list[Path]:
        folder = self._dir(backbone_id, cut)
        return sorted(folder.glob("*.npz")) if folder.is_dir() else []

    def hashes(self, backbone_id: str, cut: int) -> set[str]:
        """Content hashes of the photos with taps."""
        out: set[str] = set()
        for path in self._chunks(backbone_id, cut):
            try:
                with np.load(path) as f:
                    out.update(f["hashes"].tolist())
            except (OSError, ValueError, KeyError):
                continue  # a damaged file: its photos are read again when needed
        return out

    def each(self, backbone_id: str, cut: int, hashes: set[str]):
        """The taps of ``hashes`` file by file, one pass over the files: yields
        ``(found hashes, upright, context)`` (float16; context (n, 4, C, h, w) or None) for
        every file holding some of them, each hash once. What accepting a model re-embeds
        from (:func:`photosim.pipeline.embed.embed_from_taps`): ``get`` on many small
        groups would open every file for each group."""
        seen: set[str] = set()
        for path in self._chunks(backbone_id, cut):
            try:
                with np.load(path) as f:
                    hs = f["hashes"].tolist()
                    rows, here = [], set()
                    for j, h in enumerate(hs):
                        if h in hashes and h not in seen and h not in here:
                            rows.append(j)
                            here.add(h)
                    if not rows:
                        continue
                    up = np.asarray(f["upright"][rows])
                    ctx = np.asarray(f["context"][rows]) if "context" in f.files else None
            except (OSError, ValueError, KeyError, IndexError):
                continue  # a damaged file: its photos are read again
            seen |= here
            yield [hs[j] for j in rows], up, ctx

    def put(self, backbone_id: str, cut: int, hashes: list[str], upright: np.ndarray,
            context: np.ndarray | None) -> int:
        """Keep the taps of ``hashes`` (rows of ``upright``; ``context``: (n, 4, C, h, w), the
        four quarter turns of each photo, or None), up to :data:`MAX_PHOTOS` photos in all;
        returns how many were kept."""
        if self.readonly or not hashes:
            return 0
        with self._lock:
            folder = self._dir(backbone_id, cut)
            folder.mkdir(parents=True, exist_ok=True)
            if folder not in self._kept:
                chunks = self._chunks(backbone_id, cut)
                self._kept[folder] = (sum(_rows(p) for p in chunks),
                                      max((int(p.stem) for p in chunks if p.stem.isdigit()), default=0))
            kept, last = self._kept[folder]
            n = min(len(hashes), max(0, MAX_PHOTOS - kept))
            if n <= 0:
                return 0
            arrays = {"hashes": np.asarray(hashes[:n]), "upright": np.asarray(upright[:n], np.float16)}
            if context is not None:
                arrays["context"] = np.ascontiguousarray(context[:n], np.float16)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, **arrays)
                os.replace(tmp, folder / f"{last + 1:06d}.npz")
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._kept[folder] = (kept + n, last + 1)
            return n

    def get(self, backbone_id: str, cut: int, hashes: list[str]
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(found, upright, context) for ``hashes``: ``found`` a bool per hash; the arrays
        (float16) hold the found photos' rows in the order of ``hashes``, context photo
        first (n, 4, C, h, w); None when nothing was found."""
        want = {h: i for i, h in enumerate(hashes)}
        found = np.zeros(len(hashes), dtype=bool)
        up = ctx = None
        for path in self._chunks(backbone_id, cut):
            try:
                with np.load(path) as f:
                    hs = f["hashes"].tolist()
                    rows = [(j, want[h]) for j, h in enumerate(hs) if h in want and not found[want[h]]]
                    if not rows:
                        continue
                    u = f["upright"]
                    c = f["context"] if "context" in f.files else None
            except (OSError, ValueError, KeyError):
                continue
            if up is None:
                up = np.zeros((len(hashes),) + u.shape[1:], np.float16)
                ctx = None if c is None else np.zeros((len(hashes),) + c.shape[1:], np.float16)
            for j, i in rows:
                up[i] = u[j]
                if ctx is not None:
                    ctx[i] = c[j]
                found[i] = True
        if up is None:
            return found, None, None
        return found, up[found], None if ctx is None else ctx[found]

    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*.npz")) if self.root.is_dir() else 0

    def backbones(self) -> set[str]:
        """The backbone ids taps are kept for."""
        if not self.root.is_dir():
            return set()
        return {f.name.rsplit("-b", 1)[0] for f in self.root.iterdir() if f.is_dir()}

    def drop_except(self, backbone_ids: set[str]) -> None:
        """Delete the taps of every backbone not in ``backbone_ids``."""
        if self.readonly or not self.root.is_dir():
            return
        with self._lock:
            for folder in self.root.iterdir():
                if folder.is_dir() and folder.name.rsplit("-b", 1)[0] not in backbone_ids:
                    shutil.rmtree(folder, ignore_errors=True)
                    self._kept.pop(folder, None)


def _rows(path: Path) -> int:
    try:
        with np.load(path) as f:
            return len(f["hashes"])
    except (OSError, ValueError, KeyError):
        return 0
