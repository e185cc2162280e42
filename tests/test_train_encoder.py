import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

import train_encoder  # noqa: E402

from photosim.encoder import Encoder  # noqa: E402


def _make_data(root: Path, n_classes=6, per_class=4):
    rng = random.Random(0)
    for c in range(n_classes):
        d = root / f"class{c}"
        d.mkdir(parents=True)
        col = tuple(rng.randint(0, 255) for _ in range(3))
        for i in range(per_class):
            img = Image.new("RGB", (90, 60), tuple(rng.randint(0, 255) for _ in range(3)))
            draw = ImageDraw.Draw(img)
            x, y = rng.randint(0, 40), rng.randint(0, 20)
            if c % 2:
                draw.ellipse((x, y, x + 40, y + 35), fill=col)
            else:
                draw.rectangle((x, y, x + 40, y + 30), fill=col)
            img.save(d / f"{i}.jpg", quality=90)
    return root


def test_split_is_fixed_and_disjoint():
    classes = [f"c{i}" for i in range(80)]
    train, held = train_encoder.split_classes(classes, 25, 0)
    assert len(held) == 25 and len(train) == 55
    assert not set(train) & set(held)
    assert train_encoder.split_classes(list(reversed(classes)), 25, 0) == (train, held)


def test_pca_whitening_whitens():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((500, 20)) @ rng.standard_normal((20, 20)) + 3
    w, b = train_encoder.pca_whitening(f, 8, eps=0)
    z = f @ w.T + b
    assert np.allclose(z.mean(0), 0, atol=1e-4)
    assert np.allclose(np.cov(z.T), np.eye(8), atol=1e-2)


def test_shrunk_lda_spreads_classes_and_squeezes_within_class():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 50)
    centres = rng.standard_normal((6, 30)) * 3
    noise = rng.standard_normal((300, 30)) * np.linspace(0.2, 5, 30)  # loud nuisance dims
    f = centres[labels] + noise
    w, b = train_encoder.shrunk_lda(f, labels, 5, shrink=0.1)
    z = f @ w.T + b
    within = np.mean([z[labels == c].var(0).sum() for c in range(6)])
    between = np.stack([z[labels == c].mean(0) for c in range(6)]).var(0).sum()
    pca_w, pca_b = train_encoder.pca_whitening(f, 5, power=0.0)
    p = f @ pca_w.T + pca_b
    p_within = np.mean([p[labels == c].var(0).sum() for c in range(6)])
    p_between = np.stack([p[labels == c].mean(0) for c in range(6)]).var(0).sum()
    assert between / within > 3 * p_between / p_within


