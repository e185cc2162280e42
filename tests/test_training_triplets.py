"""Labels → training data: albums and marks to triplets, and what gets left out (no torch)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from photosim.training.triplets import album_triplets, collect_labels, mark_triplets
from photosim.values import PhotosimError

ALL = set(range(100))


def test_albums_become_triplets_with_positive_from_same_album_and_negative_from_another():
    data = collect_labels({"a": [1, 2, 3], "b": [4, 5], "c": [6, 7, 8]}, [], ALL)
    assert data.album_names == ["a", "b", "c"]
    labels = data.labels
    t = album_triplets(labels, 500, random.Random(0))
    assert t.shape == (500, 3)
    lab = np.asarray(labels)
    assert (lab[t[:, 0]] == lab[t[:, 1]]).all()
    assert (t[:, 0] != t[:, 1]).all()
    assert (lab[t[:, 0]] != lab[t[:, 2]]).all()
    # Seeded: the same triplets again.
    assert (album_triplets(labels, 500, random.Random(0)) == t).all()


@pytest.mark.parametrize("albums", [{}, {"only": [1, 2, 3]}, {"a": [1], "b": [2]}])
def test_fewer_than_two_usable_albums_is_a_clear_error(albums):
    with pytest.raises(PhotosimError, match="at least two albums"):
        collect_labels(albums, [], ALL)


def test_album_with_one_photo_is_left_out_with_a_note():
    data = collect_labels({"a": [1, 2], "b": [3, 4], "single": [5]}, [], ALL)
    assert data.album_names == ["a", "b"]
    assert any("'single'" in w for w in data.warnings)
    with pytest.raises(PhotosimError, match="'single' has fewer than two"):
        collect_labels({"a": [1, 2], "single": [5]}, [], ALL)


def test_gone_and_unscanned_photos_are_left_out():
    data = collect_labels({"a": [1, 2, 3], "b": [4, 5, 6]}, [], usable={1, 2, 4, 5, 6}, gone={3})
    assert 3 not in data.photo_ids
    assert any("no longer exist" in w for w in data.warnings)
    data = collect_labels({"a": [1, 2, 3], "b": [4, 5, 6]}, [], usable={1, 2, 4, 5, 6})
    assert any("not scanned" in w for w in data.warnings)
    with pytest.raises(PhotosimError, match="no longer exist"):
        collect_labels({"a": [1, 2], "b": [4, 5]}, [], usable={1, 4, 5}, gone={2})


def test_photo_in_two_albums_counts_once():
    data = collect_labels({"a": [1, 2, 3], "b": [3, 4, 5]}, [], ALL)
    assert sorted(data.photo_ids) == [1, 2, 3, 4, 5]
    assert any("more than one album" in w for w in data.warnings)


def test_marks_become_triplets():
    albums = {"a": [1, 2, 3], "b": [4, 5, 6]}
    marks = [(1, 10, +1), (1, 11, -1), (20, 21, +1), (20, 22, -1)]
    data = collect_labels(albums, marks, ALL)
    assert {10, 11, 20, 21, 22} <= set(data.photo_ids)
    trips = mark_triplets(data, random.Random(0))
    assert (1, 10, 11) in trips
    assert (20, 21, 22) in trips
    for a, p, n in trips:
        assert len({a, p, n}) == 3


def test_marks_alone_are_enough_to_train():
    marks = [(1, 2, +1), (1, 3, -1), (4, 5, +1), (4, 6, -1), (7, 8, +1), (7, 9, -1)]
    data = collect_labels({}, marks, ALL)
    assert data.marks_only and len(data.positives) == 3 and len(data.negatives) == 3
    assert mark_triplets(data, random.Random(0))[0] == (1, 2, 3)
    with pytest.raises(PhotosimError, match="at least 3 'similar'"):  # one of each: too few
        collect_labels({}, marks[:2], ALL)


def test_contradicting_marks_are_dropped_with_a_note():
    albums = {"a": [1, 2, 3], "b": [4, 5, 6]}
    marks = [(1, 9, +1), (9, 1, -1), (1, 2, -1), (1, 4, -1)]
    data = collect_labels(albums, marks, ALL)
    assert data.positives == []
    assert data.negatives == [(1, 4)]  # (1, 2) contradicts album "a"; (1, 9) both ways
    assert any("both similar and not similar" in w for w in data.warnings)
    assert any("same album" in w for w in data.warnings)


@pytest.mark.parametrize("head", ["identity", "linear", "mlp"])
def test_engine_learns_from_any_parent_head(head):
    """Synthetic features: two albums differ along a direction the parent head ignores."""
    import torch

    from photosim.model import ModelCard, build_head
    from photosim.training import TrainConfig, train_head

    rng = np.random.default_rng(0)
    n, d = 120, 1280
    labels = np.repeat([0, 1], n // 2)
    feats = rng.random((n, d)).astype(np.float32) + 1.0
    feats[:, 7] += np.where(labels == 0, 0.8, -0.8)  # the album's signal, small next to the rest
    card = ModelCard(id="parent", head=head, dim=1280 if head == "identity" else 64, head_hidden=128)
    torch.manual_seed(0)
    state = {f"head.{k}": v for k, v in build_head(card).state_dict().items()}
    seen = []
    out = train_head(feats, labels, card, state, TrainConfig(epochs=8, seed=1), progress=seen.append)
    assert out.after["map_at_r"] > out.before["map_at_r"]
    assert all(torch.isfinite(v).all() for v in out.head_state.values())
    assert seen[-1].stage == "done" and any(p.stage == "validating" for p in seen)
    assert out.dim == (1280 if head == "identity" else 64)
