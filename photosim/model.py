"""The encoder network: a CNN backbone, a pooling, and a projection head.

Split in two on purpose: :meth:`EncoderNet.features` (backbone + pooling) is
expensive and frozen for fine-tuning; :meth:`EncoderNet.project` (the head) is
cheap. The library caches pooled features so a new head re-embeds a whole
library in seconds.
"""

from __future__ import annotations

import hashlib
import json

import torch
import torch.nn.functional as F
from torch import nn

from .card import CARD_FORMAT, ModelCard  # noqa: F401  (re-exported: the card lives apart, torch-free)


def make_backbone_id(card: ModelCard, backbone_state: dict[str, torch.Tensor]) -> str:
    """Hash of what determines the pooled features: weights, pooling, input pipeline."""
    h = hashlib.blake2b(digest_size=8)
    pipeline = [card.architecture, card.pooling, card.gem_p, card.input_size, card.mean, card.std]
    if card.rotations != 1:  # only then, so that ids of older cards stay as they were
        pipeline.append(f"rotations={card.rotations}")
    if card.context_size:
        pipeline.append(f"context_size={card.context_size}")
    h.update(json.dumps(pipeline).encode())
    for key in sorted(backbone_state):
        h.update(key.encode())
        h.update(backbone_state[key].detach().cpu().contiguous().numpy().tobytes())
    return f"{card.architecture}-{card.pooling}-{card.input_size}-{h.hexdigest()}"


class GeM(nn.Module):
    """Generalized-mean pooling: between average (p=1) and max; better for retrieval."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = p
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1)).pow(1.0 / self.p)


def build_head(card: ModelCard) -> nn.Module:
    if card.head == "identity":
        return nn.Identity()
    if card.head == "linear":
        return nn.Linear(card.feature_dim, card.dim)
    if card.head == "mlp":
        hidden = card.head_hidden or card.feature_dim
        return nn.Sequential(
            nn.Linear(card.feature_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, card.dim),
        )
    raise ValueError(f"unknown head {card.head!r}")


def build_backbone(architecture: str) -> nn.Module:
    from torchvision.models import mobilenet_v2  # deferred: torchvision import is slow

    if architecture != "mobilenet_v2":
        raise ValueError(f"unknown architecture {architecture!r}")
    return mobilenet_v2(weights=None).features


class EncoderNet(nn.Module):
    def __init__(self, card: ModelCard):
        super().__init__()
        self.card = card
        self.backbone = build_backbone(card.architecture)
        self.pool = GeM(card.gem_p) if card.pooling == "gem" else nn.AdaptiveAvgPool2d(1)
        self.head = build_head(card)

    def _pooled(self, x: torch.Tensor, rotations: int) -> torch.Tensor:
        if rotations == 1:
            return self.pool(self.backbone(x)).flatten(1)
        if rotations != 4:
            raise ValueError(f"rotations must be 1 or 4, not {rotations}")
        # One batch with the four quarter turns; pool over all their positions at once.
        n = x.shape[0]
        xs = torch.cat([x] + [torch.rot90(x, k, (2, 3)) for k in (1, 2, 3)])
        if x.is_contiguous(memory_format=torch.channels_last):
            xs = xs.contiguous(memory_format=torch.channels_last)
        y = self.backbone(xs)
        if isinstance(self.pool, GeM):
            p = self.pool.p
            m = y.clamp(min=self.pool.eps).pow(p).mean(dim=(-2, -1))
            return m.view(4, n, -1).mean(0).pow(1.0 / p)
        return y.mean(dim=(-2, -1)).view(4, n, -1).mean(0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        f = self._pooled(x, self.card.rotations)
        if not self.card.context_size:
            return f
        s = self.card.context_size
        small = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return torch.cat([f, self._pooled(small, 4)], dim=1)

    def project(self, f: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(f), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(x))
