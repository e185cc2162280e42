"""The encoder through ONNX Runtime: same vectors as torch, a cache that heals, int8 apart."""

from __future__ import annotations

import numpy as np
import pytest

from photosim.encoder import Encoder
from photosim.inference import cache, quantize, runtime, session

from conftest import draw_scene, write_scenes


@pytest.fixture(scope="module")
def ort_encoder():
    return Encoder.load(backend="onnx")


@pytest.fixture(scope="module")
def torch_encoder():
    return Encoder.load(backend="torch")


@pytest.fixture(scope="module")
def photos():
    sizes = [(640, 480), (480, 640), (300, 300), (1024, 683)]
    return [draw_scene(seed, sizes[seed % 4]) for seed in range(10)]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_exportable_quarter_turns_and_resize_equal_torchs():
    import torch
    import torch.nn.functional as F

    from photosim.model import _resize_matrix, _rot90

    x = torch.randn(2, 3, 7, 5)
    for k in (1, 2, 3):
        assert torch.equal(_rot90(x, k), torch.rot90(x, k, (2, 3)))
    for n, size in ((288, 96), (224, 96), (60, 96)):
        x = torch.randn(2, 3, n, n)
        want = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        m = _resize_matrix(n, size)
        assert (m @ x @ m.T - want).abs().max() < 1e-4


def test_onnx_vectors_match_torch_on_generated_photos(ort_encoder, torch_encoder, photos):
    assert ort_encoder.backend == "onnxruntime" and ort_encoder.notice == ""
    assert torch_encoder.backend == "torch"
    assert ort_encoder.id == torch_encoder.id == ort_encoder.card.id  # fp32 keeps the card's id
    batch = np.stack([ort_encoder.preprocess(im) for im in photos])
    f_ort, f_torch = ort_encoder.features(batch), torch_encoder.features(batch)
    assert f_ort.shape == f_torch.shape == (len(photos), ort_encoder.card.feature_dim)
    assert _cos(f_ort, f_torch).min() >= 0.9999
    v_ort, v_torch = ort_encoder.embed(photos), torch_encoder.embed(photos)
    assert _cos(v_ort, v_torch).min() >= 0.9999
    assert np.allclose(np.linalg.norm(v_ort, axis=1), 1.0, atol=1e-4)


def test_lower_activations_match_torch(ort_encoder, torch_encoder, photos):
    batch = np.stack([ort_encoder.preprocess(im) for im in photos[:3]])
    up, ctx = ort_encoder.lower(batch, 14)
    want_up, want_ctx = torch_encoder.lower(batch, 14)
    assert up.shape == want_up.shape and ctx.shape == want_ctx.shape
    assert np.abs(up - want_up).max() < 1e-3 and np.abs(ctx - want_ctx).max() < 1e-3
    assert _cos(up, want_up).min() >= 0.9999 and _cos(ctx, want_ctx).min() >= 0.9999
    assert ort_encoder.notice == ""


def test_tapped_graph_gives_the_features_and_the_activations_at_the_cut_in_one_pass(ort_encoder, torch_encoder,
                                                                                     photos):
    from photosim.model import late_cut

    cut = late_cut(ort_encoder.card.architecture)
    batch = np.stack([ort_encoder.preprocess(im) for im in photos[:3]])
    feats, up, ctx = ort_encoder.tapped(batch, cut)
    assert ort_encoder.notice == ""
    assert _cos(feats, torch_encoder.features(batch)).min() >= 0.9999
    want_up, want_ctx = torch_encoder.lower(batch, cut)
    assert up.shape == want_up.shape and ctx.shape == want_ctx.shape
    assert _cos(up, want_up).min() >= 0.9999 and _cos(ctx, want_ctx).min() >= 0.9999
    # The blocks from the cut on, given the taps photo by photo (as they are kept), give the
    # features again; float16 taps (as kept on disk) too, to cosine 0.9999.
    photo_first = ctx.reshape(4, len(batch), *ctx.shape[1:]).swapaxes(0, 1)
    assert _cos(torch_encoder.upper(up, photo_first, cut), feats).min() >= 0.9999
    half = torch_encoder.upper(up.astype(np.float16), photo_first.astype(np.float16), cut)
    assert _cos(half, feats).min() >= 0.9999


