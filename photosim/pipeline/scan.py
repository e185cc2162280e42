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

import numpy as np
from sqlalchemy import and_, exists, or_, select

from ..errors import Cancelled, PhotoError, PhotosimError, PhotoVanished
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
    error: str | None = None
    vanished: bool = False
    timings: dict = field(default_factory=dict)


def list_photos(
    roots: Iterable[str], skip: Iterable[str] = (), errors: list | None = None
) -> list[_Listed]:
    """Recursive listing of supported files; follows symlinks but never loops."""
    out: list[_Listed] = []
    seen_dirs: set[tuple[int, int]] = set()
    skip = {os.path.abspath(s) for s in skip}
    stack = [os.path.abspath(r) for r in roots]
    while stack:
        folder = stack.pop()
        if folder in skip:
            continue
        try:
            st = os.stat(folder)
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                continue  # symlink loop or the same folder twice
            seen_dirs.add(key)
            entries = list(os.scandir(folder))
        except OSError as exc:
            if errors is not None:
                errors.append((folder, exc.strerror or str(exc)))
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=True):
                    subdirs.append(entry.path)
                elif is_supported(entry.name):
                    est = entry.stat(follow_symlinks=True)
                    if stat_mod.S_ISREG(est.st_mode):
                        out.append(_Listed(entry.path, est.st_size, est.st_mtime_ns))
            except OSError:
                continue  # dangling symlink or vanished entry
        stack.extend(sorted(subdirs, reverse=True))
    return out


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


class Scan:
    """One scan run over a library; use :meth:`photosim.Library.scan`.

    ``store`` is the library's :class:`photosim.store.Store`, ``index`` its
    :class:`photosim.index.IndexKeeper`, ``encoder()`` loads the active encoder (only
    when a photo needs it), ``skip`` folders are never listed (the library's own)."""

    def __init__(self, store, index, encoder: Callable[[], object], card, roots: list[str],
                 progress: ProgressFn | None, cancel=None, batch_size: int = 32, workers: int | None = None,
                 skip: Iterable[str] = (), files: Iterable[str] | None = None):
        self.store = store
        #: set: read exactly these files again, however unchanged they look (retrying files
        #: that could not be read); one that is gone leaves the library. No folder is listed.
        self.files = None if files is None else sorted({os.path.abspath(os.fspath(f)) for f in files})
        self.index = index
        self._encoder = encoder
        self.card = card
        self.skip = list(skip)
        self.roots = [os.path.abspath(os.fspath(r)) for r in roots]
        self.progress_fn = progress
        self.cancel_fn = as_token(cancel)
        self.batch_size = batch_size
        #: decode threads; by default half the cores (ONNX Runtime's threads do not spin, so
        #: on an idle 2-core CPU 1 decode thread beside 2 inference threads scanned fastest,
        #: 51 photos/s against 44 with 2 decode threads: benchmarks/bench_scan.py)
        self.workers = workers or max(1, (os.cpu_count() or 2) // 2)
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
        if self.files is None:
            listed = list_photos(self.roots, skip=self.skip, errors=self.report.unreadable_folders)
        else:
            listed = _stat_files(self.files)
        self.timings["list"] = time.perf_counter() - t
        self.state.total = len(listed)

        enc_id = self.card.id
        backbone_id = self.card.backbone_id
        # One query for the rows under the roots (the path range in SQL) and whether each has
        # a vector of the active encoder (a primary-key probe); no whole-table id sets.
        has_vector = exists().where(Vector.photo_id == Photo.id, Vector.encoder_id == enc_id)
        if self.files is None:
            wheres = [or_(*[and_(Photo.path >= low, Photo.path < high) for low, high in map(folder_range, self.roots)])]
        else:
            wheres = [Photo.path.in_(self.files[i:i + 900]) for i in range(0, len(self.files), 900)]
        rows = {}
        with self.store.read() as s:
            for where in wheres:
                rows.update((r.path, r) for r in s.connection().execute(  # Core rows: no ORM loading per row
                    select(Photo.id, Photo.path, Photo.size, Photo.mtime_ns, Photo.status, Photo.content_hash,
                           has_vector.label("has_vector")).where(where)
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
        to_read.extend((item, pid) for item, pid in unembedded if pid not in feat_ids)
        self.report.unchanged = self.state.unchanged
        # Rows whose path was not listed: moved away or deleted. A listed file with
        # the same content hash claims the row (and its vector) instead of a new one.
        self.missing = {p: r for p, r in rows.items() if p not in seen}
        self.missing_by_hash: dict[str, list] = {}
        for r in self.missing.values():
            if r.content_hash and r.status == "ok":
                self.missing_by_hash.setdefault(r.content_hash, []).append(r)
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
            image, out.meta = decode_bytes(data)
            del data
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
            src = movers.pop()
            self.missing.pop(src.path, None)
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
        feats, vecs = encode(enc, np.stack([o.pixels for o in batch]))
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

    def _remove_missing(self) -> None:
        ids = [r.id for r in self.missing.values()]
        if ids:
            self.store.photos.delete(ids)
            self.index.remove(ids)
            self.state.removed += len(ids)
