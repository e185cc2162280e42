"""The gallery's view of the photo rows, paged in SQL: counts, windows of rows in one of
three orders (name, date, folder; ascending or descending), filtered by folder or album,
and the row a photo is at; none of it reads more rows than it returns.

Each order is an index: ``photos`` carries sort keys computed by the writer when a row is
inserted or its path, date or status change (:func:`sort_keys`; migration 6 fills them
in for older libraries), so natural order ("IMG_2" before "IMG_10") is a plain
comparison of bytes in SQLite and a window is a walk along an index.

While a scan adds photos the gallery must not reorder under the user: a view with
``upto`` (the largest photo id of the last full view) keeps the rows up to that id in
their order and puts the newer ones after them, in the order they were added.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from ..values import PhotoInfo
from .photos import folder_range, infos_by_id

SORTS = ("name", "date", "folder")

_DIGITS = re.compile(r"([0-9]+)")


def natural_key(text_: str) -> bytes:
    """Bytes that compare as the natural order of ``text_``, case-insensitively: a run of
    digits orders by its value (IMG_2 before IMG_10) and before any text at the same
    place. Built so that the key of a folder is a prefix of the keys of what is under it."""
    out = []
    for i, part in enumerate(_DIGITS.split(text_.casefold())):
        if i % 2:
            digits = part.lstrip("0")
            out.append(f"\x01{min(len(digits), 99):02d}{digits}")
        elif part:
            out.append("\x02" + part)
    key = "".join(out)
    return key.encode("utf-8", "surrogateescape")


def date_key(taken_at: str | None, mtime_ns: int | None) -> str:
    """The date the gallery shows and sorts by: EXIF's, else the file's modification time."""
    if taken_at:
        return taken_at
    return datetime.fromtimestamp((mtime_ns or 0) / 1e9).isoformat(timespec="seconds")


def folder_key(folder: str) -> bytes:
    """The folder's natural key, then (after a NUL, which no path holds) its raw bytes: two
    folders whose names differ only in case stay two, and each key names its folder."""
    return natural_key(folder) + b"\x00" + os.fsencode(folder)


def sort_keys(path: str, taken_at: str | None, mtime_ns: int | None) -> dict:
    folder, name = os.path.split(path)
    return {"name_key": natural_key(name), "folder_key": folder_key(folder),
            "date_key": date_key(taken_at, mtime_ns)}


# ORDER BY columns of each sort (the last one, the id, makes every order total)
_ORDER = {"name": ("name_key", "folder_key", "id"), "folder": ("folder_key", "name_key", "id"),
          "date": ("date_key", "name_key", "id")}
INDEXES = {"name": "ix_photos_sort_name", "folder": "ix_photos_sort_folder", "date": "ix_photos_sort_date"}


@dataclass(frozen=True)
class View:
    """What the gallery shows: the photos readable (``status`` "ok"), in folder ``folder``
    (and under it) or in album ``album``, sorted by ``sort``; ``upto``: see the module."""

    sort: str = "date"
    descending: bool = False
    folder: str | None = None
    album: int | None = None
    upto: int | None = None

    def __post_init__(self):
        if self.sort not in SORTS:
            raise ValueError(f"unknown sort {self.sort!r} (one of {', '.join(SORTS)})")


class GalleryRepo:
    """Windows of the gallery; see the module docstring. Every method takes the
    :class:`View`'s fields as keywords (``sort=``, ``descending=``, ``folder=``, ``album=``,
    ``upto=``) or a ``view=``."""

    def __init__(self, store):
        self._store = store
        #: rows of photos read by :meth:`page` since the store opened (benchmarks, tests)
        self.rows_read = 0

    @staticmethod
    def view(**kw) -> View:
        return kw.get("view") or View(**{k: v for k, v in kw.items() if k != "view"})

    # -- SQL pieces --------------------------------------------------------------------
    def _where(self, v: View, part: str | None) -> tuple[str, dict]:
        """WHERE clause (on ``p``, the photos table) and its parameters. ``part``: "old"
        (ids up to ``v.upto``), "new" (after it) or None (all)."""
        sql, args = ["p.status = 'ok'"], {}
        if v.folder:
            low, high = folder_range(v.folder)
            key = natural_key(os.path.abspath(v.folder).rstrip(os.sep))
            under = natural_key(os.path.abspath(v.folder).rstrip(os.sep) + os.sep)
            # the folder's key range (an index range: the folder's key, those of the folders
            # under it), then the exact path range (the range also holds "b1 c" beside "b1")
            sql.append("p.folder_key >= :fk_low AND p.folder_key < :fk_high AND p.path >= :low AND p.path < :high")
            args.update(fk_low=key, fk_high=under[:-1] + bytes([under[-1] + 1]),
                        low=os.fsencode(low), high=os.fsencode(high))
        if v.album is not None:
            sql.append("a.album_id = :album")
            args["album"] = int(v.album)
        if v.upto is not None and part == "old":
            sql.append("p.id <= :upto")
            args["upto"] = int(v.upto)
        elif v.upto is not None and part == "new":
            sql.append("p.id > :upto")
            args["upto"] = int(v.upto)
        return " AND ".join(sql), args

    @staticmethod
    def _from(v: View) -> str:
        # an album's rows from its members (then sorted), not a walk of the whole order
        return "album_photos a CROSS JOIN photos p ON p.id = a.photo_id" if v.album is not None else "photos p"

    def _order(self, v: View, part: str | None) -> list[str]:
        if part == "new":
            return ["id"]  # in the order the scan added them, after the others
        return list(_ORDER[v.sort])

    def _order_sql(self, v: View, part: str | None) -> str:
        desc = " DESC" if v.descending and part != "new" else ""
        return ", ".join(f"p.{c}{desc}" for c in self._order(v, part))

    def _parts(self, v: View) -> list[str | None]:
        return ["old", "new"] if v.upto is not None else [None]

    def _count(self, s, v: View, part: str | None) -> int:
        if not v.folder and v.album is None:  # the whole library: the counts the triggers keep
            if part is None:
                return self._readable(s)
            # the photos added after ``upto`` (a scan's: few), on the rowid range alone
            newer = int(s.execute(text("SELECT count(*) FROM photos NOT INDEXED WHERE id > :upto "
                                       "AND status = 'ok'"), {"upto": int(v.upto)}).scalar() or 0)
            return newer if part == "new" else self._readable(s) - newer
        where, args = self._where(v, part)
        return int(s.execute(text(f"SELECT count(*) FROM {self._from(v)} WHERE {where}"), args).scalar() or 0)

    @staticmethod
    def _readable(s) -> int:
        return int(s.execute(text("SELECT n FROM photo_counts WHERE status = 'ok'")).scalar() or 0)

    # -- the API -------------------------------------------------------------------------
    def count(self, **kw) -> int:
        v = self.view(**kw)
        with self._store.read() as s:
            return sum(self._count(s, v, part) for part in self._parts(v))

    def max_id(self) -> int:
        """The largest photo id (the ``upto`` of a view that must hold still)."""
        with self._store.read() as s:
            return int(s.execute(text("SELECT max(id) FROM photos")).scalar() or 0)

    def page(self, offset: int, limit: int, **kw) -> list[PhotoInfo]:
        """Rows ``offset`` to ``offset + limit`` of the view (fewer at its end)."""
        v = self.view(**kw)
        ids: list[int] = []
        with self._store.read() as s:
            for part in self._parts(v):
                if limit <= len(ids):
                    break
                n = self._count(s, v, part) if part == "old" else None
                if n is not None and offset >= n:
                    offset -= n
                    continue
                where, args = self._where(v, part)
                args.update(lim=limit - len(ids), off=max(0, offset))
                ids += [r[0] for r in s.execute(text(
                    f"SELECT p.id FROM {self._from(v)} WHERE {where} ORDER BY {self._order_sql(v, part)} "
                    "LIMIT :lim OFFSET :off"), args)]
                offset = 0
            rows = infos_by_id(s, ids)
        self.rows_read += len(rows)
        return [rows[i] for i in ids if i in rows]

    def row_of(self, photo_id: int, **kw) -> int | None:
        """The row at which photo ``photo_id`` is in the view, or None when it is not in it."""
        v = self.view(**kw)
        with self._store.read() as s:
            where, args = self._where(v, None)
            me = s.execute(text(f"SELECT p.id, p.name_key, p.folder_key, p.date_key FROM {self._from(v)} "
                                f"WHERE p.id = :me AND {where}"), {**args, "me": int(photo_id)}).mappings().first()
            if me is None:
                return None
            before = 0
            for part in self._parts(v):
                mine = part is None or (part == "old") == (me["id"] <= v.upto)
                if not mine:  # the old rows all come before a new one
                    before += self._count(s, v, part) if part == "old" else 0
                    continue
                cols = self._order(v, part)
                op = ">" if v.descending and part != "new" else "<"
                where, args = self._where(v, part)
                args.update({f"me_{c}": me[c] for c in cols})
                tup = ", ".join(f"p.{c}" for c in cols)
                mine_tup = ", ".join(f":me_{c}" for c in cols)
                before += int(s.execute(text(f"SELECT count(*) FROM {self._from(v)} WHERE {where} "
                                             f"AND ({tup}) {op} ({mine_tup})"), args).scalar() or 0)
                break
            return before

    def folders(self) -> list[str]:
        """The folders that hold readable photos, in natural order (a walk of the folder
        index: each key names its folder)."""
        with self._store.read() as s:
            keys = s.scalars(text("SELECT DISTINCT folder_key FROM photos WHERE status = 'ok' "
                                  "AND folder_key IS NOT NULL ORDER BY folder_key")).all()
        return [os.fsdecode(bytes(k).split(b"\x00", 1)[-1]) for k in keys]

