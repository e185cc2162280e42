"""Vectors into the library from an .npz file (what ``export-vectors`` writes).

This is how a huge archive embedded on a GPU machine is used on a laptop, and how a
library is restored from an export: each path that is an existing photo file becomes a
photo row with the imported vector and the file's size and mtime, so a later scan of
its folder treats it as unchanged (one ``stat``). Imported photos have no cached
backbone features: a model switch that needs them reads those photos then. The file
is checked whole before anything is written; files that are gone are counted, never
fatal; rows are written in batches of one transaction each, and the command returns
once the index holds them.
"""

from __future__ import annotations

import os
import stat as stat_mod
import time
import zipfile
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, insert, select

from ..errors import PhotosimError
from ..imageio import display_path as show
from ..imageio import is_supported
from ..index import VectorIndex
from ..progress import ProgressFn, as_token, emit
from ..store.schema import Photo, Vector, vector_to_blob

_BATCH = 5000
_REBUILD_FROM = 20_000
_UNIT_TOLERANCE = 1e-3


@dataclass
class ImportReport:
    """What :func:`import_vectors` did with each path of the file."""

    imported: int = 0
    missing: int = 0  # no such file (or not a regular file) here
    unsupported: int = 0  # a file, but not a photo type photosim reads
    already: int = 0  # already a photo of this library: left as it is
    cancelled: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def read_npz(path: str | os.PathLike, encoder_id: str, dim: int) -> tuple[list[str], np.ndarray]:
    """(absolute paths, float32 unit vectors) from ``path``, or one clear PhotosimError."""
    where = show(path)
    bad = f"{where} is not a vector file photosim can import"
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("paths", "vectors", "encoder_id") if k not in npz.files]
            if missing:
                raise PhotosimError(f"{bad}: it has no {', '.join(missing)} array "
                                    "(`photosim export-vectors` writes paths, vectors and encoder_id)")
            paths, vectors, file_encoder = npz["paths"], npz["vectors"], npz["encoder_id"]
    except FileNotFoundError:
        raise PhotosimError(f"no such file: {where}") from None
    except IsADirectoryError:
        raise PhotosimError(f"{where} is a folder, not an .npz file") from None
    except PermissionError:
        raise PhotosimError(f"cannot read {where}: permission denied") from None
    except ValueError:  # not an .npz (numpy would try pickle), or arrays of Python objects
        raise PhotosimError(f"{bad}: it is not an .npz file of plain arrays, as `photosim export-vectors` "
                            "writes") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise PhotosimError(f"{bad}: it is damaged or cut short ({exc})") from None
    if file_encoder.shape != () or file_encoder.dtype.kind != "U":
        raise PhotosimError(f"{bad}: encoder_id must be one string")
    file_encoder = str(file_encoder)
    if file_encoder != encoder_id:
        raise PhotosimError(f"the vectors in {where} were made by the encoder {file_encoder!r}, but this "
                            f"library uses {encoder_id!r}: vectors of two encoders cannot be compared "
                            "(switch the library to that model first, or scan the photos instead)")
    if paths.ndim != 1 or paths.dtype.kind != "U":
        raise PhotosimError(f"{bad}: paths must be a list of strings")
    if vectors.dtype.kind != "f" or vectors.ndim != 2 or vectors.shape != (len(paths), dim):
        raise PhotosimError(f"{bad}: vectors must be floats of shape ({len(paths)}, {dim}) for "
                            f"{len(paths)} paths and this encoder, not {vectors.dtype} {vectors.shape}")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        raise PhotosimError(f"{bad}: the vector of {show(paths[int(np.argmin(finite))])} is not finite (NaN or inf)")
    norms = np.linalg.norm(vectors, axis=1)
    off = np.abs(norms - 1.0) > _UNIT_TOLERANCE
    if off.any():
        i = int(np.argmax(off))
        raise PhotosimError(f"{bad}: the vector of {show(paths[i])} has length {norms[i]:.4f}, not 1 "
                            f"({int(off.sum())} vectors are not unit length)")
    absolute = [os.path.abspath(p) for p in paths.tolist()]
    if len(set(absolute)) != len(absolute):
        seen: set[str] = set()
        dup = next(p for p in absolute if p in seen or seen.add(p))
        raise PhotosimError(f"{bad}: {show(dup)} appears more than once")
    return absolute, vectors


