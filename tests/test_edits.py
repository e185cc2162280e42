import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from photosim import edits


@pytest.fixture
def photo():
    img = Image.new("RGB", (120, 80), (30, 90, 160))
    d = ImageDraw.Draw(img)
    d.rectangle((10, 10, 50, 40), fill=(230, 200, 20))
    d.ellipse((60, 30, 110, 75), fill=(200, 30, 30))
    return img


def _same(a, b):
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("kind", edits.EDIT_KINDS)
def test_every_edit_is_deterministic_and_rgb(photo, kind):
    a = edits.apply_edit(photo, kind, random.Random(7))
    b = edits.apply_edit(photo, kind, random.Random(7))
    assert a.mode == "RGB"
    assert _same(a, b)
    assert photo.size == (120, 80)  # input untouched


@pytest.mark.parametrize("kind", [k for k in edits.EDIT_KINDS if k != "rotate"])
def test_edits_change_the_pixels(photo, kind):
    outs = [edits.apply_edit(photo, kind, random.Random(s)) for s in range(3)]
    assert any(not _same(o, photo) for o in outs)


def test_edit_kinds_listed():
    assert set(edits.EDIT_KINDS) >= {"crop", "resize", "colour", "exposure", "jpeg", "rotate", "perspective"}
    with pytest.raises(ValueError):
        edits.apply_edit(Image.new("RGB", (8, 8)), "nope", random.Random(0))


def test_crop_keeps_most_of_the_area(photo):
    for seed in range(50):
        out = edits.crop(photo, random.Random(seed))
        w, h = out.size
        assert w <= 120 and h <= 80
        assert w * h >= 0.6 * 120 * 80 - 120  # within rounding of one row


def test_resize_downscales_keeping_aspect(photo):
    out = edits.resize(photo, random.Random(1))
    w, h = out.size
    assert w < 120 and h < 80
    assert abs(w / h - 1.5) < 0.1


def test_rotation_swaps_dimensions_and_moves_pixels(photo):
    r90 = edits.rotate90(photo, 1)
    assert r90.size == (80, 120)
    assert edits.rotate90(photo, 2).size == (120, 80)
    assert edits.rotate90(photo, 3).size == (80, 120)
    # counter-clockwise: the top-right pixel becomes the top-left one
    assert r90.getpixel((0, 0)) == photo.getpixel((119, 0))
    assert _same(edits.rotate90(r90, 3), photo)
    assert not r90.getexif()  # no EXIF orientation involved
    sizes = {edits.rotate(photo, random.Random(s)).size for s in range(20)}
    assert sizes == {(80, 120), (120, 80)}


def test_jpeg_recompresses_close_to_original(photo):
    out = edits.jpeg(photo, random.Random(3))
    assert out.size == photo.size
    diff = np.abs(np.asarray(out, dtype=int) - np.asarray(photo, dtype=int)).mean()
    assert 0 < diff < 20


def test_perspective_keeps_size_without_black_borders(photo):
    out = edits.perspective(photo, random.Random(5))
    assert out.size == photo.size
    arr = np.asarray(out)
    for corner in (arr[0, 0], arr[0, -1], arr[-1, 0], arr[-1, -1]):
        assert corner.sum() > 0


def test_colour_and_exposure_keep_size(photo):
    for fn in (edits.colour, edits.exposure):
        assert fn(photo, random.Random(0)).size == photo.size


def test_random_edit_respects_kinds_and_rng(photo):
    a = edits.random_edit(photo, random.Random(11))
    b = edits.random_edit(photo, random.Random(11))
    assert _same(a, b)
    for seed in range(10):
        out = edits.random_edit(photo, random.Random(seed), kinds=["rotate"])
        assert out.size in {(80, 120), (120, 80)}
    out, kinds = edits.random_edits(photo, random.Random(2), n=3)
    assert len(kinds) == 3 and len(set(kinds)) == 3
    assert out.mode == "RGB"


def test_non_rgb_input_is_converted():
    grey = Image.new("L", (40, 30), 128)
    for kind in edits.EDIT_KINDS:
        assert edits.apply_edit(grey, kind, random.Random(0)).mode == "RGB"
