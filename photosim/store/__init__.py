"""The library's database: one :class:`Store` with small repositories.

Nothing outside the engine needs this package: :class:`photosim.Library` is the
front door. ``Store.write()`` is the one way to change rows; a transaction that
touches photos or vectors bumps the library's *generation* itself (as beets'
``dbcore`` ``Transaction`` bumps its revision), so a saved index of another
generation is known to be stale and nobody can forget to say so.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from ..errors import PhotosimError, ReadOnlyLibrary
from . import migrations
from .gallery import GalleryRepo
from .labels import LabelRepo
from .meta import MetaRepo
from .photos import IgnoredRepo, PhotoRepo
from .roots import RootRepo
from .schema import PAGE_SIZE, Photo, Vector, make_engine
from .taps import TapStore
from .vectors import FeatureRepo, VectorRepo
from .verdicts import TrashLogRepo, VerdictRepo

__all__ = ["Store", "TapStore"]

_VECTOR_TABLES = {"photos", "vectors"}


class Store:
    """SQLite through SQLAlchemy: sessions, transactions, and the repositories."""

    def __init__(self, db_path: Path, *, readonly: bool = False):
        self.path = Path(db_path)
        self.readonly = readonly
        if readonly and not self.path.is_file():
            raise PhotosimError(f"no photosim library at {self.path.parent}")
        if readonly and os.access(self.path, os.W_OK):
            # Not taking the writer lock is no reason to stay on an old schema: upgrading is
            # transactional and safe beside other readers (a writer has upgraded already).
            upgrader = make_engine(self.path)
            try:
                if migrations.needs_upgrade(upgrader):
                    migrations.upgrade(upgrader)
            finally:
                upgrader.dispose()
        self._engine = make_engine(self.path, readonly=readonly)
        try:
            if readonly:
                self.schema_from = self.schema_version = migrations.check(self._engine)
            else:
                self.schema_from, self.schema_version = migrations.upgrade(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        event.listen(self._sessions, "after_flush", _note_flush)
        event.listen(self._sessions, "do_orm_execute", _note_statement)
        event.listen(self._sessions, "before_commit", _bump_if_touched)
        self.meta = MetaRepo(self)
        self.roots = RootRepo(self)
        self.photos = PhotoRepo(self)
        self.gallery = GalleryRepo(self)
        self.vectors = VectorRepo(self)
        self.features = FeatureRepo(self)
        self.labels = LabelRepo(self)
        self.verdicts = VerdictRepo(self)
        self.trash_log = TrashLogRepo(self)
        self.ignored = IgnoredRepo(self)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading (no transaction is held open beyond the queries)."""
        with self._sessions() as s:
            yield s

    @contextmanager
    def cursor(self) -> Iterator[sqlite3.Cursor]:
        """A plain DB-API cursor for reading (no session, no ORM events): for the few reads a
        search makes, where a session's set-up cost more than the query (0.34 against 0.05 ms
        for ten photo rows at 10^6 photos)."""
        with self._engine.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def compact(self) -> int:
        """Rewrite library.db without its free pages (SQLite's VACUUM: as much free disk again
        and about a minute a GB), with the page size of new libraries (:data:`.schema.PAGE_SIZE`)
        when nothing else has it open (leaving WAL for the rewrite needs that; else its pages
        stay as they are). Returns the page size it has now."""
        if self.readonly:
            raise ReadOnlyLibrary("this library was opened read-only")
        self._engine.dispose()  # this process's pooled connections: the rewrite needs them closed
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            try:
                if conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0].lower() == "delete":
                    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            except sqlite3.OperationalError:
                pass  # another process has it open: a plain VACUUM, pages as they are
            conn.execute("VACUUM")
            conn.execute("PRAGMA journal_mode=WAL")
            return int(conn.execute("PRAGMA page_size").fetchone()[0])
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: all of it or nothing; bumps the generation when it changed
        photos or vectors."""
        if self.readonly:
            raise ReadOnlyLibrary("this library was opened read-only")
        with self._sessions() as s, s.begin():
            yield s

    @property
    def generation(self) -> int:
        """Bumped by every transaction that changes photos or vectors."""
        return int(self.meta.get("generation", 0))


def _touch(session: Session) -> None:
    session.info["photosim_touched"] = True


def _note_flush(session: Session, _context) -> None:
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, Photo | Vector):
            return _touch(session)
    for obj in session.dirty:
        if isinstance(obj, Vector):
            return _touch(session)
        if isinstance(obj, Photo) and session.is_modified(obj) and _status_changed(obj):
            return _touch(session)


def _status_changed(photo: Photo) -> bool:
    from sqlalchemy import inspect

    return inspect(photo).attrs.status.history.has_changes()


def _note_statement(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if table is not None and table.name in _VECTOR_TABLES:
            _touch(state.session)


def _bump_if_touched(session: Session) -> None:
    session.flush()  # what is still pending decides too
    if session.info.pop("photosim_touched", False):
        MetaRepo.bump_generation(session)