def test_upper_graph_gives_the_features_from_kept_taps_as_torch_does_over_lanes_and_falls_back(photos,
                                                                                               torch_encoder,
                                                                                               monkeypatch):
    from photosim.model import late_cut

    monkeypatch.delenv(session.LANES_ENV, raising=False)
    enc = Encoder.load(backend="onnx")
    cut = late_cut(enc.card.architecture)
    batch = np.stack([enc.preprocess(im) for im in photos[:7]])
    feats, up, ctx = enc.tapped(batch, cut)
    photo_first = ctx.reshape(4, len(batch), *ctx.shape[1:]).swapaxes(0, 1).astype(np.float16)
    up16 = up.astype(np.float16)  # as kept on disk
    want = torch_encoder.upper(up16, photo_first, cut)
    enc.set_threads(3)  # three lanes: slices of 3, 2 and 2 photos, each with its own turns
    assert enc.runtime.lanes == 3
    got = enc.upper(up16, photo_first, cut)
    assert enc.notice == "" and cut in enc.runtime._upper  # ONNX Runtime ran it
    assert got.shape == want.shape == feats.shape
    assert _cos(got, want).min() >= 0.9999 and _cos(got, feats).min() >= 0.9999
    alone = np.concatenate([enc.upper(up16[i:i + 1], photo_first[i:i + 1], cut) for i in range(len(batch))])
    assert np.abs(alone - got).max() < 1e-3  # rows in order
    # A failing graph: torch gives the same features, with a notice.
    def broken(*_a):
        raise RuntimeError("damaged graph")

    monkeypatch.setattr(enc.runtime, "upper", broken)
    again = enc.upper(up16, photo_first, cut)
    assert "could not run the network's blocks from" in enc.notice and "damaged graph" in enc.notice
    assert _cos(again, want).min() >= 0.9999


def test_a_cut_whose_graph_fails_runs_in_torch_with_a_notice(photos, torch_encoder, monkeypatch):
    from photosim.model import late_cut

    enc = Encoder.load(backend="onnx")
    cut = late_cut(enc.card.architecture)

    def broken(*_a):
        raise RuntimeError("damaged graph")

    monkeypatch.setattr(enc.runtime, "tapped", broken)
    batch = np.stack([enc.preprocess(im) for im in photos[:2]])
    feats, up, ctx = enc.tapped(batch, cut)
    assert "could not run the network cut at block" in enc.notice and "damaged graph" in enc.notice
    assert _cos(feats, torch_encoder.features(batch)).min() >= 0.9999
    want_up, want_ctx = torch_encoder.lower(batch, cut)
    assert _cos(up, want_up).min() >= 0.9999 and _cos(ctx, want_ctx).min() >= 0.9999


def test_thread_count_can_change_without_changing_vectors(photos):
    enc = Encoder.load(backend="onnx")
    batch = np.stack([enc.preprocess(im) for im in photos[:2]])
    before = enc.features(batch)
    enc.set_threads(1)
    assert enc.runtime.threads == 1
    assert np.allclose(enc.features(batch), before, atol=1e-4)
    enc.set_threads(0)
    assert enc.runtime.threads is None


def test_a_batch_split_over_lanes_gives_each_photo_its_own_features(photos, monkeypatch):
    monkeypatch.delenv(session.LANES_ENV, raising=False)
    enc = Encoder.load(backend="onnx")
    enc.set_threads(3)  # three lanes of one intra-op thread, whatever the cores
    assert enc.runtime.lanes == 3
    assert enc.runtime._features.get_session_options().intra_op_num_threads == 1
    batch = np.stack([enc.preprocess(im) for im in photos[:7]])  # slices of 3, 2 and 2 rows
    split = enc.features(batch)
    alone = np.concatenate([enc.features(batch[i:i + 1]) for i in range(len(batch))])
    assert split.shape == alone.shape and np.abs(split - alone).max() < 1e-4  # rows in order
    up, ctx = enc.lower(batch, 14)
    monkeypatch.setenv(session.LANES_ENV, "1")  # the old layout: one lane of every thread
    enc.set_threads(2)
    assert enc.runtime.lanes == 1
    assert enc.runtime._features.get_session_options().intra_op_num_threads == 2
    assert np.abs(enc.features(batch) - split).max() < 1e-4
    up1, ctx1 = enc.lower(batch, 14)
    assert np.abs(up - up1).max() < 1e-3 and np.abs(ctx - ctx1).max() < 1e-3


