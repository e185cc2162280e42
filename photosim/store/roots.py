"""The folders scanned into the library and the sub-folders excluded from them, kept as
raw bytes like photo paths."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from sqlalchemy import delete, select

from .schema import ExcludedFolder, Root


def inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies below it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class RootRepo:
    def __init__(self, store):
        self._store = store

    def all(self) -> list[str]:
        with self._store.read() as s:
            return sorted(s.scalars(select(Root.path)))

    def add(self, paths: Iterable[str]) -> None:
        """Folders to scan; one that was excluded is included again (the user asked for it)."""
        paths = list(dict.fromkeys(paths))
        with self._store.write() as s:
            have = set(s.scalars(select(Root.path)))
            now = time.time()
            for p in paths:
                if p not in have:
                    s.add(Root(path=p, added_at=now))
            s.execute(delete(ExcludedFolder).where(ExcludedFolder.path.in_(paths)))

    def remove(self, paths: Iterable[str]) -> None:
        with self._store.write() as s:
            s.execute(delete(Root).where(Root.path.in_(list(paths))))

    # -- excluded sub-folders ---------------------------------------------------------
    def excluded(self) -> list[str]:
        with self._store.read() as s:
            return sorted(s.scalars(select(ExcludedFolder.path)))

    def exclude(self, folder: str) -> None:
        """Exclude ``folder`` in one transaction: exclusions and scanned folders inside it
        are dropped (it covers them now)."""
        with self._store.write() as s:
            for model in (ExcludedFolder, Root):
                below = [p for p in s.scalars(select(model.path)) if inside(p, folder)]
                if below:
                    s.execute(delete(model).where(model.path.in_(below)))
            s.add(ExcludedFolder(path=folder, added_at=time.time()))

    def include(self, folder: str) -> bool:
        """No longer exclude ``folder``; False when it was not excluded."""
        with self._store.write() as s:
            return s.execute(delete(ExcludedFolder).where(ExcludedFolder.path == folder)).rowcount > 0
