"""Camera RAW photos: scanned through their embedded preview (LibRaw through rawpy, or the
largest JPEG inside the file), with the RAW's own EXIF; bad RAW files are reported with a
sentence, never fatal; the files are never modified."""

from __future__ import annotations

import hashlib

import pytest

from photosim import Library, raw
from photosim.imageio import decode_bytes, open_image, read_file, read_photo
from photosim.pipeline import keeper

from conftest import draw_scene
from rawfile import jpeg_bytes, make_dng, make_jpeg_blob


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dng_preview_and_exif_through_libraw(tmp_path):
    assert raw.RAWPY, "rawpy is a dependency: it should be installed"
    scene = draw_scene(3, (600, 400))
    path = tmp_path / "IMG_0001.dng"
    path.write_bytes(make_dng(scene, orientation=6, model="Canon EOS 5D", taken="2024:05:01 10:00:07"))
    photo = read_photo(path)
    # the preview, turned upright by the RAW's own orientation (6: 90° clockwise)
    assert photo.image.size == (213, 320)
    assert photo.meta.camera == "Canon EOS 5D"
    assert photo.meta.taken_at == "2024-05-01T10:00:07"
    assert photo.meta.orientation == 6
    # the same picture as the scene itself, turned
    expected = scene.rotate(-90, expand=True).resize(photo.image.size)
    diff = sum(abs(a - b) for a, b in zip(expected.convert("L").tobytes(), photo.image.convert("L").tobytes()))
    assert diff / (213 * 320) < 12
    assert open_image(path, 256).size == (171, 256)
    data, _ = read_file(path)
    assert decode_bytes(data, name=path)[0].size == (213, 320)


def test_the_byte_scan_finds_the_largest_preview_without_libraw(tmp_path, monkeypatch):
    monkeypatch.setattr(raw, "RAWPY", False)
    big = draw_scene(5, (900, 600))
    path = tmp_path / "DSCF0001.RAF"
    path.write_bytes(make_jpeg_blob([draw_scene(5, (160, 120)), big]))
    photo = read_photo(path)
    assert (photo.meta.width, photo.meta.height) == (900, 600)  # not the 160×120 thumbnail
    assert photo.image.size == (320, 213)
    # a DNG read the same way gives the RAW's EXIF, as LibRaw's path does
    dng = tmp_path / "b.dng"
    dng.write_bytes(make_dng(big, model="NIKON D750", make="NIKON CORPORATION", taken="2023:01:02 03:04:05"))
    meta = read_photo(dng).meta
    assert (meta.width, meta.height, meta.camera, meta.taken_at) == (900, 600, "NIKON D750", "2023-01-02T03:04:05")


def test_a_raw_is_scanned_through_its_preview_and_found_similar_to_its_jpeg(tmp_path):
    scene = draw_scene(11, (640, 480))
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "beach.jpg").write_bytes(jpeg_bytes(scene.resize((320, 240)), quality=85))
    (photos / "IMG_7.dng").write_bytes(make_dng(scene))
    (photos / "DSCF8.raf").write_bytes(make_jpeg_blob([scene.resize((160, 120)), scene]))
    for seed in (12, 13, 14):
        (photos / f"other{seed}.jpg").write_bytes(jpeg_bytes(draw_scene(seed)))
    before = {p.name: _digest(p) for p in photos.iterdir()}
    with Library(tmp_path / "lib") as lib:
        report = lib.scan([photos])
        assert report.added == 6 and not lib.errors()
        jpeg = lib.photo(str(photos / "beach.jpg"))
        near = [m.photo.name for m in lib.similar(jpeg, k=2)]
        assert set(near) == {"IMG_7.dng", "DSCF8.raf"}
        dng = lib.photo(str(photos / "IMG_7.dng"))
        assert dng.camera == "Canon EOS 5D" and dng.taken_at == "2024-05-01T10:00:00"
        assert lib.similar(jpeg, k=1)[0].score > lib.card.duplicate_threshold - 0.1
    assert {p.name: _digest(p) for p in photos.iterdir()} == before  # never modified


@pytest.mark.parametrize("name, content, words", [
    ("garbage.cr2", b"\x13\x37 this is no photo at all " * 400, "not a camera RAW photo"),
    ("empty.nef", b"", "empty file"),
    ("nopreview.arw", b"II*\x00\x08\x00\x00\x00" + b"\x00" * 4000, "no embedded preview"),
    ("cut.dng", None, "truncated or damaged"),
])
def test_bad_raw_files_are_reported_with_a_sentence_and_never_stop_a_scan(tmp_path, name, content, words):
    photos = tmp_path / "photos"
    photos.mkdir()
    if content is None:  # a DNG cut off in the middle of its preview
        data = make_dng(draw_scene(2, (600, 400)))
        content = data[: len(data) * 2 // 3]
    (photos / name).write_bytes(content)
    (photos / "fine.jpg").write_bytes(jpeg_bytes(draw_scene(4)))
    with pytest.raises(raw.PhotoError, match=words):
        read_photo(photos / name)
    with Library(tmp_path / "lib") as lib:
        lib.scan([photos])
        assert [p.name for p in lib.photos()] == ["fine.jpg"]
        (bad,) = lib.errors()
        assert bad.name == name and words in bad.error


def test_keeper_ranks_raw_first_whatever_its_preview_size():
    from photosim.imageio import SUPPORTED_EXTENSIONS

    assert keeper.RAW == raw.RAW_EXTENSIONS <= SUPPORTED_EXTENSIONS

    class P:
        def __init__(self, path, w, size):
            self.path, self.width, self.height, self.size = path, w, w * 2 // 3, size
            self.taken_at = self.camera = None
            self.mtime_ns = 0

    jpeg, cr2 = P("/a/IMG_1.JPG", 6000, 9_000_000), P("/a/IMG_1.CR2", 1620, 25_000_000)
    assert keeper.rank([jpeg, cr2])[0] is cr2
    assert keeper.reasons(cr2, jpeg) == "original format: CR2 vs JPG"


def test_cr3_exif_from_its_cmt_boxes_and_tiff_like_orf_rw2(tmp_path):
    from rawfile import make_cr3

    scene = draw_scene(7, (600, 400))
    cr3 = tmp_path / "IMG_1.CR3"
    cr3.write_bytes(make_cr3(scene, orientation=8))
    photo = read_photo(cr3)
    assert (photo.meta.camera, photo.meta.taken_at, photo.meta.orientation) == (
        "Canon EOS R5", "2024-08-09T10:11:12", 8)
    assert photo.image.size == (213, 320) and (photo.meta.width, photo.meta.height) == (400, 600)
    for ext, magic in ((".ORF", b"IIRO"), (".RW2", b"IIU\x00")):
        path = tmp_path / f"P1{ext}"
        path.write_bytes(magic + make_dng(scene, model="E-M1", make="OLYMPUS", taken="2022:02:02 02:02:02")[4:])
        meta = read_photo(path).meta
        assert (meta.camera, meta.taken_at) == ("OLYMPUS E-M1", "2022-02-02T02:02:02")
