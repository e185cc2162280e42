"""int8: static QDQ quantization of a features graph, calibrated on photos.

ONNX Runtime's ``quantize_static``: per-channel int8 weights and uint8 activations
whose ranges come from running the fp32 graph on calibration photos (MinMax).
The fp32 graph first goes through ONNX Runtime's ``quant_pre_process`` (its
graph optimizer). That step matters: the upright photo and the context copy run
the same backbone, so the exporter shares every weight and writes the second
use of each bias as an ``Identity`` node; ONNX Runtime fuses a QDQ convolution
into ``QLinearConv`` only when its bias is a constant, so without the step half
of the convolutions stayed fp32 behind a dequantization, and int8 ran at half
fp32's speed (54 against 119 images/s) instead of about twice it (249).
Ranges are MinMax averaged over the calibration batches (``CalibMovingAverage``):
chosen over plain MinMax, percentile, entropy and leaving the first and last
convolutions or the depthwise ones in fp32 by the cosine of pooled features to
fp32's on 80 photos of Caltech classes the encoder was trained on (0.9934 against
0.9911 to 0.9927; the depthwise ones in fp32: 0.9818 and no faster), never on the
held-out classes ``benchmarks/bench_int8.py`` reports.
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


#: The recipe's version: part of the int8 encoder id (``<card id>@int8r2``) and of the
#: cached graphs' names, so vectors of two recipes never mix.
RECIPE = 2

#: The operator types quantized (see the module's docstring).
QUANTIZED_OPS = ["Conv", "Clip", "Add"]


def quantize_features(fp32_path: Path, out_path: Path, calibration: np.ndarray, batch: int = 8) -> None:
    """Write the int8 QDQ graph of ``fp32_path`` to ``out_path``, calibrated on the
    preprocessed ``calibration`` batch (N, 3, S, S)."""
    import tempfile

    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{"pixels": calibration[i:i + batch]} for i in range(0, len(calibration), batch)])

        def get_next(self):
            return next(self._it, None)

    with tempfile.TemporaryDirectory(prefix="photosim-quant-") as tmpdir:
        prepared = Path(tmpdir) / "prepared.onnx"
        # the shapes are static but for the batch: ONNX's own shape inference suffices
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS,
            calibrate_method=CalibrationMethod.MinMax, extra_options={"CalibMovingAverage": True},
        )
