"""Precision variants of a model: ``<model id>@int8r2`` is the model run in int8.

An int8 encoder gives vectors of its own (close to, not equal to, fp32 ones), so a
variant is a model id of its own: its vectors, cached features and index never mix
with the fp32 model's, and choosing it is a model switch (every photo is read once
more, since int8 features differ too). The suffix carries the quantization recipe
(:data:`photosim.inference.quantize.RECIPE`): a new recipe is a new id, and a
library on an older recipe's variant moves to the current one (re-embedding once).
"""

from __future__ import annotations

import dataclasses

from .card import ModelCard
from .errors import UnknownModel

PRECISIONS = ("fp32", "int8")

#: What int8 costs, measured with ``benchmarks/bench_int8.py`` on the bundled encoder
#: (25 Caltech-101 classes it was not trained on), shown where the setting is offered.
#: Encoder v5 (2026-12-01): forward 58 -> 158 images/s, scan 42 -> 63 photos/s, MAP@R
#: 0.8024 -> 0.8021, near-duplicate R@1 0.9928 both (rotated copies 0.9900 -> 0.9883).
INT8_COST = "scans about 1.5x faster on a CPU, MAP@R 0.0003 lower on held-out photos"


def tag(precision: str) -> str:
    """``int8r2`` for int8 (with the recipe), "" for fp32."""
    if precision == "fp32":
        return ""
    if precision == "int8":
        from .inference.quantize import RECIPE

        return f"int8r{RECIPE}"
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")


def variant_id(base_id: str, precision: str) -> str:
    t = tag(precision)
    return f"{base_id}@{t}" if t else base_id


def split(model_id: str) -> tuple[str, str]:
    """(base model id, precision) of an id; an older int8 recipe's suffix is int8 too."""
    base, sep, suffix = model_id.partition("@")
    if not sep:
        return model_id, "fp32"
    if suffix.startswith("int8r") and suffix[5:].isdigit():
        return base, "int8"
    raise UnknownModel(f"unknown model {model_id!r}")


def variant_card(base: ModelCard, precision: str) -> ModelCard:
    """The card of ``base`` run at ``precision``: its id and cached-features key carry
    the variant's tag; everything else (threshold, dimension, input) is the model's, but
    ``same_weights_as``: another input pipeline's int8 graph is calibrated on other inputs,
    so its features are not this one's even where the inputs agree."""
    t = tag(precision)
    if not t:
        return base
    return dataclasses.replace(base, id=f"{base.id}@{t}", backbone_id=f"{base.backbone_id}@{t}", same_weights_as=[])
