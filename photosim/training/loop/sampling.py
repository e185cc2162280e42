"""Which rows each training step sees.

* :class:`MPerClassBatches` – ``m`` photos of each of several albums per step, drawn by
  pytorch-metric-learning's ``MPerClassSampler``, so that every batch holds positives to mine.
* :class:`TripletBatches` – a few of the explicit (anchor, positive, negative) triplets
  made from the user's marks (photos in marks only, label -1, are seen only through these).
* :func:`two_views` – two different views of each photo (a photo and its edited copy).
* :class:`ChoiceClassBatches` – the draw the bundled encoder v4 was trained with.

Every source takes its own seed or generator: a run's batches never depend on global
random state, nor on what ran before in the process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

_SAMPLER_RNG = threading.Lock()


class MPerClassBatches:
    """Batches of ``rows``: ``m`` of each of ``classes`` labels per step (with replacement
    inside a label that has fewer than ``m`` rows), ``steps`` batches per epoch.

    ``MPerClassSampler`` draws from pytorch-metric-learning's module-level
    ``common_functions.NUMPY_RANDOM`` (numpy's global state by default); it is pointed at
    this source's own generator while an epoch's order is drawn.
    """

    def __init__(self, rows: np.ndarray, labels: np.ndarray, m: int, classes: int, steps: int,
                 seed: int | np.random.Generator = 0) -> None:
        from pytorch_metric_learning.samplers import MPerClassSampler

        self.rows = np.asarray(rows, dtype=np.int64)
        labels = np.asarray(labels)
        n_labels = len(np.unique(labels))
        if len(self.rows) != len(labels) or n_labels < 1:
            raise ValueError("MPerClassBatches needs one label per row and at least one label")
        self.m = int(m)
        self.batch = self.m * max(1, min(int(classes), n_labels))
        self.steps = int(steps)
        self.sampler = MPerClassSampler(labels, self.m, batch_size=self.batch,
                                        length_before_new_iter=self.batch * self.steps)
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Batches without end, epoch after epoch."""
        while True:
            yield from self.epoch()

    def epoch(self) -> Iterator[np.ndarray]:
        from pytorch_metric_learning.utils import common_functions as c_f

        with _SAMPLER_RNG:
            saved, c_f.NUMPY_RANDOM = c_f.NUMPY_RANDOM, self.rng
            try:
                order = np.fromiter(iter(self.sampler), dtype=np.int64)
            finally:
                c_f.NUMPY_RANDOM = saved
        yield from self.rows[order].reshape(-1, self.batch)


class TripletBatches:
    """``size`` distinct triplets (rows into the features) per step, drawn at random."""

    def __init__(self, triplets: np.ndarray | None, size: int, seed: int | np.random.Generator = 0) -> None:
        self.triplets = np.zeros((0, 3), np.int64) if triplets is None else \
            np.asarray(triplets, np.int64).reshape(-1, 3)
        self.size = int(size)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.triplets)

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """(the distinct rows of a draw, the draw as (k, 3) positions into those rows)."""
        pick = self.triplets[self.rng.choice(len(self.triplets), size=min(self.size, len(self.triplets)),
                                             replace=False)]
        rows, inv = np.unique(pick, return_inverse=True)
        return rows, inv.reshape(-1, 3)


def two_views(rng: np.random.Generator, n: int, n_views: int) -> np.ndarray:
    """(n, 2) view numbers: two different views of each of ``n`` photos (0, 0 with one view)."""
    if n_views < 2:
        return np.zeros((n, 2), dtype=np.int64)
    return np.argsort(rng.random((n, n_views)), axis=1)[:, :2]


class ChoiceClassBatches:
    """The hand-written draw the bundled encoder v4 was trained with: per step ``classes``
    labels without replacement, ``per_class`` rows of each (with replacement in small ones),
    then two different views of each row, all from one generator in that order.

    Kept only so that ``packaging/train_encoder.py`` reproduces the shipped weights byte for
    byte: ``MPerClassSampler`` picks a batch's labels by shuffling rather than by
    ``choice``, a different random stream. New training uses :class:`MPerClassBatches`.
    """

    def __init__(self, labels: np.ndarray, classes: int, per_class: int, steps: int, n_views: int,
                 seed: int) -> None:
        labels = np.asarray(labels)
        self.by_class = [np.flatnonzero(labels == c) for c in range(labels.max() + 1)]
        self.classes, self.per_class, self.steps, self.n_views = classes, per_class, steps, n_views
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            yield from self.epoch()

    def epoch(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rows, (n, 2) views) per step."""
        rng = self.rng
        for _ in range(self.steps):
            chosen = rng.choice(len(self.by_class), size=min(self.classes, len(self.by_class)), replace=False)
            idx = np.concatenate([
                rng.choice(self.by_class[c], size=self.per_class, replace=len(self.by_class[c]) < self.per_class)
                for c in chosen])
            views = np.stack([rng.choice(self.n_views, size=2, replace=False) for _ in idx])
            yield idx, views
