"""Versioned fine-tuned models, kept per library in ``<library>/models/<id>/``.

The default library itself lives in platformdirs' user data dir, so its models
do too; keeping them next to the library (rather than in one global folder)
means a model is never separated from the cached features and vectors it was
trained on and made for. Each model is ``card.json`` + ``encoder.safetensors``
(head weights only; the backbone comes from the card's ``parent``), or complete
weights with a backbone id of its own (thorough mode). The card's
``extra["finetune"]`` is the fine-tune's :class:`~.record.FineTuneRecord`: what it
was trained from (``based_on``), the albums, the number of marks, the metrics
before/after and the date.

A model is written into a hidden temporary folder and renamed into place, so a
crash never leaves half a model; leftovers of a crash are swept on the next write.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..card import ModelCard
from ..errors import ModelUnusable, PhotosimError
from .record import FineTuneRecord

TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ModelInfo:
    """One model of a library as listed: the bundled one, or a fine-tune with its record."""

    id: str
    bundled: bool
    active: bool
    path: str
    #: what the user called it (else one made from how it was made); the id stays the id
    name: str = ""
    description: str = ""
    backbone_id: str = ""
    #: Why the model cannot be used (its backbone is no longer installed); "" when it can.
    problem: str = ""
    #: what the fine-tune was made from and how it scored; None for the bundled model
    finetune: FineTuneRecord | None = None

    @property
    def created(self) -> str | None:
        return self.finetune.created if self.finetune else None

    @property
    def based_on(self) -> str | None:
        return self.finetune.based_on if self.finetune else None

    @property
    def albums(self) -> list[str]:
        return list(self.finetune.albums) if self.finetune else []

    @property
    def before(self) -> dict:
        return dict(self.finetune.before) if self.finetune else {}

    @property
    def after(self) -> dict:
        return dict(self.finetune.after) if self.finetune else {}

    @property
    def mode(self) -> str | None:
        """"quick" / "thorough" for fine-tunes, None for the bundled model."""
        return self.finetune.mode if self.finetune else None

    def to_dict(self) -> dict:
        """The JSON of ``photosim models list --json`` (one flat object per model)."""
        return {"id": self.id, "bundled": self.bundled, "active": self.active, "created": self.created,
                "based_on": self.based_on, "albums": self.albums, "before": self.before, "after": self.after,
                "path": self.path, "mode": self.mode, "description": self.description,
                "backbone_id": self.backbone_id, "problem": self.problem, "name": self.name}


def new_model_id() -> str:
    return time.strftime("ft-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sweep_temp(root: Path) -> None:
    """Remove half-written models left by a crash."""
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(TMP_PREFIX):
                shutil.rmtree(p, ignore_errors=True)


def write_model(root: Path, card: ModelCard, state: dict) -> Path:
    """Write weights + card atomically as ``root/<card.id>``."""
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    sweep_temp(root)
    final = root / card.id
    if final.exists():
        raise PhotosimError(f"a model named {card.id} already exists")
    tmp = root / f"{TMP_PREFIX}{card.id}"
    tmp.mkdir()
    try:
        save_file(state, str(tmp / card.weights), metadata={"id": card.id})
        card.save(tmp / "card.json")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_info(path: Path, bundled: bool, active_id: str,
              problem: Callable[[ModelCard], str | None] | None = None) -> ModelInfo | None:
    try:
        card = ModelCard.load(path / "card.json", expect_id=None if bundled else path.name)
    except ModelUnusable as exc:  # listed, marked unusable with the reason
        return ModelInfo(id=path.name, name=path.name, bundled=bundled, active=path.name == active_id, path=str(path),
                         problem=str(exc))
    return ModelInfo(
        id=card.id, name=card.display_name, bundled=bundled, active=card.id == active_id, path=str(path),
        description=card.description or "", backbone_id=card.backbone_id,
        problem=(problem(card) or "") if problem and not bundled else "",
        finetune=None if bundled else FineTuneRecord.from_card(card))


def list_models(root: Path, bundled_dir: Path, active_id: str,
                problem: Callable[[ModelCard], str | None] | None = None) -> list[ModelInfo]:
    """The bundled model first, then fine-tunes oldest first; ``problem(card)`` says why a
    fine-tune cannot be used (see photosim.encoder.backbone_problem)."""
    out = []
    b = read_info(bundled_dir, True, active_id)
    if b is not None:
        out.append(b)
    if root.is_dir():
        found = [read_info(p, False, active_id, problem) for p in root.iterdir()
                 if p.is_dir() and not p.name.startswith(TMP_PREFIX)]
        out.extend(sorted((m for m in found if m is not None), key=lambda m: (m.created or "", m.id)))
    return out


def delete_model(root: Path, model_id: str) -> None:
    path = root / model_id
    if not (path / "card.json").is_file() or os.sep in model_id or model_id.startswith("."):
        raise PhotosimError(f"unknown model {model_id!r}")
    tmp = root / f"{TMP_PREFIX}del-{model_id}"
    os.rename(path, tmp)  # atomic disappearance, then the slow part
    shutil.rmtree(tmp, ignore_errors=True)
