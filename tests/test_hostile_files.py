"""Hostile files: special files are never read, big non-images cost little, big camera
photos decode reduced, and scans and queries read the same formats (issue 17)."""

from __future__ import annotations

import io
import os
import socket
import struct
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import pytest
from PIL import Image

from photosim import Library, imageio
from photosim.errors import PhotoError

from conftest import draw_scene, write_scenes

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


def _within(seconds: float, fn, *args, unblock=None):
    """``fn(*args)`` run in a thread; fails the test when it is still running after
    ``seconds`` (``unblock()`` then frees the thread so the test run can end)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        if unblock:
            unblock()
        t.join(10)
        pytest.fail(f"{getattr(fn, '__name__', fn)} was still blocked after {seconds} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _open_writer(fifo: Path):
    """Opening a pipe's write end lets a reader blocked in open() go on (to EOF)."""
    def unblock():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    return unblock


# -- special files ----------------------------------------------------------------------
@needs_fifo
def test_a_named_pipe_is_never_opened_for_a_query(tmp_path):
    fifo = tmp_path / "some-fifo.jpg"
    os.mkfifo(fifo)
    link = tmp_path / "link-to-fifo.jpg"
    link.symlink_to(fifo)
    for path in (fifo, link):
        for fn in (imageio.open_image, imageio.read_file, imageio.read_photo):
            with pytest.raises(PhotoError, match="named pipe"):
                _within(10, fn, path, unblock=_open_writer(fifo))


@needs_fifo
def test_a_pipe_swapped_in_after_the_type_check_does_not_block(tmp_path, monkeypatch):
    """stat says "regular file" (the file was replaced right after it): the non-blocking
    open and the fstat on the descriptor still refuse it without waiting for a writer."""
    fifo = tmp_path / "swapped.jpg"
    os.mkfifo(fifo)
    regular = tmp_path / "real.jpg"
    draw_scene(1).save(regular)
    real_stat = os.stat

    def lying_stat(path, *a, **kw):
        return real_stat(regular) if os.fspath(path) == os.fspath(fifo) else real_stat(path, *a, **kw)

    monkeypatch.setattr(imageio.os, "stat", lying_stat)
    with pytest.raises(PhotoError, match="named pipe"):
        _within(10, imageio.open_image, fifo, unblock=_open_writer(fifo))


def test_devices_sockets_and_folders_are_refused_in_words(tmp_path):
    if os.path.exists("/dev/zero"):  # reading it would never end
        with pytest.raises(PhotoError, match="a device"):
            _within(10, imageio.open_image, "/dev/zero")
    if hasattr(socket, "AF_UNIX"):
        sock_path = tmp_path / "s.jpg"
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(sock_path))
            with pytest.raises(PhotoError, match="a socket"):
                imageio.open_image(sock_path)
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(PhotoError, match="folder"):
        imageio.read_file(tmp_path / "folder.jpg")


@needs_fifo
def test_a_file_replaced_by_a_pipe_after_listing_does_not_block_the_scan(tmp_path, monkeypatch):
    from photosim.pipeline import scan as scanner

    root = tmp_path / "photos"
    paths = write_scenes(root, range(3), size=(200, 150))
    victim = paths[1]
    real_list = scanner.list_photos

    def list_then_swap(*a, **kw):
        listed = real_list(*a, **kw)
        victim.unlink()
        os.mkfifo(victim)  # same name, now a pipe nobody writes to
        return listed

    monkeypatch.setattr(scanner, "list_photos", list_then_swap)
    with Library(tmp_path / "lib") as lib:
        report = _within(120, lib.scan, [root], unblock=_open_writer(victim))
        assert len(lib.photos()) == 2
        assert [(Path(p).name, "named pipe" in why) for p, why in report.failed] == [(victim.name, True)]
        monkeypatch.setattr(scanner, "list_photos", real_list)
        # the next scan does not list the pipe at all: its row goes
        again = _within(60, lib.scan, [root], unblock=_open_writer(victim))
        assert again.failed == [] and len(lib.photos()) == 2 and lib.errors() == []


# -- large files that are not photos ------------------------------------------------------
def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def _peak_python_bytes(fn, *args) -> tuple[int, object]:
    tracemalloc.start()
    try:
        try:
            out = fn(*args)
        except PhotoError as exc:
            out = exc
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def test_a_2gb_non_image_named_jpg_costs_little(tmp_path):
    big = _sparse(tmp_path / "garbage.jpg", 2 * 2**30)  # sparse: no disk space used
    for fn in (imageio.read_file, imageio.read_photo, imageio.open_image):
        t = time.perf_counter()
        peak, out = _peak_python_bytes(fn, big)
        assert time.perf_counter() - t < 5
        assert peak < 16 * 2**20, f"{fn.__name__} held {peak / 2**20:.0f} MB"
        if fn is imageio.read_file:
            data, st = out
            assert len(data) <= imageio.SNIFF_BYTES and st.size == 2 * 2**30
            with pytest.raises(PhotoError, match="not a recognised image format"):
                imageio.decode_bytes(data)
        else:
            assert isinstance(out, PhotoError) and str(out) == "not a recognised image format"


