"""The library's SQLite database: ORM mapping of the latest schema.

The schema itself is created and upgraded only by :mod:`photosim.store.migrations`;
the classes here describe what the newest migration produces.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

import numpy as np
from sqlalchemy import (
    BLOB,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class FsPath(TypeDecorator):
    """File system paths stored as their raw bytes, so non-UTF-8 names round-trip."""

    impl = BLOB
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else os.fsencode(value)

    def process_result_value(self, value, dialect):
        return None if value is None else os.fsdecode(value)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Library-wide values, each stored as JSON (see :class:`photosim.store.meta.MetaRepo`)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Root(Base):
    """A folder scanned into the library (raw bytes, like photo paths)."""

    __tablename__ = "roots"
    path: Mapped[str] = mapped_column(FsPath, primary_key=True)
    added_at: Mapped[float] = mapped_column(Float)


class ExcludedFolder(Base):
    """A sub-folder of a scanned folder that scans skip (raw bytes, like roots)."""

    __tablename__ = "excluded_folders"
    path: Mapped[str] = mapped_column(FsPath, primary_key=True)
    added_at: Mapped[float] = mapped_column(Float)


class Photo(Base):
    """One photo file of the library."""

    __tablename__ = "photos"
    __table_args__ = (Index("ix_photos_status_path", "status", "path"),)  # the folder tree's counts
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(FsPath, unique=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str | None] = mapped_column(String, index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[str | None] = mapped_column(String)
    camera: Mapped[str | None] = mapped_column(String)
    orientation: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String)  # "ok" | "error"
    error: Mapped[str | None] = mapped_column(Text)
    scanned_at: Mapped[float] = mapped_column(Float)
    # the gallery's sort keys (photosim.store.gallery), set on insert and on every update
    name_key: Mapped[bytes | None] = mapped_column(LargeBinary, default=lambda ctx: _key(ctx, "name_key"))
    folder_key: Mapped[bytes | None] = mapped_column(LargeBinary, default=lambda ctx: _key(ctx, "folder_key"))
    date_key: Mapped[str | None] = mapped_column(String, default=lambda ctx: _key(ctx, "date_key"))

    def __repr__(self) -> str:
        return f"Photo(id={self.id}, path={self.path!r}, status={self.status})"


def _key(ctx, which: str):
    """Column default of a sort key: from the inserted row's path, date and mtime (ORM and
    Core inserts alike, one row of an executemany at a time)."""
    from .gallery import sort_keys

    row = ctx.get_current_parameters()
    if row.get("path") is None:
        return None
    args = (os.fsdecode(row["path"]), row.get("taken_at"), row.get("mtime_ns"))
    if _last_keys[0] != args:  # the three keys of one row are asked for one after another
        _last_keys[:] = [args, sort_keys(*args)]
    return _last_keys[1][which]


_last_keys: list = [None, None]


@event.listens_for(Photo, "before_update")
def _update_keys(_mapper, _conn, photo: Photo) -> None:
    """An updated row (moved, re-read) gets its sort keys again."""
    from .gallery import sort_keys

    if photo.path is not None:
        for k, v in sort_keys(photo.path, photo.taken_at, photo.mtime_ns).items():
            setattr(photo, k, v)


class Vector(Base):
    """An embedding of a photo by one encoder; several encoders never mix in an index."""

    __tablename__ = "vectors"
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    encoder_id: Mapped[str] = mapped_column(String, primary_key=True, index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Feature(Base):
    """Pooled backbone features (float16), so a new head re-embeds without decoding."""

    __tablename__ = "features"
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    backbone_id: Mapped[str] = mapped_column(String, primary_key=True, index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Album(Base):
    __tablename__ = "albums"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    source: Mapped[str] = mapped_column(String)  # "folder" | "user"
    created_at: Mapped[float] = mapped_column(Float)
    members: Mapped[list["AlbumPhoto"]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class AlbumPhoto(Base):
    __tablename__ = "album_photos"
    album_id: Mapped[int] = mapped_column(ForeignKey("albums.id", ondelete="CASCADE"), primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)


class Mark(Base):
    """A user's explicit judgement of one result for one query."""

    __tablename__ = "marks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    result_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    label: Mapped[int] = mapped_column(Integer)  # +1 similar, -1 not similar
    created_at: Mapped[float] = mapped_column(Float)


class Verdict(Base):
    """The user's word on a pair of photos: "not duplicates" or "keep both" (photo_a < photo_b)."""

    __tablename__ = "verdicts"
    photo_a: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    photo_b: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    verdict: Mapped[str] = mapped_column(String)
    created_at: Mapped[float] = mapped_column(Float)


class TrashEntry(Base):
    """A file photosim sent to the system trash: where it was, and when."""

    __tablename__ = "trash_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(FsPath)
    size: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str | None] = mapped_column(String)
    trashed_at: Mapped[float] = mapped_column(Float)
    restored_at: Mapped[float | None] = mapped_column(Float)


class IgnoredProblem(Base):
    """A file that could not be read and that the user chose to ignore (by path)."""

    __tablename__ = "ignored_problems"
    path: Mapped[str] = mapped_column(FsPath, primary_key=True)
    ignored_at: Mapped[float] = mapped_column(Float)


def vector_to_blob(vec: np.ndarray, dtype=np.float32) -> bytes:
    return np.ascontiguousarray(vec, dtype=dtype).tobytes()


def blob_to_vector(blob: bytes, dtype=np.float32) -> np.ndarray:
    return np.frombuffer(blob, dtype=dtype)


#: bytes a page of a new library.db (SQLite's default is 4096)
PAGE_SIZE = 16384


def make_engine(db_path: Path, *, readonly: bool = False) -> Engine:
    """An engine on ``db_path``. ``readonly``: SQLite's read-only mode, no pragma that
    writes (WAL is set by writers); on a folder that cannot be written at all (a read-only
    disk or share), ``immutable`` so SQLite does not try to create its shared-memory file."""
    if readonly:
        mode = "ro" if os.access(os.path.dirname(os.path.abspath(db_path)) or ".", os.W_OK) else "ro&immutable=1"
        uri = f"file:{quote(Path(db_path).absolute().as_posix())}?mode={mode}"
        # QueuePool, as for a file URL: "sqlite://" would get SingletonThreadPool, which closes the
        # connections of the oldest threads once more than five threads used it, even while one
        # is mid-query (a read-only window's workers crashed SQLite that way)
        engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
                               poolclass=QueuePool, future=True)
    else:
        engine = create_engine(f"sqlite:///{db_path}", future=True)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA recursive_triggers=ON")  # rows INSERT OR REPLACE replaces are counted out
        cur.execute("PRAGMA busy_timeout=10000")
        if not readonly:
            # a new database's pages (no effect on an existing one): a 2 KB vector row takes a
            # 4 KB page to itself (4.1 KB a photo), 2.3 KB with 16 KB pages; reads of a row cost
            # the same (measured: 9.0 against 9.7 us), a walk of every vector is 2.5x faster
            cur.execute(f"PRAGMA page_size={PAGE_SIZE}")
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


def _wal(cur, seconds: float = 10.0) -> None:
    """Switch to write-ahead logging. Changing the journal mode does not wait on SQLite's busy
    handler, so two processes opening a new library at once would see "database is locked":
    retry for a while instead."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