def test_graph_is_cached_by_backbone_precision_and_format(ort_encoder, onnx_cache):
    path = ort_encoder.runtime.features_path
    assert path.parent == onnx_cache and path.is_file()
    name = path.name
    assert ort_encoder.card.backbone_id in name and ".fp32." in name and f".v{cache.FORMAT_VERSION}." in name
    assert not list(onnx_cache.glob("*.tmp.onnx"))  # written atomically: no leftovers


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_missing_or_damaged_graph_is_rebuilt(tmp_path, ort_encoder, photos, torch_encoder, damage):
    good = ort_encoder.runtime.features_path.read_bytes()
    path = tmp_path / ort_encoder.runtime.features_path.name
    path.write_bytes(good)
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    else:
        path.write_bytes(b"not an onnx graph at all" * 100)
    enc = Encoder.load(backend="onnx", cache_dir=tmp_path)
    assert enc.backend == "onnxruntime" and enc.notice == ""
    assert path.stat().st_size == len(good)
    assert _cos(enc.embed(photos[:3]), torch_encoder.embed(photos[:3])).min() >= 0.9999


def test_graph_that_cannot_be_rebuilt_falls_back_to_torch(tmp_path, monkeypatch, photos, torch_encoder):
    def broken_export(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(runtime, "export_graph", broken_export)
    path = cache.graph_path(tmp_path, torch_encoder.card.backbone_id, "features", "fp32")
    path.write_bytes(b"\x00" * 1000)  # damaged, and the exporter cannot make a new one
    enc = Encoder.load(backend="onnx", cache_dir=tmp_path)
    assert enc.backend == "torch"
    assert "ONNX Runtime" in enc.notice and "exporter exploded" in enc.notice
    assert enc.id == torch_encoder.id
    assert np.allclose(enc.embed(photos[:2]), torch_encoder.embed(photos[:2]), atol=1e-6)


def test_graph_that_disagrees_with_torch_is_not_used(tmp_path, monkeypatch, ort_encoder):
    """A graph that gives other numbers than torch (other weights under this backbone's
    name, a broken runtime) is caught by the probe, also after it was made again."""
    good = ort_encoder.runtime.features_path
    (tmp_path / good.name).write_bytes(good.read_bytes())
    made = []
    monkeypatch.setattr(runtime, "export_graph", lambda net, path, *a: made.append(path.write_bytes(good.read_bytes())))
    monkeypatch.setattr(runtime, "MIN_COSINE", {"fp32": 1.5, "int8": 1.5})  # nothing can pass
    enc = Encoder.load(backend="onnx", cache_dir=tmp_path)
    assert enc.backend == "torch" and "differs from PyTorch" in enc.notice
    assert len(made) == 1  # made again once, then given up


def test_unwritable_cache_falls_back_to_torch(tmp_path, photos):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    enc = Encoder.load(backend="onnx", cache_dir=blocker / "onnx")
    assert enc.backend == "torch" and enc.notice
    assert enc.embed(photos[:1]).shape == (1, enc.dim)


def test_backend_env_and_arguments(monkeypatch, onnx_cache):
    monkeypatch.setenv("PHOTOSIM_BACKEND", "torch")
    assert Encoder.load().backend == "torch"
    monkeypatch.setenv("PHOTOSIM_BACKEND", "onnx")
    assert Encoder.load().backend == "onnxruntime"
    monkeypatch.setenv("PHOTOSIM_BACKEND", "tpu")
    enc = Encoder.load()
    assert enc.backend == "onnxruntime" and "PHOTOSIM_BACKEND" in enc.notice
    assert Encoder.load(backend="torch").backend == "torch"  # an explicit backend wins over the env
    with pytest.raises(ValueError, match="backend"):
        Encoder.load(backend="tensorrt")
    with pytest.raises(ValueError, match="precision"):
        Encoder.load(precision="fp16")


def test_cache_folder_default_and_env(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "c"))
    assert cache.cache_root() == tmp_path / "c"
    assert cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv(cache.ENV)
    root = cache.cache_root()
    assert root.name == "onnx" and "photosim" in str(root)


