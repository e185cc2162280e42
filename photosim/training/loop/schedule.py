"""The learning-rate schedule: cosine decay from the optimiser's rate to zero over the run."""

from __future__ import annotations

import math


def cosine(optimizer, total_steps: int):
    """A ``LambdaLR`` scaling every group's rate by ``0.5 (1 + cos(pi s / total))`` at step
    ``s`` (closed form, so a run's rates depend only on the step, never on earlier ones)."""
    import torch

    total = max(1, int(total_steps))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
