"""ONNX graphs made from a loaded :class:`photosim.model.EncoderNet`'s exact weights.

Three kinds of graph per backbone: ``features`` (preprocessed photos -> pooled features,
what a scan runs), ``lower`` at a cut (the activations before ``split``, what thorough
fine-tuning caches) and ``tapped`` at a cut (both at once: the features and the
activations before ``split``, what a scan that keeps taps for fine-tuning runs). The
batch axis is dynamic; the input size is the card's.
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

    if kind == "features":
        return Features()
    if kind == "lower":
        return Lower()
    if kind == "tapped":
        return Tapped()
    raise ValueError(f"unknown graph kind {kind!r}")


def output_names(net, kind: str) -> list[str]:
    if kind == "features":
        return ["features"]
    taps = ["upright", "context"] if net.card.context_size else ["upright"]
    return ["features", *taps] if kind == "tapped" else taps


def export_graph(net, path: Path, kind: str = "features", split: int | None = None) -> None:
    """Write the graph of ``net`` (``features``, or ``lower`` or ``tapped`` cut at ``split``) to ``path``.

    Uses torch's TorchScript-based exporter (``dynamo=False``): it needs no
    ``onnxscript`` and handles this network's ops (the quarter turns and the context
    resize are written in exportable form in :mod:`photosim.model`)."""
    import copy

    import torch

    net = copy.deepcopy(net).float().cpu().eval().to(memory_format=torch.contiguous_format)
    module = _wrapper(net, kind, split).eval()
    size = net.card.input_size
    x = torch.zeros(2, 3, size, size)
    outputs = output_names(net, kind)
    axes = {"pixels": {0: "batch"}, **{name: {0: "rows"} for name in outputs}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints: the size is fixed
        torch.onnx.export(module, (x,), str(path), input_names=["pixels"], output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
