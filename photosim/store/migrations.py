"""Explicit, ordered schema migrations; the only code that creates or alters tables.

Each step moves the database from version N-1 to N inside one transaction, so
an older library opened by a newer photosim is upgraded in place, and a crash
mid-upgrade leaves the previous version intact. A library written by a newer
photosim than this one is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ..errors import PhotosimError, SchemaTooNew




def _v1(conn: Connection) -> None:
    conn.execute(text("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value TEXT NOT NULL)"))
    conn.execute(
        text(
            """CREATE TABLE photos (
                id INTEGER PRIMARY KEY,
                path BLOB NOT NULL UNIQUE,
                size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL,
                content_hash VARCHAR,
                width INTEGER, height INTEGER,
                taken_at VARCHAR, camera VARCHAR, orientation INTEGER,
                status VARCHAR NOT NULL,
                error TEXT,
                scanned_at FLOAT NOT NULL)"""
        )
    )
    conn.execute(text("CREATE INDEX ix_photos_content_hash ON photos (content_hash)"))
    conn.execute(
        text(
            """CREATE TABLE vectors (
                photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
                encoder_id VARCHAR NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (photo_id, encoder_id))"""
        )
    )
    conn.execute(text("CREATE INDEX ix_vectors_encoder_id ON vectors (encoder_id)"))


def _v2(conn: Connection) -> None:
    """Cached backbone features: fine-tuned heads re-embed without decoding photos."""
    conn.execute(
        text(
            """CREATE TABLE features (
                photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
                backbone_id VARCHAR NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (photo_id, backbone_id))"""
        )
    )
    conn.execute(text("CREATE INDEX ix_features_backbone_id ON features (backbone_id)"))


def _v3(conn: Connection) -> None:
    """Albums and similarity marks, the labels fine-tuning learns from."""
    conn.execute(
        text(
            """CREATE TABLE albums (
                id INTEGER PRIMARY KEY,
                name VARCHAR NOT NULL UNIQUE,
                source VARCHAR NOT NULL,
                created_at FLOAT NOT NULL)"""
        )
    )
    conn.execute(
        text(
            """CREATE TABLE album_photos (
                album_id INTEGER NOT NULL REFERENCES albums(id) ON DELETE CASCADE,
                photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
                PRIMARY KEY (album_id, photo_id))"""
        )
    )
    conn.execute(
        text(
            """CREATE TABLE marks (
                id INTEGER PRIMARY KEY,
                query_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
                result_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
                label INTEGER NOT NULL,
                created_at FLOAT NOT NULL,
                UNIQUE (query_id, result_id))"""
        )
    )


def _v4(conn: Connection) -> None:
    """Meta values become JSON; scan roots get a table of raw bytes (as photo paths), so a
    folder whose name is not UTF-8 or holds a newline is stored as it is."""
    import json
    import os
    import time

    conn.execute(text("CREATE TABLE roots (path BLOB PRIMARY KEY, added_at FLOAT NOT NULL)"))
    rows = dict(conn.execute(text("SELECT key, value FROM meta")).all())
    for root in (rows.pop("roots", "") or "").split("\n"):
        if root:
            conn.execute(text("INSERT OR IGNORE INTO roots (path, added_at) VALUES (:p, :t)"),
                         {"p": os.fsencode(root), "t": time.time()})
    conn.execute(text("DELETE FROM meta WHERE key = 'roots'"))
    converted = {}
    if "encoder_id" in rows:
        converted["encoder_id"] = json.dumps(rows["encoder_id"])
    if "model_history" in rows:
        converted["model_history"] = json.dumps([h for h in rows["model_history"].split("\n") if h])
    if "generation" in rows:
        converted["generation"] = json.dumps(int(rows["generation"] or 0))
    for key, value in converted.items():
        conn.execute(text("UPDATE meta SET value = :v WHERE key = :k"), {"k": key, "v": value})


def _v5(conn: Connection) -> None:
    """Duplicate verdicts ("not duplicates" / "keep both", keyed by photo ids, so they
    survive re-scans, moves and model switches) and the log of what photosim trashed."""
    conn.execute(
        text(
            """CREATE TABLE verdicts (
                photo_a INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
                photo_b INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
                verdict VARCHAR NOT NULL,
                created_at FLOAT NOT NULL,
                PRIMARY KEY (photo_a, photo_b),
                CHECK (photo_a < photo_b))"""
        )
    )
    conn.execute(
        text(
            """CREATE TABLE trash_log (
                id INTEGER PRIMARY KEY,
                path BLOB NOT NULL,
                size INTEGER NOT NULL,
                content_hash VARCHAR,
                trashed_at FLOAT NOT NULL,
                restored_at FLOAT)"""
        )
    )


def _v6(conn: Connection) -> None:
    """The gallery's sort keys (natural order of names and folders, the date shown) and an
    index per order, so the gallery pages through SQL instead of loading every photo."""
    import os

    from .gallery import sort_keys

    conn.execute(text("ALTER TABLE photos ADD COLUMN name_key BLOB"))
    conn.execute(text("ALTER TABLE photos ADD COLUMN folder_key BLOB"))
    conn.execute(text("ALTER TABLE photos ADD COLUMN date_key VARCHAR"))
    last = 0
    while True:
        rows = conn.execute(text("SELECT id, path, taken_at, mtime_ns FROM photos WHERE id > :last "
                                 "ORDER BY id LIMIT 10000"), {"last": last}).all()
        if not rows:
            break
        conn.execute(text("UPDATE photos SET name_key = :name_key, folder_key = :folder_key, "
                          "date_key = :date_key WHERE id = :id"),
                     [{"id": r[0], **sort_keys(os.fsdecode(r[1]), r[2], r[3])} for r in rows])
        last = rows[-1][0]
    # status first: the gallery shows readable photos, the problems list the others
    conn.execute(text("CREATE INDEX ix_photos_sort_name ON photos (status, name_key, folder_key, id)"))
    conn.execute(text("CREATE INDEX ix_photos_sort_folder ON photos (status, folder_key, name_key, id)"))
    conn.execute(text("CREATE INDEX ix_photos_sort_date ON photos (status, date_key, name_key, id)"))


def _v7(conn: Connection) -> None:
    """Sub-folders the user excluded from the library's folders (raw bytes, as roots):
    scans never list them. An index on (status, path) answers the folder tree's counts of
    readable photos from the index alone (3x faster at 100,000 photos)."""
    conn.execute(text("CREATE TABLE excluded_folders (path BLOB PRIMARY KEY, added_at FLOAT NOT NULL)"))
    conn.execute(text("CREATE INDEX ix_photos_status_path ON photos (status, path)"))


def _v8(conn: Connection) -> None:
    """Files the user chose to ignore in the problems panel (by path, raw bytes like photo
    paths), so the choice survives re-scans and the file's row coming and going."""
    conn.execute(text("CREATE TABLE ignored_problems (path BLOB PRIMARY KEY, ignored_at FLOAT NOT NULL)"))


