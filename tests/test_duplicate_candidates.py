"""Duplicate candidates at scale: the batched numpy merge finds the same pairs, scores and
order as a loop over every photo's ranked neighbours, and refuses a far too loose threshold."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from photosim.errors import PhotosimError
from photosim.index import VectorIndex
from photosim.pipeline.duplicates import BURST_MARGIN, MAX_SATURATED, _Run
from photosim.progress import CancelToken


def _reference(index, ids, vecs, threshold, k):
    """The per-pair loop the batched version replaces."""
    row = set(ids)
    cands, saturated = {}, 0
    labels, scores = index.query_many(vecs, k + 1)
    for pid, row_labels, row_scores in zip(ids, labels, scores):
        n = 0
        for other, score in zip(row_labels.tolist(), row_scores.tolist()):
            if score < threshold - BURST_MARGIN:
                break
            if other == pid or other not in row:
                continue
            n += score >= threshold
            pair = (min(pid, other), max(pid, other))
            cands[pair] = max(score, cands.get(pair, -1.0))
        saturated += n >= min(k, len(ids) - 1)
    return cands, saturated


def _clustered(n, dim=48, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // 6, dim))
    v = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.normal(size=(n, dim))
    dup = rng.choice(n, size=(n // 20, 2), replace=False)
    v[dup[:, 1]] = v[dup[:, 0]] + 0.01 * rng.normal(size=(len(dup), dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("chunk", [7, 8192])
def test_batched_candidates_equal_the_per_pair_loop(chunk):
    vecs = _clustered(900)
    ids = sorted(np.random.default_rng(1).choice(10_000, size=900, replace=False).tolist())
    index = VectorIndex.build(48, "enc", ids, vecs)
    index.remove(ids[:5])  # deleted photos are never neighbours
    seen = []
    run = _Run(None, index, SimpleNamespace(id="enc"), 0.8, 8, None, seen.append, CancelToken())
    got = run._candidates(ids, vecs, chunk=chunk)
    want, _ = _reference(index, ids, vecs, 0.8, 8)
    assert len(want) > 100
    assert list(got) == list(want)  # the same pairs, met in the same order
    assert all(got[p] == pytest.approx(want[p], abs=1e-6) for p in want)
    assert seen[-1].done == seen[-1].total == 900


def test_a_far_too_loose_threshold_is_refused_and_cancel_stops():
    vecs = _clustered(300, seed=2)
    ids = list(range(1, 301))
    index = VectorIndex.build(48, "enc", ids, vecs)
    _, saturated = _reference(index, ids, vecs, -1.0, 8)
    assert saturated > MAX_SATURATED * len(ids)
    run = _Run(None, index, SimpleNamespace(id="enc"), -1.0, 8, None, None, CancelToken())
    with pytest.raises(PhotosimError, match="far too loose"):
        run._candidates(ids, vecs)
    token = CancelToken()
    token.cancel()
    with pytest.raises(PhotosimError, match="cancelled"):
        _Run(None, index, SimpleNamespace(id="enc"), 0.9, 8, None, None, token)._candidates(ids, vecs)
