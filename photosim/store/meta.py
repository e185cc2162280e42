"""Library-wide values (``meta`` table), typed: each value is stored as JSON."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from .schema import Meta


class MetaRepo:
    def __init__(self, store):
        self._store = store

    def get(self, key: str, default=None):
        with self._store.read() as s:
            row = s.get(Meta, key)
        if row is None:
            return default
        try:
            return json.loads(row.value)
        except ValueError:  # written by hand or by a photosim before schema 4: plain text
            return row.value

    def set(self, key: str, value, session: Session | None = None) -> None:
        """Store ``value`` (anything JSON holds); inside ``session``'s transaction when given."""
        if session is not None:
            session.merge(Meta(key=key, value=json.dumps(value)))
            return
        with self._store.write() as s:
            s.merge(Meta(key=key, value=json.dumps(value)))

    @staticmethod
    def bump_generation(session: Session) -> None:
        row = session.get(Meta, "generation")
        value = (json.loads(row.value) if row else 0) + 1
        session.merge(Meta(key="generation", value=json.dumps(value)))
