"""Photo rows: look-ups, listings (filtered in SQL), counts and forgetting."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from sqlalchemy import delete, func, select

from ..values import PhotoInfo
from .schema import IgnoredProblem, Photo

_CHUNK = 900  # below SQLite's limit on bound variables


def folder_range(folder: str) -> tuple[str, str]:
    """[low, high) of the paths under ``folder`` (paths compare as raw bytes)."""
    prefix = os.fsencode(os.path.abspath(folder).rstrip(os.sep) + os.sep)
    return os.fsdecode(prefix), os.fsdecode(prefix[:-1] + bytes([prefix[-1] + 1]))


class PhotoRepo:
    def __init__(self, store):
        self._store = store

    def list(self, *, status: str | None = "ok", folder: str | None = None) -> list[PhotoInfo]:
        q = select(Photo)
        if status:
            q = q.where(Photo.status == status)
        if folder:
            low, high = folder_range(folder)
            q = q.where(Photo.path >= low, Photo.path < high)
        with self._store.read() as s:
            return [PhotoInfo.from_row(r) for r in s.scalars(q.order_by(Photo.id))]

    def photo(self, ref: int | str | os.PathLike) -> PhotoInfo | None:
        with self._store.read() as s:
            if isinstance(ref, int):
                row = s.get(Photo, ref)
            else:
                row = s.scalars(select(Photo).where(Photo.path == os.path.abspath(os.fspath(ref)))).first()
            return PhotoInfo.from_row(row) if row else None

    def photos_by_id(self, ids: Iterable[int]) -> dict[int, PhotoInfo]:
        ids = list(ids)
        out: dict[int, PhotoInfo] = {}
        with self._store.read() as s:
            for start in range(0, len(ids), _CHUNK):
                for r in s.scalars(select(Photo).where(Photo.id.in_(ids[start:start + _CHUNK]))):
                    out[r.id] = PhotoInfo.from_row(r)
        return out

    def ids(self, *, status: str | None = "ok") -> list[int]:
        q = select(Photo.id)
        if status:
            q = q.where(Photo.status == status)
        with self._store.read() as s:
            return list(s.scalars(q.order_by(Photo.id)))

    def count(self, *, status: str | None = None) -> int:
        q = select(func.count()).select_from(Photo)
        if status:
            q = q.where(Photo.status == status)
        with self._store.read() as s:
            return s.scalar(q) or 0

    def delete(self, ids: Iterable[int]) -> None:
        """Forget photos (their vectors, features and labels go with them by cascade)."""
        ids = list(ids)
        for start in range(0, len(ids), 500):
            with self._store.write() as s:
                s.execute(delete(Photo).where(Photo.id.in_(ids[start:start + 500])))


class IgnoredRepo:
    """Paths of unreadable files the user chose to ignore (kept across re-scans)."""

    def __init__(self, store):
        self._store = store

    def all(self) -> set[str]:
        with self._store.read() as s:
            return set(s.scalars(select(IgnoredProblem.path)))

    def add(self, paths: Iterable[str]) -> None:
        now = time.time()
        with self._store.write() as s:
            for path in set(paths):
                s.merge(IgnoredProblem(path=path, ignored_at=now))

    def remove(self, paths: Iterable[str] | None = None) -> None:
        """Forget the given paths (None: all of them)."""
        with self._store.write() as s:
            if paths is None:
                s.execute(delete(IgnoredProblem))
                return
            paths = list(paths)
            for start in range(0, len(paths), _CHUNK):
                s.execute(delete(IgnoredProblem).where(IgnoredProblem.path.in_(paths[start:start + _CHUNK])))
