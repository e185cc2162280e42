"""Incremental scanning: list files, decode in threads while the encoder runs, commit in batches.

What makes a re-scan cheap: a file whose size and mtime are unchanged and that
already has a vector for the active encoder costs one ``stat``. A moved or
renamed file is recognised by its content hash and keeps its vector; an
identical copy borrows the original's vector; a deleted file leaves the index.
Each batch is committed in one transaction, so a killed scan resumes where it
stopped and the database never holds a half-written photo.
"""

from __future__ import annotations

import os
import stat as stat_mod
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from os import fsdecode

import numpy as np
from sqlalchemy import LargeBinary, and_, exists, or_, select, type_coerce

from .. import precision
from ..errors import Cancelled, PhotoError, PhotosimError, PhotoVanished
from ..frames import frame_box
from ..imageio import decode_bytes, hash_bytes, is_supported, read_file
from ..progress import as_token
from ..store.photos import folder_range
from ..store.schema import Feature, Photo, Vector, blob_to_vector
from ..values import ScanProgress, ScanReport
from .embed import encode, project_cached, store_embeddings

ProgressFn = Callable[[ScanProgress], None]


@dataclass
class _Listed:
    path: str
    size: int
    mtime_ns: int


@dataclass
class _Outcome:
    """What a worker thread made of one file."""

    path: str
    row_id: int | None  # existing row at this path, if any
    size: int = 0
    mtime_ns: int = 0
    content_hash: str | None = None
    meta: object = None
    pixels: np.ndarray | None = None  # preprocessed encoder input
    #: the backbone id whose cached features hold for this photo as they are (it has no
    #: frame, and they were made by the same weights without trimming): no inference needed
    reuse: str | None = None
    error: str | None = None
    vanished: bool = False
    timings: dict = field(default_factory=dict)


#: listing threads: ``os.scandir`` and ``stat`` release the GIL, and on a network share or
#: a cold disk each waits for I/O, so more threads than cores pay off
LIST_THREADS = 16


def _list_folder(folder: str) -> tuple[list[_Listed], list[tuple[str, tuple[int, int]]], str | None]:
    """One folder: its supported regular files (size, mtime), its sub-folders with their
    (device, inode), or the reason it cannot be read."""
    files: list[_Listed] = []
    subdirs: list[tuple[str, tuple[int, int]]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        return files, subdirs, exc.strerror or str(exc)
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=True):
                st = entry.stat(follow_symlinks=True)
                subdirs.append((entry.path, (st.st_dev, st.st_ino)))
            elif is_supported(entry.name):
                est = entry.stat(follow_symlinks=True)
                if stat_mod.S_ISREG(est.st_mode):
                    files.append(_Listed(entry.path, est.st_size, est.st_mtime_ns))
        except OSError:
            continue  # dangling symlink or vanished entry
    return files, subdirs, None


def list_photos(
    roots: Iterable[str], skip: Iterable[str] = (), errors: list | None = None, threads: int | None = None
) -> list[_Listed]:
    """Recursive listing of supported files; follows symlinks but never loops.

    The folders of one depth are listed in parallel (``threads``, default
    :data:`LIST_THREADS`; 1 lists serially), then their sub-folders are claimed in path
    order, so a folder reachable twice (a symlink to it, a loop) is listed once, under the
    shallowest and then first path, whatever the number of threads: the result (files in
    folder order) does not depend on it."""
    skip = {os.path.abspath(s) for s in skip}
    seen_dirs: set[tuple[int, int]] = set()
    level: list[str] = []
    for root in (os.path.abspath(r) for r in roots):
        try:
            st = os.stat(root)
        except OSError as exc:
            if errors is not None:
                errors.append((root, exc.strerror or str(exc)))
            continue
        if root not in skip and (st.st_dev, st.st_ino) not in seen_dirs:
            seen_dirs.add((st.st_dev, st.st_ino))
            level.append(root)
    out: list[_Listed] = []
    threads = max(1, threads or LIST_THREADS)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="photosim-list") if threads > 1 else None
    try:
        while level:
            results = pool.map(_list_folder, level) if pool and len(level) > 1 else map(_list_folder, level)
            claimed: list[tuple[str, tuple[int, int]]] = []
            for folder, (files, subdirs, error) in zip(level, results):
                if error is not None:
                    if errors is not None:
                        errors.append((folder, error))
                    continue
                out.extend(files)
                claimed.extend(subdirs)
            level = []
            for path, key in sorted(claimed):
                if path not in skip and key not in seen_dirs:  # a loop or the same folder twice
                    seen_dirs.add(key)
                    level.append(path)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return out


