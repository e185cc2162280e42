"""Vectors out of the library, as an .npz file other tools (and ``import-vectors``) read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_npz(out: str | os.PathLike, paths: list[str], vectors: np.ndarray, encoder_id: str) -> int:
    """Arrays ``paths`` (str), ``vectors`` (float32) and a 0-d ``encoder_id``; written to a
    temporary file renamed into place, which never stays behind."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp.npz")
    try:
        np.savez(tmp, paths=np.array(paths, dtype=str), vectors=np.asarray(vectors, np.float32),
                 encoder_id=np.array(encoder_id))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return len(paths)


def photos_and_vectors(store, encoder_id: str, dim: int) -> tuple[list, np.ndarray]:
    """Every indexed photo (``PhotoInfo``) and its vector, in the same order."""
    ids, vecs = store.vectors.load(encoder_id, dim)
    by_id = store.photos.by_ids(ids)
    keep = [i for i, pid in enumerate(ids) if pid in by_id]
    return [by_id[ids[i]] for i in keep], vecs[keep]
