"""The folders scanned into the library, kept as raw bytes like photo paths."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import delete, select

from .schema import Root


class RootRepo:
    def __init__(self, store):
        self._store = store

    def all(self) -> list[str]:
        with self._store.read() as s:
            return sorted(s.scalars(select(Root.path)))

    def add(self, paths: Iterable[str]) -> None:
        with self._store.write() as s:
            have = set(s.scalars(select(Root.path)))
            now = time.time()
            for p in dict.fromkeys(paths):
                if p not in have:
                    s.add(Root(path=p, added_at=now))

    def remove(self, paths: Iterable[str]) -> None:
        with self._store.write() as s:
            s.execute(delete(Root).where(Root.path.in_(list(paths))))
