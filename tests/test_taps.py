"""The taps a scan keeps for standard fine-tuning (photosim.store.taps)."""

from __future__ import annotations

import numpy as np

import photosim.store.taps as taps_mod
from photosim.store.taps import TapStore


def _rows(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 8, 3, 3)).astype(np.float32),
            rng.standard_normal((n, 4, 8, 1, 1)).astype(np.float32))


def test_taps_come_back_by_content_hash_in_the_order_asked(tmp_path):
    store = TapStore(tmp_path / "taps")
    up, ctx = _rows(5)
    assert store.put("bb", 21, ["a", "b", "c"], up[:3], ctx[:3]) == 3
    assert store.put("bb", 21, ["d", "e"], up[3:], ctx[3:]) == 2
    found, got_up, got_ctx = store.get("bb", 21, ["e", "zz", "a", "c"])
    assert found.tolist() == [True, False, True, True]
    assert got_up.dtype == np.float16 and got_up.shape == (3, 8, 3, 3) and got_ctx.shape == (3, 4, 8, 1, 1)
    assert np.allclose(got_up, up[[4, 0, 2]], atol=1e-2) and np.allclose(got_ctx, ctx[[4, 0, 2]], atol=1e-2)
    assert store.hashes("bb", 21) == set("abcde")
    # Another backbone or cut holds nothing; a new TapStore on the folder reads the same.
    assert store.get("other", 21, ["a"])[0].tolist() == [False] and store.hashes("bb", 17) == set()
    assert TapStore(tmp_path / "taps").hashes("bb", 21) == set("abcde")


def test_taps_are_read_file_by_file_each_photo_once(tmp_path):
    store = TapStore(tmp_path / "taps")
    up, ctx = _rows(6)
    store.put("bb", 21, ["a", "b", "c"], up[:3], ctx[:3])
    store.put("bb", 21, ["d", "a", "e"], up[3:], ctx[3:])  # "a" again, in a later file
    (sorted((tmp_path / "taps").rglob("*.npz"))[0].parent / "000009.npz").write_bytes(b"damaged")
    parts = list(store.each("bb", 21, {"a", "c", "e", "zz"}))
    assert [hs for hs, _, _ in parts] == [["a", "c"], ["e"]]  # the damaged file skipped
    (h1, u1, c1), (h2, u2, c2) = parts
    assert u1.dtype == np.float16 and u1.shape == (2, 8, 3, 3) and c1.shape == (2, 4, 8, 1, 1)
    assert np.allclose(u1, up[[0, 2]], atol=1e-2) and np.allclose(c2, ctx[[5]], atol=1e-2)
    assert list(store.each("bb", 21, set())) == [] and list(store.each("other", 21, {"a"})) == []


def test_taps_stop_at_the_cap_and_a_damaged_file_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(taps_mod, "MAX_PHOTOS", 4)
    store = TapStore(tmp_path / "taps")
    up, ctx = _rows(6)
    assert store.put("bb", 3, ["a", "b", "c"], up[:3], ctx[:3]) == 3
    assert store.put("bb", 3, ["d", "e", "f"], up[3:], ctx[3:]) == 1  # only room for one more
    assert store.put("bb", 3, ["g"], up[:1], ctx[:1]) == 0
    assert store.hashes("bb", 3) == set("abcd")
    first = sorted((tmp_path / "taps").rglob("*.npz"))[0]
    first.write_bytes(b"not a zip")
    found, got_up, _ = store.get("bb", 3, ["a", "d"])
    assert found.tolist() == [False, True] and len(got_up) == 1  # "a" will be read again instead
    assert store.hashes("bb", 3) == {"d"}


def test_taps_without_context_and_dropping_other_backbones(tmp_path):
    store = TapStore(tmp_path / "taps")
    up, _ = _rows(2)
    store.put("old", 5, ["a", "b"], up, None)
    store.put("new", 5, ["a"], up[:1], None)
    found, got_up, got_ctx = store.get("old", 5, ["b"])
    assert found.tolist() == [True] and got_ctx is None and np.allclose(got_up[0], up[1], atol=1e-2)
    store.drop_except({"new"})
    assert store.hashes("old", 5) == set() and store.hashes("new", 5) == {"a"}
    assert store.bytes() > 0


def test_a_read_only_library_keeps_no_taps(tmp_path):
    store = TapStore(tmp_path / "taps", readonly=True)
    up, ctx = _rows(1)
    assert store.put("bb", 1, ["a"], up, ctx) == 0
    assert not (tmp_path / "taps").exists()


def test_taps_no_model_can_use_go_when_the_library_opens(tmp_path):
    """An upgrade that replaced the bundled encoder (v5 -> v5.1) leaves the album imports' taps
    of the old backbone behind: the library drops them on opening, keeping the active
    backbone's and those a model still accepts from (a standard fine-tune's card names them)."""
    import json

    from photosim import Library
    from photosim.encoder import bundled_model_dir

    with Library(tmp_path / "lib") as lib:
        active = lib.backbone_id
        bundled = json.loads((bundled_model_dir() / "card.json").read_text())
    # a model whose accept reads the taps of "parent-bb" (what a standard fine-tune's card says)
    folder = tmp_path / "lib" / "models" / "ft-20261202-000000-abcdef"
    folder.mkdir(parents=True)
    card = {**bundled, "id": folder.name, "parent": bundled["id"], "head_only": True,
            "taps": {"backbone_id": "parent-bb", "cut": 17}}
    (folder / "card.json").write_text(json.dumps(card))
    store = TapStore(tmp_path / "lib" / "taps")
    up, ctx = _rows(1)
    for backbone in (active, "parent-bb", "old-bb"):
        assert store.put(backbone, 17, ["a"], up, ctx) == 1
    with Library(tmp_path / "lib", readonly=True):
        pass  # a read-only library deletes nothing
    assert TapStore(tmp_path / "lib" / "taps").backbones() == {active, "parent-bb", "old-bb"}
    with Library(tmp_path / "lib") as lib:
        assert lib.taps.backbones() == {active, "parent-bb"}
        assert lib.taps.hashes(active, 17) == {"a"}
