"""The store: typed meta, roots as bytes, the generation bumped by transactions, read-only
libraries, two processes creating one library."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys

import numpy as np
import pytest

from conftest import write_scenes
from photosim.errors import ReadOnlyLibrary
from photosim.store import Store
from photosim.store.schema import Photo


def _photo(path: str) -> Photo:
    return Photo(path=path, size=1, mtime_ns=1, status="ok", scanned_at=0.0)


def test_generation_moves_with_photos_and_vectors_only(tmp_path):
    store = Store(tmp_path / "library.db")
    try:
        g0 = store.generation
        with store.write() as s:
            s.add(_photo("/a.jpg"))
        g1 = store.generation
        assert g1 == g0 + 1  # a new photo
        with store.write() as s:
            pid = s.query(Photo).one().id
            store.vectors.put(s, "enc", [pid], np.ones((1, 4), np.float32))
        g2 = store.generation
        assert g2 == g1 + 1  # a vector (a bulk statement, not an ORM flush)
        with store.write() as s:
            s.get(Photo, pid).path = "/moved/a.jpg"  # a move keeps its vector: the index is still right
        assert store.generation == g2
        store.meta.set("anything", {"x": [1, 2]})
        assert store.generation == g2 and store.meta.get("anything") == {"x": [1, 2]}
        with store.write() as s:
            s.get(Photo, pid).status = "error"  # unreadable now: leaves the index
        assert store.generation == g2 + 1
        store.photos.delete([pid])
        assert store.generation == g2 + 2 and store.vectors.count("enc") == 0
    finally:
        store.close()


def test_read_only_store_refuses_writes_and_needs_a_library(tmp_path):
    with pytest.raises(Exception, match="no photosim library"):
        Store(tmp_path / "missing" / "library.db", readonly=True)
    Store(tmp_path / "library.db").close()
    ro = Store(tmp_path / "library.db", readonly=True)
    try:
        assert ro.photos.count() == 0
        with pytest.raises(ReadOnlyLibrary):
            ro.meta.set("x", 1)
    finally:
        ro.close()


def test_a_library_on_a_read_only_disk_can_be_searched(tmp_path, monkeypatch, photo_dir):
    from photosim import Library

    with Library(tmp_path / "lib") as lib:
        lib.scan([photo_dir])
        first = lib.photos()[0]
        expected = [m.photo.id for m in lib.similar(first, k=3)]
    # A folder nobody may write to (root ignores permission bits, so say so to SQLite's
    # side of things directly): the database opens immutable, no lock and no pragma write.
    real_access = os.access
    monkeypatch.setattr("photosim.store.schema.os.access",
                        lambda p, mode: False if mode == os.W_OK else real_access(p, mode))
    with Library(tmp_path / "lib", readonly=True) as lib:
        assert [m.photo.id for m in lib.similar(first, k=3)] == expected
        with pytest.raises(ReadOnlyLibrary):
            lib.scan([photo_dir])
        with pytest.raises(ReadOnlyLibrary):
            lib.add_to_album("x", [first.id])


def test_a_writer_on_a_read_only_folder_gets_one_sentence(tmp_path, monkeypatch):
    from photosim import Library
    from photosim.errors import PhotosimError

    Library(tmp_path / "lib").close()

    def refuse(*a, **kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("photosim.store.lock.open", refuse, raising=False)
    with pytest.raises(PhotosimError, match="cannot be changed"):
        Library(tmp_path / "lib")


@pytest.mark.skipif(sys.platform != "linux", reason="file names are bytes on Linux only")
def test_a_root_whose_name_is_not_utf8_scans_and_rescans(tmp_path):
    from photosim import Library

    base = os.fsencode(str(tmp_path))
    odd = os.fsdecode(base + b"/caf\xe9 \xff photos")  # Latin-1 bytes: not UTF-8
    newline = os.fsdecode(base + b"/two\nlines")
    for folder in (odd, newline):
        os.makedirs(folder)
        write_scenes(__import__("pathlib").Path(folder), range(40, 42), size=(160, 120))
    with Library(tmp_path / "lib") as lib:
        r = lib.scan([odd, newline])
        assert r.added == 4 and not r.failed
        assert sorted(lib.roots()) == sorted([odd, newline])
    with Library(tmp_path / "lib") as lib:
        assert sorted(lib.roots()) == sorted([odd, newline])
        again = lib.rescan()
        assert again.unchanged == 4 and again.added == 0 and again.removed == 0


def test_roots_and_history_of_an_older_library_are_converted(tmp_path):
    from photosim import Library
    from conftest import older_library

    lib_dir = older_library(tmp_path / "lib", 3, meta={  # schema 3, as the previous photosim wrote it
        "roots": "/photos/a\n/photos/b", "generation": "7", "model_history": "m1\nm2", "encoder_id": "some-old-encoder"})
    with Library(lib_dir) as lib:
        assert lib.schema_from == 3
        assert lib.roots() == ["/photos/a", "/photos/b"]
        assert lib.store.generation == 7
        assert lib.store.meta.get("model_history") == ["m1", "m2"]
        assert lib.encoder_id == lib.registry.bundled.id  # the old encoder is gone: bundled


def _create(path, barrier):
    barrier.wait()
    store = Store(path)
    store.close()


def test_two_processes_creating_one_library_at_once(tmp_path):
    # fork where there is one: a spawned child re-imports the engine, seconds on a busy machine
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    for round_ in range(6):
        path = tmp_path / f"lib{round_}" / "library.db"
        path.parent.mkdir()
        barrier = ctx.Barrier(2)
        procs = [ctx.Process(target=_create, args=(path, barrier)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(240)
        assert [p.exitcode for p in procs] == [0, 0], f"round {round_}"


def test_a_long_lived_reader_sees_what_another_process_scanned(tmp_path, photo_dir):
    from photosim import Library

    with Library(tmp_path / "lib") as writer:
        writer.scan([photo_dir / "trip"])
        with Library(tmp_path / "lib", readonly=True) as reader:
            assert len(reader.index) == 4
            writer.scan([photo_dir / "home"])
            assert len(reader.index) == 8
            assert len(reader.similar(reader.photos()[0], k=10)) == 7


def test_a_read_only_library_serves_many_threads_at_once(tmp_path):
    """Each thread keeps its own connection however many there are: SQLAlchemy's default pool
    for a creator URL (SingletonThreadPool) closes older threads' connections beyond five,
    even mid-query, which crashed a read-only window's workers."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from sqlalchemy.pool import SingletonThreadPool

    from photosim import Library
    from photosim.store.schema import make_engine

    with Library(tmp_path / "lib"):
        pass
    assert not isinstance(make_engine(tmp_path / "lib" / "library.db", readonly=True).pool, SingletonThreadPool)
    with Library(tmp_path / "lib", readonly=True) as lib:
        barrier = Barrier(12)

        def count(_):
            barrier.wait()  # twelve threads inside the pool together
            return [lib.count() for _ in range(50)]

        with ThreadPoolExecutor(12) as pool:
            assert all(c == [0] * 50 for c in pool.map(count, range(12)))
