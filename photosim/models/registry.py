"""One registry of a library's models: look-up by id, a card cache, the "can it load?"
check, listing, deleting and loading encoders (a small cache of loaded ones).

Model ids are names, never paths: an id with a separator, ``..`` or a leading dot
is unknown, so nothing outside the library's ``models/`` folder (or the bundled
encoder) is ever loaded or deleted.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from pathlib import Path

from .. import precision as variants
from ..card import ModelCard, check_model_name, valid_model_id
from ..errors import ModelUnusable, PhotosimError, ReadOnlyLibrary, UnknownModel


class ModelRegistry:
    """``root`` is the library's ``models/`` folder; the bundled encoder is always there too."""

    def __init__(self, root: Path, device: str | None = None, keep_loaded: int = 2, readonly: bool = False):
        from ..encoder import bundled_model_dir

        self.root = Path(root)
        self.device, self.readonly = device, readonly
        self.bundled_dir = bundled_model_dir()
        self._cards: dict[Path, tuple[int, ModelCard]] = {}
        self._loaded: OrderedDict[str, object] = OrderedDict()
        self._keep = keep_loaded
        self._lock = threading.Lock()
        self.bundled = self._read(self.bundled_dir)

    # -- cards ------------------------------------------------------------------
    def _read(self, folder: Path) -> ModelCard:
        path = folder / "card.json"
        try:
            stamp = path.stat().st_mtime_ns
        except OSError as exc:
            raise UnknownModel(f"unknown model {folder.name!r}") from exc
        cached = self._cards.get(folder)
        if cached and cached[0] == stamp:
            return cached[1]
        card = ModelCard.load(path, expect_id=None if folder == self.bundled_dir else folder.name)
        self._cards[folder] = (stamp, card)
        return card

    def model_dir(self, model_id: str) -> Path:
        """Folder of a model by id: the bundled encoder or ``models/<id>`` (a precision
        variant's is its model's)."""
        model_id = variants.split(model_id)[0]
        if model_id == self.bundled.id:
            return self.bundled_dir
        if valid_model_id(model_id):
            candidate = self.root / model_id
            if (candidate / "card.json").is_file():
                return candidate
        raise UnknownModel(f"unknown model {model_id!r}")

    def card(self, model_id: str) -> ModelCard:
        """The card of a model, or of a precision variant (see :mod:`photosim.precision`)."""
        card = self._read(self.model_dir(model_id))
        return variants.variant_card(card, variants.split(model_id)[1])

    def problem(self, card: ModelCard) -> str | None:
        """Why ``card``'s model cannot be loaded (a head-only fine-tune whose backbone an
        upgrade replaced), or None when it can."""
        from ..encoder import backbone_problem

        return backbone_problem(card, self.model_dir)

    def usable(self, model_id: str) -> ModelCard:
        """The card of a model that can be loaded; raises with the reason otherwise."""
        card = self.card(model_id)
        problem = self.problem(card)
        if problem:
            raise ModelUnusable(problem)
        return card

    def resolve_active(self, wanted: str | None) -> tuple[ModelCard, str]:
        """The card a library last switched to, or the bundled one and a notice saying why."""
        if not wanted:
            return self.bundled, ""
        try:
            base, precision = variants.split(wanted)
            return self.usable(variants.variant_id(base, precision)), ""  # an older int8 recipe: the current
        except UnknownModel:
            return self.bundled, ""  # an upgrade replaced the bundled encoder: vectors are re-made once
        except ModelUnusable as exc:
            return self.bundled, (f"the model {wanted} cannot be used, so searches use the bundled encoder: "
                                  f"{exc}")

    # -- listing and deleting ---------------------------------------------------
    def list(self, active_id: str) -> list:
        """The bundled model and every fine-tune (``ModelInfo``), oldest first."""
        from ..training.models_store import list_models

        return list_models(self.root, self.bundled_dir, variants.split(active_id)[0], problem=self.problem)

    def delete(self, model_id: str) -> None:
        from ..training.models_store import delete_model

        if variants.split(model_id)[1] != "fp32":
            raise PhotosimError(f"{model_id} is a precision setting of a model, not a model of its own")
        if model_id == self.bundled.id:
            raise PhotosimError("the bundled model cannot be deleted")
        self.model_dir(model_id)  # a name of this library, or UnknownModel
        with self._lock:
            self._loaded.pop(model_id, None)
        delete_model(self.root, model_id)

    # -- names ------------------------------------------------------------------
    def _names(self, but: str | None = None) -> set[str]:
        return {m.name for m in self.list("") if m.id != but}

    def free_name(self, base: str) -> str:
        """``base``, or ``base (2)``, ``(3)``… when another model is called that already."""
        taken = {n.casefold() for n in self._names()}
        name, n = base, 2
        while name.casefold() in taken:
            name, n = f"{base} ({n})", n + 1
        return name

    def rename_model(self, model_id: str, name: str) -> str:
        """Give a fine-tune a display name, kept in its card (the id stays); returns the
        name as stored. Empty, too long or taken names are refused with the reason."""
        if self.readonly:
            raise ReadOnlyLibrary("this library was opened read-only")
        if model_id == self.bundled.id:
            raise PhotosimError("the bundled encoder ships inside photosim and keeps its name")
        folder = self.model_dir(model_id)
        name = check_model_name(name, self._names(but=model_id))
        card = dataclasses.replace(self._read(folder), name=name)
        tmp = folder / ".card.json.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:  # atomically: a crash keeps the old card
            fh.write(card.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / "card.json")
        self._cards.pop(folder, None)
        return name

    # -- loading ----------------------------------------------------------------
    def load(self, model_id: str):
        """The loaded :class:`photosim.encoder.Encoder` of a model (kept for reuse)."""
        from ..encoder import Encoder

        with self._lock:
            enc = self._loaded.get(model_id)
            if enc is not None:
                self._loaded.move_to_end(model_id)
                return enc
        card = self.usable(model_id)
        precision = variants.split(card.id)[1]
        try:
            enc = Encoder.load(self.model_dir(card.id), device=self.device, resolve_parent=self.model_dir,
                               precision=precision)
        except PhotosimError:
            raise
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelUnusable(f"the model {model_id} could not be loaded: {exc}") from exc
        if enc.id != card.id:  # int8 cannot run here (no ONNX Runtime, a GPU): never fp32 vectors under its id
            raise ModelUnusable(f"the model {model_id} cannot run here: {enc.notice}")
        with self._lock:
            self._loaded[model_id] = enc
            while len(self._loaded) > self._keep:
                self._loaded.popitem(last=False)
        return enc

    def loaded(self, model_id: str) -> bool:
        with self._lock:
            return model_id in self._loaded
