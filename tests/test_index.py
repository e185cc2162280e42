"""The hnswlib wrapper: clamping, exclusion, deletion, persistence, and adds beside queries."""

from __future__ import annotations

import json
import threading

import numpy as np

from photosim.index import INDEX_FORMAT, IndexKeeper, VectorIndex, ef_batch, ef_for


def _unit(n, dim=32, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_query_clamps_k_and_excludes():
    vecs = _unit(5)
    idx = VectorIndex.build(32, "enc", [10, 11, 12, 13, 14], vecs)
    res = idx.query(vecs[0], k=50, exclude={10})
    assert len(res) == 4 and 10 not in [pid for pid, _ in res]
    assert idx.query(vecs[0], k=1)[0] == (10, pytest_approx(1.0))


def pytest_approx(x):
    import pytest

    return pytest.approx(x, abs=1e-5)


def test_empty_index_returns_nothing():
    assert VectorIndex(32, "enc").query(_unit(1)[0], k=3) == []


def test_remove_and_readd():
    vecs = _unit(4)
    idx = VectorIndex.build(32, "enc", [1, 2, 3, 4], vecs)
    idx.remove([2, 3])
    assert len(idx) == 2 and idx.ids() == {1, 4}
    assert {pid for pid, _ in idx.query(vecs[1], k=10)} == {1, 4}
    idx.add([2], vecs[1:2])
    assert idx.query(vecs[1], k=1)[0][0] == 2 and len(idx) == 3


def test_the_vector_of_a_photo_is_the_one_it_was_given_until_removed(tmp_path):
    vecs = _unit(4)
    idx = VectorIndex.build(32, "enc", [1, 2, 3, 4], vecs)
    assert np.array_equal(idx.vector(3), vecs[2]) and idx.vector(9) is None
    idx.remove([3])
    assert idx.vector(3) is None
    idx.add([3], vecs[:1])  # added again with another vector
    assert np.array_equal(idx.vector(3), vecs[0])
    idx.save(tmp_path, generation=1)
    assert np.array_equal(VectorIndex.load(tmp_path, "enc", 32, generation=1).vector(2), vecs[1])


def test_save_load_roundtrip_and_staleness(tmp_path):
    vecs = _unit(300)
    idx = VectorIndex.build(32, "enc", list(range(300)), vecs)
    idx.remove([5, 6])
    idx.save(tmp_path, generation=3)
    back = VectorIndex.load(tmp_path, "enc", 32, generation=3)
    assert back is not None and len(back) == 298 and 5 not in back
    assert back.query(vecs[7], k=1)[0][0] == 7
    assert VectorIndex.load(tmp_path, "enc", 32, generation=4) is None  # older than the database
    assert VectorIndex.load(tmp_path, "other-encoder", 32, generation=3) is None  # never mix encoders
    (tmp_path / "index.bin").write_bytes(b"\0" * 100)
    assert VectorIndex.load(tmp_path, "enc", 32, generation=3) is None


def test_adds_and_queries_from_threads():
    idx = VectorIndex(32, "enc", capacity=16)
    vecs = _unit(2000, seed=1)
    idx.add([0], vecs[:1])
    errors = []

    def writer():
        for start in range(1, 2000, 50):
            idx.add(range(start, min(start + 50, 2000)), vecs[start:start + 50])

    def reader():
        try:
            for i in range(400):
                res = idx.query(vecs[i % 50], k=10)
                assert res and res[0][1] <= 1.0001
        except Exception as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(idx) == 2000
    assert idx.query(vecs[1234], k=1)[0][0] == 1234


def test_damage_of_the_same_size_and_an_old_format_are_rebuilt_never_misread(tmp_path):
    vecs = _unit(300)
    VectorIndex.build(32, "enc", list(range(300)), vecs).save(tmp_path, generation=1)
    meta = json.loads((tmp_path / "index.json").read_text())
    assert meta["format"] == INDEX_FORMAT == 3 and "digest" not in meta and meta["deleted"] == []
    data = bytearray((tmp_path / "index.bin").read_bytes())
    data[:8] = b"\xff" * 8  # same size; the header is one of the sampled blocks
    (tmp_path / "index.bin").write_bytes(bytes(data))
    assert VectorIndex.load(tmp_path, "enc", 32, generation=1) is None
    VectorIndex.build(32, "enc", list(range(300)), vecs).save(tmp_path, generation=1)
    assert VectorIndex.load(tmp_path, "enc", 32, generation=1) is not None
    (tmp_path / "index.json").write_text(json.dumps({**json.loads((tmp_path / "index.json").read_text()),
                                                     "format": 1}))
    assert VectorIndex.load(tmp_path, "enc", 32, generation=1) is None


def test_keeper_skips_the_save_when_nothing_changed(tmp_path):
    vecs = _unit(50)
    loads = []

    def chunks(encoder_id, dim, cancel=None):
        loads.append(1)
        yield list(range(50)), vecs

    gen = [7]
    keeper = IndexKeeper(tmp_path, lambda: ("enc", 32), chunks, lambda e: 50, lambda: gen[0])
    keeper.wait_index()  # built (in the background) and saved
    stamp = (tmp_path / "index.bin").stat().st_mtime_ns
    fresh = IndexKeeper(tmp_path, lambda: ("enc", 32), chunks, lambda e: 50, lambda: gen[0])
    fresh.save()  # an unchanged scan: neither loaded nor rewritten
    assert fresh._index is None and (tmp_path / "index.bin").stat().st_mtime_ns == stamp
    fresh.remove([3])
    gen[0] = 8
    fresh.save()
    again = IndexKeeper(tmp_path, lambda: ("enc", 32), chunks, lambda e: 50, lambda: gen[0])
    assert len(again.get()) == 49 and 3 not in again.get() and loads == [1]  # loaded, not rebuilt


def test_ef_grows_with_the_library():
    assert ef_for(10) == ef_for(100_000) == 64
    assert 64 < ef_for(400_000) < ef_for(1_000_000) <= 1000
    assert ef_batch(10) == 64 < ef_batch(1_000_000) < ef_for(1_000_000)  # many queries, few neighbours each