@pytest.mark.parametrize("head", ["linear", "split"])
def test_smoke_training_run_writes_a_loadable_encoder(tmp_path, head):
    data = _make_data(tmp_path / "data")
    out = tmp_path / "enc"
    train_encoder.main([
        "--data", str(data), "--out", str(out), "--cache", str(tmp_path / "cache"),
        "--init", "random", "--smoke", "--epochs", "1", "--seed", "0", "--monitor", "--head", head,
    ])
    card = json.loads((out / "card.json").read_text())
    assert card["head"] == head
    assert card["context_size"] == 32 and card["input_size"] == 64 and card["feature_dim"] == 2560
    assert len(card["training"]["heldout_classes"]) == 2
    assert not set(card["training"]["heldout_classes"]) & set(card["training"]["train_classes"])
    m = card["metrics"]
    for key in ("trained", "baseline_imagenet_avg_224"):
        for metric in ("map_at_r", "recall_at_1", "precision_at_10", "near_dup_recall_at_1"):
            assert 0.0 <= m[key][metric] <= 1.0
    assert 0.0 <= m["trained"]["near_dup_rotation_recall_at_1"] <= 1.0
    assert m["throughput_img_per_s_batch32"] > 0 and m["weights_mb"] > 0
    assert card["training"]["hyper_parameters"]["context_size"] == 32

    enc = Encoder.load(out)
    img = Image.open(next((data / "class0").glob("*.jpg"))).convert("RGB")
    v = enc.embed([img, img.transpose(Image.Transpose.ROTATE_90)])
    assert v.shape == (2, card["dim"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)


def test_cached_features_are_the_encoders_features(tmp_path):
    """Training on cached features must see exactly what the shipped encoder computes,
    and the rotated view's context part is the photo's (rotation invariant)."""
    cfg = train_encoder.parse_args([
        "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--init", "random", "--smoke",
        "--work", str(tmp_path / "w"),
    ])
    state = train_encoder.backbone_state(cfg)
    img = Image.new("RGB", (80, 50), (10, 200, 30))
    ImageDraw.Draw(img).rectangle((5, 5, 30, 40), fill=(250, 0, 90))
    img.save(tmp_path / "a.png")
    feats = train_encoder.extract_features(cfg, state, [(tmp_path / "a.png", "x")], "t", 1)
    assert feats.shape == (1, 3, 2560)
    enc = train_encoder.make_encoder(train_encoder.feature_card(cfg), state)
    from photosim.imageio import open_image

    photo = open_image(tmp_path / "a.png")
    want = enc.features(np.stack([enc.preprocess(photo)]))
    assert np.allclose(feats[0, 0], want[0], rtol=2e-3, atol=2e-3)
    turned = enc.features(np.stack([enc.preprocess(photo.transpose(Image.Transpose.ROTATE_270))]))
    assert np.allclose(turned[0, 1280:], want[0, 1280:], rtol=1e-3, atol=1e-4)
    assert np.allclose(feats[0, 1, 1280:], feats[0, 0, 1280:])


def _v4_train_head(cfg, feats, labels):
    """The bundled encoder v4's own training loop, verbatim (before the shared loop): the
    shipped weights are reproducible only while train_head computes exactly this."""
    import math

    import torch
    from pytorch_metric_learning import losses, miners

    from photosim.model import build_head

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    head = build_head(train_encoder.build_head_card(cfg))
    n, n_views, _ = feats.shape
    _, lab0 = np.unique(labels, return_inverse=True)
    init = train_encoder.split_head_init(cfg, feats[:, 0].astype(np.float64), lab0)
    head.load_state_dict({k: torch.from_numpy(v) for k, v in init.items()})
    _, lab = np.unique(labels, return_inverse=True)
    by_class = [np.flatnonzero(lab == c) for c in range(lab.max() + 1)]
    class_loss = losses.MultiSimilarityLoss(alpha=cfg.ms_alpha, beta=cfg.ms_beta, base=cfg.ms_base)
    class_miner = miners.MultiSimilarityMiner(epsilon=cfg.miner_epsilon)
    inst_loss = losses.MultiSimilarityLoss(alpha=cfg.ms_alpha, beta=cfg.ms_beta, base=cfg.ms_base)
    inst_miner = miners.MultiSimilarityMiner(epsilon=cfg.miner_epsilon)
    head.upright.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, n // (cfg.batch_classes * cfg.batch_images))
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    ft = torch.from_numpy(feats.astype(np.float32))
    for _ in range(cfg.epochs):
        head.train()
        for _ in range(steps_per_epoch):
            classes = rng.choice(len(by_class), size=min(cfg.batch_classes, len(by_class)), replace=False)
            idx = np.concatenate([
                rng.choice(by_class[c], size=cfg.batch_images, replace=len(by_class[c]) < cfg.batch_images)
                for c in classes
            ])
            v = np.stack([rng.choice(n_views, size=2, replace=False) for _ in idx])
            x = torch.cat([ft[idx, v[:, 0]], ft[idx, v[:, 1]]])
            emb = torch.nn.functional.normalize(head(x), dim=1)
            y_class = torch.from_numpy(np.concatenate([lab[idx], lab[idx]]))
            y_inst = torch.from_numpy(np.concatenate([idx, idx]))
            loss = cfg.class_weight * class_loss(emb, y_class, class_miner(emb, y_class))
            if cfg.instance_weight:
                loss = loss + cfg.instance_weight * inst_loss(emb, y_inst, inst_miner(emb, y_inst))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return head.eval()


def test_train_head_on_the_shared_loop_computes_what_encoder_v4_did(tmp_path, monkeypatch):
    import torch

    cfg = train_encoder.parse_args(["--data", str(tmp_path), "--out", str(tmp_path / "o"), "--smoke"])
    cfg.epochs = 3  # the schedule across epochs too
    assert cfg.head == "split" and cfg.class_weight == 0.0  # the shipped configuration, shrunk
    rng = np.random.default_rng(5)
    labels = np.repeat([f"c{i}" for i in range(6)], [7, 5, 6, 9, 4, 5])
    feats = (rng.random((len(labels), 3, 2560)) + (np.arange(len(labels)) % 6)[:, None, None] * 0.1)
    feats = feats.astype(np.float16)
    # The closed-form start (eigen-decompositions of 1280 x 1280) once, for both runs.
    start = train_encoder.split_head_init(cfg, feats[:, 0].astype(np.float64),
                                          np.unique(labels, return_inverse=True)[1])
    monkeypatch.setattr(train_encoder, "split_head_init", lambda *a: {k: v.copy() for k, v in start.items()})
    want = _v4_train_head(cfg, feats, labels).state_dict()
    got = train_encoder.train_head(cfg, feats, labels).state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)  # bit for bit, not approximately
    assert not torch.equal(got["context.weight"], torch.from_numpy(start["context.weight"]))  # it did train


