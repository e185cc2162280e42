"""ONNX graphs made from a loaded :class:`photosim.model.EncoderNet`'s exact weights.

Two graphs per backbone: ``features`` (preprocessed photos -> pooled features, what a
scan runs) and ``lower`` at a cut (the activations before ``split``, what thorough
fine-tuning caches). The batch axis is dynamic; the input size is the card's.
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

    if kind == "features":
        return Features()
    if kind == "lower":
        return Lower()
    raise ValueError(f"unknown graph kind {kind!r}")


def output_names(net, kind: str) -> list[str]:
    if kind == "features":
        return ["features"]
    return ["upright", "context"] if net.card.context_size else ["upright"]


def export_graph(net, path: Path, kind: str = "features", split: int | None = None) -> None:
    """Write the graph of ``net`` (``features``, or ``lower`` cut at ``split``) to ``path``.

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
