"""EfficientNet-Lite (Tan & Le 2019, the TensorFlow "lite" variants): EfficientNet without
squeeze-and-excitation, with ReLU6, and with stem and head not scaled, so that it runs
and quantises well on a CPU.

:func:`efficientnet_lite` builds the convolutional part only, as an ``nn.Sequential`` of
stem, the MBConv blocks one by one, and the 1x1 head to 1280 channels: the same shape as
torchvision's ``mobilenet_v2().features``, so :class:`photosim.model.EncoderNet` can cut it
at any block. The ImageNet weights come from the package registry at build time
(``packaging/pretrained.py``); nothing here downloads anything.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: width multiplier, depth multiplier, the resolution the ImageNet weights were trained at
VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224),
    "efficientnet_lite1": (1.0, 1.1, 240),
    "efficientnet_lite2": (1.1, 1.2, 260),
}

#: repeats, kernel, stride, expansion, input channels, output channels (EfficientNet-B0)
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM, HEAD = 32, 1280
_BN = {"eps": 1e-3, "momentum": 0.01}


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, to a multiple of ``divisor``, never 10% below."""
    scaled = channels * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(out + divisor if out < 0.9 * scaled else out)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout, **_BN)]
    return layers + [nn.ReLU6(inplace=True)] if act else layers


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise k x k, linear 1x1 projection (+ skip)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        layers = _conv_bn(cin, mid, 1) if expand != 1 else []
        layers += _conv_bn(mid, mid, k, stride, groups=mid) + _conv_bn(mid, cout, 1, act=False)
        self.block = nn.Sequential(*layers)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.skip else y


def efficientnet_lite(name: str) -> nn.Sequential:
    """The convolutional part of EfficientNet-Lite ``name`` (random weights)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown architecture {name!r}")
    width, depth, _ = VARIANTS[name]
    layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, STEM, 3, 2))]
    for i, (repeats, k, stride, expand, cin, cout) in enumerate(STAGES):
        cin = cin if i == 0 else round_filters(cin, width)
        cout = round_filters(cout, width)
        if 0 < i < len(STAGES) - 1:  # "lite": first and last stage keep their depth
            repeats = int(math.ceil(depth * repeats))
        for r in range(repeats):
            layers.append(MBConv(cin if r == 0 else cout, cout, k, stride if r == 0 else 1, expand))
    layers.append(nn.Sequential(*_conv_bn(round_filters(STAGES[-1][5], width), HEAD, 1)))
    return nn.Sequential(*layers)


def first_block_at_stride32(name: str) -> int:
    """Index (in :func:`efficientnet_lite`'s sequence) of the first block at 1/32 of the side."""
    _width, depth, _ = VARIANTS[name]
    repeats = [r if i in (0, len(STAGES) - 1) else int(math.ceil(depth * r)) for i, (r, *_rest) in enumerate(STAGES)]
    return 1 + sum(repeats[:5])


def from_checkpoint(state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """Rename the keys of a published EfficientNet-Lite checkpoint (``_conv_stem``, ``_blocks.N``,
    ``_conv_head`` ...; the classifier ``_fc`` is dropped) to this module's; checked against the
    module's own keys and shapes, so a checkpoint of another variant fails here, not later."""
    net = efficientnet_lite(name)
    n_blocks = len(net) - 2
    out: dict[str, torch.Tensor] = {}
    bn = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_fc":
            continue
        if parts[0] in ("_conv_stem", "_bn0") and len(parts) == 2:
            new = f"0.{0 if parts[0] == '_conv_stem' else 1}.{parts[1]}"
        elif parts[0] in ("_conv_head", "_bn1") and len(parts) == 2:
            new = f"{n_blocks + 1}.{0 if parts[0] == '_conv_head' else 1}.{parts[1]}"
        elif parts[0] == "_blocks":
            i, layer, param = int(parts[1]), parts[2], parts[3]
            has_expand = f"_blocks.{i}._expand_conv.weight" in state
            order = (["_expand_conv", "_bn0"] if has_expand else []) + ["_depthwise_conv", "_bn1",
                                                                        "_project_conv", "_bn2"]
            pos = order.index(layer)
            # within a block: conv, bn, relu6 per stage, the projection has no relu6
            index = pos // 2 * 3 + pos % 2
            new = f"{i + 1}.block.{index}.{param}"
        else:
            raise ValueError(f"unexpected key {key!r} in an EfficientNet-Lite checkpoint")
        assert parts[-1] in bn or parts[-1] == "weight", key
        out[new] = value
    own = net.state_dict()
    if set(out) != set(own) or any(out[k].shape != own[k].shape for k in own):
        raise ValueError(f"the checkpoint is not {name}")
    return out