def _v9(conn: Connection) -> None:
    """Photos by status and vectors by encoder, kept by triggers (every insert, delete and
    change of status), so the gallery's first screen and ``info`` read a row where
    ``count(*)`` walked an index of every photo: 1.1 s and 0.7 s at 10^6 photos with a cold
    disk cache. A row that ``INSERT OR REPLACE`` replaces fires the delete trigger only with
    ``recursive_triggers`` on, which every connection sets (:func:`.schema.make_engine`);
    a test checks the counts through scans, re-embedding, forgetting and model switches.
    No statement in a trigger can meet a conflict: the outer statement's ``OR REPLACE``
    would override its own conflict clause (an ``OR IGNORE`` became a reset to 0)."""
    _counted_by(conn, "photo_counts", "photos", "status")
    _counted_by(conn, "vector_counts", "vectors", "encoder_id")


def _counted_by(conn: Connection, counts: str, table: str, key: str) -> None:
    """Table ``counts`` (``key``, n): the rows of ``table`` by ``key``, then kept by triggers."""
    conn.execute(text(f"CREATE TABLE {counts} ({key} VARCHAR PRIMARY KEY, n INTEGER NOT NULL)"))
    conn.execute(text(f"INSERT INTO {counts} ({key}, n) SELECT {key}, count(*) FROM {table} GROUP BY {key}"))
    add = (f"INSERT INTO {counts} ({key}, n) SELECT NEW.{key}, 0 "
           f"WHERE NOT EXISTS (SELECT 1 FROM {counts} WHERE {key} = NEW.{key}); "
           f"UPDATE {counts} SET n = n + 1 WHERE {key} = NEW.{key};")
    drop = f"UPDATE {counts} SET n = n - 1 WHERE {key} = OLD.{key};"
    conn.execute(text(f"CREATE TRIGGER {counts}_insert AFTER INSERT ON {table} BEGIN {add} END"))
    conn.execute(text(f"CREATE TRIGGER {counts}_delete AFTER DELETE ON {table} BEGIN {drop} END"))
    conn.execute(text(f"CREATE TRIGGER {counts}_update AFTER UPDATE OF {key} ON {table} "
                      f"WHEN OLD.{key} IS NOT NEW.{key} BEGIN {drop} {add} END"))


MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9]
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    has_meta = conn.execute(
        text("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'")
    ).first()
    if not has_meta:
        return 0
    row = conn.execute(text("SELECT value FROM meta WHERE key='schema_version'")).first()
    return int(row[0]) if row else 0


def _too_new(version: int) -> SchemaTooNew:
    return SchemaTooNew(
        f"this library was written by a newer photosim (schema {version}; "
        f"this version understands up to {SCHEMA_VERSION}); please upgrade photosim"
    )


def check(engine: Engine) -> int:
    """The version of a database that will not be upgraded (a read-only library): it must
    be the current one."""
    with engine.connect() as conn:
        version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise _too_new(version)
    if version == 0:
        raise PhotosimError("this folder holds no photosim library")
    if version < SCHEMA_VERSION:
        raise PhotosimError("this library was made by an older photosim and is opened read-only, so it "
                            "cannot be upgraded; open it once with write access")
    return version


def needs_upgrade(engine: Engine) -> bool:
    with engine.connect() as conn:
        return 0 < current_version(conn) < SCHEMA_VERSION


def upgrade(engine: Engine) -> tuple[int, int]:
    """Bring the database to :data:`SCHEMA_VERSION`; returns (from, to). Each step reads the
    version inside its own ``BEGIN IMMEDIATE``, so two processes creating or upgrading one
    library at once never run a step twice."""
    with engine.connect() as conn:
        start = current_version(conn)
    if start > SCHEMA_VERSION:
        raise _too_new(start)
    for version in range(start + 1, SCHEMA_VERSION + 1):
        # pysqlite does not open a transaction before DDL on its own: do it by hand,
        # so a step is all or nothing even if the process is killed mid-way.
        with engine.connect() as raw:
            conn = raw.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                if current_version(conn) >= version:  # another process got there first
                    conn.exec_driver_sql("COMMIT")
                    continue
                MIGRATIONS[version - 1](conn)
                conn.execute(
                    text("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', :v)"),
                    {"v": str(version)},
                )
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    return start, SCHEMA_VERSION
