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
