"""The two nearest binary descriptors (ORB's 256 bits) by Hamming distance, exhaustively.

Keypoint matching in duplicate verification is this search, a few thousand times per
10,000 photos, and it was half of the verification's time with OpenCV's brute-force
matcher (``cv2.batchDistance``: 5.2 ms for 1,000 × 1,000 descriptors on this 2-core
machine). faiss's exhaustive binary index does the same search in 0.95 ms, with the same
distances. Where faiss is not installed (it is a Linux-only dependency: on macOS and
Windows its OpenMP runtime and torch's abort or crash when loaded together, faiss-wheels
issue #73), OpenCV's matcher is used.

Which of two equally near descriptors comes first may differ between the two; the
ratio test that reads the result rejects every tie for the nearest, so the matches kept
are the same.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


@functools.cache
def _faiss():
    """faiss, imported on first use (not at start-up: 40 ms), or None where it is not installed."""
    try:
        import faiss
    except ImportError:  # not installed: OpenCV's matcher
        return None
    return faiss


def faiss_available() -> bool:
    return _faiss() is not None


def two_nearest(query: np.ndarray, base: np.ndarray, use_faiss: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices), each (len(query), 2): for every row of ``query`` (uint8,
    32 bytes a row), the two nearest rows of ``base`` (at least two rows), nearest first."""
    faiss = _faiss()
    if use_faiss is None:
        use_faiss = faiss is not None
    if use_faiss:
        # one thread: verification runs one pair per core already (OpenMP's setting is
        # per calling thread, so each verification thread sets it for itself)
        faiss.omp_set_num_threads(1)
        index = faiss.IndexBinaryFlat(base.shape[1] * 8)
        index.add(np.ascontiguousarray(base))
        dist, idx = index.search(np.ascontiguousarray(query), 2)
        return dist, idx
    return cv2.batchDistance(query, base, cv2.CV_32S, normType=cv2.NORM_HAMMING, K=2, update=0,
                             crosscheck=False)