def outermost(paths: Iterable[str]) -> list[str]:
    """``paths`` (made absolute) without those inside another of them, sorted."""
    unique = {os.path.abspath(os.fspath(p)) for p in paths}
    out = []
    for p in sorted(unique):
        child, parent = p, os.path.dirname(p)
        while parent != child and parent not in unique:  # up to the top, or to one of them
            child, parent = parent, os.path.dirname(parent)
        if parent == child:
            out.append(p)
    return out


def list_paths(paths: Iterable[str], skip: Iterable[str] = (), errors: list | None = None
               ) -> tuple[list[str], list[_Listed]]:
    """The files and folders a watcher saw touched: ``(covered, listed)``. ``covered`` are
    the paths whose rows the scan compares with the disk (one inside another is dropped:
    the outer one covers it), ``listed`` the supported files found at them now (a folder's
    recursively). A path that no longer exists covers its rows, so they leave the library."""
    skip = [os.path.abspath(s) for s in skip]
    covered = [p for p in outermost(paths)
               if not any(p == s or p.startswith(s.rstrip(os.sep) + os.sep) for s in skip)]
    listed: list[_Listed] = []
    for p in covered:
        try:
            st = os.stat(p)
        except OSError:
            continue  # deleted or moved away
        if stat_mod.S_ISDIR(st.st_mode):
            listed.extend(list_photos([p], skip=skip, errors=errors))
        elif stat_mod.S_ISREG(st.st_mode) and is_supported(p):
            listed.append(_Listed(p, st.st_size, st.st_mtime_ns))
    seen: set[str] = set()
    return covered, [x for x in listed if not (x.path in seen or seen.add(x.path))]


class _HashProbe:
    """``hash in probe``: a hash of the moved-away rows, or of a readable photo with a vector
    of ``encoder_id`` (asked of the database, through the content-hash index)."""

    def __init__(self, store, encoder_id: str, known: set[str]):
        self._store, self._encoder_id, self._known = store, encoder_id, known

    def __contains__(self, content_hash) -> bool:
        if not content_hash:
            return False
        if content_hash in self._known:
            return True
        with self._store.read() as s:
            return s.execute(select(Photo.id).join(
                Vector, (Vector.photo_id == Photo.id) & (Vector.encoder_id == self._encoder_id))
                .where(Photo.content_hash == content_hash, Photo.status == "ok").limit(1)).first() is not None


