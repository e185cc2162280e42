"""Keeping the best epoch: the state of the epoch that validated best, epoch 0 being the
start, so a run never returns something that validates worse than what it started from."""

from __future__ import annotations

import copy


class KeepBest:
    """Offer each epoch's metrics (epoch 0 first); the model's state is copied when they
    beat the best so far on ``score`` (higher is better; a tie keeps the earlier epoch).
    Metrics without ``score`` (too few photos held out to measure it) always win."""

    def __init__(self, score: str = "map_at_r") -> None:
        self.score = score
        self.epoch: int | None = None
        self.metrics: dict = {}
        self._state: dict | None = None
        self._value = float("-inf")

    def offer(self, epoch: int, metrics: dict, model) -> bool:
        value = metrics.get(self.score) if metrics else None
        if value is not None and self.epoch is not None and value <= self._value:
            return False
        self.epoch, self.metrics = epoch, dict(metrics)
        self._value = float("-inf") if value is None else float(value)
        self._state = copy.deepcopy(model.state_dict())
        return True

    def restore(self, model) -> None:
        if self._state is not None:
            model.load_state_dict(self._state)
