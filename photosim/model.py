"""The encoder network: a CNN backbone, a pooling, and a projection head.

Split in two on purpose: :meth:`EncoderNet.features` (backbone + pooling) is
expensive and frozen for fine-tuning; :meth:`EncoderNet.project` (the head) is
cheap. The library caches pooled features so a new head re-embeds a whole
library in seconds.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
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
    if card.trim_frames:
        pipeline.append(f"trim_frames={card.trim_frames}")
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


class RegionalGeM(nn.Module):
    """GeM of the whole map and of its four overlapping corner regions, each
    L2-normalised, then averaged.

    A photo of a place or a thing is rarely framed alike twice: the regions let a
    part that fills a quarter of one photo weigh as much as the whole of another
    (R-MAC, Tolias et al. 2016, with its level-2 regions of 2/3 the side; GeM in
    place of max). On 25 held-out Caltech-101 classes at 288 px (upright features
    through the bundled encoder's LDA) it lifts MAP@R from 0.697 (GeM) to 0.714.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.gem = GeM(p, eps)

    @staticmethod
    def regions(h: int, w: int) -> list[tuple[int, int, int, int]]:
        """(top, left, height, width) of the whole map and of its four corner regions."""
        rh, rw = max(1, round(2 * h / 3)), max(1, round(2 * w / 3))
        corners = [(t, l, rh, rw) for t in (0, h - rh) for l in (0, w - rw)]
        return [(0, 0, h, w)] + corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [F.normalize(self.gem(x[..., t:t + rh, l:l + rw]), dim=-1)
                 for t, l, rh, rw in self.regions(int(x.shape[-2]), int(x.shape[-1]))]  # ints: fixed in a graph
        return torch.stack(parts).mean(0)


def build_pool(card: ModelCard) -> nn.Module:
    if card.pooling == "gem":
        return GeM(card.gem_p)
    if card.pooling == "rmac":
        return RegionalGeM(card.gem_p)
    if card.pooling == "avg":
        return nn.AdaptiveAvgPool2d(1)
    raise ValueError(f"unknown pooling {card.pooling!r}")


class SplitHead(nn.Module):
    """Two channels in one vector: "looks alike" and "is the same photo".

    The upright photo's features are projected and normalised, as usual; they carry
    what photos of one kind of thing share. The rotation-invariant context is
    projected and then made sparse: only its ``topk`` largest values survive. Two
    different photos rarely share those few coordinates, so this channel adds
    almost nothing between them and a lot between a photo and its edited or
    sideways copy, which a dense channel cannot do without blurring "alike".
    """

    def __init__(self, upright_dim: int, context_dim: int, dim: int, context_dims: int, topk: int,
                 weight: float):
        super().__init__()
        if not 0 < context_dims < dim or not 0 < topk <= context_dims:
            raise ValueError("a split head needs 0 < context_topk <= context_dims < dim")
        self.upright_dim = upright_dim
        self.upright = nn.Linear(upright_dim, dim - context_dims)
        self.context = nn.Linear(context_dim, context_dims)
        self.topk = topk
        self.weight = weight

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        u = F.normalize(self.upright(f[:, : self.upright_dim]), dim=1)
        c = self.context(f[:, self.upright_dim:])
        kth = c.abs().topk(self.topk, dim=1).values[:, -1:]
        c = torch.where(c.abs() >= kth, c, torch.zeros_like(c))
        return torch.cat([u, self.weight * F.normalize(c, dim=1)], dim=1)


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
    if card.head == "split":
        if not card.context_size:
            raise ValueError("a split head needs the rotation-invariant context (context_size)")
        half = card.feature_dim // 2
        return SplitHead(half, card.feature_dim - half, card.dim, card.context_dims, card.context_topk,
                         card.context_weight)
    raise ValueError(f"unknown head {card.head!r}")


#: The backbones a card may name; each is an ``nn.Sequential`` of blocks ending in 1280 channels.
ARCHITECTURES = ("mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def build_backbone(architecture: str) -> nn.Module:
    if architecture.startswith("efficientnet_lite"):
        from .efficientnet_lite import efficientnet_lite

        return efficientnet_lite(architecture)
    if architecture != "mobilenet_v2":
        raise ValueError(f"unknown architecture {architecture!r}")
    from torchvision.models import mobilenet_v2  # deferred: torchvision import is slow

    return mobilenet_v2(weights=None).features


def deep_cut(architecture: str) -> int:
    """The backbone block where thorough fine-tuning cuts: the first at 1/32 of the side
    (9x9 at 288 px), so the cached activations stay small and the blocks after it learn."""
    if architecture == "mobilenet_v2":
        return 14
    from .efficientnet_lite import first_block_at_stride32

    return first_block_at_stride32(architecture)


def late_cut(architecture: str) -> int:
    """The backbone block where standard fine-tuning cuts. EfficientNet-Lite: the block
    after :func:`deep_cut`, the first whose input is already at 1/32 of the side (9x9 at
    288 px), so the taps kept of each photo are as small as any cut's (49 KB for
    Lite2) while every block at that scale learns (Lite2: blocks 17-21; cutting at 19 or
    at the last block 21 learnt less, see :data:`photosim.training.thorough.PLANS`).
    MobileNetV2: its last inverted-residual block, 17 of 19."""
    if architecture == "mobilenet_v2":
        return 17
    return deep_cut(architecture) + 1


def _reverse(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x.flip(dim)`` as a gather with a constant index (``int``: a constant in a graph,
    where the side is fixed): exports to ONNX as Gather, with exactly the same values."""
    return x.index_select(dim, torch.arange(int(x.shape[dim]) - 1, -1, -1, device=x.device))


def _rot90(x: torch.Tensor, k: int) -> torch.Tensor:
    """``torch.rot90(x, k, (2, 3))`` (counter-clockwise) from transposes and flips, which
    ONNX export understands (``rot90`` does not export); the values are identical."""
    if k == 1:
        return _reverse(x, 3).transpose(2, 3)
    if k == 2:
        return _reverse(_reverse(x, 2), 3)
    if k == 3:
        return _reverse(x.transpose(2, 3), 3)
    raise ValueError(f"quarter turns 1, 2 or 3, not {k}")


def _quarter_turns(x: torch.Tensor) -> torch.Tensor:
    """One batch holding ``x`` and its three quarter turns (in that order)."""
    xs = torch.cat([x] + [_rot90(x, k) for k in (1, 2, 3)])
    if x.is_contiguous(memory_format=torch.channels_last):
        xs = xs.contiguous(memory_format=torch.channels_last)
    return xs


def _resize_matrix(n: int, size: int) -> torch.Tensor:
    """The (size, n) matrix of antialiased bilinear resizing along one axis, with the
    weights of torch's ``interpolate(..., antialias=True)`` (a triangle filter widened
    by the scale, renormalised at the borders). Computed in numpy so that an ONNX
    export records it as a constant."""
    scale = n / size
    support = scale if scale >= 1 else 1.0
    inv = 1 / scale if scale >= 1 else 1.0
    m = np.zeros((size, n), np.float64)
    for i in range(size):
        center = scale * (i + 0.5)
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n)
        w = np.maximum(0.0, 1.0 - np.abs((np.arange(lo, hi) - center + 0.5) * inv))
        m[i, lo:hi] = w / w.sum()
    return torch.from_numpy(m.astype(np.float32))


def _shrink(x: torch.Tensor, s: int) -> torch.Tensor:
    """The small context copy: antialiased bilinear resize to ``s`` x ``s``.

    Antialiased ``interpolate`` does not export to ONNX; the resize is separable and
    linear, so the graph holds it as two matrix products with the same weights (equal
    to ``interpolate`` within 3e-7 at 288 -> 96, 3e-5 at other ratios). The torch path
    keeps ``interpolate``, so its numbers are those of before."""
    if not torch.onnx.is_in_onnx_export():
        return F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
    h, w = x.shape[-2], x.shape[-1]
    rows = _resize_matrix(int(h), s).to(x.dtype)
    cols = _resize_matrix(int(w), s).to(x.dtype)
    return torch.matmul(torch.matmul(rows, x), cols.T)


class EncoderNet(nn.Module):
    def __init__(self, card: ModelCard):
        super().__init__()
        self.card = card
        self.backbone = build_backbone(card.architecture)
        if card.pooling == "rmac" and card.rotations != 1:
            raise ValueError("regional pooling needs the upright photo alone (rotations 1)")
        self.pool = build_pool(card)
        self.head = build_head(card)

    # The backbone can be cut at any block: ``lower`` runs the blocks before the
    # cut, ``upper`` the rest plus pooling. ``features`` is the two with the cut at
    # the very end; training the last blocks caches ``lower`` once and runs only
    # ``upper`` per step (photosim.training.trunk).
    def lower(
        self, x: torch.Tensor, split: int | None = None, context: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Activations after ``backbone[:split]`` of the upright photo (its quarter turns
        first when the card pools over rotations) and of the small context copy's
        four quarter turns (None without a context)."""
        split = len(self.backbone) if split is None else split
        blocks = self.backbone[:split]
        up = blocks(_quarter_turns(x) if self.card.rotations == 4 else x)
        if self.card.rotations not in (1, 4):
            raise ValueError(f"rotations must be 1 or 4, not {self.card.rotations}")
        if not (context and self.card.context_size):
            return up, None
        s = self.card.context_size
        small = _shrink(x, s)
        return up, blocks(_quarter_turns(small))

    def upper(self, up: torch.Tensor, context: torch.Tensor | None, split: int | None = None) -> torch.Tensor:
        """Pooled features from :meth:`lower`'s activations."""
        split = len(self.backbone) if split is None else split
        blocks = self.backbone[split:]
        f = self._pool_turns(blocks(up), self.card.rotations)
        if context is None:
            return f
        return torch.cat([f, self._pool_turns(blocks(context), 4)], dim=1)

    def _pool_turns(self, y: torch.Tensor, turns: int) -> torch.Tensor:
        """Pool, averaging the pooled statistic over ``turns`` stacked copies.

        Over turns the pooling is always global (GeM, or average for "avg"): the
        turned copies are small and their regions would not line up anyway."""
        if turns == 1:
            return self.pool(y).flatten(1)
        n = y.shape[0] // turns
        if self.card.pooling == "avg":
            return y.mean(dim=(-2, -1)).view(turns, n, -1).mean(0)
        p = self.card.gem_p
        m = y.clamp(min=1e-6).pow(p).mean(dim=(-2, -1))
        return m.view(turns, n, -1).mean(0).pow(1.0 / p)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.upper(*self.lower(x))

    def project(self, f: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(f), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(x))