def _stat_files(paths: Iterable[str]) -> list[_Listed]:
    """The regular files among ``paths``; one that is gone (or no longer a file) is left out."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat_mod.S_ISREG(st.st_mode):
            out.append(_Listed(path, st.st_size, st.st_mtime_ns))
    return out


#: photos embedded at once: on a 2-core CPU 16 scanned 2-5 % faster than 32 (lanes of 8
#: rows) and peaked 0.4 GB lower (1.08 against 1.48 GB, encoder v5, bench_scan.py)
BATCH = 16
#: the smallest batch embedded before it is full, when the next photo is not decoded yet
EARLY_BATCH = 8


class Scan:
    """One scan run over a library; use :meth:`photosim.Library.scan`.

    ``store`` is the library's :class:`photosim.store.Store`, ``index`` its
    :class:`photosim.index.IndexKeeper`, ``encoder()`` loads the active encoder (only
    when a photo needs it), ``skip`` folders are never listed (the library's own).
    ``paths`` limits the scan to those files and folders under ``roots`` (a watcher's
    batch): only their rows are read and compared, nothing else is listed or removed."""

    def __init__(self, store, index, encoder: Callable[[], object], card, roots: list[str],
                 progress: ProgressFn | None, cancel=None, batch_size: int | None = None, workers: int | None = None,
                 skip: Iterable[str] = (), paths: Iterable[str] | None = None,
                 files: Iterable[str] | None = None, taps=None):
        self.store = store
        #: a photosim.store.taps.TapStore: keep each photo's activations before the late cut
        #: too (an album import: standard fine-tuning learns from them without reading again)
        self.taps = taps
        #: set: read exactly these files again, however unchanged they look (retrying files
        #: that could not be read); one that is gone leaves the library. No folder is listed.
        self.files = None if files is None else sorted({os.path.abspath(os.fspath(f)) for f in files})
        self.index = index
        self._encoder = encoder
        self.card = card
        self.skip = list(skip)
        self.roots = [os.path.abspath(os.fspath(r)) for r in roots]
        self.paths = None if paths is None else [os.path.abspath(os.fspath(p)) for p in paths]
        self.progress_fn = progress
        self.cancel_fn = as_token(cancel)
        self.batch_size = batch_size or BATCH
        #: decode threads; by default half the cores beside ONNX Runtime's lanes (one per core,
        #: never spinning: photosim.inference.session; encoder v5 fp32 on an idle 2-core CPU:
        #: 49.8 photos/s with 1 decode thread or 2; 42.7 and 39.4 in an earlier run), every core
        #: under int8, whose forward pass is cheap enough that decoding is the bound
        #: (bench_scan.py; README, Speed)
        cores = os.cpu_count() or 2
        int8 = precision.split(card.id)[1] == "int8"
        self.workers = workers or (cores if int8 else max(1, cores // 2))
        self._workers_given = workers is not None
        #: photo id -> backbone id of its reusable untrimmed features (see _untrimmed_features)
        self._unframed_reuse: dict[int, str] = {}
        self.report = ScanReport(roots=self.roots)
        self.state = ScanProgress(stage="listing")
        self._t0 = time.perf_counter()
        self._last_emit = 0.0
        self.timings = {"list": 0.0, "read": 0.0, "decode": 0.0, "encode": 0.0, "index": 0.0, "db": 0.0}
        self._tlock = threading.Lock()

    # -- progress ---------------------------------------------------------
    def _emit(self, force: bool = False) -> None:
        now = time.perf_counter()
        self.state.elapsed = now - self._t0
        if self.progress_fn and (force or now - self._last_emit >= 0.1):
            self._last_emit = now
            self.progress_fn(ScanProgress(**self.state.__dict__))

    def _cancelled(self) -> bool:
        return bool(self.cancel_fn())

    # -- main -------------------------------------------------------------
    def run(self) -> ScanReport:
        for root in self.roots:
            if not os.path.isdir(root):
                raise PhotosimError(f"not a folder: {root}")
        self._emit(force=True)
        t = time.perf_counter()
        if self.files is not None:  # re-read these files, changed or not (the problems panel's retry)
            covered, listed = list(self.files), _stat_files(self.files)
        elif self.paths is None:
            listed = list_photos(self.roots, skip=self.skip, errors=self.report.unreadable_folders)
            covered = self.roots
        else:
            inside = [p for p in self.paths if any(p == r or p.startswith(r.rstrip(os.sep) + os.sep)
                                                   for r in self.roots)]
            covered, listed = list_paths(inside, skip=self.skip, errors=self.report.unreadable_folders)
        self.timings["list"] = time.perf_counter() - t
        self.state.total = len(listed)

        enc_id = self.card.id
        backbone_id = self.card.backbone_id
        # One query for the rows under the roots (the path range in SQL) and whether each has
        # a vector of the active encoder (a primary-key probe); no whole-table id sets. A
        # watcher's batch reads the rows at and under its paths, in chunks (SQLite limits
        # an expression's depth).
        has_vector = exists().where(Vector.photo_id == Photo.id, Vector.encoder_id == enc_id)
        # The path comes as its stored bytes, decoded here in one C call a row (SQLAlchemy's
        # per-row type conversion was a fifth of an unchanged re-scan at 10^5 photos).
        raw_path = type_coerce(Photo.path, LargeBinary).label("raw_path")
        rows = {}
        with self.store.read() as s:
            for start in range(0, len(covered), 200):
                chunk = covered[start:start + 200]
                under = or_(*[and_(Photo.path >= low, Photo.path < high) for low, high in map(folder_range, chunk)])
                if self.paths is not None or self.files is not None:
                    under = or_(Photo.path.in_(chunk), under)
                rows.update((fsdecode(r.raw_path), r) for r in s.connection().execute(  # Core rows: no ORM per row
                    select(Photo.id, raw_path, Photo.size, Photo.mtime_ns, Photo.status, Photo.content_hash,
                           has_vector.label("has_vector")).where(under)
                ).all())

        seen: set[str] = set()
        to_read: list[tuple[_Listed, int | None]] = []
        unembedded: list[tuple[_Listed, int]] = []
        for item in listed:
            seen.add(item.path)
            row = rows.get(item.path)
            if row is not None and row.size == item.size and row.mtime_ns == item.mtime_ns and self.files is None:
                if row.status != "ok" or row.has_vector:
                    self.state.unchanged += 1
                    self.state.done += 1
                    continue
                unembedded.append((item, row.id))
                continue
            to_read.append((item, row.id if row is not None else None))
        # Unchanged files without a vector of this encoder: re-project cached features
        # (the encoder changed) where there are some, else read them.
        feat_ids = self._with_features(backbone_id, [pid for _, pid in unembedded])
        to_project = [pid for _, pid in unembedded if pid in feat_ids]
        rest = [(item, pid) for item, pid in unembedded if pid not in feat_ids]
        self._unframed_reuse = self._untrimmed_features([pid for _, pid in rest])
        if 2 * len(self._unframed_reuse) > len(to_read) + len(rest) and not self._workers_given:
            self.workers = os.cpu_count() or 2  # mostly decoding, little inference: every core decodes
        to_read.extend(rest)
        self.report.unchanged = self.state.unchanged
        # Rows whose path was not listed: moved away or deleted. A listed file with
        # the same content hash claims the row (and its vector) instead of a new one.
        self.missing = {p: r for p, r in rows.items() if p not in seen}
        self.missing_by_hash: dict[str, list] = {}
        for r in self.missing.values():
            if r.content_hash and r.status == "ok":
                self.missing_by_hash.setdefault(r.content_hash, []).append(r)
        to_read = self._claim_by_stat(to_read)
        self.state.stage = "scanning"
        self._emit(force=True)

        if to_project and not self._cancelled():
            self._reproject(to_project)
        if not self._cancelled():
            self._process(to_read)

        if self._cancelled():
            self.report.cancelled = True
        else:
            self.state.stage = "removing"
            self._emit(force=True)
            self._remove_missing()
        self.state.stage = "saving"
        self._emit(force=True)
        t = time.perf_counter()
        self.index.save()
        self.timings["index"] += time.perf_counter() - t
        self.state.stage = "done"
        self._emit(force=True)
        r = self.report
        r.added, r.updated, r.moved, r.removed = self.state.added, self.state.updated, self.state.moved, self.state.removed
        r.seconds = time.perf_counter() - self._t0
        r.timings = {k: round(v, 4) for k, v in self.timings.items()}
        return r

    def _claim_by_stat(self, to_read: list[tuple[_Listed, int | None]]) -> list[tuple[_Listed, int | None]]:
        """Photos imported with their vectors (``import-vectors``) have no content hash yet:
        a new file of exactly the size and mtime (which a rename or ``mv`` keeps) of one such
        row that went missing is that photo moved, and keeps its row without being read."""
        by_stat: dict[tuple[int, int], list] = {}
        for r in self.missing.values():
            if not r.content_hash and r.status == "ok" and r.has_vector:
                by_stat.setdefault((r.size, r.mtime_ns), []).append(r)
        claims = {}
        for item, row_id in to_read:
            rows = by_stat.get((item.size, item.mtime_ns)) if row_id is None else None
            if rows and len(rows) == 1:
                claims.setdefault(rows[0].id, []).append(item)
        claims = {rid: items[0] for rid, items in claims.items() if len(items) == 1}  # unambiguous only
        if not claims:
            return to_read
        with self.store.write() as s:
            for rid, item in claims.items():
                row = s.get(Photo, rid)
                self.missing.pop(row.path, None)
                row.path, row.scanned_at = item.path, time.time()
        self.state.moved += len(claims)
        self.state.done += len(claims)
        moved = {item.path for item in claims.values()}
        return [(item, row_id) for item, row_id in to_read if item.path not in moved]

    def _untrimmed_features(self, ids: list[int]) -> dict[int, str]:
        """Photos (of ``ids``) with cached features of this encoder's weights without trimming
        (its card's ``same_weights_as``: an upgrade that only added trimming frames, v5 to
        v5.1) -> that backbone id. Those features are this encoder's too for a photo without
        a frame, which decoding it tells (much cheaper than running the encoder)."""
        out: dict[int, str] = {}
        if not self.card.trim_frames:
            return out
        for alias in self.card.same_weights_as:
            for pid in self._with_features(alias, [i for i in ids if i not in out]):
                out[pid] = alias
        return out

    def _with_features(self, backbone_id: str, ids: list[int]) -> set[int]:
        out: set[int] = set()
        with self.store.read() as s:
            for start in range(0, len(ids), 900):
                out.update(s.scalars(select(Feature.photo_id).where(
                    Feature.backbone_id == backbone_id, Feature.photo_id.in_(ids[start:start + 900]))))
        return out

    # -- stages -----------------------------------------------------------
    def _reproject(self, photo_ids: list[int]) -> None:
        """New active encoder with the same backbone: project cached features, no decoding."""
        try:
            for ids, vecs in project_cached(self.store, self._encoder(), photo_ids, self.cancel_fn, chunk=512):
                self.index.add(ids, vecs)
                self.state.done += len(ids)
                self.report.reembedded += len(ids)
                self._emit()
        except Cancelled:
            pass  # run() sees the cancel and reports it

    def _work(self, item: _Listed, row_id: int | None, known_hashes: set[str]) -> _Outcome:
        out = _Outcome(path=item.path, row_id=row_id)
        t0 = time.perf_counter()
        try:
            data, st = read_file(item.path)
            out.size, out.mtime_ns = st.size, st.mtime_ns
            out.content_hash = hash_bytes(data) if data else None
            t1 = time.perf_counter()
            out.timings["read"] = t1 - t0
            if out.content_hash in known_hashes:
                return out  # a move or a copy: the vector already exists
            image, out.meta = decode_bytes(data, name=item.path)
            del data
            alias = self._unframed_reuse.get(row_id) if row_id is not None else None
            if alias is not None and frame_box(image) is None:
                out.reuse = alias
            else:
                out.pixels = self._encoder().preprocess(image)
            out.timings["decode"] = time.perf_counter() - t1
        except PhotoVanished:
            out.vanished = True
        except PhotoError as exc:
            out.error = str(exc)
        except MemoryError:
            out.error = "not enough memory to decode this image"
        return out

    def _process(self, to_read: list[tuple[_Listed, int | None]]) -> None:
        if not to_read:
            return
        encoder = self._encoder()  # load before threads start using preprocess
        known_hashes: set[str] | _HashProbe
        if self.paths is not None or self.files is not None:
            # A watcher's few files: one indexed look-up per file read, not every photo's hash.
            known_hashes = _HashProbe(self.store, encoder.id, set(self.missing_by_hash))
        else:
            with self.store.read() as s:
                known_hashes = set(self.missing_by_hash)
                known_hashes.update(
                    h for (h,) in s.execute(
                        select(Photo.content_hash)
                        .join(Vector, (Vector.photo_id == Photo.id) & (Vector.encoder_id == encoder.id))
                        .where(Photo.status == "ok")
                    ).all() if h
                )
        pending: deque[Future] = deque()
        batch: list[_Outcome] = []
        reused: list[_Outcome] = []
        it = iter(to_read)
        window = self.batch_size * 3
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="photosim-decode") as pool:
            def fill():
                while len(pending) < window:
                    nxt = next(it, None)
                    if nxt is None:
                        return
                    pending.append(pool.submit(self._work, nxt[0], nxt[1], known_hashes))

            fill()
            while pending:
                if self._cancelled():
                    for f in pending:
                        f.cancel()
                    break
                if len(batch) >= EARLY_BATCH and not pending[0].done():
                    # the next photo is still decoding: embed what is ready instead of
                    # leaving the encoder idle (the first batch, and whenever decoding lags)
                    self._flush(batch)
                    batch = []
                out = pending.popleft().result()
                fill()
                for k, v in out.timings.items():
                    self.timings[k] += v
                self.state.current = out.path
                if out.pixels is not None:
                    batch.append(out)
                    if len(batch) >= self.batch_size:
                        self._flush(batch)
                        batch = []
                elif out.reuse is not None:
                    reused.append(out)
                    if len(reused) >= 256:
                        self._flush_reused(reused)
                        reused = []
                elif not self._record_without_pixels(out):
                    # Its twin disappeared meanwhile: decode it after all.
                    retry = self._work(_Listed(out.path, out.size, out.mtime_ns), out.row_id, set())
                    if retry.pixels is not None:
                        batch.append(retry)
                    else:
                        self._record_without_pixels(retry)
                self._emit()
            if batch and not self._cancelled():
                self._flush(batch)
            if reused and not self._cancelled():
                self._flush_reused(reused)

    def _record_without_pixels(self, out: _Outcome) -> bool:
        """Errors, vanished files, moves and copies: no inference needed.
        False when the file must be decoded after all."""
        now = time.time()
        if out.vanished:
            self.state.done += 1
            if out.row_id is not None:
                self.store.photos.delete([out.row_id])
                self.index.remove([out.row_id])
                self.state.removed += 1
            return True
        if out.error is not None:
            self.state.done += 1
            self.state.failed += 1
            self.report.failed.append((out.path, out.error))
            with self.store.write() as s:
                row = self._row_at(s, out, count=False)
                if row.id is not None:  # was readable before: its vectors go
                    self.store.vectors.drop_photos(s, [row.id])
                    self.store.features.drop_photos(s, [row.id])
                    self.index.remove([row.id])
                row.size, row.mtime_ns = out.size, out.mtime_ns
                row.content_hash, row.status, row.error, row.scanned_at = out.content_hash, "error", out.error, now
                row.width = row.height = row.taken_at = row.camera = row.orientation = None
            return True
        # Same bytes as a known photo.
        movers = self.missing_by_hash.get(out.content_hash) or []
        if movers and out.row_id is None:
            # of identical copies that went missing, the one of the same name moved here
            name = os.path.basename(out.path)
            same_name = (i for i, r in enumerate(movers) if os.path.basename(fsdecode(r.raw_path)) == name)
            src = movers.pop(next(same_name, -1))
            self.missing.pop(fsdecode(src.raw_path), None)
            with self.store.write() as s:
                row = s.get(Photo, src.id)
                row.path, row.size, row.mtime_ns, row.scanned_at = out.path, out.size, out.mtime_ns, now
            self.state.moved += 1
            self.state.done += 1
            return True
        if self._copy_from_twin(out):
            self.state.done += 1
            return True
        return False

    def _copy_from_twin(self, out: _Outcome) -> bool:
        enc = self._encoder()
        with self.store.write() as s:
            twin = s.execute(
                select(Photo).join(Vector, (Vector.photo_id == Photo.id) & (Vector.encoder_id == enc.id))
                .where(Photo.content_hash == out.content_hash, Photo.status == "ok").limit(1)
            ).scalar_one_or_none()
            if twin is None:
                return False
            row = self._row_for(s, out, twin)
            vec = s.get(Vector, (twin.id, enc.id))
            vector = blob_to_vector(vec.data).copy()
            feats = self.store.features.load(enc.backbone_id, enc.card.feature_dim, [twin.id], np.float16)[1]
            store_embeddings(s, self.store, enc, [row.id], feats if len(feats) else None, vector[None, :])
            new_id = row.id
        self.index.add([new_id], vector[None, :])
        return True

    def _row_at(self, s, out: _Outcome, count: bool = True) -> Photo:
        """The existing row at ``out``'s path, or a new one (id None until flushed);
        ``count``: as an added or updated photo (a failed file is counted as failed only)."""
        row = s.get(Photo, out.row_id) if out.row_id else None
        if row is None:
            row = Photo(path=out.path)
            s.add(row)
            self.state.added += count
        else:
            self.state.updated += count
        return row

    def _row_for(self, s, out: _Outcome, meta) -> Photo:
        """The photo row for ``out`` (new or updated), marked readable, with ``meta``'s
        width, height, date, camera and orientation; flushed so it has an id."""
        row = self._row_at(s, out)
        for attr in ("width", "height", "taken_at", "camera", "orientation"):
            setattr(row, attr, getattr(meta, attr))
        row.size, row.mtime_ns, row.content_hash = out.size, out.mtime_ns, out.content_hash
        row.status, row.error, row.scanned_at = "ok", None, time.time()
        s.flush()
        return row

    def _flush(self, batch: list[_Outcome]) -> None:
        enc = self._encoder()
        t = time.perf_counter()
        pixels = np.stack([o.pixels for o in batch])
        if self.taps is not None and enc.precision == "fp32":
            from ..model import late_cut  # torch: loaded with the encoder already

            cut = late_cut(enc.card.architecture)
            feats, up, ctx = enc.tapped(pixels, cut)
            vecs = enc.project(feats)
            if ctx is not None:  # the encoder stacks the quarter turns turn by turn: photo by photo here
                ctx = ctx.reshape(4, len(batch), *ctx.shape[1:]).swapaxes(0, 1)
            if self.taps.put(enc.backbone_id, cut, [o.content_hash for o in batch], up, ctx) < len(batch):
                self.taps = None  # as many as a fine-tune takes are kept: the rest is scanned as usual
        else:
            feats, vecs = encode(enc, pixels)
        self.timings["encode"] += time.perf_counter() - t
        t = time.perf_counter()
        with self.store.write() as s:
            ids = [self._row_for(s, o, o.meta).id for o in batch]
            store_embeddings(s, self.store, enc, ids, feats, vecs)
        self.timings["db"] += time.perf_counter() - t
        t = time.perf_counter()
        self.index.add(ids, vecs)
        self.timings["index"] += time.perf_counter() - t
        self.state.done += len(batch)
        for o in batch:
            o.pixels = None

    def _flush_reused(self, outs: list[_Outcome]) -> None:
        """Photos whose untrimmed features hold (see :meth:`_untrimmed_features`): those
        features stored under this encoder's backbone id, projected, indexed."""
        enc = self._encoder()
        t = time.perf_counter()
        for alias in {o.reuse for o in outs}:
            ids, feats = self.store.features.load(alias, enc.card.feature_dim,
                                                  [o.row_id for o in outs if o.reuse == alias], dtype=np.float16)
            if not ids:
                continue
            vecs = enc.project(feats)
            with self.store.write() as s:
                store_embeddings(s, self.store, enc, ids, feats, vecs)
            self.index.add(ids, vecs)
            self.report.reembedded += len(ids)
        self.timings["db"] += time.perf_counter() - t
        self.state.done += len(outs)

    def _remove_missing(self) -> None:
        ids = [r.id for r in self.missing.values()]
        if ids:
            self.store.photos.delete(ids)
            self.index.remove(ids)
            self.state.removed += len(ids)
