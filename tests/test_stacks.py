"""Bursts and RAW + JPEG of one shot are stacks (``tier="similar"``), never offered as
copies, even where verification would call two frames the same picture; an edited copy
that keeps its original's date taken is still a copy."""

from __future__ import annotations

from PIL import Image, ImageDraw

from photosim import Library
from photosim.pipeline.stacks import BURST_GAP

from conftest import draw_scene
from rawfile import jpeg_bytes, make_dng


def exif(camera: str, taken: str) -> Image.Exif:
    e = Image.Exif()
    e[0x010F] = camera.split()[0]
    e[0x0110] = camera
    e.get_ifd(0x8769)[0x9003] = taken
    return e


def frame(seed: int, ball: int) -> Image.Image:
    """One frame of a burst: the scene, a ball a little further along."""
    im = draw_scene(seed, (640, 480))
    ImageDraw.Draw(im).ellipse((100 + ball * 60, 200, 160 + ball * 60, 260), fill=(240, 240, 20))
    return im


def _groups(lib, tier):
    return [{p.name for p in g.photos} for g in lib.duplicates(tier=tier)]


def test_bursts_and_raw_jpeg_pairs_are_stacks_not_copies(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cam = "Canon EOS R5"
    # a burst: three frames a second apart; the last two are one picture (a tripod, nothing
    # moved), which verification alone would call copies
    (photos / "burst1.jpg").write_bytes(jpeg_bytes(frame(21, 0), exif=exif(cam, "2024:06:01 12:00:00")))
    (photos / "burst2.jpg").write_bytes(jpeg_bytes(frame(21, 1), exif=exif(cam, "2024:06:01 12:00:01")))
    (photos / "burst3.jpg").write_bytes(jpeg_bytes(frame(21, 1), quality=80, exif=exif(cam, "2024:06:01 12:00:02")))
    # RAW + JPEG of one shot, side by side; and a RAW whose JPEG was renamed and moved
    shot = draw_scene(22, (640, 480))
    (photos / "IMG_0042.dng").write_bytes(make_dng(shot, model="Canon EOS R6", taken="2024:06:02 09:00:00"))
    (photos / "IMG_0042.jpg").write_bytes(jpeg_bytes(shot, exif=exif("Canon EOS R6", "2024:06:02 09:00:00")))
    other = draw_scene(23, (640, 480))
    (photos / "IMG_0077.dng").write_bytes(make_dng(other, model="Canon EOS R6", taken="2024:06:02 10:30:00"))
    (photos / "sub").mkdir()
    (photos / "sub" / "harbour.jpg").write_bytes(jpeg_bytes(other, exif=exif("Canon EOS R6", "2024:06:02 10:30:00")))
    # an edited copy keeps its original's date taken: still a copy
    orig = draw_scene(24, (640, 480))
    (photos / "lake.jpg").write_bytes(jpeg_bytes(orig, exif=exif(cam, "2024:06:03 08:00:00")))
    (photos / "lake_small.jpg").write_bytes(jpeg_bytes(orig.resize((320, 240)), exif=exif(cam, "2024:06:03 08:00:00")))
    for seed in (25, 26, 27):
        (photos / f"x{seed}.jpg").write_bytes(jpeg_bytes(draw_scene(seed)))

    with Library(tmp_path / "lib") as lib:
        lib.scan([photos])
        assert not lib.errors()
        copies = _groups(lib, "duplicates")
        assert copies == [{"lake.jpg", "lake_small.jpg"}]
        stacks = {frozenset(g.photos[i].name for i in range(len(g.photos))): g
                  for g in lib.duplicates(tier="similar")}
        burst = stacks[frozenset({"burst1.jpg", "burst2.jpg", "burst3.jpg"})]
        assert all("burst: 3 shots in 2 s (Canon EOS R5)" in r for r in burst.reasons[1:])
        pair = stacks[frozenset({"IMG_0042.dng", "IMG_0042.jpg"})]
        assert pair.photos[0].name == "IMG_0042.dng"  # the RAW is the best shot
        assert any("RAW + JPG of one shot (same name" in r for r in pair.reasons[1])
        moved = stacks[frozenset({"IMG_0077.dng", "harbour.jpg"})]
        assert any("same camera, taken at the same second" in r for r in moved.reasons[1])
        assert all(g.tier == "similar" for g in stacks.values())


def test_a_gap_longer_than_a_burst_splits_it(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cam = "NIKON Z 6"
    times = ["2024:06:01 12:00:00", "2024:06:01 12:00:01", f"2024:06:01 12:00:{1 + int(BURST_GAP) + 5:02d}"]
    for n, t in enumerate(times):
        (photos / f"f{n}.jpg").write_bytes(jpeg_bytes(frame(31, n), exif=exif(cam, t)))
    for seed in (32, 33, 34):
        (photos / f"x{seed}.jpg").write_bytes(jpeg_bytes(draw_scene(seed)))
    with Library(tmp_path / "lib") as lib:
        lib.scan([photos])
        reasons = {p.name: r for g in lib.duplicates(tier="similar") for p, r in zip(g.photos, g.reasons)}
        bursty = {n for n, r in reasons.items() if any(x.startswith("burst: 2 shots in 1 s") for x in r)}
        assert bursty and bursty <= {"f0.jpg", "f1.jpg"}
        assert not any(x.startswith("burst") for x in reasons.get("f2.jpg", []))


def test_a_time_lapse_is_cut_into_stacks_of_bounded_size():
    """Pairs are made within a burst: a run of frames a second apart is cut at MAX_BURST."""
    import types

    from photosim.pipeline.stacks import MAX_BURST, Shots

    n = MAX_BURST * 2 + 5
    info = {i: types.SimpleNamespace(path=f"/t/f{i:04d}.jpg", camera="GoPro HERO9",
                                     taken_at=f"2024-01-01T10:{i // 60:02d}:{i % 60:02d}") for i in range(n)}
    shots = Shots(info, lambda a, b: 0.9, 0.5)
    assert len(shots.pairs) == 2 * (MAX_BURST * (MAX_BURST - 1) // 2) + 5 * 4 // 2
    assert shots.not_copies == set(shots.pairs)
    assert (0, MAX_BURST) not in shots.pairs and (0, MAX_BURST - 1) in shots.pairs
    assert "burst: 60 shots in 59 s (GoPro HERO9)" in shots.pairs[(0, 1)]
    # frames that do not look alike are no burst
    assert not Shots(info, lambda a, b: 0.1, 0.5).pairs
