"""The training loop: one ``fit`` for every metric-learning run of photosim.

The loop does the plumbing and nothing else, as pytorch-metric-learning's trainers do:
the caller gives the loss of one step (which batches it draws and which losses it adds:
see :mod:`.sampling`); ``fit`` runs the steps and epochs, steps the optimiser and the
schedule (:mod:`.schedule`), stops on a NaN (:mod:`.guards`) or a cancel, reports
:class:`~.progress.TrainProgress`, validates after each epoch and keeps the best one,
epoch 0 being the start (:mod:`.best`), and calls the end-of-epoch hooks, any of which
may stop the run (:mod:`.hooks`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ...progress import as_token
from .best import KeepBest
from .guards import check_loss, check_weights
from .hooks import EpochEnd, Hook
from .progress import TrainProgress


@dataclass
class FitResult:
    #: one record per trained epoch: {"epoch", "loss", **validation metrics}
    history: list[dict] = field(default_factory=list)
    #: validation metrics of the start (epoch 0); {} without validation
    start: dict = field(default_factory=dict)
    #: the epoch whose state the model holds now (0: the start), and its metrics
    best_epoch: int = 0
    best: dict = field(default_factory=dict)
    #: a hook stopped the run before its last epoch
    stopped_early: bool = False
    seconds: float = 0.0


def fit(
    model,
    optimizer,
    step: Callable[[], object],
    *,
    epochs: int,
    steps: int,
    schedule=None,
    evaluate: Callable[[], dict] | None = None,
    score: str = "map_at_r",
    train_mode: bool = True,
    hooks: Sequence[Hook] = (),
    progress: Callable[[TrainProgress], None] | None = None,
    cancel=None,
    start: dict | None = None,
) -> FitResult:
    """Train ``model`` for ``epochs`` × ``steps`` steps; ``step()`` returns the loss of one
    batch (a tensor; one that needs no gradient, when a batch had nothing to learn, only
    counts). ``schedule`` is stepped after every step. With ``evaluate`` (→ metrics, higher
    ``score`` better) the model ends in the state of its best epoch, else its last.
    ``train_mode`` is the mode each epoch runs in (False: batch-norm statistics frozen).
    ``start``: the starting model's metrics when they are known already (``evaluate`` is
    then not run before the first epoch). Raises :class:`~photosim.errors.Cancelled` (``cancel``: anything
    :func:`photosim.progress.as_token` takes) and :class:`~.guards.Diverged`."""
    token = as_token(cancel)
    t0 = time.perf_counter()
    total = epochs * steps
    done = 0

    def report(stage, epoch, at, loss, val=None):
        if progress is not None:
            elapsed = time.perf_counter() - t0
            eta = elapsed / done * (total - done) if done else None
            progress(TrainProgress.of(stage, epoch, epochs, at, steps, loss, elapsed, eta, val))

    token.check("training cancelled")
    result = FitResult(start=(start if start is not None else evaluate()) if evaluate is not None else {})
    best = KeepBest(score)
    if evaluate is not None:
        best.offer(0, result.start, model)
    for epoch in range(1, epochs + 1):
        model.train(train_mode)
        losses = []
        for i in range(steps):
            token.check("training cancelled")
            loss = step()
            check_loss(loss)
            if loss.requires_grad:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if schedule is not None:
                schedule.step()
            done += 1
            losses.append(float(loss.detach()))
            report("training", epoch, i + 1, losses[-1])
        check_weights(model)
        metrics = evaluate() if evaluate is not None else {}
        mean = sum(losses) / len(losses) if losses else 0.0
        result.history.append({"epoch": epoch, "loss": mean, **metrics})
        if evaluate is not None:
            best.offer(epoch, metrics, model)
        report("validating", epoch, steps, mean, metrics or None)
        end = EpochEnd(epoch, epochs, mean, metrics, best.epoch if evaluate is not None else epoch,
                       list(result.history))
        stop = False
        for hook in hooks:  # every hook sees every epoch, even after one asked to stop
            stop = bool(hook(end)) or stop
        if stop and epoch < epochs:
            result.stopped_early = True
            break
    if evaluate is not None:
        best.restore(model)
        result.best_epoch, result.best = best.epoch or 0, best.metrics
    else:  # nothing to compare: the last epoch is kept
        result.best_epoch = result.history[-1]["epoch"] if result.history else 0
    result.seconds = time.perf_counter() - t0
    last = result.history[-1]["epoch"] if result.history else 0
    report("done", last, steps, result.history[-1]["loss"] if result.history else None, result.best or None)
    return result
