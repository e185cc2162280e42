"""The model card (``card.json``): what an encoder is, how it was made, how well it does.

Kept apart from :mod:`photosim.model` so that reading a card (to know a library's
encoder id and dimension) never imports torch: the GUI window opens before it.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import ModelUnusable, PhotosimError

#: The newest card format this photosim reads. A card is written with the oldest format
#: that holds all it says (:meth:`ModelCard.needed_format`), so older photosims keep reading
#: the cards they can use and refuse, with a sentence, those whose input pipeline they lack.
CARD_FORMAT = 2

#: A model id is a name: letters, digits, ``.``, ``_``, ``-``; starting with a letter or
#: digit, not ending with a dot, at most 128 characters. Never a path: no separator,
#: no ``..``, not absolute, so ``models/<id>`` always stays inside the library.
_MODEL_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9_-])?")


def valid_model_id(model_id: object) -> bool:
    """True when ``model_id`` is a model name (see :data:`_MODEL_ID`), never a path."""
    return isinstance(model_id, str) and _MODEL_ID.fullmatch(model_id) is not None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "a whole number", float: "a number"}.get(type(v), type(v).__name__)


#: Every field of a card on disk: (check, what it must be). Cards are written whole
#: (``asdict``), so the fields a model cannot be rebuilt without are required.
_REQUIRED = ("id", "architecture", "pooling", "input_size", "feature_dim", "head", "dim", "weights",
             "backbone_id")
_CHECKS = {
    "id": (valid_model_id, "a model name (letters, digits, '.', '_', '-'; not a path)"),
    "architecture": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "pooling": (lambda v: v in ("gem", "avg", "rmac"), '"gem", "avg" or "rmac"'),
    "gem_p": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "input_size": (lambda v: _is_int(v) and 16 <= v <= 4096, "a whole number from 16 to 4096"),
    "mean": (lambda v: isinstance(v, list) and len(v) == 3 and all(_is_number(x) for x in v),
             "a list of 3 numbers"),
    "std": (lambda v: isinstance(v, list) and len(v) == 3 and all(_is_number(x) and x > 0 for x in v),
            "a list of 3 positive numbers"),
    "feature_dim": (lambda v: _is_int(v) and v > 0, "a positive whole number"),
    "head": (lambda v: v in ("identity", "linear", "mlp", "split"), '"identity", "linear", "mlp" or "split"'),
    "head_hidden": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
    "rotations": (lambda v: v in (1, 4) and _is_int(v), "1 or 4"),
    "context_size": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
    "context_dims": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
    "context_topk": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
    "context_weight": (_is_number, "a number"),
    "dim": (lambda v: _is_int(v) and v > 0, "a positive whole number"),
    "duplicate_threshold": (lambda v: _is_number(v) and -1 <= v <= 1, "a number from -1 to 1"),
    "weights": (lambda v: isinstance(v, str) and v not in ("", ".", "..") and not v.startswith(".")
                and os.path.basename(v) == v and "/" not in v and "\\" not in v,
                "a file name inside the model's folder"),
    "backbone_id": (lambda v: isinstance(v, str), "a string"),
    "trim_frames": (lambda v: v in (0, 1) and _is_int(v), "0 or 1"),
    "same_weights_as": (lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v),
                        "a list of backbone ids"),
    "parent": (lambda v: v is None or valid_model_id(v), "null or a model name"),
    "head_only": (lambda v: isinstance(v, bool), "true or false"),
    "format": (_is_int, "a whole number"),
    "description": (lambda v: isinstance(v, str), "a string"),
    "name": (lambda v: isinstance(v, str) and len(v) <= 200, "a string of at most 200 characters"),
    "extra": (lambda v: isinstance(v, dict), "an object"),
}


def _scores(v) -> bool:
    """Metrics as the Models list prints them (NaN allowed: a failed evaluation)."""
    return isinstance(v, dict) and all(
        isinstance(v[k], int | float) and not isinstance(v[k], bool)
        for k in ("map_at_r", "recall_at_1", "precision_at_10") if k in v)


#: The fine-tune record (``finetune``, kept in ``extra``) as the Models list reads it.
_FINETUNE_CHECKS = {
    "albums": (lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v), "a list of names"),
    "metrics": (lambda v: isinstance(v, dict) and all(_scores(v.get(k, {})) for k in ("before", "after")),
                'an object whose "before" and "after" are objects of numbers'),
    "created": (lambda v: v is None or isinstance(v, str), "a string"),
    "based_on": (lambda v: v is None or isinstance(v, str), "a string"),
    "mode": (lambda v: v is None or isinstance(v, str), "a string"),
}


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
    #: 1: a flat frame around the picture (a border, a caption in it) is trimmed before
    #: the photo is embedded (photosim.frames, rule version 1); 0: off. Part of the input
    #: pipeline, so of ``backbone_id``; a card with it needs card format 2.
    trim_frames: int = 0
    #: Id of the backbone + pooling + input pipeline; cached features are keyed by it.
    backbone_id: str = ""
    #: Backbone ids of these very weights under the same input pipeline without trimming
    #: frames (v5, for v5.1): head-only fine-tunes made on them still load these weights,
    #: with their own card's pipeline; and a photo without a frame, whose features are the
    #: same under both, keeps its cached ones through the upgrade (photosim.pipeline.scan).
    same_weights_as: list[str] = field(default_factory=list)
    #: For fine-tuned models: the model whose backbone weights are reused.
    parent: str | None = None
    #: Head-only models store just the head; the backbone comes from ``parent``.
    head_only: bool = False
    format: int = CARD_FORMAT
    description: str = ""
    #: The name the user gave the model ("" until named): what lists and the status bar
    #: show; the id stays the id (folders, vectors and the command line use it).
    name: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, expect_id: str | None = None) -> ModelCard:
        """Read and validate ``card.json``; ``expect_id``: the name its folder gives it.

        Raises :class:`~photosim.errors.ModelUnusable`, with one sentence for the user,
        for a card that cannot be read, is not JSON, is not a JSON object, lacks a
        required field, holds a field of the wrong type or value, names a path as its id,
        parent or weights, was written by a newer photosim, or does not carry the id
        its folder gives it."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ModelUnusable(f"the model card {path} is missing") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelUnusable(f"the model card {path} cannot be read "
                                f"({getattr(exc, 'strerror', None) or exc})") from exc
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ModelUnusable(f"the model card {path} is damaged (not valid JSON: "
                                f"{getattr(exc, 'msg', exc)})") from exc
        return cls.from_dict(data, source=str(path), expect_id=expect_id)

    @classmethod
    def from_dict(cls, data, source: str = "the model card", expect_id: str | None = None) -> ModelCard:
        """A validated card from parsed JSON (see :meth:`load`)."""
        def bad(detail: str) -> ModelUnusable:
            return ModelUnusable(f"the model card {source} is not usable: {detail}")

        if not isinstance(data, dict):
            raise bad(f"it holds {_kind(data)}, not an object of fields")
        fmt = data.get("format", CARD_FORMAT)
        if _is_int(fmt) and fmt > CARD_FORMAT:
            raise ModelUnusable(f"the model card {source} needs a newer photosim (card format {fmt}, "
                                f"this photosim reads up to {CARD_FORMAT})")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise bad(f"it lacks the field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        for key, (check, what) in _CHECKS.items():
            if key in data and not check(data[key]):
                raise bad(f'"{key}" must be {what}, not {_kind(data[key])} ({_short(data[key])})')
        ft = data.get("finetune", data.get("extra", {}).get("finetune"))
        if ft is not None and not isinstance(ft, dict):
            raise bad(f'"finetune" must be an object, not {_kind(ft)} ({_short(ft)})')
        for key, (check, what) in _FINETUNE_CHECKS.items():
            if ft and key in ft and not check(ft[key]):
                raise bad(f'"finetune.{key}" must be {what}, not {_kind(ft[key])} ({_short(ft[key])})')
        if expect_id is not None and data["id"] != expect_id:
            raise bad(f"its id {data['id']!r} is not the name of its folder ({expect_id!r})")
        known = set(cls.__dataclass_fields__)
        extra = {k: v for k, v in data.items() if k not in known}
        card = cls(**{k: v for k, v in data.items() if k in known})
        card.extra = dict(card.extra)
        card.extra.update(extra)
        return card

    @property
    def display_name(self) -> str:
        """The user's name for the model, else one made from how it was made."""
        if self.name:
            return self.name
        ft = self.extra.get("finetune") if isinstance(self.extra, dict) else None
        if not isinstance(ft, dict):
            return BUNDLED_NAME if self.parent is None else self.id
        albums, marks = ft.get("albums"), ft.get("marks")
        return default_model_name(len(albums) if isinstance(albums, list) else 0,
                                  marks if _is_int(marks) else 0, ft.get("created"))

    def needed_format(self) -> int:
        """The oldest card format that holds what this card says (2: frames trimmed)."""
        return 2 if self.trim_frames else 1

    def to_json(self) -> str:
        data = asdict(self)
        data["format"] = self.needed_format()
        extra = data.pop("extra")
        data.update(extra)
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")


def _short(value, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: What the bundled model is called (it cannot be renamed: it ships inside photosim).
BUNDLED_NAME = "Bundled encoder"
MAX_NAME = 60


def default_model_name(albums: int, marks: int = 0, created: str | None = None) -> str:
    """"Tuned on 3 albums, 1 Dec": what a fine-tune is called until the user names it."""
    from datetime import datetime

    what = [f"{albums} album{'s' if albums != 1 else ''}"] if albums else []
    if marks or not albums:
        what.append(f"{marks} mark{'s' if marks != 1 else ''}")
    when = ""
    try:
        made = datetime.fromisoformat(created) if isinstance(created, str) else None
    except ValueError:
        made = None
    if made is not None:
        when = f", {made.day} {made.strftime('%b')}"
    return f"Tuned on {' and '.join(what)}{when}"


def check_model_name(name: object, taken: set[str] = frozenset()) -> str:
    """``name`` stripped, or PhotosimError with the reason: empty, too long, control
    characters, or the name of another model (``taken``, compared without case)."""
    if not isinstance(name, str) or not name.strip():
        raise PhotosimError("a model needs a name: type a few words that say what it is for")
    name = " ".join(name.split())
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise PhotosimError("a model name cannot hold control characters")
    if len(name) > MAX_NAME:
        raise PhotosimError(f"a model name can have at most {MAX_NAME} characters (this one has {len(name)})")
    if name.casefold() in {t.casefold() for t in taken}:
        raise PhotosimError(f"another model is already called “{name}”: choose another name")
    return name
