"""Duplicate verdicts ("not duplicates", "keep both") and the log of trashed files."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select

from ..errors import PhotosimError
from .schema import TrashEntry, Verdict

VERDICTS = ("not duplicates", "keep both")


class VerdictRepo:
    def __init__(self, store):
        self._store = store

    def set(self, photo_ids: Iterable[int], verdict: str) -> int:
        """Record ``verdict`` for every pair among ``photo_ids`` (a pair or a whole group);
        a later verdict on a pair replaces an earlier one. Returns the pairs recorded."""
        if verdict not in VERDICTS:
            raise PhotosimError(f"unknown verdict {verdict!r}; use one of: {', '.join(VERDICTS)}")
        ids = sorted(set(int(i) for i in photo_ids))
        if len(ids) < 2:
            raise PhotosimError("a verdict needs at least two photos")
        now = time.time()
        with self._store.write() as s:
            for a, b in itertools.combinations(ids, 2):
                s.merge(Verdict(photo_a=a, photo_b=b, verdict=verdict, created_at=now))
        return len(ids) * (len(ids) - 1) // 2

    def clear(self, photo_ids: Iterable[int]) -> None:
        ids = sorted(set(int(i) for i in photo_ids))
        with self._store.write() as s:
            for a, b in itertools.combinations(ids, 2):
                s.execute(delete(Verdict).where(Verdict.photo_a == a, Verdict.photo_b == b))

    def all(self) -> dict[tuple[int, int], str]:
        """{(a, b): verdict} with a < b."""
        with self._store.read() as s:
            return {(v.photo_a, v.photo_b): v.verdict for v in s.scalars(select(Verdict))}


@dataclass(frozen=True)
class TrashRecord:
    id: int
    path: str
    size: int
    content_hash: str | None
    trashed_at: float
    restored_at: float | None


class TrashLogRepo:
    def __init__(self, store):
        self._store = store

    def add(self, entries: Iterable[tuple[str, int, str | None]], when: float | None = None) -> None:
        when = time.time() if when is None else when
        with self._store.write() as s:
            for path, size, digest in entries:
                s.add(TrashEntry(path=path, size=size, content_hash=digest, trashed_at=when))

    def list(self, *, restored: bool | None = False) -> list[TrashRecord]:
        """Newest first; ``restored=None`` for every entry."""
        q = select(TrashEntry).order_by(TrashEntry.trashed_at.desc(), TrashEntry.id.desc())
        if restored is not None:
            q = q.where(TrashEntry.restored_at.is_not(None) if restored else TrashEntry.restored_at.is_(None))
        with self._store.read() as s:
            return [TrashRecord(e.id, e.path, e.size, e.content_hash, e.trashed_at, e.restored_at)
                    for e in s.scalars(q)]

    def mark_restored(self, ids: Iterable[int], when: float | None = None) -> None:
        when = time.time() if when is None else when
        with self._store.write() as s:
            for e in s.scalars(select(TrashEntry).where(TrashEntry.id.in_(list(ids)))):
                e.restored_at = when
