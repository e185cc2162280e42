"""The model card (``card.json``): what an encoder is, how it was made, how well it does.

Kept apart from :mod:`photosim.model` so that reading a card (to know a library's
encoder id and dimension) never imports torch: the GUI window opens before it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

CARD_FORMAT = 1


@dataclass
class ModelCard:
    """Everything needed to rebuild and trust an encoder, stored as ``card.json``."""

    id: str
    architecture: str = "mobilenet_v2"
    #: "gem", "avg", or "rmac": GeM over the whole map and over four overlapping
    #: corner regions of 2/3 its side, each L2-normalised, then averaged (regional
    #: pooling as in R-MAC; photosim.model.RegionalGeM).
    pooling: str = "gem"
    gem_p: float = 3.0
    input_size: int = 224
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    feature_dim: int = 1280
    head: str = "linear"  # "identity" | "linear" | "mlp" | "split"
    head_hidden: int = 0
    #: 4: features are pooled over the four 90° rotations of the input together,
    #: which makes them invariant to photos stored sideways without EXIF. 1: off.
    rotations: int = 1
    #: >0: a second, rotation-invariant pass: the backbone also sees the four quarter
    #: turns of the photo at this (small) input size, pooled together, and those
    #: values are appended to the features (then ``feature_dim`` is 2 × 1280). Lets
    #: the head recognise photos stored sideways without EXIF. 0: off.
    context_size: int = 0
    #: Head "split": the last ``context_dims`` outputs are a sparse code of the context
    #: (its ``context_topk`` largest values kept), scaled by ``context_weight``; see
    #: photosim.model.SplitHead.
    context_dims: int = 0
    context_topk: int = 0
    context_weight: float = 0.0
    dim: int = 256
    #: Cosine similarity from which two photos count as near-duplicates under this model
    #: (each model has its own scale; measured on edited copies by the training script).
    duplicate_threshold: float = 0.95
    weights: str = "encoder.safetensors"
    #: Id of the backbone + pooling + input pipeline; cached features are keyed by it.
    backbone_id: str = ""
    #: For fine-tuned models: the model whose backbone weights are reused.
    parent: str | None = None
    #: Head-only models store just the head; the backbone comes from ``parent``.
    head_only: bool = False
    format: int = CARD_FORMAT
    description: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format", 1) > CARD_FORMAT:
            raise ValueError(f"model card {path} needs a newer photosim (format {data['format']})")
        known = {f for f in cls.__dataclass_fields__}
        extra = {k: v for k, v in data.items() if k not in known}
        card = cls(**{k: v for k, v in data.items() if k in known})
        card.extra.update(extra)
        return card

    def to_json(self) -> str:
        data = asdict(self)
        extra = data.pop("extra")
        data.update(extra)
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")
