"""The one training loop and its pieces (photosim.training.loop), on toy models: no CNN."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from photosim.errors import Cancelled
from photosim.progress import CancelToken
from photosim.training.loop import (
    ChoiceClassBatches, Diverged, MPerClassBatches, TrainProgress, TripletBatches, cosine, fit, two_views,
)


def test_m_per_class_batches_hold_m_rows_of_each_album_and_are_seeded():
    rows = np.arange(100, 130)
    labels = np.repeat([0, 1, 2, 3, 4], 6)
    labels[-3:] = 5  # a small album: drawn with replacement
    src = MPerClassBatches(rows, labels, m=4, classes=3, steps=7, seed=1)
    batches = list(src.epoch())
    assert len(batches) == 7
    label_of = dict(zip(rows, labels))
    for b in batches:
        assert len(b) == 12 and set(b) <= set(rows)
        counts = np.unique([label_of[r] for r in b], return_counts=True)[1]
        assert len(counts) == 3 and (counts == 4).all()
    # The same seed draws the same batches whatever the global random state; the library's
    # own generator is left as it was.
    from pytorch_metric_learning.utils import common_functions as c_f

    before = c_f.NUMPY_RANDOM
    np.random.seed(123)
    again = list(MPerClassBatches(rows, labels, m=4, classes=3, steps=7, seed=1).epoch())
    assert all((a == b).all() for a, b in zip(batches, again))
    assert c_f.NUMPY_RANDOM is before
    other = list(MPerClassBatches(rows, labels, m=4, classes=3, steps=7, seed=2).epoch())
    assert not all((a == b).all() for a, b in zip(batches, other))
    # Endless iteration: the next epoch follows.
    it = iter(MPerClassBatches(rows, labels, m=4, classes=3, steps=2, seed=1))
    assert len([next(it) for _ in range(5)]) == 5


def test_triplet_batches_and_views():
    triplets = np.array([[0, 1, 2], [3, 4, 5], [0, 4, 6], [7, 8, 9]])
    src = TripletBatches(triplets, size=3, seed=0)
    rows, at = src.draw()
    drawn = rows[at]
    assert drawn.shape == (3, 3) and len({tuple(t) for t in drawn}) == 3
    assert {tuple(t) for t in drawn} <= {tuple(t) for t in triplets}
    assert len(TripletBatches(None, 5)) == 0
    v = two_views(np.random.default_rng(0), 50, 3)
    assert v.shape == (50, 2) and (v[:, 0] != v[:, 1]).all() and v.max() <= 2
    assert (two_views(np.random.default_rng(0), 4, 1) == 0).all()


def test_choice_class_batches_draw_what_encoder_v4_was_trained_with():
    """The bundled encoder's weights are reproducible only if this draw is the hand-written
    one of packaging/train_encoder.py v4, number for number."""
    labels = np.repeat(np.arange(7), [5, 3, 6, 2, 4, 5, 5])
    got = list(ChoiceClassBatches(labels, classes=4, per_class=3, steps=5, n_views=4, seed=0).epoch())
    rng = np.random.default_rng(0)  # the v4 loop, verbatim
    by_class = [np.flatnonzero(labels == c) for c in range(labels.max() + 1)]
    for idx_got, v_got in got:
        classes = rng.choice(len(by_class), size=min(4, len(by_class)), replace=False)
        idx = np.concatenate([rng.choice(by_class[c], size=3, replace=len(by_class[c]) < 3) for c in classes])
        v = np.stack([rng.choice(4, size=2, replace=False) for _ in idx])
        assert (idx == idx_got).all() and (v == v_got).all()


def _toy(seed=0):
    """A linear model to fit y = 2x; 'validation' scores closeness to that."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(1, 1)
    x = torch.linspace(-1, 1, 32).unsqueeze(1)

    def step():
        return torch.nn.functional.mse_loss(model(x), 2 * x)

    def evaluate():
        with torch.no_grad():
            err = float(torch.nn.functional.mse_loss(model(x), 2 * x))
        return {"map_at_r": -err}

    return model, step, evaluate


def test_fit_learns_reports_and_keeps_the_best_epoch():
    model, step, evaluate = _toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen: list[TrainProgress] = []
    run = fit(model, opt, step, epochs=4, steps=5, schedule=cosine(opt, 20), evaluate=evaluate,
              progress=seen.append)
    assert [h["epoch"] for h in run.history] == [1, 2, 3, 4]
    assert run.best["map_at_r"] > run.start["map_at_r"] and run.best_epoch >= 1
    assert run.best == evaluate()  # the model holds the kept epoch
    stages = [p.stage for p in seen]
    assert stages.count("training") == 20 and stages.count("validating") == 4 and stages[-1] == "done"
    assert seen[-1].val == run.best and seen[0].eta is not None
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine down to zero


def test_fit_never_returns_worse_than_the_start():
    model, step, evaluate = _toy()
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.bias.zero_()  # already perfect: any training only makes it worse
    start = {k: v.clone() for k, v in model.state_dict().items()}

    def noisy():
        return ((model(torch.ones(4, 1)) - 5.0) ** 2).mean()  # pulls it away from y = 2x

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = fit(model, opt, noisy, epochs=3, steps=3, evaluate=evaluate)
    assert run.best_epoch == 0 and run.best == run.start
    assert all(torch.equal(model.state_dict()[k], v) for k, v in start.items())
    # Without validation the last epoch is kept.
    run = fit(model, opt, noisy, epochs=2, steps=1)
    assert run.best_epoch == 2 and run.best == {} and run.start == {}


def test_fit_takes_the_starting_metrics_when_known_and_still_keeps_that_start_if_best():
    model, step, evaluate = _toy()
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.bias.zero_()  # already perfect
    start = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def counted():
        calls.append(1)
        return evaluate()

    def noisy():
        return ((model(torch.ones(4, 1)) - 5.0) ** 2).mean()

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    known = evaluate()
    run = fit(model, opt, noisy, epochs=3, steps=3, evaluate=counted, start=known)
    assert len(calls) == 3  # one per epoch: the start was not evaluated again
    assert run.start == known and run.best_epoch == 0 and run.best == known
    assert all(torch.equal(model.state_dict()[k], v) for k, v in start.items())  # the start kept
    calls.clear()
    fit(model, opt, noisy, epochs=2, steps=1, evaluate=counted)
    assert len(calls) == 3  # unknown: the start is evaluated first


def test_fit_stops_on_nan_and_on_cancel_in_any_spelling():
    model, step, evaluate = _toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(Diverged, match="NaN"):
        fit(model, opt, lambda: step() * float("nan"), epochs=1, steps=2)
    calls = []

    def after_three():
        calls.append(1)
        return len(calls) > 3

    event = threading.Event()
    event.set()
    token = CancelToken()
    token.cancel()
    for cancel in (after_three, event, token):
        with pytest.raises(Cancelled):
            fit(model, opt, step, epochs=2, steps=5, cancel=cancel)
    assert len(calls) == 4  # checked before each step; once set, it stays set


def test_end_of_epoch_hooks_see_each_epoch_and_can_stop():
    model, step, evaluate = _toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ends = []
    run = fit(model, opt, step, epochs=10, steps=2, evaluate=evaluate,
              hooks=[ends.append, lambda end: end.epoch >= 3])
    assert [e.epoch for e in ends] == [1, 2, 3] and run.stopped_early
    assert len(run.history) == 3
    assert ends[-1].metrics == {k: v for k, v in run.history[-1].items() if k not in ("epoch", "loss")}
    assert ends[-1].loss == run.history[-1]["loss"] and ends[-1].best_epoch == run.best_epoch
