"""int8: static QDQ quantization of a features graph, calibrated on photos.

ONNX Runtime's ``quantize_static``: per-channel int8 weights and uint8 activations
whose ranges come from running the fp32 graph on calibration photos (MinMax).
Convolutions, their ReLU6 clips and the residual additions are quantized, so the
blocks run as one int8 chain; the pooling (GeM raises to the 3rd power), the
context resize and the head stay fp32. (Quantizing the convolutions alone, or
keeping the stem and the last block in fp32, was both slower and further from
fp32: mean cosine of the vectors to fp32 0.87-0.92 on 32 Caltech photos.)
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


#: The operator types quantized (see the module's docstring).
QUANTIZED_OPS = ["Conv", "Clip", "Add"]


def quantize_features(fp32_path: Path, out_path: Path, calibration: np.ndarray, batch: int = 8) -> None:
    """Write the int8 QDQ graph of ``fp32_path`` to ``out_path``, calibrated on the
    preprocessed ``calibration`` batch (N, 3, S, S)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{"pixels": calibration[i:i + batch]} for i in range(0, len(calibration), batch)])

        def get_next(self):
            return next(self._it, None)

    quantize_static(
        str(fp32_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS,
        calibrate_method=CalibrationMethod.MinMax,
    )
