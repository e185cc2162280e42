"""Bad input gets a clear message and loses nothing; the user's photos are never modified."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photosim import Library, LibraryLocked
from photosim import imageio
from photosim.cli import main as cli_main
from photosim.errors import SchemaTooNew
from photosim.store.migrations import MIGRATIONS

from conftest import draw_scene, write_scenes


def _fingerprint(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_mode)
    return out


@pytest.fixture
def bad_dir(tmp_path) -> Path:
    root = tmp_path / "photos"
    write_scenes(root, range(2))
    good = (root / "scene_000.jpg").read_bytes()
    (root / "empty.jpg").write_bytes(b"")
    (root / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "notes.png").write_text("this is not an image")
    (root / "garbage.webp").write_bytes(os.urandom(3000))
    # a decompression bomb: tiny file, enormous declared size
    Image.new("1", (30000, 30000)).save(root / "bomb.png", optimize=True)
    return root


def test_bad_files_are_reported_and_scan_goes_on(bad_dir, tmp_path):
    before = _fingerprint(bad_dir)
    with Library(tmp_path / "lib") as lib:
        report = lib.scan([bad_dir])
        failed = dict((Path(p).name, reason) for p, reason in report.failed)
        assert set(failed) == {"empty.jpg", "truncated.jpg", "notes.png", "garbage.webp", "bomb.png"}
        assert failed["empty.jpg"] == "empty file"
        assert "truncated" in failed["truncated.jpg"]
        assert failed["notes.png"] == "not a recognised image format"
        assert "too large" in failed["bomb.png"]
        assert len(lib.photos()) == 2 and len(lib.index) == 2
        errors = {Path(p.path).name: p.error for p in lib.errors()}
        assert errors == failed
        # unchanged failures are not retried, a fixed file is picked up
        r = lib.scan([bad_dir])
        assert r.failed == [] and r.unchanged == 7
        draw_scene(5).save(bad_dir / "truncated.jpg")
        r = lib.scan([bad_dir])
        assert r.updated == 1 and len(lib.photos()) == 3 and len(lib.errors()) == 4
    after = _fingerprint(bad_dir)
    assert set(after) == set(before)
    for path, fp in before.items():
        if not path.endswith("truncated.jpg"):  # the one the test itself rewrote
            assert after[path] == fp, f"{path} was modified"


def test_info_lists_failures(bad_dir, tmp_path, capsys):
    lib_dir = tmp_path / "lib"
    assert cli_main(["scan", str(bad_dir), "--library", str(lib_dir)]) == 0
    capsys.readouterr()
    assert cli_main(["info", "--library", str(lib_dir)]) == 0
    out = capsys.readouterr().out
    assert "5 failed" in out
    assert "empty.jpg: empty file" in out and "bomb.png: image too large" in out


def test_unicode_and_non_utf8_names(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    draw_scene(1).save(root / "Ünïcødé 写真 🌅.jpg")
    raw = os.fsencode(root) + b"/caf\xe9-latin1.jpg"  # not valid UTF-8
    draw_scene(2).save(raw.decode("utf-8", "surrogateescape"), "JPEG")
    with Library(tmp_path / "lib") as lib:
        r = lib.scan([root])
        assert r.added == 2 and not r.failed
        paths = sorted(p.path for p in lib.photos())
        assert os.fsdecode(raw) in paths
        assert str(root / "Ünïcødé 写真 🌅.jpg") in paths
        assert lib.scan([root]).unchanged == 2  # round-trips through the database
        assert lib.photo(os.fsdecode(raw)) is not None
        assert imageio.display_path(os.fsdecode(raw)).endswith("caf\\xe9-latin1.jpg")


def test_symlink_loop_and_unreadable_folder(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    write_scenes(root / "a", range(2))
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    locked = root / "private"
    write_scenes(locked, [9])
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    # (running as root in CI, chmod 000 would not stop us reading: simulate the OS refusing)
    monkeypatch.setattr("photosim.pipeline.scan.os.scandir", scandir)
    with Library(tmp_path / "lib") as lib:
        r = lib.scan([root])
        assert r.added == 2
        assert r.unreadable_folders == [(str(locked), "Permission denied")]


def test_file_vanishing_or_changing_mid_scan(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    paths = write_scenes(root, range(6), size=(320, 240))
    real_read = imageio.read_file

    def flaky_read(path):
        if path == str(paths[1]):
            os.remove(path)  # deleted between listing and reading
        if path == str(paths[2]):
            draw_scene(50, (320, 240)).save(path)  # rewritten just before reading
        return real_read(path)

    monkeypatch.setattr("photosim.pipeline.scan.read_file", flaky_read)
    with Library(tmp_path / "lib") as lib:
        r = lib.scan([root])
        assert r.failed == [] and r.added == 5
        assert lib.photo(paths[1]) is None
        monkeypatch.setattr("photosim.pipeline.scan.read_file", real_read)
        # what was recorded is the file as read; a second scan sees nothing new
        assert lib.scan([root]).unchanged == 5


def test_second_writer_is_refused_with_a_clear_message(tmp_path, capsys):
    with Library(tmp_path / "lib"):
        with pytest.raises(LibraryLocked, match="in use by another photosim process"):
            Library(tmp_path / "lib")
        # readers are fine
        with Library(tmp_path / "lib", readonly=True) as reader:
            assert reader.photos() == []
        assert cli_main(["scan", str(tmp_path), "--library", str(tmp_path / "lib")]) == 2
        assert "in use by another photosim process" in capsys.readouterr().err
    Library(tmp_path / "lib").close()  # released on close


def test_old_schema_is_migrated_not_lost(tmp_path):
    from sqlalchemy import text

    from photosim.store.schema import make_engine

    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    engine = make_engine(lib_dir / "library.db")
    with engine.begin() as conn:  # a library as photosim schema 1 wrote it
        MIGRATIONS[0](conn)
        conn.execute(text("INSERT INTO meta VALUES ('schema_version', '1')"))
        conn.execute(text("INSERT INTO photos (id, path, size, mtime_ns, status, scanned_at) "
                          "VALUES (7, :p, 10, 1, 'ok', 0)"), {"p": b"/x/old.jpg"})
    engine.dispose()
    with Library(lib_dir) as lib:
        assert lib.schema_from == 1 and lib.schema_version == len(MIGRATIONS)
        assert lib.photo(7).path == "/x/old.jpg"
        assert lib.albums() == [] and lib.marks() == []
    # a library from a newer photosim is refused, not guessed at
    engine = make_engine(lib_dir / "library.db")
    with engine.begin() as conn:
        conn.execute(text("UPDATE meta SET value='999' WHERE key='schema_version'"))
    engine.dispose()
    with pytest.raises(SchemaTooNew):
        Library(lib_dir)


def test_damaged_or_stale_index_is_rebuilt_from_vectors(tmp_path):
    root = tmp_path / "photos"
    write_scenes(root, range(4), size=(320, 240))
    lib_dir = tmp_path / "lib"
    with Library(lib_dir) as lib:
        lib.scan([root])
        expected = [m.photo.id for m in lib.similar(lib.photos()[0], k=3)]
    for damage in ("truncate", "delete", "json"):
        if damage == "truncate":
            data = (lib_dir / "index.bin").read_bytes()
            (lib_dir / "index.bin").write_bytes(data[: len(data) // 3])
        elif damage == "delete":
            (lib_dir / "index.bin").unlink()
        else:
            (lib_dir / "index.json").write_text("{not json")
        with Library(lib_dir) as lib:
            assert [m.photo.id for m in lib.similar(lib.photos()[0], k=3)] == expected
            assert len(lib.index) == 4


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from photosim import Library
    lib = Library(sys.argv[1])
    def progress(p):
        if p.done >= 8:
            print("ready", flush=True)
    lib.scan([sys.argv[2]], progress=progress, batch_size=4)
    print("finished", flush=True)
    """
)