def test_a_2gb_file_with_a_jpeg_signature_costs_little(tmp_path):
    """Past the signature, garbage: Pillow's marker search would read it one byte at a
    time (minutes); the header budget stops it, and read_file refuses to hold it."""
    big = _sparse(tmp_path / "fake.jpg", 2 * 2**30, b"\xff\xd8\xff\xe0" + b"\0" * 64)
    for fn in (imageio.read_file, imageio.read_photo, imageio.open_image):
        t = time.perf_counter()
        peak, out = _peak_python_bytes(fn, big)
        assert time.perf_counter() - t < 10
        assert peak < 80 * 2**20, f"{fn.__name__} held {peak / 2**20:.0f} MB"
        assert isinstance(out, PhotoError)
        assert ("too large to read" if fn is imageio.read_file else "corrupt") in str(out)


def test_a_scan_records_a_huge_non_image_with_its_real_size_and_skips_it_next_time(tmp_path):
    root = tmp_path / "photos"
    write_scenes(root, range(2), size=(200, 150))
    _sparse(root / "garbage.jpg", 2 * 2**30)
    with Library(tmp_path / "lib") as lib:
        r = lib.scan([root])
        assert len(lib.photos()) == 2
        assert r.failed == [(str(root / "garbage.jpg"), "not a recognised image format")]
        assert lib.errors()[0].size == 2 * 2**30
        again = lib.scan([root])
        assert again.failed == [] and again.unchanged == 3


def test_streamed_hash_equals_the_hash_of_the_bytes(tmp_path):
    p = write_scenes(tmp_path, [7])[0]
    assert imageio.read_photo(p).content_hash == imageio.hash_bytes(p.read_bytes())
    skipped = imageio.read_photo(p, skip_decode=lambda h: True)
    assert skipped.image is None and skipped.content_hash == imageio.hash_bytes(p.read_bytes())


def test_read_photo_errors_carry_the_stat_of_the_file(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("not a photo")
    with pytest.raises(PhotoError) as info:
        imageio.read_photo(p)
    assert info.value.stat.size == p.stat().st_size


# -- big camera photos and the bomb guard --------------------------------------------------
def _big_jpeg(path: Path, size: tuple[int, int]) -> Path:
    # grayscale keeps the test's own memory at 1 byte a pixel; the decoder path is the same
    Image.linear_gradient("L").resize(size).save(path, quality=85)
    return path


@pytest.mark.parametrize("size", [(11648, 8736), (13500, 9000)], ids=["100MP-camera", "panorama"])
def test_big_camera_jpegs_decode_reduced_without_a_bomb_warning(tmp_path, size):
    path = _big_jpeg(tmp_path / "big.jpg", size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = time.perf_counter()
        decoded = imageio.read_photo(path)
        image = imageio.open_image(path)
        elapsed = time.perf_counter() - t
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert (decoded.meta.width, decoded.meta.height) == size
    assert max(decoded.image.size) == imageio.DECODE_SIDE and image.size == decoded.image.size
    assert elapsed < 10
    data, _ = imageio.read_file(path)  # the scanner's path: bytes, then decode
    assert imageio.decode_bytes(data)[0].size == decoded.image.size


def test_a_big_png_that_cannot_be_reduced_is_still_refused(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("1", (9500, 9500)).save(path)  # 90 MP: above the limit, below Pillow's error
    with pytest.raises(PhotoError, match="too large to decode safely"):
        imageio.open_image(path)
    with pytest.raises(PhotoError, match="too large to decode safely"):
        imageio.read_photo(path)


def test_a_jpeg_declaring_gigapixels_is_refused_before_decoding(tmp_path):
    buf = io.BytesIO()
    draw_scene(2, (160, 120)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 65000, 65000)  # height, width
    path = tmp_path / "claims-4-gigapixels.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(PhotoError, match="too large to decode safely"):
        imageio.open_image(path)


# -- formats: scans and queries agree ------------------------------------------------------
def test_formats_photosim_does_not_read_are_refused_by_queries_too(tmp_path):
    ico = tmp_path / "icon.jpg"
    draw_scene(1, (64, 64)).save(ico, format="ICO")  # Pillow could open it; scans would skip it
    with pytest.raises(PhotoError, match="not a recognised image format"):
        imageio.open_image(ico)


def test_avif_is_scanned_where_pillow_reads_it(tmp_path):
    from PIL import features

    root = tmp_path / "photos"
    root.mkdir()
    if not features.check("avif"):
        assert ".avif" not in imageio.SUPPORTED_EXTENSIONS and not imageio.AVIF_SUPPORTED
        pytest.skip("this Pillow has no AVIF: scans skip .avif (the README says so)")
    draw_scene(3).save(root / "phone.avif", quality=80)
    draw_scene(3).save(root / "same.png")
    draw_scene(9).save(root / "other.png")
    assert imageio.is_supported(root / "phone.avif")
    with Library(tmp_path / "lib") as lib:
        r = lib.scan([root])
        assert r.added == 3 and not r.failed
        avif = lib.photo(root / "phone.avif")
        assert (avif.width, avif.height) == (640, 480)
        assert lib.similar(avif, k=1)[0].photo.name == "same.png"
