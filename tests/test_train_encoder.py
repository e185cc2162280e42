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


def _make_data(root: Path, n_classes=6, per_class=6):
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


def test_smoke_training_run_writes_a_loadable_encoder(tmp_path):
    data = _make_data(tmp_path / "data")
    out = tmp_path / "enc"
    train_encoder.main([
        "--data", str(data), "--out", str(out), "--cache", str(tmp_path / "cache"),
        "--init", "random", "--smoke", "--epochs", "1", "--seed", "0",
    ])
    card = json.loads((out / "card.json").read_text())
    assert card["rotations"] == 4 and card["input_size"] == 64
    assert len(card["training"]["heldout_classes"]) == 2
    assert not set(card["training"]["heldout_classes"]) & set(card["training"]["train_classes"])
    m = card["metrics"]
    for key in ("trained", "baseline_imagenet_avg_224"):
        for metric in ("map_at_r", "recall_at_1", "precision_at_10", "near_dup_recall_at_1"):
            assert 0.0 <= m[key][metric] <= 1.0
    # rotation pooling makes 90° copies exact duplicates
    assert m["trained"]["near_dup_rotation_recall_at_1"] == pytest.approx(1.0)
    assert m["throughput_img_per_s_batch32"] > 0 and m["weights_mb"] > 0

    enc = Encoder.load(out)
    img = Image.open(next((data / "class0").glob("*.jpg"))).convert("RGB")
    v = enc.embed([img, img.transpose(Image.Transpose.ROTATE_90)])
    assert v.shape == (2, card["dim"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert float(v[0] @ v[1]) > 0.99