def test_killed_mid_scan_resumes_consistently(tmp_path):
    root = tmp_path / "photos"
    write_scenes(root, range(60), size=(480, 360))
    lib_dir = tmp_path / "lib"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(lib_dir), str(root)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with Library(lib_dir) as lib:  # the lock died with the process
        partial = len(lib.photos())
        assert 8 <= partial < 60
        assert len(lib.index) == partial  # index rebuilt to match the database
        r = lib.scan([root])
        assert r.unchanged == partial and r.added == 60 - partial
        assert len(lib.photos()) == 60 == len(lib.index)
        ids, vecs = lib.store.vectors.load(lib.encoder_id, lib.card.dim)
        assert len(ids) == 60 and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)


def test_exif_orientation_is_honoured(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    upright = draw_scene(11, (480, 640))
    upright.save(root / "upright.jpg", quality=95)
    # stored sideways, with EXIF saying "rotate 90° clockwise to display"
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R6"
    exif.get_ifd(0x8769)[0x9003] = "2024:07:14 18:32:05"
    sideways.save(root / "sideways.jpg", quality=95, exif=exif.tobytes())
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        s = lib.photo(root / "sideways.jpg")
        assert (s.width, s.height, s.orientation) == (480, 640, 6)
        assert s.taken_at == "2024-07-14T18:32:05" and s.camera == "Canon EOS R6"
        u = lib.photo(root / "upright.jpg")
        assert float(lib.vector(s.id) @ lib.vector(u.id)) > 0.98


def test_heic_is_read(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    root = tmp_path / "photos"
    root.mkdir()
    try:
        pillow_heif.from_pillow(draw_scene(3)).save(root / "iphone.heic", quality=90)
    except Exception as exc:  # pragma: no cover - wheel built without an encoder
        pytest.skip(f"this pillow-heif cannot encode HEIC: {exc}")
    draw_scene(3).save(root / "same.png")
    with Library(tmp_path / "lib") as lib:
        r = lib.scan([root])
        assert r.added == 2 and not r.failed
        heic = lib.photo(root / "iphone.heic")
        assert (heic.width, heic.height) == (640, 480)
        assert lib.similar(heic, k=1)[0].photo.name == "same.png"


def test_huge_photo_decodes_reduced(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    draw_scene(4, (1000, 750)).resize((8000, 6000)).save(root / "big.jpg", quality=80)
    t = time.perf_counter()
    decoded = imageio.read_photo(root / "big.jpg")
    assert max(decoded.image.size) <= imageio.DECODE_SIDE
    assert (decoded.meta.width, decoded.meta.height) == (8000, 6000)
    assert time.perf_counter() - t < 5
