"""Photo rows: look-ups, listings (filtered in SQL), counts and forgetting."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from sqlalchemy import delete, func, select, text

from ..values import PhotoInfo
from .schema import IgnoredProblem, Photo

_CHUNK = 900  # below SQLite's limit on bound variables


def folder_range(folder: str) -> tuple[str, str]:
    """[low, high) of the paths under ``folder`` (paths compare as raw bytes)."""
    prefix = os.fsencode(os.path.abspath(folder).rstrip(os.sep) + os.sep)
    return os.fsdecode(prefix), os.fsdecode(prefix[:-1] + bytes([prefix[-1] + 1]))


_SUBFOLDERS_SQL = """
SELECT child, count(*), max(deeper) FROM (
    SELECT CASE WHEN cut = 0 THEN NULL ELSE substr(rest, 1, cut - 1) END AS child,
           CASE WHEN cut = 0 THEN 0 ELSE instr(substr(rest, cut + 1), :sep) > 0 END AS deeper
    FROM (SELECT substr(path, :start) AS rest, instr(substr(path, :start), :sep) AS cut
          FROM photos WHERE status = :status AND path >= :low AND path < :high))
GROUP BY child"""


#: the columns a PhotoInfo is made of: read as plain rows (SQLAlchemy Core), not ORM objects,
#: which cost ~0.1 ms each to build (a third of a search at 10^6 photos)
_INFO = (Photo.id, Photo.path, Photo.size, Photo.mtime_ns, Photo.width, Photo.height, Photo.taken_at,
         Photo.camera, Photo.orientation, Photo.status, Photo.error, Photo.content_hash)


_INFO_SQL = ("SELECT id, path, size, mtime_ns, width, height, taken_at, camera, orientation, status, error, "
             "content_hash FROM photos WHERE id IN ({})")  # _INFO's columns, PhotoInfo's order


def infos_by_id(s, ids: list[int]) -> dict[int, PhotoInfo]:
    """PhotoInfo of each of ``ids`` that is a photo, by id, in session ``s``."""
    out: dict[int, PhotoInfo] = {}
    for start in range(0, len(ids), _CHUNK):
        for r in s.execute(select(*_INFO).where(Photo.id.in_(ids[start:start + _CHUNK]))):
            out[r.id] = PhotoInfo.from_row(r)
    return out


class PhotoRepo:
    def __init__(self, store):
        self._store = store

    def list(self, *, status: str | None = "ok", folder: str | None = None) -> list[PhotoInfo]:
        q = select(*_INFO)
        if status:
            q = q.where(Photo.status == status)
        if folder:
            low, high = folder_range(folder)
            q = q.where(Photo.path >= low, Photo.path < high)
        with self._store.read() as s:
            return [PhotoInfo.from_row(r) for r in s.execute(q.order_by(Photo.id))]

    def photo(self, ref: int | str | os.PathLike) -> PhotoInfo | None:
        where = Photo.id == ref if isinstance(ref, int) else Photo.path == os.path.abspath(os.fspath(ref))
        with self._store.read() as s:
            row = s.execute(select(*_INFO).where(where)).first()
            return PhotoInfo.from_row(row) if row else None

    def photos_by_id(self, ids: Iterable[int]) -> dict[int, PhotoInfo]:
        """PhotoInfo of each of ``ids`` that is a photo, by id (a search's results: plain
        DB-API rows, no session)."""
        ids, out = [int(i) for i in ids], {}
        with self._store.cursor() as cur:
            for start in range(0, len(ids), _CHUNK):
                part = ids[start:start + _CHUNK]
                for row in cur.execute(_INFO_SQL.format(",".join("?" * len(part))), part):
                    info = PhotoInfo(*row[:1], os.fsdecode(row[1]), *row[2:])
                    out[info.id] = info
        return out

    def ids(self, *, status: str | None = "ok", folder: str | None = None) -> list[int]:
        q = select(Photo.id)
        if status:
            q = q.where(Photo.status == status)
        if folder:
            low, high = folder_range(folder)
            q = q.where(Photo.path >= low, Photo.path < high)
        with self._store.read() as s:
            return list(s.scalars(q.order_by(Photo.id)))

    def count(self, *, status: str | None = None, folder: str | None = None) -> int:
        """Photos (``status`` "ok", "error" or None: all), under ``folder`` if given; in SQL."""
        if not folder:  # kept by triggers (migration 9): one row, not a walk of every photo
            where = "WHERE status = :status" if status else ""
            with self._store.read() as s:
                return int(s.execute(text(f"SELECT sum(n) FROM photo_counts {where}"),
                                     {"status": status}).scalar() or 0)
        q = select(func.count()).select_from(Photo)
        if status:
            q = q.where(Photo.status == status)
        if folder:
            low, high = folder_range(folder)
            q = q.where(Photo.path >= low, Photo.path < high)
        with self._store.read() as s:
            return s.scalar(q) or 0

    def subfolders(self, folder: str, *, status: str = "ok") -> tuple[int, list[tuple[str, int, bool]]]:
        """Photos directly in ``folder``, and for each of its sub-folders that holds some:
        (path, photos in it and below, whether it has sub-folders with photos). One GROUP BY
        over the folder's range of the path index; paths are cut as bytes (SQLite's substr
        and instr count bytes in BLOBs), so names that are not UTF-8 are kept whole."""
        low, high = folder_range(folder)
        prefix = os.fsencode(low)
        with self._store.read() as s:
            found = s.execute(text(_SUBFOLDERS_SQL), {"low": prefix, "high": os.fsencode(high), "start": len(prefix) + 1,
                                           "sep": os.fsencode(os.sep), "status": status}).all()
        direct, children = 0, []
        for child, count, deeper in found:
            if child is None:
                direct = count
            else:
                children.append((os.fsdecode(prefix + bytes(child)), count, bool(deeper)))
        return direct, children

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
