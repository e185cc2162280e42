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
from collections.abc import Iterable
from pathlib import Path

import hnswlib
import numpy as np

#: 2: index.json names the binary's size, mtime and a sampled digest (not a digest of the
#: whole file) and lists the deleted labels (no per-label probing on load); an index of
#: another format is rebuilt, never misread.
INDEX_FORMAT = 2
_M = 16
_EF_CONSTRUCTION = 100
_EF_SEARCH = 64  # at 100,000 photos and below; grows with the library (see ef_for)


def ef_for(count: int) -> int:
    """Search breadth for an index of ``count`` vectors: recall@10 at a fixed ef falls as
    the graph grows (measured on structured vectors: 0.96 at 10^5 but 0.84 at 10^6 with ef
    64), so ef grows with the square root of the size above 10^5 (202 at 10^6), capped."""
    return int(min(256, max(_EF_SEARCH, round(_EF_SEARCH * math.sqrt(max(count, 1) / 100_000)))))


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

    def add(self, ids: Iterable[int], vectors: np.ndarray) -> None:
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
            self._index.add_items(vectors, ids, num_threads=_threads())
            self._live.update(ids.tolist())
            self._ef = ef_for(len(self._live))

    def remove(self, ids: Iterable[int]) -> None:
        with self._lock:
            for pid in ids:
                if pid in self._live:
                    self._index.mark_deleted(pid)
                    self._live.discard(pid)
                    self._deleted.add(pid)

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
            self._index.set_ef(max(self._ef, want * 2))
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

    @classmethod
    def load(cls, directory: Path, encoder_id: str, dim: int, generation: int) -> VectorIndex | None:
        """The saved index if it is intact and current, else None (caller rebuilds)."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / "index.json").read_text())
            bin_path = directory / "index.bin"
            if (
                meta.get("format") != INDEX_FORMAT
                or meta.get("encoder_id") != encoder_id
                or meta.get("dim") != dim
                or meta.get("generation") != generation
                or _file_stamp(bin_path) != {k: meta.get(k) for k in ("size", "mtime_ns", "sample")}
            ):
                return None
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


class IndexKeeper:
    """The index of a library's active model: loaded from its file, else built from the
    stored vectors (and saved), kept in memory, saved after changes. A read-only library
    reloads it when another process has changed the database (its generation moved)."""

    def __init__(self, folder: Path, space, load_vectors, generation, readonly: bool = False):
        self.folder = Path(folder)
        self._space = space  # () -> (encoder_id, dim)
        self._load_vectors = load_vectors  # () -> (ids, vectors) of the active model
        self._generation = generation  # () -> int
        self.readonly = readonly
        self._index: VectorIndex | None = None
        self._at = -1
        self._dirty = False  # changed in memory since it was loaded, built or saved
        self._lock = threading.RLock()

    def get(self) -> VectorIndex:
        with self._lock:
            if self._index is not None and self.readonly and self._generation() != self._at:
                self._index = None  # another process scanned or switched models
            if self._index is None:
                encoder_id, dim = self._space()
                generation = self._generation()
                index = VectorIndex.load(self.folder, encoder_id, dim, generation)
                if index is None:
                    ids, vecs = self._load_vectors()
                    index = VectorIndex.build(dim, encoder_id, ids, vecs)
                    if not self.readonly:
                        index.save(self.folder, generation)
                self._index, self._at, self._dirty = index, generation, False
            return self._index

    def add(self, ids, vectors: np.ndarray) -> None:
        index = self.get()
        with self._lock:
            self._dirty = True
        index.add(ids, vectors)

    def remove(self, ids: Iterable[int]) -> None:
        index = self.get()
        with self._lock:
            self._dirty = True
        index.remove(ids)

    def save(self) -> None:
        """Write the index when it changed or its file is of another generation; a scan
        that changed nothing neither loads nor rewrites it."""
        if self.readonly:
            return
        with self._lock:
            generation = self._generation()
            on_disk = self._at if self._index is not None else _saved_generation(self.folder)
            if not self._dirty and on_disk == generation:
                return
            self.get().save(self.folder, generation)
            self._at, self._dirty = generation, False

    def reset(self) -> None:
        """Forget the in-memory index (the active model changed); the next use loads or builds."""
        with self._lock:
            self._index = None

    def rebuild(self) -> VectorIndex:
        with self._lock:
            self._index = None
            return self.get()