def import_vectors(store, index, encoder_id: str, dim: int, path: str | os.PathLike,
                   progress: ProgressFn | None = None, cancel=None) -> ImportReport:
    """Import ``path`` into ``store`` and ``index`` (an :class:`photosim.index.IndexKeeper`);
    a set ``cancel`` stops after the current batch (what was committed stays, indexed).

    A small import into a ready index is added to it batch by batch; a large one (at least
    as many photos as the index holds, and over :data:`_REBUILD_FROM` photos) or one that
    arrives while the index is being built only writes rows, then starts a background build
    from the stored vectors: one pass with every core instead of holding millions of
    vectors twice (``Library.wait_index`` waits for it)."""
    t0 = time.perf_counter()
    token = as_token(cancel)
    paths, vectors = read_npz(path, encoder_id, dim)
    report = ImportReport()
    current = index.get()  # load (or start building) the index of what is stored now
    total = len(paths)
    rebuild = not isinstance(current, VectorIndex) or (total > _REBUILD_FROM and total >= len(current))
    emit(progress, "importing", 0, total)
    for start in range(0, total, _BATCH):
        if token():
            report.cancelled = True
            break
        chunk = paths[start:start + _BATCH]
        rows, keep = [], []
        for i, p in enumerate(chunk, start):
            try:
                st = os.stat(p)
            except (OSError, ValueError):
                report.missing += 1
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                report.missing += 1
            elif not is_supported(p):
                report.unsupported += 1
            else:
                rows.append((p, st.st_size, st.st_mtime_ns))
                keep.append(i)
        ids = _write(store, encoder_id, rows, vectors[keep], report)
        if ids and not rebuild:
            index.add([pid for pid, _ in ids], vectors[[keep[j] for _, j in ids]])
        emit(progress, "importing", min(start + _BATCH, total), total)
    if rebuild and report.imported:
        index.rebuild()  # in the background; it saves itself
    elif not rebuild:
        emit(progress, "saving index", 0, 1)
        index.save()
        emit(progress, "saving index", 1, 1)
    report.seconds = time.perf_counter() - t0
    return report


def _write(store, encoder_id: str, rows: list[tuple[str, int, int]], vectors: np.ndarray,
           report: ImportReport) -> list[tuple[int, int]]:
    """Insert the photos of one batch not already in the library, with their vectors, in
    one transaction; returns (new photo id, position in ``rows``) pairs."""
    if not rows:
        return []
    now = time.time()
    with store.write() as s:
        existing = set()
        wanted = [r[0] for r in rows]
        for start in range(0, len(wanted), 900):
            existing.update(s.scalars(select(Photo.path).where(Photo.path.in_(wanted[start:start + 900]))))
        report.already += len(existing)
        new = [j for j, r in enumerate(rows) if r[0] not in existing]
        if not new:
            return []
        first = (s.scalar(select(func.max(Photo.id))) or 0) + 1  # the writer lock is held
        ids = list(range(first, first + len(new)))
        s.execute(insert(Photo), [
            {"id": pid, "path": rows[j][0], "size": rows[j][1], "mtime_ns": rows[j][2], "status": "ok",
             "scanned_at": now} for pid, j in zip(ids, new)])
        s.execute(insert(Vector), [
            {"photo_id": pid, "encoder_id": encoder_id, "data": vector_to_blob(vectors[j])}
            for pid, j in zip(ids, new)])
    report.imported += len(new)
    return list(zip(ids, new))
