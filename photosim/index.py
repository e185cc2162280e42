"""The approximate nearest-neighbour index over photo vectors (hnswlib, cosine).

hnswlib is not safe when ``add_items``/``resize_index`` run beside ``knn_query``,
and the GUI queries while a scan adds, so every call goes through one lock.
The index is a cache: the database holds every vector, and an index file that
is missing, corrupt, from another encoder or older than the database is
rebuilt from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import hnswlib
import numpy as np

from .errors import Cancelled, PhotosimError
from .progress import CancelToken, Progress, as_token

#: 2: index.json names the binary's size, mtime and a sampled digest (not a digest of the
#: whole file) and lists the deleted labels (no per-label probing on load); 3: graphs of M 24
#: (an index of M 16 is rebuilt once, in the background). An index of another format is
#: rebuilt, never misread.
INDEX_FORMAT = 3
#: Measured on photo-like vectors (benchmarks/bench_index_params.py --n 50000: clusters on a
#: decaying spectrum, 1% near-duplicates, 512-d, 2 busy cores): recall@10 at ef 64 / build time
#: M 12, efc 100: 0.993 / 10.1 s; M 16, efc 100: 0.999 / 13.0 s; M 16, efc 200: 1.000 / 23.9 s;
#: M 24, efc 100: 0.999 / 29.4 s. Every setting saturates there; the choice is made at 10^6,
#: on bench_scale's photo-like vectors (hnswlib alone, 200 queries, recall@10 / p50):
#: M 16 reaches 0.949 only at ef 1000 (3.11 ms; 0.956 at ef 1200, 3.60 ms), M 24 has 0.957 at
#: ef 400 (2.30 ms) and 0.962 at ef 500 (2.34 ms). M 24 costs 64 bytes a photo more (the
#: vectors take 2 KB) and builds 10^6 in 395 s against 258-278 s (in the background).
_M = 24
_EF_CONSTRUCTION = 100
_EF_SEARCH = 64  # at 100,000 photos and below; grows with the library (see ef_for)
_EF_MAX = 1000


def ef_for(count: int) -> int:
    """Search breadth of a search for an index of ``count`` vectors: recall@10 at a fixed ef
    falls as the graph grows, so ef grows with the size above 10^5 (as its 0.9th power: 508
    at 10^6), capped.
    Measured at 10^6 with M 24 on bench_scale's photo-like vectors (hnswlib alone, 200
    queries, 2 cores; recall@10 / p50): ef 200 0.929 / 1.46 ms, 300: 0.944 / 1.88 ms, 400:
    0.957 / 2.30 ms, 500: 0.962 / 2.34 ms, 600: 0.964 / 2.77 ms, 800: 0.970 / 4.19 ms."""
    return int(min(_EF_MAX, max(_EF_SEARCH, round(_EF_SEARCH * (max(count, 1) / 100_000) ** 0.9))))


def ef_batch(count: int) -> int:
    """Search breadth of batched searches (a duplicate search queries every photo for its
    few nearest, which are close: a copy is far nearer than the rest): the square root of
    the size above 10^5 (202 at 10^6), capped; a million queries at ef 202 take ~7 min on 2
    cores, at 640 about three times as long."""
    return int(min(256, max(_EF_SEARCH, round(_EF_SEARCH * math.sqrt(max(count, 1) / 100_000)))))


#: a build in progress, for other processes: {"pid", "done", "total"} (see IndexKeeper._publish)
BUILD_STATUS = "index.building.json"
#: fewer stored vectors than this are indexed at once, in the caller (well under a second)
SYNC_BUILD_BELOW = 1000


def _threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _file_stamp(path: Path) -> dict:
    """Size, mtime and a digest of samples of the binary (its head and tail and 64 blocks
    spread over it, ~0.4 MB read whatever its size, where hashing all of it read hundreds of
    MB on every load and save): a file replaced, truncated or rewritten after the JSON was
    written no longer matches, and hnswlib refuses a file of the wrong length. The JSON is
    written last, so a crash between the two leaves a mismatch, never a misread."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        block = 4096
        offsets = [0, max(0, size - 65536)] + [size * i // 64 for i in range(1, 64)]
        for offset in offsets:
            fh.seek(offset)
            h.update(fh.read(65536 if offset in offsets[:2] else block))
        mtime_ns = os.fstat(fh.fileno()).st_mtime_ns
    return {"size": size, "mtime_ns": mtime_ns, "sample": h.hexdigest()}


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a full disk leaves no temporary file behind


class VectorIndex:
    """Cosine top-k over unit vectors labelled by photo id."""

    def __init__(self, dim: int, encoder_id: str, capacity: int = 1024):
        self.dim = dim
        self.encoder_id = encoder_id
        self._lock = threading.RLock()
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.init_index(max_elements=max(capacity, 16), ef_construction=_EF_CONSTRUCTION, M=_M)
        self._index.set_ef(_EF_SEARCH)
        self._ef = _EF_SEARCH
        self._live: set[int] = set()
        self._deleted: set[int] = set()

    # -- contents ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, photo_id: int) -> bool:
        return photo_id in self._live

    def ids(self) -> set[int]:
        with self._lock:
            return set(self._live)

    def add(self, ids: Iterable[int], vectors: np.ndarray, threads: int | None = None) -> None:
        ids = np.asarray(list(ids), dtype=np.int64)
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        with self._lock:
            needed = self._index.get_current_count() + len(ids)
            if needed > self._index.get_max_elements():
                self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
            for pid in ids.tolist():
                if pid in self._deleted:
                    self._index.unmark_deleted(pid)
                    self._deleted.discard(pid)
            self._index.add_items(vectors, ids, num_threads=threads or _threads())
            self._live.update(ids.tolist())
            self._ef = ef_for(len(self._live))

    def remove(self, ids: Iterable[int]) -> None:
        with self._lock:
            for pid in ids:
                if pid in self._live:
                    self._index.mark_deleted(pid)
                    self._live.discard(pid)
                    self._deleted.add(pid)

    def vector(self, photo_id: int) -> np.ndarray | None:
        """The vector the graph holds for a photo (the stored one), or None: a search by a
        library photo reads it here, not from the database (0.02 against 0.3 ms at 10^6)."""
        with self._lock:
            if photo_id not in self._live:
                return None
            return np.asarray(self._index.get_items([photo_id])[0], dtype=np.float32)

    # -- queries ----------------------------------------------------------
    def query(
        self, vector: np.ndarray, k: int, exclude: Iterable[int] = ()
    ) -> list[tuple[int, float]]:
        """Top-k (photo id, cosine) pairs, best first, without ``exclude``d ids."""
        exclude = set(exclude)
        vector = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        with self._lock:
            live = len(self._live)
            want = min(k + len(exclude & self._live), live)  # knn_query raises if k > live count
            if want <= 0:
                return []
            self._index.set_ef(max(self._ef, want * 2))
            try:
                labels, dists = self._index.knn_query(vector, k=want)
            except RuntimeError:
                # hnswlib can fail to collect `want` results on tiny or heavily
                # deleted graphs; an exhaustive pass always succeeds.
                self._index.set_ef(max(live, want) + len(self._deleted))
                labels, dists = self._index.knn_query(vector, k=want)
        out = [(int(pid), float(1.0 - d)) for pid, d in zip(labels[0], dists[0]) if int(pid) not in exclude]
        return out[:k]

    def query_many(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels and cosine scores for many vectors at once (hnswlib's own threads)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            want = min(k, len(self._live))
            if want <= 0 or len(vectors) == 0:
                return np.zeros((len(vectors), 0), np.int64), np.zeros((len(vectors), 0), np.float32)
            self._index.set_ef(max(ef_batch(len(self._live)), want * 2))
            try:
                labels, dists = self._index.knn_query(vectors, k=want)
            except RuntimeError:
                self._index.set_ef(max(len(self._live), want) + len(self._deleted))
                labels, dists = self._index.knn_query(vectors, k=want)
        return labels.astype(np.int64), 1.0 - dists

    # -- persistence ------------------------------------------------------
    def save(self, directory: Path, generation: int) -> None:
        """Atomic: write temp files, fsync, rename; the JSON goes last and names the
        generation, size, mtime and sampled digest of the binary, so a half-written pair is
        detected."""
        directory = Path(directory)
        bin_path = directory / "index.bin"
        tmp = directory / "index.bin.tmp"
        try:
            with self._lock:
                self._index.save_index(str(tmp))
                count = len(self._live)
                deleted = sorted(self._deleted)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, bin_path)
            stamp = _file_stamp(bin_path)
        finally:
            tmp.unlink(missing_ok=True)
        meta = {
            "format": INDEX_FORMAT,
            "encoder_id": self.encoder_id,
            "dim": self.dim,
            "generation": generation,
            "count": count,
            "deleted": deleted,
            **stamp,
        }
        _atomic_write_bytes(directory / "index.json", json.dumps(meta, indent=1).encode())

    @staticmethod
    def saved(directory: Path, encoder_id: str, dim: int, generation: int) -> dict | None:
        """The saved index's metadata (``count`` its vectors) if it is current and its file
        looks intact (size, mtime and sampled digest: milliseconds, nothing loaded), else None."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / "index.json").read_text())
            if (
                meta.get("format") != INDEX_FORMAT
                or meta.get("encoder_id") != encoder_id
                or meta.get("dim") != dim
                or meta.get("generation") != generation
                or _file_stamp(directory / "index.bin") != {k: meta.get(k) for k in ("size", "mtime_ns", "sample")}
            ):
                return None
            return meta
        except (OSError, ValueError, AttributeError, json.JSONDecodeError):
            return None

    @classmethod
    def load(cls, directory: Path, encoder_id: str, dim: int, generation: int) -> VectorIndex | None:
        """The saved index if it is intact and current, else None (caller rebuilds)."""
        directory = Path(directory)
        try:
            meta = VectorIndex.saved(directory, encoder_id, dim, generation)
            if meta is None:
                return None
            bin_path = directory / "index.bin"
            self = cls.__new__(cls)
            self.dim = dim
            self.encoder_id = encoder_id
            self._lock = threading.RLock()
            self._index = hnswlib.Index(space="ip", dim=dim)
            self._index.load_index(str(bin_path), allow_replace_deleted=False)
            all_ids = set(int(i) for i in self._index.get_ids_list())
            deleted = {int(i) for i in meta.get("deleted", [])}  # kept in the file, listed in the JSON
            if not deleted <= all_ids:
                return None
            self._live, self._deleted = all_ids - deleted, deleted
            if len(self._live) != meta.get("count"):
                return None
            self._ef = ef_for(len(self._live))  # ef is not saved with the index
            self._index.set_ef(self._ef)
            return self
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, json.JSONDecodeError):
            return None

    @classmethod
    def build(cls, dim: int, encoder_id: str, ids: list[int], vectors: np.ndarray) -> VectorIndex:
        index = cls(dim, encoder_id, capacity=max(1024, int(len(ids) * 1.25)))
        index.add(ids, vectors)
        return index


def _saved_generation(folder: Path) -> int | None:
    try:
        return json.loads((Path(folder) / "index.json").read_text()).get("generation")
    except (OSError, ValueError, AttributeError):
        return None


class _Segment:
    """Rows of a build in progress: ``start:stop`` of the read rows (``read``) or of the rows
    added meanwhile, ids sorted (for lookups)."""

    __slots__ = ("seq", "start", "stop", "read")

    def __init__(self, seq: int, start: int, stop: int, read: bool):
        self.seq, self.start, self.stop, self.read = seq, start, stop, read


class _Rows:
    """A growable table of (id, valid, vector) rows, its vectors in blocks of ``block`` rows
    (``np.empty``: pages are only taken as rows arrive), so that blocks whose rows the graph
    holds can be let go while the rest is still searched."""

    def __init__(self, dim: int, capacity: int, block: int):
        self.dim, self.block = dim, block
        self.ids = np.empty(max(capacity, 16), dtype=np.int64)
        self.valid = np.zeros(max(capacity, 16), dtype=bool)
        self.blocks: list[np.ndarray | None] = []
        self.n = 0

    def append(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        m, n = len(ids), self.n
        if n + m > len(self.ids):  # more rows than counted: grow the small arrays
            cap = 2 * (n + m)
            self.ids, self.valid = np.resize(self.ids, cap), np.resize(self.valid, cap)
        self.ids[n:n + m], self.valid[n:n + m] = ids, True
        done = 0
        while done < m:
            b, at = divmod(n + done, self.block)
            if b == len(self.blocks):
                self.blocks.append(np.empty((self.block, self.dim), dtype=np.float32))
            take = min(m - done, self.block - at)
            self.blocks[b][at:at + take] = vecs[done:done + take]
            done += take
        self.n = n + m

    def vectors(self, start: int, stop: int) -> np.ndarray:
        """A copy of the vectors of rows ``start:stop`` (held blocks only)."""
        parts = []
        for b in range(start // self.block, (stop - 1) // self.block + 1):
            lo, hi = max(start, b * self.block), min(stop, (b + 1) * self.block)
            parts.append(self.blocks[b][lo - b * self.block:hi - b * self.block])
        return np.concatenate(parts) if len(parts) > 1 else parts[0].copy()

    def release_before(self, row: int) -> None:
        """Let go of the blocks whose rows all lie before ``row``."""
        for b in range(min(row // self.block, len(self.blocks))):
            self.blocks[b] = None

    def views(self, start: int):
        """[(vectors, ids, valid)] of the rows from ``start`` on, one per held block (views:
        a block let go meanwhile stays alive as long as a search still reads it)."""
        out = []
        for b, matrix in enumerate(self.blocks):
            base = b * self.block
            lo, hi = max(base, start), min(self.n, base + self.block)
            if matrix is not None and hi > lo:
                out.append((matrix[lo - base:hi - base], self.ids[lo:hi], self.valid[lo:hi]))
        return out


class IndexBuild:
    """An index being built from stored vectors in a background thread.

    Until it is done it answers queries: at first by an *exact* search over the rows read so
    far (reading the vectors is many times faster than inserting them into the graph: at 10^6
    photos 14 s against 6 minutes, so after the first seconds every photo is searchable, where
    refusing with an ``IndexBuilding`` error would leave the app without results for the whole
    build); then, as the rows go into the graph, from the graph for the rows it holds and
    exactly over the rest. The read rows' vectors are kept in blocks of ~128 MB (one
    matrix-vector product a block: per-chunk products paid BLAS's thread start-up each time,
    7x slower at 10^5), and each block is let go once the graph holds its rows, so the build
    never holds every vector twice (at 10^6 photos: 2 GB of vectors beside a graph of 2.2 GB).
    Changes made meanwhile (a scan's adds and removes) are searchable at once and replayed on
    the graph, in order, before it takes over. ``progress`` is a
    :class:`photosim.progress.Progress` ("building index", rows inserted of rows). Once done,
    every call goes to the finished :class:`VectorIndex`."""

    #: bytes of vectors a block holds
    BLOCK_BYTES = 128 << 20
    #: a step of the graph's insertion takes about this long (its rows halve or double
    #: between STEPS): a search waits for the step in progress, the next step waits for the
    #: searches. Fixed steps of 64 rows cost 20 % more time at 10^5 photos (16.4 s against
    #: 19.5-20.7 s: hnswlib starts and joins its threads each call); 512 made searches wait
    #: ~230 ms at 10^6
    STEP_SECONDS = 0.03
    STEPS = (64, 4096)

    def __init__(self, dim: int, encoder_id: str, generation: int, total: int, publish=None):
        self.dim, self.encoder_id, self.generation = dim, encoder_id, generation
        self._progress = Progress("building index", 0, total, "reading vectors")
        self._publish, self._published = publish, 0.0  # publish(Progress | None), ~once a second
        self.token = CancelToken()
        self.finished = threading.Event()  # done, failed or cancelled
        self.index: VectorIndex | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._searched = threading.Condition(self._lock)  # a search of the graph is over
        self._searching = 0  # searches of the graph in progress (the builder lets them go first)
        self._block = max(1, self.BLOCK_BYTES // (4 * dim))
        self._read = _Rows(dim, int(total * 1.02) + 1024, self._block)  # the stored vectors, in read order
        self._extra = _Rows(dim, 1024, self._block)  # the vectors added meanwhile
        self._graph: VectorIndex | None = None  # the graph, once insertion starts
        self._taken = 0  # read rows taken for the graph (rows 0:_taken)
        self._inserted = 0  # read rows the graph holds (rows 0:_inserted)
        self._stale: set[int] = set()  # photos whose vector in the graph no longer holds
        self._segments: list[_Segment] = []
        self._ops: list[tuple[int, str, np.ndarray, np.ndarray | None]] = []  # (seq, kind, ids, vectors)
        self._seq = 0

    @property
    def progress(self) -> Progress:
        return self._progress

    @progress.setter
    def progress(self, value: Progress) -> None:
        self._progress = value
        if self._publish is not None and time.monotonic() - self._published >= 1.0:
            self._published = time.monotonic()
            self._publish(value)

    # -- rows (under the lock) ------------------------------------------------
    def _append(self, seq: int, ids, vecs: np.ndarray, read: bool) -> _Segment:
        ids = np.asarray(ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        rows = self._read if read else self._extra
        start = rows.n
        rows.append(ids[order], np.asarray(vecs, dtype=np.float32).reshape(len(ids), self.dim)[order])
        segment = _Segment(seq, start, rows.n, read)
        self._segments.append(segment)
        return segment

    def _clear(self, segment: _Segment, ids: np.ndarray) -> None:
        """Rows of ``ids`` in ``segment`` no longer hold (a later change of their photos)."""
        rows = self._read if segment.read else self._extra
        seg_ids = rows.ids[segment.start:segment.stop]
        pos = np.searchsorted(seg_ids, ids)
        inside = pos < len(seg_ids)
        hit = pos[inside][seg_ids[pos[inside]] == ids[inside]]
        rows.valid[segment.start + hit] = False
        if segment.read:
            taken = hit[segment.start + hit < self._taken]  # in the graph, or on their way
            self._stale.update(seg_ids[taken].tolist())

    # -- the builder thread ---------------------------------------------------
    def run(self, chunks, on_done, threads: int) -> None:
        """Read ``chunks`` (an iterator of (ids, vectors) read lazily), insert them with
        ``threads`` threads, replay the changes made meanwhile, then ``on_done(self)``."""
        try:
            while True:
                with self._lock:
                    self._seq += 1
                    seq = self._seq  # taken before the read: a change committed later is newer
                self.token.check()
                got = next(chunks, None)
                if got is None:
                    break
                with self._lock:
                    segment = self._append(seq, *got, read=True)
                    for t, _kind, ids, _ in self._ops:
                        if t > seq:
                            self._clear(segment, ids)
                    read_so_far = self._read.n
                self.progress = Progress("building index", 0, self.progress.total,
                                         f"reading vectors ({read_so_far:,})")
            self.token.check()  # the reader stops early when cancelled
            rows = self._read.n
            self.progress = Progress("building index", 0, rows, "")
            index = VectorIndex(self.dim, self.encoder_id, capacity=max(1024, int(rows * 1.05) + 64))
            with self._lock:
                self._graph = index
            low, high = self.STEPS
            start, step = 0, low
            while start < rows:
                stop = min(start + step, rows)
                self.token.check()
                with self._lock:
                    while self._searching:  # else a waiting search can miss several steps
                        self._searched.wait(0.1)
                    keep = self._read.valid[start:stop].copy()
                    ids, vecs = self._read.ids[start:stop][keep], self._read.vectors(start, stop)[keep]
                    self._taken = stop
                took = time.perf_counter()
                index.add(ids, vecs, threads=threads)
                took = time.perf_counter() - took
                with self._lock:
                    self._inserted = stop
                    self._read.release_before(stop)
                self.progress = Progress("building index", stop, rows, "")
                if took > 2 * self.STEP_SECONDS:
                    step = max(low, step // 2)
                elif took < self.STEP_SECONDS / 2:
                    step = min(high, step * 2)
                start = stop
            applied = 0
            while True:  # the changes made meanwhile, in order; the last round under the lock
                with self._lock:
                    pending = self._ops[applied:]
                    if not pending:
                        self.index = index
                        break
                for _, kind, ids, vecs in pending:
                    index.add(ids, vecs, threads=threads) if kind == "add" else index.remove(ids.tolist())
                applied += len(pending)
            self._release()
            on_done(self)
        except BaseException as exc:  # noqa: BLE001 - kept for the caller; Cancelled included
            self.error = exc
        finally:
            self._release()
            if self._publish is not None:
                self._publish(None)
            self.finished.set()

    def _release(self) -> None:
        with self._lock:
            self._read, self._extra = _Rows(self.dim, 0, self._block), _Rows(self.dim, 0, self._block)
            self._segments, self._stale = [], set()
            self._taken = self._inserted = 0
            if self.index is None:
                self._graph = None

    @property
    def changed(self) -> bool:
        """Whether changes arrived while it was built (the saved file must then wait for
        the next save, which knows they are all in)."""
        return bool(self._ops)

    # -- what callers see meanwhile -------------------------------------------
    def _record(self, kind: str, ids, vectors=None) -> bool:
        ids = np.asarray(list(ids), dtype=np.int64)
        with self._lock:
            if self.index is not None:
                return False
            self._seq += 1
            for segment in self._segments:
                self._clear(segment, ids)
            vecs = None if vectors is None else np.array(vectors, dtype=np.float32).reshape(len(ids), self.dim)
            self._ops.append((self._seq, kind, ids, vecs))
            if kind == "add" and len(ids):
                self._append(self._seq, ids, vecs, read=False)
        return True

    def add(self, ids, vectors: np.ndarray) -> None:
        if not self._record("add", ids, vectors):
            self.index.add(ids, vectors)

    def remove(self, ids: Iterable[int]) -> None:
        if not self._record("remove", ids):
            self.index.remove(ids)

    def _snapshot(self):
        """What a search reads now, or None once the graph is done: (graph or None, its
        stale photos, [(vectors, ids, valid)] of the rows it does not hold yet) (views)."""
        with self._lock:
            if self.index is not None:
                return None
            graph = self._graph if self._inserted else None
            stale = frozenset(self._stale) if graph is not None else frozenset()
            return graph, stale, self._read.views(self._inserted) + self._extra.views(0)

    def _valid_ids(self) -> np.ndarray:
        with self._lock:
            parts = [self._read.ids[:self._read.n][self._read.valid[:self._read.n]],
                     self._extra.ids[:self._extra.n][self._extra.valid[:self._extra.n]]]
        return np.unique(np.concatenate(parts))

    def __len__(self) -> int:
        """The photos searchable now: those read so far, with the changes made meanwhile."""
        if self._snapshot() is None:
            return len(self.index)
        return len(self._valid_ids())

    def ids(self) -> set[int]:
        if self._snapshot() is None:
            return self.index.ids()
        return set(self._valid_ids().tolist())

    def __contains__(self, photo_id: int) -> bool:
        return photo_id in self.ids()

    def vector(self, photo_id: int) -> np.ndarray | None:
        """None until the graph is done (the caller reads the stored vector)."""
        return self.index.vector(photo_id) if self._snapshot() is None else None

    def query(self, vector: np.ndarray, k: int, exclude: Iterable[int] = ()) -> list[tuple[int, float]]:
        """Top-k (photo id, cosine), best first: from the graph for the rows it holds, exact
        over the rest read so far and over the changes made meanwhile."""
        snap = self._snapshot()
        if snap is None:
            return self.index.query(vector, k, exclude)
        graph, stale, parts = snap
        exclude = set(exclude)
        vector = np.ascontiguousarray(vector, dtype=np.float32).reshape(self.dim)
        found: list[tuple[float, int]] = []
        if graph is not None:
            with self._lock:
                self._searching += 1
            try:
                want = k + len(exclude) + 8
                while True:  # stale photos come back from the graph too: ask for more until enough
                    got = graph.query(vector, want, exclude)
                    fresh = [(s, pid) for pid, s in got if pid not in stale]
                    if len(fresh) >= k or len(got) < want or want >= min(len(graph), 4096):
                        break  # (past 4096 a search costs more than a few missing results)
                    want *= 4
            finally:
                with self._lock:
                    self._searching -= 1
                    self._searched.notify_all()
            found.extend(fresh)
        room = 2 * (k + len(exclude))  # room for a photo changed meanwhile (2 rows)
        for matrix, ids, valid in parts:
            scores = matrix @ vector
            scores[~valid] = -np.inf
            want = min(len(scores), room)
            top = np.argpartition(-scores, want - 1)[:want] if want < len(scores) else np.arange(len(scores))
            found.extend((float(scores[i]), int(ids[i])) for i in top.tolist() if scores[i] != -np.inf)
        found.sort(key=lambda t: -t[0])
        out, seen = [], set()
        for score, pid in found:
            if pid in exclude or pid in seen:
                continue
            seen.add(pid)
            out.append((pid, score))
            if len(out) == k:
                break
        return out


class IndexKeeper:
    """The index of a library's active model: loaded from its file, else built from the
    stored vectors in a background thread (:class:`IndexBuild`, which answers queries
    meanwhile) and saved, kept in memory, saved after changes. A read-only library reloads
    it when another process has changed the database (its generation moved).

    ``chunks(encoder_id, dim, cancel=)`` streams the stored vectors of a model,
    ``count(encoder_id)`` says how many there are (the progress bar's total)."""

    def __init__(self, folder: Path, space, chunks, count, generation, readonly: bool = False):
        self.folder = Path(folder)
        self._space = space  # () -> (encoder_id, dim)
        self._chunks, self._count = chunks, count
        self._generation = generation  # () -> int
        self.readonly = readonly
        self._index: VectorIndex | None = None
        self._build: IndexBuild | None = None
        self._threads: list[threading.Thread] = []  # builders, the superseded ones included
        self._at = -1
        self._dirty = False  # changed in memory since it was loaded, built or saved
        self._lock = threading.RLock()
        self._load_lock = threading.Lock()  # one reader of the saved index at a time
        self._save_lock = threading.RLock()  # save() may build (and save) a small index itself

    def _current(self) -> VectorIndex | IndexBuild | None:
        """(Under ``_lock``) the index or the build in progress, if there is one to use."""
        if (self._index is not None and self.readonly and self._build is None
                and self._generation() != self._at):
            self._index = None  # another process scanned or switched models
        if self._index is not None:
            return self._index
        build = self._build
        if build is not None:
            if build.finished.is_set() and build.index is None:
                self._build = None
                if not isinstance(build.error, Cancelled):
                    raise PhotosimError(f"the index could not be built: {build.error}") from build.error
            else:
                return build
        return None

    def get(self) -> VectorIndex | IndexBuild:
        """The index, or the build in progress (started here when there is neither). Both
        answer ``query``, ``add``, ``remove``, ``len`` and ``ids``. The saved index is read
        outside ``_lock`` (seconds at 10^6 photos), one reader at a time: :meth:`size` and
        :meth:`building` answer meanwhile."""
        with self._lock:
            found = self._current()
        if found is not None:
            return found
        with self._load_lock:
            with self._lock:
                found = self._current()  # another thread loaded or started it meanwhile
                if found is not None:
                    return found
                encoder_id, dim = self._space()
                generation = self._generation()
            index = VectorIndex.load(self.folder, encoder_id, dim, generation)
            with self._lock:
                found = self._current()  # a rebuild or a model switch started meanwhile
                if found is not None:
                    return found
                if index is not None and (encoder_id, dim) == self._space() and generation == self._generation():
                    self._index, self._at, self._dirty = index, generation, False
                    return index
                encoder_id, dim = self._space()  # none saved, or the database moved on meanwhile
                return self._start(encoder_id, dim, self._generation())

    def _start(self, encoder_id: str, dim: int, generation: int) -> VectorIndex | IndexBuild:
        total = self._count(encoder_id)
        if total < SYNC_BUILD_BELOW:  # a fraction of a second: built here, no thread
            ids, vecs = [], []
            for chunk_ids, chunk in self._chunks(encoder_id, dim):
                ids.extend(chunk_ids)
                vecs.append(chunk)
            index = VectorIndex.build(dim, encoder_id, ids, np.concatenate(vecs) if vecs else np.zeros((0, dim)))
            if not self.readonly:
                with self._save_lock:
                    index.save(self.folder, generation)
            self._index, self._at, self._dirty = index, generation, False
            return index
        build = IndexBuild(dim, encoder_id, generation, total, publish=None if self.readonly else self._publish)
        chunks = iter(self._chunks(encoder_id, dim, cancel=build.token))
        self._build, self._dirty = build, False
        thread = threading.Thread(target=build.run, args=(chunks, self._adopt, _threads()),
                                  name="photosim-index-build", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return build

    def _adopt(self, build: IndexBuild) -> None:
        """The builder thread, its graph complete (searches already reach it through the
        build): saved when nothing changed meanwhile (else the next save or close writes
        it), then kept as the index."""
        with self._lock:
            if self._build is not build:
                return  # superseded (model switched, library closing)
            clean = not self._dirty and not build.changed
        if clean and not self.readonly:
            build.progress = Progress("building index", build.progress.total, build.progress.total, "saving")
            with self._save_lock:
                if self._generation() == build.generation:
                    build.index.save(self.folder, build.generation)
        with self._lock:
            if self._build is build:
                self._index, self._build, self._at = build.index, None, build.generation
                self._dirty = self._dirty or build.changed

    def index_status(self) -> Progress | None:
        """The build in progress (stage, rows inserted, rows), or None when there is none."""
        build = self._build
        if build is None or build.finished.is_set():
            return None
        return build.progress

    def wait_index(self, progress=None, cancel=None) -> VectorIndex:
        """The index, once built: ``progress(Progress)`` meanwhile (~5 times a second); a
        set ``cancel`` raises :class:`photosim.errors.Cancelled` (the build goes on)."""
        token = as_token(cancel)
        while True:
            target = self.get()
            if isinstance(target, VectorIndex):
                return target
            if progress is not None and not target.finished.is_set():
                progress(target.progress)
            if not target.finished.wait(0.2):
                token.check("stopped waiting for the index (it is still being built)")

    wait, status = wait_index, index_status

    def building(self) -> float | None:
        """How far the build in progress is (0..1), this process's or, as its status file
        says, another photosim's on this library; None when there is none."""
        progress = self.index_status()
        if progress is None:
            try:
                status = json.loads((self.folder / BUILD_STATUS).read_text())
                os.kill(int(status["pid"]), 0)  # a build whose process is gone says nothing
                progress = Progress("building index", int(status["done"]), int(status["total"]))
            except (OSError, ValueError, KeyError, TypeError):
                return None
        return progress.fraction or 0.0

    def _publish(self, progress: Progress | None) -> None:
        """The writer's build, for other processes (``photosim info``): a small JSON file
        beside the index while it runs."""
        path = self.folder / BUILD_STATUS
        try:
            if progress is None:
                path.unlink(missing_ok=True)
            else:
                _atomic_write_bytes(path, json.dumps({"pid": os.getpid(), "done": progress.done,
                                                      "total": progress.total}).encode())
        except OSError:
            pass  # only a courtesy to other processes

    def size(self) -> int:
        """The vectors searchable now (the index's, or a build's so far), without starting a
        build nor loading the saved index (its count is in its metadata: at 10^6 photos,
        loading it takes seconds): 0 when the index is missing or stale and none runs here."""
        with self._lock:
            target = self._index or self._build
            if target is None:
                encoder_id, dim = self._space()
                meta = VectorIndex.saved(self.folder, encoder_id, dim, self._generation())
                return 0 if meta is None else int(meta.get("count", 0))
        return len(target)

    def add(self, ids, vectors: np.ndarray) -> None:
        target = self.get()
        with self._lock:
            self._dirty = True
        target.add(ids, vectors)

    def remove(self, ids: Iterable[int]) -> None:
        target = self.get()
        with self._lock:
            self._dirty = True
        target.remove(ids)

    def save(self) -> None:
        """Write the index when it changed or its file is of another generation; a scan
        that changed nothing neither loads nor rewrites it. During a build nothing is
        written: the build saves itself, or :meth:`close` does."""
        if self.readonly:
            return
        with self._save_lock:
            with self._lock:
                if self._build is not None:
                    return
                generation = self._generation()
                on_disk = self._at if self._index is not None else _saved_generation(self.folder)
                if not self._dirty and on_disk == generation:
                    return
            index = self.get()
            if isinstance(index, IndexBuild):
                return  # the file was stale: a build started, it saves itself
            index.save(self.folder, generation)
            with self._lock:
                self._at, self._dirty = generation, False

    def _stop(self) -> None:
        build, self._build = self._build, None
        if build is not None:
            build.token.cancel()

    def reset(self) -> None:
        """Forget the in-memory index (the active model changed); the next use loads or builds."""
        with self._lock:
            self._stop()
            self._index = None

    def rebuild(self) -> VectorIndex | IndexBuild:
        """Build afresh from the stored vectors (in the background but for a small library;
        see :meth:`wait_index`)."""
        with self._lock:
            self._stop()
            self._index = None
            encoder_id, dim = self._space()
            return self._start(encoder_id, dim, self._generation())

    rebuild_index = rebuild

    def close(self) -> None:
        """Stop a build (a later open starts again) and save what changed since the last save."""
        with self._lock:
            threads = list(self._threads)
            if self._build is not None:
                self._build.token.cancel()  # a build that completes anyway is still kept
        for thread in threads:
            thread.join()
        if self._index is not None:
            self.save()  # when it changed, or its file is of another generation
