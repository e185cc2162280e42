"""The model a library searches with: its card (read without torch) and, on first
use, its loaded encoder."""

from __future__ import annotations

import threading


class ActiveModel:
    def __init__(self, store, registry):
        self._store = store
        self._registry = registry
        self._lock = threading.Lock()
        self.card, self.notice = registry.resolve_active(store.meta.get("encoder_id"))

    @property
    def encoder_id(self) -> str:
        return self.card.id

    @property
    def backbone_id(self) -> str:
        return self.card.backbone_id

    @property
    def encoder(self):
        """The loaded encoder (torch import and weights: ~1-2 s the first time)."""
        with self._lock:
            return self._registry.load(self.card.id)

    @property
    def encoder_loaded(self) -> bool:
        return self._registry.loaded(self.card.id)

    def set(self, model_id: str) -> None:
        """Make ``model_id`` the active model (its vectors must be stored already)."""
        card = self._registry.usable(model_id)
        self._store.meta.set("encoder_id", card.id)
        with self._lock:
            self.card, self.notice = card, ""
