"""Flat frames (a border with a caption) are trimmed before a photo is embedded, so that
framed copies of different photos stop finding each other first (photosim.frames)."""

import io
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from photosim.card import ModelCard
from photosim.encoder import Encoder, bundled_model_dir
from photosim.frames import frame_box, trim_frame
from tests.conftest import draw_scene


def framed(picture: Image.Image, colour, side: int, caption: bool = True) -> Image.Image:
    """``picture`` in a flat frame of ``side`` px, three times as deep below, a caption in it."""
    w, h = picture.size
    out = ImageOps.expand(picture, border=(side, side, side, side * 3), fill=colour)
    if caption:
        ImageDraw.Draw(out).text((side, h + side + side // 2), "Summer holiday, 2024", fill=(128, 128, 128))
    return out


def jpeg(im: Image.Image, quality: int = 70) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


@pytest.mark.parametrize("colour", [(255, 255, 255), (20, 20, 20)])
def test_a_flat_frame_with_a_caption_is_found_and_trimmed_to_the_picture(colour):
    picture = draw_scene(1, (300, 220))
    copy = jpeg(framed(picture, colour, 16))
    box = frame_box(copy)
    assert box is not None
    assert all(abs(a - b) <= 2 for a, b in zip(box, (16, 16, 316, 236))), box
    assert trim_frame(copy).size == (box[2] - box[0], box[3] - box[1])
    # a smaller, re-encoded copy of the framed photo trims alike (the same share of each side)
    half = jpeg(copy.resize((copy.width // 2, copy.height // 2), Image.Resampling.LANCZOS))
    small = frame_box(half)
    assert small is not None and all(abs(a - b / 2) <= 2 for a, b in zip(small, box)), (small, box)


def test_photos_without_a_frame_are_left_as_they_are():
    for seed in range(6):
        photo = jpeg(draw_scene(seed, (320, 240)))
        assert frame_box(photo) is None and trim_frame(photo) is photo
    # an object on a white background: the background thins out line by line round its
    # outline, which is not a frame's sharp edge
    product = Image.new("RGB", (320, 240), (255, 255, 255))
    ImageDraw.Draw(product).ellipse((60, 30, 260, 210), fill=(180, 40, 40))
    assert frame_box(jpeg(product)) is None
    # flat all over (a blank page), and a frame that would leave too little
    assert frame_box(Image.new("RGB", (200, 150), (250, 250, 250))) is None
    tiny = ImageOps.expand(draw_scene(2, (100, 80)), border=(60, 60, 60, 60), fill=(255, 255, 255))
    assert frame_box(tiny) is None
    # too small to tell: a tiny photo (CIFAR-10's are 32 px) is left as it is, framed or not
    assert frame_box(framed(draw_scene(5).resize((40, 30)), (255, 255, 255), 6, caption=False)) is None
    assert frame_box(framed(draw_scene(5).resize((120, 90)), (255, 255, 255), 6, caption=False)) is not None


def test_only_the_framed_sides_are_trimmed():
    picture = draw_scene(4, (300, 200))
    letterbox = ImageOps.expand(picture, border=(0, 24, 0, 24), fill=(0, 0, 0))
    box = frame_box(jpeg(letterbox, 85))
    assert box is not None and box[0] == 0 and box[2] == 300 and abs(box[1] - 24) <= 2 and abs(box[3] - 224) <= 2


@pytest.fixture(scope="module")
def encoders():
    """The bundled encoder (frames trimmed) and the same weights without trimming."""
    trimmed = Encoder.load(bundled_model_dir(), device="cpu", backend="torch")
    plain = Encoder.load(bundled_model_dir(), device="cpu", backend="torch")
    plain.card = replace(plain.card, trim_frames=0)
    return trimmed, plain


def test_the_bundled_encoder_trims_frames_so_framed_copies_find_their_originals(encoders):
    trimmed, plain = encoders
    assert trimmed.card.trim_frames == 1
    originals = [draw_scene(s, (480, 360)) for s in range(10, 16)]
    copies = [jpeg(framed(o, (255, 255, 255), 36)) for o in originals]
    for enc, name in ((trimmed, "trimmed"), (plain, "plain")):
        v = enc.embed(originals + copies)
        o, c = v[:6], v[6:]
        own = np.sum(o * c, axis=1)
        others = c @ c.T - 2 * np.eye(6)
        if name == "trimmed":
            got_trimmed = (own, others.max(axis=1))
        else:
            got_plain = (own, others.max(axis=1))
    # with the frames trimmed, each copy is nearer its original than any other framed copy, and
    # much nearer than untrimmed (measured: 0.86 against 0.77 on average); without, the shared
    # frame pulls the copies of different photos together
    assert (got_trimmed[0] > got_trimmed[1]).all(), got_trimmed
    assert got_trimmed[0].mean() > got_plain[0].mean() + 0.05, (got_trimmed[0], got_plain[0])
    assert got_plain[1].mean() > got_trimmed[1].mean(), (got_plain[1], got_trimmed[1])
    # a photo without a frame gets the very same vector either way
    photo = [jpeg(draw_scene(20, (480, 360)))]
    assert np.array_equal(trimmed.embed(photo), plain.embed(photo))


def test_trimming_is_part_of_the_input_pipeline_its_ids_and_its_card_format(tmp_path):
    from safetensors.torch import load_file

    from photosim.model import make_backbone_id

    card = ModelCard.load(bundled_model_dir() / "card.json")
    state = {k: v for k, v in load_file(str(bundled_model_dir() / card.weights)).items() if k.startswith("backbone.")}
    assert make_backbone_id(card, state) == card.backbone_id
    plain = replace(card, trim_frames=0)
    # the same weights without trimming: the earlier backbone id, which the card lists
    assert make_backbone_id(plain, state) in card.same_weights_as != []
    assert json.loads(card.to_json())["format"] == 2 and json.loads(plain.to_json())["format"] == 1
    bad = json.loads(card.to_json())
    bad["trim_frames"] = 2
    (tmp_path / "card.json").write_text(json.dumps(bad))
    with pytest.raises(Exception, match="trim_frames"):
        ModelCard.load(tmp_path / "card.json")


def test_upgrading_from_v5_reads_every_photo_but_embeds_only_the_framed_ones(tmp_path, monkeypatch):
    """v5 -> v5.1 only added trimming: a photo without a frame has the same features under
    both, so the upgrade's re-scan decodes each photo (to look for a frame) and runs the
    encoder only on the framed ones; the others' v5 features are projected."""
    import os

    import photosim.encoder as encoder_module
    from photosim import Library
    from photosim.imageio import open_image
    from photosim.pipeline import scan as scan_module

    monkeypatch.setenv("PHOTOSIM_BACKEND", "torch")  # no ONNX graph to make for the old backbone id
    real = bundled_model_dir()
    card = ModelCard.load(real / "card.json")
    old = tmp_path / "v5"
    old.mkdir()
    replace(card, id="photosim-lite2-gem288-v5", trim_frames=0, backbone_id=card.same_weights_as[0],
            same_weights_as=[]).save(old / "card.json")
    (old / card.weights).symlink_to(real / card.weights)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        draw_scene(30 + i, (480, 360)).save(photos / f"plain{i}.jpg", quality=90)
    framed(draw_scene(33, (480, 360)), (255, 255, 255), 30).save(photos / "framed.jpg", quality=90)

    monkeypatch.setattr(encoder_module, "bundled_model_dir", lambda: old)
    with Library(tmp_path / "lib") as lib:
        lib.scan([photos])
        assert lib.encoder_id == "photosim-lite2-gem288-v5"
        framed_v5 = lib.vector(next(p.id for p in lib.photos() if p.name == "framed.jpg"))
    monkeypatch.setattr(encoder_module, "bundled_model_dir", lambda: real)
    embedded: list[str] = []
    flush = scan_module.Scan._flush

    def counting(self, batch):
        embedded.extend(os.path.basename(o.path) for o in batch)
        return flush(self, batch)

    monkeypatch.setattr(scan_module.Scan, "_flush", counting)
    with Library(tmp_path / "lib") as lib:
        report = lib.scan([photos])
        assert lib.encoder_id == card.id
        assert embedded == ["framed.jpg"] and report.reembedded == 3
        for p in lib.photos():  # every vector is v5.1's own
            want = lib.encoder.embed([open_image(p.path)])[0]
            assert float(np.dot(lib.vector(p.id), want)) > 0.999, p.name
        assert float(np.dot(lib.vector(next(p.id for p in lib.photos() if p.name == "framed.jpg")), framed_v5)) < 0.99
