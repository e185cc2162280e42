"""What a training run reports while it runs: :class:`TrainProgress`, one :class:`~photosim.progress.Progress`."""

from __future__ import annotations

from dataclasses import dataclass

from ...progress import Progress


@dataclass
class TrainProgress(Progress):
    """``stage`` "preparing" (thorough: reading photos) | "training" | "validating" | "done";
    ``done``/``total`` are the steps of the current epoch."""

    epoch: int = 0
    epochs: int = 0
    loss: float | None = None
    elapsed: float = 0.0
    eta: float | None = None
    val: dict | None = None

    @classmethod
    def of(cls, stage: str, epoch: int, epochs: int, step: int, steps: int, loss: float | None,
           elapsed: float, eta: float | None, val: dict | None = None, detail: str = "") -> TrainProgress:
        return cls(stage, step, steps, detail, epoch, epochs, loss, elapsed, eta, val)

    @property
    def step(self) -> int:
        return self.done

    @property
    def steps(self) -> int:
        return self.total
