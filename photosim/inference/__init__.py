"""Running encoders through ONNX Runtime on CPU (2-4x torch's eager speed).

* :mod:`.export` – ONNX graphs from a network's exact weights (features; lower activations).
* :mod:`.cache` – where graphs are kept, keyed by backbone id, kind, precision and format.
* :mod:`.session` – ONNX Runtime sessions and their thread settings.
* :mod:`.quantize` – int8 static QDQ quantization calibrated on shipped photos.
* :mod:`.runtime` – :class:`OnnxRuntime`: loads or makes the graphs, checks them against torch.

:class:`photosim.encoder.Encoder` picks the backend (``Encoder.load(backend=...)``).
"""

from .runtime import GraphUnusable, OnnxRuntime

__all__ = ["GraphUnusable", "OnnxRuntime"]
