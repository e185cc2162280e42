"""ONNX graphs made from a loaded :class:`photosim.model.EncoderNet`'s exact weights.

Four kinds of graph per backbone: ``features`` (preprocessed photos -> pooled features,
what a scan runs), ``lower`` at a cut (the activations before ``split``, what thorough
fine-tuning caches), ``tapped`` at a cut (both at once: the features and the
activations before ``split``, what a scan that keeps taps for fine-tuning runs) and
``upper`` at a cut (those activations -> pooled features: what accepting a standard
fine-tune re-embeds kept taps with). The batch axis is dynamic; the input size is the card's.
"""

from __future__ import annotations

import warnings
from pathlib import Path

#: Opset of the exported graphs (ONNX Runtime 1.17+ runs it).
OPSET = 17


def _wrapper(net, kind: str, split: int | None):
    import torch

    class Features(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.features(x)

    class Lower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            up, ctx = self.net.lower(x, split)
            return (up, ctx) if ctx is not None else (up,)

    class Tapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            up, ctx = self.net.lower(x, split)
            feats = self.net.upper(up, ctx, split)
            return (feats, up, ctx) if ctx is not None else (feats, up)

    class Upper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, up, ctx=None):
            return self.net.upper(up, ctx, split)

    if kind == "features":
        return Features()
    if kind == "upper":
        return Upper()
    if kind == "lower":
        return Lower()
    if kind == "tapped":
        return Tapped()
    raise ValueError(f"unknown graph kind {kind!r}")


def output_names(net, kind: str) -> list[str]:
    if kind in ("features", "upper"):
        return ["features"]
    taps = ["upright", "context"] if net.card.context_size else ["upright"]
    return ["features", *taps] if kind == "tapped" else taps


def input_names(net, kind: str) -> list[str]:
    """``pixels`` (a preprocessed batch), or for ``upper`` the taps: ``upright`` (n rows)
    and, when the card has context, ``context`` (4n rows, turn by turn, as ``lower`` gives them)."""
    if kind != "upper":
        return ["pixels"]
    return ["upright", "context"] if net.card.context_size else ["upright"]


def export_graph(net, path: Path, kind: str = "features", split: int | None = None) -> None:
    """Write the graph of ``net`` (``features``, or ``lower``, ``tapped`` or ``upper`` cut at
    ``split``) to ``path``.

    Uses torch's TorchScript-based exporter (``dynamo=False``): it needs no
    ``onnxscript`` and handles this network's ops (the quarter turns and the context
    resize are written in exportable form in :mod:`photosim.model`)."""
    import copy

    import torch

    net = copy.deepcopy(net).float().cpu().eval().to(memory_format=torch.contiguous_format)
    module = _wrapper(net, kind, split).eval()
    size = net.card.input_size
    x = torch.zeros(2, 3, size, size)
    inputs = input_names(net, kind)
    if kind == "upper":
        with torch.no_grad():
            up, ctx = net.lower(x, split)
        args = (up,) if ctx is None else (up, ctx)
        axes = {"upright": {0: "batch"}, "context": {0: "turns"}}
    else:
        args = (x,)
        axes = {"pixels": {0: "batch"}}
    outputs = output_names(net, kind)
    axes = {**{k: v for k, v in axes.items() if k in inputs}, **{name: {0: "rows"} for name in outputs}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints: the size is fixed
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
