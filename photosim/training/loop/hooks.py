"""End-of-epoch hooks: called after every epoch with what it did; one returning True stops
the run (the best epoch so far is still the one kept)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    #: mean training loss of the epoch
    loss: float
    #: validation metrics of the epoch ({} without validation)
    metrics: dict
    best_epoch: int
    history: list[dict] = field(default_factory=list)


#: a hook: ``hook(end)``; True stops training after this epoch
Hook = Callable[[EpochEnd], bool | None]

