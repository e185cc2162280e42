"""Vectors out of the library, as an .npz file other tools (and ``import-vectors``) read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import PhotosimError
from ..imageio import display_path as show


def check_target(target: Path) -> None:
    """A clear sentence, before anything is written, when ``target`` cannot be a file."""
    if target.is_dir():
        raise PhotosimError(f"{show(target)} is a folder; give the file to write, e.g. "
                            f"{show(target / 'vectors.npz')}")
    parent = target.parent
    if not parent.exists():
        raise PhotosimError(f"the folder {show(parent)} does not exist; create it first or give another path")
    if not parent.is_dir():
        raise PhotosimError(f"{show(parent)} is not a folder, so {show(target)} cannot be written")
    if not os.access(parent, os.W_OK):
        raise PhotosimError(f"cannot write in {show(parent)}: permission denied")


def write_npz(out: str | os.PathLike, paths: list[str], vectors: np.ndarray, encoder_id: str) -> int:
    """Arrays ``paths`` (str), ``vectors`` (float32) and a 0-d ``encoder_id``; written to a
    temporary file beside ``out``, fsynced and renamed into place; it never stays behind."""
    out = Path(os.path.abspath(out))
    check_target(out)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:  # a file object: numpy appends no ".npz"
            np.savez(fh, paths=np.array(paths, dtype=str), vectors=np.asarray(vectors, np.float32),
                     encoder_id=np.array(encoder_id))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return len(paths)


def photos_and_vectors(store, encoder_id: str, dim: int) -> tuple[list, np.ndarray]:
    """Every indexed photo (``PhotoInfo``) and its vector, in the same order."""
    ids, vecs = store.vectors.load(encoder_id, dim)
    by_id = store.photos.photos_by_id(ids)
    keep = [i for i, pid in enumerate(ids) if pid in by_id]
    return [by_id[ids[i]] for i in keep], vecs[keep]


class Exchange:
    """Vectors in and out of a library: ``export-vectors`` and ``import-vectors`` (the
    library's part for them; ``writable()`` raises on a read-only library)."""

    def __init__(self, store, index, active, writable):
        self._store, self._index, self._active, self._writable = store, index, active, writable

    def vectors(self) -> tuple[list, np.ndarray]:
        """Every indexed photo and its vector (same order), for export or analysis."""
        return photos_and_vectors(self._store, self._active.encoder_id, self._active.card.dim)

    def export_vectors(self, out: str | os.PathLike) -> int:
        """Write ``paths``, ``vectors`` (float32) and ``encoder_id`` to an .npz file (atomically)."""
        photos, vecs = self.vectors()
        return write_npz(out, [p.path for p in photos], vecs, self._active.encoder_id)

    def import_vectors(self, npz, *, progress=None, cancel=None):
        """Photos and their vectors from an ``export-vectors`` file (an ``ImportReport``; a
        large import is indexed in the background)."""
        from .import_vectors import import_vectors

        self._writable()
        return import_vectors(self._store, self._index, self._active.encoder_id, self._active.card.dim, npz,
                              progress, cancel)
