"""Training a head on features of any scale with the same step size.

Pooled features differ in scale by backbone and pooling: encoder v4's regional pooling
gives unit-norm vectors, encoder v5's GeM over EfficientNet-Lite2 vectors of norm ~36, so
the head that maps them has weights ~40x smaller. AdamW moves every weight by about the
learning rate per step whatever its size, so a learning rate that refines v4's head wipes
out v5's in a few steps (a quick fine-tune on two albums: held-out MAP@R 0.49 -> 0.47).

The cure is exact and local: train on ``x / s`` (``s`` the training features' median
norm) with the input-facing weights multiplied by ``s`` (the same function at the start),
then divide those weights by ``s`` again. The head that comes out maps raw features, as
every head does; only the optimisation saw unit-scale inputs.
"""

from __future__ import annotations

import numpy as np


def input_scale(features: np.ndarray) -> float:
    """The median L2 norm of ``features`` (rows), 1.0 when there are none or all are zero."""
    if len(features) == 0:
        return 1.0
    norm = float(np.median(np.linalg.norm(np.asarray(features, np.float32), axis=1)))
    return norm if np.isfinite(norm) and norm > 0 else 1.0


def input_weights(head) -> list:
    """The weights that multiply a head's input: a linear head's, an MLP's first layer's,
    both channels of a split head's (photosim.model.SplitHead)."""
    from torch import nn

    from ..model import SplitHead

    if isinstance(head, SplitHead):
        return [head.upright.weight, head.context.weight]
    if isinstance(head, nn.Linear):
        return [head.weight]
    if isinstance(head, nn.Sequential) and len(head) and isinstance(head[0], nn.Linear):
        return [head[0].weight]
    raise ValueError(f"no input weights known for a {type(head).__name__} head")


def scale_input_weights(head, factor: float) -> None:
    """Multiply the input-facing weights by ``factor`` in place (``head(x / f)`` with the
    scaled weights equals ``head(x)`` before)."""
    import torch

    with torch.no_grad():
        for w in input_weights(head):
            w.mul_(float(factor))
