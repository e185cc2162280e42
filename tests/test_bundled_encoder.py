"""The encoder shipped in resources/encoder/: loads, fits its card, behaves."""

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from photosim.encoder import Encoder, bundled_model_dir
from photosim.model import ModelCard


@pytest.fixture(scope="module")
def encoder():
    return Encoder.load(bundled_model_dir(), device="cpu")


def _photo(seed=0, size=(150, 100)):
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 255, 3)))
    d = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = (int(v) for v in rng.integers(0, 120, 2))
        d.ellipse((x, y % 80, x + 30, y % 80 + 25), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return img


def test_card_is_complete_and_fits(encoder):
    card = ModelCard.load(bundled_model_dir() / "card.json")
    assert card.id == encoder.id
    assert 128 <= card.dim <= 512
    assert card.backbone_id
    raw = json.loads((bundled_model_dir() / "card.json").read_text())
    assert len(raw["training"]["heldout_classes"]) >= 20
    m = raw["metrics"]
    assert {"trained", "baseline_imagenet_avg_224"} <= set(m)
    assert (bundled_model_dir() / card.weights).stat().st_size <= 25 * 2**20


def test_vectors_have_card_dim_and_unit_norm(encoder):
    v = encoder.embed([_photo(0), _photo(1), _photo(2).convert("L")])
    assert v.shape == (3, encoder.card.dim)
    assert v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)


def test_same_image_twice_gives_the_same_vector(encoder):
    img = _photo(3)
    a = encoder.embed([img, img])
    b = encoder.embed([img.copy()])
    assert np.allclose(a[0], a[1], atol=1e-6)
    assert np.allclose(a[0], b[0], atol=1e-5)


def test_cached_features_reproject_to_the_same_vector(encoder):
    img = _photo(4)
    feats = encoder.features(np.stack([encoder.preprocess(img)]))
    assert feats.shape == (1, encoder.card.feature_dim)
    assert np.allclose(encoder.project(feats.astype(np.float16)), encoder.embed([img]), atol=1e-5)


def test_sideways_copy_is_a_near_duplicate(encoder):
    """A photo stored sideways without EXIF still finds its original first."""
    photos = [_photo(s) for s in range(5, 11)]
    gallery = encoder.embed(photos)
    for k, tr in enumerate((Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)):
        q = encoder.embed([photos[k].transpose(tr)])[0]
        assert int(np.argmax(gallery @ q)) == k
