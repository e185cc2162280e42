"""The index is built in the background: exact answers meanwhile, changes kept, cancel,
progress to 100 %, a crash mid-build rebuilt on the next open; clamping and ef after a load;
the size told from the saved index without reading it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import photosim.index as ix
from photosim import Library
from photosim.errors import Cancelled
from photosim.index import IndexBuild, IndexKeeper, VectorIndex, ef_for

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _always_in_the_background(monkeypatch):
    """Small test libraries are built in the background too (photosim builds fewer than
    SYNC_BUILD_BELOW vectors at once, in the caller)."""
    monkeypatch.setattr(ix, "SYNC_BUILD_BELOW", 0)


def _unit(n, dim=32, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class Source:
    """Stored vectors in chunks of 100; after ``hold_after`` chunks it waits for ``go``
    (or for the build's cancel), like a slow disk."""

    def __init__(self, vecs, hold_after=None):
        self.vecs, self.hold_after = vecs, hold_after
        self.go, self.held = threading.Event(), threading.Event()

    def chunks(self, encoder_id, dim, cancel=None):
        for n, start in enumerate(range(0, len(self.vecs), 100)):
            if n == self.hold_after:
                self.held.set()
                while not self.go.wait(0.01):
                    if cancel is not None and cancel():
                        return
            yield list(range(start, min(start + 100, len(self.vecs)))), self.vecs[start:start + 100]

    def keeper(self, folder, gen=None):
        gen = gen if gen is not None else [1]
        return IndexKeeper(folder, lambda: ("enc", self.vecs.shape[1]), self.chunks, lambda e: len(self.vecs),
                           lambda: gen[0])


def _exact(vecs, ids, q, k, exclude=()):
    scores = vecs @ q
    order = [int(ids[i]) for i in np.argsort(-scores) if int(ids[i]) not in exclude]
    return order[:k]


def test_queries_during_a_build_are_exact_over_the_rows_read_and_changes_count(tmp_path):
    vecs = _unit(1000)
    src = Source(vecs, hold_after=3)  # 300 rows read, then the "disk" stalls
    keeper = src.keeper(tmp_path)
    build = keeper.get()
    assert isinstance(build, IndexBuild)
    assert src.held.wait(10)
    while len(build) < 300:  # the third chunk lands just after the source stalls
        threading.Event().wait(0.01)
    assert keeper.index_status() is not None and keeper.building() is not None
    got = [pid for pid, _ in build.query(vecs[5], k=10, exclude={5})]
    assert got == _exact(vecs[:300], np.arange(300), vecs[5], 10, exclude={5})
    assert build.query(vecs[5], k=1)[0] == (5, pytest.approx(1.0, abs=1e-5))
    # a scan meanwhile: photo 2000 added, photo 7 removed, photo 8 changed
    new = _unit(2, seed=9)
    keeper.add([2000], new[:1])
    keeper.remove([7])
    keeper.add([8], new[1:])
    assert build.query(new[0], k=1)[0][0] == 2000
    assert 7 not in {pid for pid, _ in build.query(vecs[7], k=50)}
    assert build.query(new[1], k=1)[0] == (8, pytest.approx(1.0, abs=1e-5))
    assert build.query(vecs[8], k=1)[0][0] != 8  # its old vector is gone
    seen = []
    src.go.set()
    index = keeper.wait_index(progress=seen.append)
    assert isinstance(index, VectorIndex) and keeper.index_status() is None and keeper.building() is None
    assert len(index) == 1000 and 7 not in index and 2000 in index
    assert index.query(new[1], k=1)[0] == (8, pytest.approx(1.0, abs=1e-5))
    assert index.query(new[0], k=1)[0][0] == 2000
    assert seen and all(p.stage == "building index" for p in seen)
    assert build.progress.done == build.progress.total == 1000  # it reached 100 %
    # changes arrived during the build: the file waits for the next save (which knows they are in)
    assert not (tmp_path / "index.bin").exists()
    keeper.save()
    assert VectorIndex.load(tmp_path, "enc", 32, generation=1) is not None
    keeper.close()


def test_a_build_without_changes_saves_itself_and_the_next_open_loads_it(tmp_path):
    vecs = _unit(450)
    src = Source(vecs)
    seen = []
    index = src.keeper(tmp_path).wait_index(progress=seen.append)
    assert len(index) == 450
    assert (tmp_path / "index.bin").exists()
    again = src.keeper(tmp_path)
    assert isinstance(again.get(), VectorIndex)  # loaded at once, no build
    assert again.index_status() is None


def test_the_size_comes_from_the_saved_index_without_reading_it_even_while_it_is_read(tmp_path, monkeypatch):
    vecs = _unit(450)
    src = Source(vecs)
    src.keeper(tmp_path).wait_index()
    real_load, reading, go = VectorIndex.load, threading.Event(), threading.Event()
    loads = []

    def slow_load(*args):  # a million photos' index takes seconds to read
        loads.append(args)
        reading.set()
        go.wait(10)
        return real_load(*args)

    monkeypatch.setattr(VectorIndex, "load", staticmethod(slow_load))
    again = src.keeper(tmp_path)
    assert again.size() == 450 and loads == []  # from index.json, nothing read
    reader = threading.Thread(target=again.get)
    reader.start()
    assert reading.wait(10)
    assert again.size() == 450  # answered while the index is being read (no lock held for it)
    go.set()
    reader.join(10)
    assert isinstance(again.get(), VectorIndex) and len(loads) == 1  # read once
    (tmp_path / "index.bin").write_bytes(b"damaged")
    assert src.keeper(tmp_path).size() == 0  # a damaged file counts for nothing


def test_cancel_and_close_stop_a_build_and_write_nothing(tmp_path):
    vecs = _unit(500)
    src = Source(vecs, hold_after=1)
    keeper = src.keeper(tmp_path)
    build = keeper.get()
    assert src.held.wait(10)
    token = threading.Event()
    token.set()
    with pytest.raises(Cancelled):  # a waiter may stop waiting; the build goes on
        keeper.wait_index(cancel=token)
    assert not build.finished.is_set()
    keeper.close()  # stops it
    assert build.finished.is_set() and isinstance(build.error, Cancelled) and build.index is None
    assert not (tmp_path / "index.bin").exists()
    src.go.set()
    assert len(src.keeper(tmp_path).wait_index()) == 500  # the next open builds again


def test_a_model_switch_mid_build_supersedes_it(tmp_path):
    vecs = _unit(400)
    src = Source(vecs, hold_after=1)
    keeper = src.keeper(tmp_path)
    first = keeper.get()
    assert src.held.wait(10)
    second = keeper.rebuild()
    assert second is not first
    src.go.set()
    assert len(keeper.wait_index()) == 400
    assert first.finished.wait(10) and first.index is None  # cancelled, never adopted
    keeper.close()


def test_a_failed_build_says_so_and_the_next_use_tries_again(tmp_path):
    calls = []

    def chunks(encoder_id, dim, cancel=None):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk I/O error")
        yield [1, 2], _unit(2)

    keeper = IndexKeeper(tmp_path, lambda: ("enc", 32), chunks, lambda e: 2, lambda: 1)
    with pytest.raises(Exception, match="the index could not be built: disk I/O error"):
        keeper.wait_index()
    assert len(keeper.wait_index()) == 2


def test_a_small_library_is_indexed_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(ix, "SYNC_BUILD_BELOW", 1000)
    vecs = _unit(999)
    keeper = Source(vecs).keeper(tmp_path)
    index = keeper.get()
    assert isinstance(index, VectorIndex) and len(index) == 999 and keeper.index_status() is None
    assert (tmp_path / "index.bin").exists()


def test_a_save_over_a_stale_file_builds_a_small_index_without_deadlock(tmp_path, monkeypatch):
    monkeypatch.setattr(ix, "SYNC_BUILD_BELOW", 1000)
    gen = [1]
    src = Source(_unit(50))
    src.keeper(tmp_path, gen).get()  # saved at generation 1
    gen[0] = 2  # another change since: the file is stale, nothing is loaded
    saver = threading.Thread(target=src.keeper(tmp_path, gen).save, daemon=True)
    saver.start()
    saver.join(30)
    assert not saver.is_alive()
    assert VectorIndex.load(tmp_path, "enc", 32, generation=2) is not None


def test_after_a_load_k_is_clamped_and_ef_follows_the_size(tmp_path):
    vecs = _unit(60)
    idx = VectorIndex.build(32, "enc", list(range(60)), vecs)
    idx.remove([1, 2])
    idx.save(tmp_path, generation=4)
    back = VectorIndex.load(tmp_path, "enc", 32, generation=4)
    assert back._ef == ef_for(58)  # hnswlib does not save ef
    assert len(back.query(vecs[0], k=500)) == 58  # more than it holds: clamped, no RuntimeError
    labels, scores = back.query_many(vecs[:3], k=500)
    assert labels.shape == (3, 58) and not ({1, 2} & set(labels.ravel().tolist()))


# -- through the Library, with real stored vectors ------------------------------------------
def _library_with_vectors(tmp_path, n=3000):
    from photosim.pipeline.export import write_npz

    files = tmp_path / "files"
    files.mkdir()
    paths = []
    for i in range(n):
        p = files / f"{i:05d}.jpg"
        p.write_bytes(b"\xff\xd8\xff\xe0" + i.to_bytes(4, "little"))  # never decoded by an import
        paths.append(str(p))
    lib_dir = tmp_path / "lib"
    with Library(lib_dir) as lib:
        vecs = _unit(n, dim=lib.card.dim, seed=3)
        write_npz(tmp_path / "v.npz", paths, vecs, lib.encoder_id)
        lib.import_vectors(tmp_path / "v.npz")
        assert len(lib.wait_index()) == n
    return lib_dir, vecs


SLOW_ADDS = """
import time
import photosim.index as ix
_add = ix.VectorIndex.add
def slow(self, *a, **k):
    time.sleep({delay})
    return _add(self, *a, **k)
ix.VectorIndex.add = slow
"""


def test_opening_a_library_without_its_index_answers_while_it_builds(tmp_path):
    lib_dir, vecs = _library_with_vectors(tmp_path)
    (lib_dir / "index.bin").unlink()
    ns = {}
    exec(SLOW_ADDS.format(delay=2.0), ns)  # noqa: S102 - slows the graph's inserts only
    try:
        with Library(lib_dir) as lib:
            assert lib.info().index_building is None and lib.info().index_size == 0  # info starts nothing
            photo = lib.photos()[10]
            lib.similar(photo, k=5)  # the first search starts the build and is answered at once
            info = lib.info()  # never waits for the build
            assert info.index_building is not None and 0.0 <= info.index_building < 1.0
            while (status := lib.index_status()) is not None and status.detail.startswith("reading"):
                threading.Event().wait(0.01)
            matches = lib.similar(photo, k=5)
            want = _exact(vecs, np.arange(1, len(vecs) + 1), vecs[photo.id - 1], 5, exclude={photo.id})
            assert [m.photo.id for m in matches] == want  # exact, while the graph is built
            assert lib.index_status() is not None  # still building
    finally:
        ix.VectorIndex.add = ns["_add"]
    with Library(lib_dir) as lib:  # closing stopped it; this open builds again
        assert len(lib.wait_index()) == len(vecs) and lib.index_status() is None
    assert (lib_dir / "index.bin").exists()
    with Library(lib_dir) as lib:  # a rebuild asked for (the index benchmark's): the same answers
        photo = lib.photos()[10]
        before = [m.photo.id for m in lib.similar(photo, k=5)]
        build = lib.rebuild_index()
        assert isinstance(build, IndexBuild) and build.finished.wait(60) and build.error is None
        assert [m.photo.id for m in lib.similar(photo, k=5)] == before and len(lib.wait_index()) == len(vecs)


CRASH = """
import os, threading
import photosim.index as ix
from photosim import Library
def crash(self, *a, **k):
    if threading.current_thread().name == "photosim-index-build":
        os._exit(9)  # killed mid-build: no cleanup, no save
ix.VectorIndex.add = crash
lib = Library({lib!r})
lib.similar(lib.photos()[0], k=3)  # starts the build
threading.Event().wait(60)
"""


def test_a_crash_mid_build_leaves_no_index_and_the_next_open_rebuilds(tmp_path):
    lib_dir, vecs = _library_with_vectors(tmp_path)
    (lib_dir / "index.bin").unlink()
    (lib_dir / "index.json").unlink()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CRASH.format(lib=str(lib_dir))], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    assert not (lib_dir / "index.bin").exists() and not (lib_dir / "index.bin.tmp").exists()
    with Library(lib_dir, readonly=True) as lib:
        assert lib.info().index_building is None  # the status file of a dead process says nothing
    with Library(lib_dir) as lib:
        assert len(lib.wait_index()) == len(vecs)
        photo = lib.photos()[0]
        assert lib.similar(photo, k=1)[0].photo.id != photo.id  # answers from the graph
    with Library(lib_dir, readonly=True) as lib:  # it was saved: it loads, no rebuild
        assert VectorIndex.load(lib_dir, lib.encoder_id, lib.card.dim, lib.store.generation) is not None