def _make_wallpapers(root: Path, n: int = 3) -> Path:
    """KDE-style wallpaper packages: each design in two resolutions plus a preview."""
    rng = random.Random(1)
    for k in range(n):
        images = root / "wallpapers" / f"Design{k}" / "contents" / "images"
        images.mkdir(parents=True)
        big = Image.new("RGB", (1400, 1000), tuple(rng.randint(0, 255) for _ in range(3)))
        draw = ImageDraw.Draw(big)
        for _ in range(30):
            x, y = rng.randint(0, 1300), rng.randint(0, 900)
            draw.ellipse((x, y, x + 100, y + 80), fill=tuple(rng.randint(0, 255) for _ in range(3)))
        big.save(images / "1400x1000.jpg", quality=90)
        big.resize((1120, 800)).save(images / "1120x800.jpg", quality=90)
        big.resize((400, 286)).save(images.parent / "screenshot.jpg")
    return root


def test_scene_set_keeps_one_file_per_design_and_splits_designs(tmp_path):
    import scene_set

    photos = _make_wallpapers(tmp_path / "photos")
    sources = scene_set.source_groups(photos)
    assert list(sources) == ["Design0", "Design1", "Design2"]
    assert all(p.name == "1400x1000.jpg" for p in sources.values())  # the largest, never the preview
    assert scene_set.design_of(Path("bg/Ubuntu-Mate-Cold-no-logo.png")) == "Ubuntu-Mate-no-logo"
    assert scene_set.design_of(Path("bg/Elephants_3840x2160.jpg")) == "Elephants"
    got = scene_set.build(photos, tmp_path / "scenes", shots=3)
    assert sorted(len(v) for v in got.values()) == [3, 3, 3]
    places = {split: {p.parent.name for p in files} for split, files in got.items()}
    assert not places["train"] & places["test"] and not places["val"] & places["test"]
    shots = [Image.open(p) for p in got["test"]]
    assert all(max(im.size) == 1024 for im in shots)
    assert len({im.tobytes()[:5000] for im in shots}) == 3  # three different shots of one place


def test_smoke_run_of_another_backbone_with_scenes_cifar_and_a_comparison(tmp_path):
    data = _make_data(tmp_path / "data")
    scenes = tmp_path / "scenes"
    import scene_set

    scene_set.build(_make_wallpapers(tmp_path / "photos"), scenes, shots=3)
    first = tmp_path / "mnv2"
    common = ["--data", str(data), "--cache", str(tmp_path / "cache"), "--init", "random", "--smoke",
              "--epochs", "1", "--skip-baseline"]
    train_encoder.main(common + ["--out", str(first)])
    out = tmp_path / "lite"
    train_encoder.main(common + ["--out", str(out), "--architecture", "efficientnet_lite0", "--pooling", "gem",
                                 "--scenes", str(scenes), "--cifar", str(data), "--cifar-per-class", "2", "--cifar-offset", "1",
                                 "--compare", str(first)])
    card = json.loads((out / "card.json").read_text())
    assert card["architecture"] == "efficientnet_lite0" and card["mean"] == [0.498] * 3
    assert card["training"]["scene_places"] == sorted(p.name for s in ("train", "val")
                                                      for p in (scenes / s).iterdir())
    assert "EfficientNet-Lite0" in card["description"]
    m = card["metrics"]
    first_id = json.loads((first / "card.json").read_text())["id"]
    for key in ("trained", first_id):
        assert 0.0 <= m[key]["scenes_test_map"] <= 1.0 and m[key]["scenes_test_photos"] == 3
        assert 0.0 <= m[key]["cifar10_triplet_accuracy"] <= 1.0
    assert m[first_id]["throughput_img_per_s_batch32"] > 0
    enc = Encoder.load(out)
    assert enc.embed([Image.new("RGB", (50, 40), (9, 99, 199))]).shape == (1, card["dim"])