def test_the_graph_cache_keeps_its_budget_dropping_the_graphs_used_longest_ago(tmp_path, monkeypatch, photos,
                                                                                torch_encoder):
    import os

    root = tmp_path / "graphs"
    root.mkdir()
    for age, name in ((300, "old.features.fp32.v3.onnx"), (200, "older-format.features.fp32.v2.onnx"),
                      (100, "recent.features.fp32.v3.onnx")):
        (root / name).write_bytes(b"x" * 1000)
        os.utime(root / name, (1e9 - age, 1e9 - age))
    (root / "busy.features.fp32.v3.onnx.1234.tmp.onnx").write_bytes(b"x" * 5000)  # another writer's
    assert cache.prune(root, max_bytes=10_000) == []  # within the budget: nothing goes
    gone = cache.prune(root, keep=root / "old.features.fp32.v3.onnx", max_bytes=1500)
    assert [p.name for p in gone] == ["older-format.features.fp32.v2.onnx", "recent.features.fp32.v3.onnx"]
    assert (root / "old.features.fp32.v3.onnx").exists() and (root / "busy.features.fp32.v3.onnx.1234.tmp.onnx").exists()
    # Making a graph prunes the cache to the budget; the new graph stays.
    monkeypatch.setattr(cache, "MAX_BYTES", 1)
    enc = Encoder.load(backend="onnx", cache_dir=root)
    assert enc.backend == "onnxruntime" and enc.notice == ""
    assert [p.name for p in root.glob("*.onnx") if ".tmp." not in p.name] == [enc.runtime.features_path.name]
    # A graph pruned while its encoder runs is made again when a session is re-opened.
    enc.runtime.features_path.unlink()
    enc.set_threads(1)
    assert enc.runtime.features_path.is_file() and enc.notice == ""
    batch = np.stack([enc.preprocess(im) for im in photos[:2]])
    assert _cos(enc.features(batch), torch_encoder.features(batch)).min() >= 0.9999


def test_atomic_write_leaves_nothing_when_making_fails(tmp_path):
    target = tmp_path / "g.onnx"

    def fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        cache.write_atomically(target, fail)
    assert list(tmp_path.iterdir()) == []


def test_int8_vectors_never_share_the_fp32_id(ort_encoder, torch_encoder, photos):
    int8 = Encoder.load(precision="int8")
    assert int8.backend == "onnxruntime" and int8.precision == "int8" and int8.notice == ""
    assert int8.id != ort_encoder.id and int8.id.endswith(f"@int8r{quantize.RECIPE}")
    assert int8.backbone_id != ort_encoder.backbone_id  # its cached features are kept apart too
    assert int8.runtime.features_path != ort_encoder.runtime.features_path
    v8, v32 = int8.embed(photos), ort_encoder.embed(photos)
    assert v8.shape == v32.shape
    assert _cos(v8, v32).min() > 0.5  # the same network, only less precise
    # the nearest photo of an edited copy is still its original
    edited = [im.rotate(3, expand=False).resize((500, 380)) for im in photos[:4]]
    assert (np.argmax(int8.embed(edited) @ v8.T, axis=1) == np.arange(4)).all()
    # where int8 cannot run, the encoder is fp32 and says so: never fp32 vectors under the int8 id
    fallback = Encoder.load(backend="torch", precision="int8")
    assert fallback.precision == "fp32" and fallback.id == torch_encoder.id and "int8" in fallback.notice


def test_scan_under_onnx_finds_the_same_neighbours_as_under_torch(tmp_path, monkeypatch):
    from photosim import Library

    folder = tmp_path / "photos"
    write_scenes(folder / "a", range(20, 32))
    edited = folder / "b"
    edited.mkdir()
    for seed in range(20, 24):  # near-duplicates: each has an obvious nearest neighbour
        draw_scene(seed).crop((30, 20, 610, 460)).save(edited / f"crop_{seed}.jpg", quality=80)
    neighbours = {}
    for backend in ("torch", "onnx"):
        monkeypatch.setenv("PHOTOSIM_BACKEND", backend)
        with Library(tmp_path / f"lib-{backend}") as lib:
            report = lib.scan([folder])
            assert report.added == 16
            assert lib.encoder.backend == ("torch" if backend == "torch" else "onnxruntime")
            neighbours[backend] = {
                p.path.replace(f"lib-{backend}", ""): [m.photo.path for m in lib.similar(p, k=3)]
                for p in lib.photos()
            }
    assert neighbours["onnx"] == neighbours["torch"]
    crops = {k: v for k, v in neighbours["onnx"].items() if "crop_" in k}
    assert len(crops) == 4
    for crop, found in crops.items():
        seed = int(crop.rsplit("_", 1)[1].split(".")[0])
        assert found[0].endswith(f"scene_{seed:03d}.jpg")