def test_info_says_the_index_is_being_built_here_or_by_another_process(tmp_path, capsys):
    import json

    from photosim.cli import main

    lib_dir, vecs = _library_with_vectors(tmp_path, n=1200)
    (lib_dir / "index.bin").unlink()
    (lib_dir / ix.BUILD_STATUS).write_text(json.dumps({"pid": os.getpid(), "done": 43, "total": 100}))
    assert main(["info", "--library", str(lib_dir)]) == 0
    assert "index:     being built, 43%" in capsys.readouterr().out
    assert main(["info", "--library", str(lib_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index_building"] == pytest.approx(0.43)
    (lib_dir / ix.BUILD_STATUS).write_text(json.dumps({"pid": 2**22 + 12345, "done": 1, "total": 2}))  # gone
    assert main(["info", "--library", str(lib_dir)]) == 0
    assert "missing or out of date: built again from the 1200 stored vectors" in capsys.readouterr().out
    with Library(lib_dir) as lib:
        lib.similar(lib.photos()[0], k=1)  # starts the build
        lib.wait_index()
        assert not (lib_dir / ix.BUILD_STATUS).exists()  # the writer's own status file is gone when done
    assert main(["info", "--library", str(lib_dir)]) == 0
    assert "index:     1200 vectors" in capsys.readouterr().out


def test_while_the_graph_grows_it_answers_for_its_rows_the_rest_exactly_and_lets_their_vectors_go(
        tmp_path, monkeypatch):
    """At 10^6 photos the read vectors (2 GB) beside the growing graph (2.2 GB) passed 4 GB:
    the rows the graph holds are searched there, and their blocks of vectors are let go."""
    monkeypatch.setattr(IndexBuild, "STEPS", (100, 100))
    monkeypatch.setattr(IndexBuild, "BLOCK_BYTES", 200 * 32 * 4)  # blocks of 200 rows
    go, held = threading.Event(), threading.Event()
    add = VectorIndex.add

    def slow_add(self, ids, vectors, threads=None):
        if len(self) >= 500 and not go.is_set():  # the graph holds rows 0:500, 500:600 taken
            held.set()
            go.wait(10)
        return add(self, ids, vectors, threads)

    monkeypatch.setattr(VectorIndex, "add", slow_add)
    vecs = _unit(1000)
    keeper = Source(vecs).keeper(tmp_path)
    build = keeper.get()
    assert held.wait(10)
    assert build._read.blocks[0] is None and build._read.blocks[1] is None  # rows 0:400 let go
    assert all(b is not None for b in build._read.blocks[2:])
    assert len(build) == 1000
    for q in (5, 450, 550, 950):  # in the graph, in a block it holds in part, taken, not yet taken
        got = [pid for pid, _ in build.query(vecs[q], k=10)]
        assert got == _exact(vecs, np.arange(1000), vecs[q], 10)
    new = _unit(3, seed=9)
    keeper.remove([7])  # in the graph
    keeper.add([8, 550], new[:2])  # changed: one in the graph, one on its way in with its old vector
    keeper.add([2000], new[2:])
    assert 7 not in {pid for pid, _ in build.query(vecs[7], k=50)}
    for pid, v in ((8, new[0]), (550, new[1]), (2000, new[2])):
        assert build.query(v, k=1)[0] == (pid, pytest.approx(1.0, abs=1e-5))
    assert build.query(vecs[8], k=1)[0][0] != 8 and build.query(vecs[550], k=1)[0][0] != 550
    go.set()
    index = keeper.wait_index()
    assert isinstance(index, VectorIndex) and len(index) == 1000 and 7 not in index
    for pid, v in ((8, new[0]), (550, new[1]), (2000, new[2])):
        assert index.query(v, k=1)[0] == (pid, pytest.approx(1.0, abs=1e-5))
    keeper.close()
