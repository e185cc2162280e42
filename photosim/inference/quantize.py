"""int8: static QDQ quantization of a features graph, calibrated on photos.

ONNX Runtime's ``quantize_static``: per-channel int8 weights and uint8 activations
whose ranges come from running the fp32 graph on calibration photos (MinMax).
Only convolutions are quantized; the first and last convolution of each pass
(the stem, and the 1x1 expansion to 1280 channels whose output the GeM pooling
raises to the 3rd power) stay fp32, as do the pooling and the context resize.
The calibration photos are shipped (``resources/calibration``: 32 Caltech-101
photos of classes the bundled encoder was trained on), so every installation
makes the same int8 graph and int8 vectors stay comparable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def calibration_dir() -> Path:
    from ..encoder import bundled_model_dir

    return bundled_model_dir().parent / "calibration"


def calibration_images(limit: int | None = None) -> list:
    from PIL import Image

    paths = sorted(calibration_dir().glob("*.jpg"))[:limit]
    if not paths:
        raise FileNotFoundError("photosim's calibration photos are missing from this installation")
    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append(im.convert("RGB"))
    return images


def _kept_fp32(model, last_block: int) -> list[str]:
    """Names of the convolutions left in fp32: the stem and the last block of each pass."""
    keep = ("/backbone.0/", f"/backbone.{last_block}/")
    return [n.name for n in model.graph.node if n.op_type == "Conv" and any(k in n.name for k in keep)]


def quantize_features(fp32_path: Path, out_path: Path, calibration: np.ndarray, last_block: int,
                      batch: int = 8) -> None:
    """Write the int8 QDQ graph of ``fp32_path`` to ``out_path``, calibrated on the
    preprocessed ``calibration`` batch (N, 3, S, S)."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{"pixels": calibration[i:i + batch]} for i in range(0, len(calibration), batch)])

        def get_next(self):
            return next(self._it, None)

    model = onnx.load(str(fp32_path))
    quantize_static(
        str(fp32_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
        nodes_to_exclude=_kept_fp32(model, last_block), calibrate_method=CalibrationMethod.MinMax,
    )
