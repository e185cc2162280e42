"""Files that could not be read can be retried and ignored (the choice survives re-scans),
and models carry names users give them (issue 18): engine, ``photosim problems`` and
``photosim models rename``."""

from __future__ import annotations

import io
import json
import os
import shutil

import pytest
from conftest import draw_scene, write_scenes

from photosim import Library
from photosim.card import MAX_NAME, check_model_name, default_model_name
from photosim.cli import main
from photosim.errors import PhotosimError, ReadOnlyLibrary


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture
def broken(tmp_path):
    """A library of three readable photos and two that cannot be read."""
    photos = tmp_path / "photos"
    write_scenes(photos, range(3), size=(160, 120))
    (photos / "bad1.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (photos / "bad2.png").write_text("not a photo")
    with Library(tmp_path / "lib") as lib:
        lib.scan([photos])
    return {"photos": photos, "lib": tmp_path / "lib"}


def test_retry_reads_a_fixed_file_into_the_gallery(broken):
    photos = broken["photos"]
    with Library(broken["lib"]) as lib:
        assert sorted(p.name for p in lib.problems.list()) == ["bad1.jpg", "bad2.png"]
        indexed = len(lib.index)
        # bad1 is fixed with the size and mtime it had when it failed: a plain re-scan skips it
        good = io.BytesIO()
        draw_scene(7, (160, 120)).save(good, "JPEG")
        st = (photos / "bad1.jpg").stat()
        (photos / "bad1.jpg").write_bytes(good.getvalue())
        bad = good.getvalue()[:64] + b"\0" * (len(good.getvalue()) - 64)  # same length, no pixels
        (photos / "bad1.jpg").write_bytes(bad)
        os.utime(photos / "bad1.jpg", ns=(st.st_atime_ns, st.st_mtime_ns))
        lib.rescan()
        assert [p.name for p in lib.problems.list()] == ["bad1.jpg", "bad2.png"]
        st = (photos / "bad1.jpg").stat()
        (photos / "bad1.jpg").write_bytes(good.getvalue())
        os.utime(photos / "bad1.jpg", ns=(st.st_atime_ns, st.st_mtime_ns))
        assert lib.rescan().added == 0 and len(lib.problems.list()) == 2  # unchanged to a re-scan
        r = lib.problems.retry()
        assert r.fixed == [str(photos / "bad1.jpg")] and r.gone == []
        assert [p for p, _ in r.failed] == [str(photos / "bad2.png")] and r.failed[0][1]
        assert [p.name for p in lib.problems.list()] == ["bad2.png"]
        fixed = lib.photo(photos / "bad1.jpg")
        assert fixed.ok and fixed in lib.photos()
        assert len(lib.index) == indexed + 1
        assert lib.similar(fixed.id, k=2)


def test_retry_rereads_an_unchanged_file_and_forgets_a_gone_one(broken):
    photos = broken["photos"]
    with Library(broken["lib"]) as lib:
        bad1 = lib.photo(photos / "bad1.jpg")
        (photos / "bad2.png").unlink()
        r = lib.problems.retry([bad1, str(photos / "bad2.png")])
        assert r.fixed == [] and [p for p, _ in r.failed] == [bad1.path]
        assert r.gone == [str(photos / "bad2.png")]
        assert lib.photo(photos / "bad2.png") is None
        assert lib.photos() and lib.count(status="ok") == 3
        with pytest.raises(PhotosimError, match="not among the files that could not be read"):
            lib.problems.retry([lib.photos()[0].path])


def test_ignore_survives_rescans_and_reopening_until_unignored(broken):
    photos = broken["photos"]
    with Library(broken["lib"]) as lib:
        assert lib.problems.ignore([str(photos / "bad2.png")]) == 1
        assert [p.name for p in lib.problems.list()] == ["bad1.jpg"]
        assert [p.name for p in lib.problems.ignored()] == ["bad2.png"]
        (photos / "bad2.png").write_text("still not a photo, and changed")  # read again by the re-scan
        lib.rescan()
        assert [p.name for p in lib.problems.ignored()] == ["bad2.png"]
        assert lib.problems.retry().failed == [(str(photos / "bad1.jpg"), lib.photo(photos / "bad1.jpg").error)]
    with Library(broken["lib"], readonly=True) as lib:
        assert lib.problems.counts() == (1, 1)
        with pytest.raises(ReadOnlyLibrary):
            lib.problems.unignore()
    with Library(broken["lib"]) as lib:
        assert lib.problems.unignore() == 1
        assert lib.problems.counts() == (2, 0)
        with pytest.raises(PhotosimError, match="not among"):
            lib.problems.ignore([str(photos / "scene_000.jpg")])


def test_problems_cli(broken, capsys):
    lib, photos = broken["lib"], broken["photos"]
    code, out, _ = run(capsys, "problems", "--library", lib)
    assert code == 0 and "bad1.jpg" in out and "bad2.png" in out
    code, out, _ = run(capsys, "problems", "--ignore", photos / "bad1.jpg", "--library", lib)
    assert code == 0 and "ignored 1 file" in out
    code, out, _ = run(capsys, "problems", "--json", "--library", lib)
    data = json.loads(out)
    assert [p["path"] for p in data["problems"]] == [str(photos / "bad2.png")]
    assert [p["path"] for p in data["ignored"]] == [str(photos / "bad1.jpg")]
    code, out, _ = run(capsys, "info", "--library", lib)
    assert "1 of them ignored" in out and "bad1.jpg" not in out and "bad2.png" in out
    shutil.copy(photos / "scene_000.jpg", photos / "bad2.png")
    code, out, _ = run(capsys, "problems", "--retry", "--library", lib)
    assert code == 0 and "1 fixed" in out and "bad2.png" in out
    code, out, _ = run(capsys, "problems", "--unignore", "--library", lib)
    assert code == 0 and "1 file listed again" in out
    code, _, err = run(capsys, "problems", "--ignore", photos / "scene_001.jpg", "--library", lib)
    assert code == 2 and "not among the files that could not be read" in err


# -- model names ----------------------------------------------------------------------------
def test_default_name_and_name_checks():
    assert default_model_name(3, 0, "2026-12-01T08:02:44.123456+00:00") == "Tuned on 3 albums, 1 Dec"
    assert default_model_name(1, 4, None) == "Tuned on 1 album and 4 marks"
    assert default_model_name(0, 1, None) == "Tuned on 1 mark"
    assert check_model_name("  Beach   photos ") == "Beach photos"
    with pytest.raises(PhotosimError, match="needs a name"):
        check_model_name("   ")
    with pytest.raises(PhotosimError, match=f"at most {MAX_NAME} characters"):
        check_model_name("x" * (MAX_NAME + 1))
    with pytest.raises(PhotosimError, match="already called"):
        check_model_name("beach", {"Beach"})
    with pytest.raises(PhotosimError, match="control characters"):
        check_model_name("a\x00b")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A library with two albums and one quick fine-tune (not active)."""
    root = tmp_path_factory.mktemp("names")
    write_scenes(root / "albums" / "a", range(6), size=(160, 120))
    write_scenes(root / "albums" / "b", range(50, 56), size=(160, 120))
    with Library(root / "lib") as lib:
        lib.import_albums(root / "albums")
        result = lib.finetune(epochs=1)
    return root, result


def test_a_finetune_is_named_and_can_be_renamed(tuned, tmp_path, capsys):
    root, result = tuned
    shutil.copytree(root / "lib", tmp_path / "lib")
    with Library(tmp_path / "lib") as lib:
        assert result.name.startswith("Tuned on 2 albums, ")
        models = {m.id: m for m in lib.models()}
        assert models[result.model_id].name == result.name
        assert models[lib.encoder_id].name == "Bundled encoder"
        second = lib.finetune(epochs=1)
        assert second.name == result.name + " (2)"  # unique among the library's models
        assert lib.rename_model(result.model_id, "  Holiday  albums ") == "Holiday albums"
        with pytest.raises(PhotosimError, match="already called"):
            lib.rename_model(second.model_id, "holiday albums")
        with pytest.raises(PhotosimError, match="needs a name"):
            lib.rename_model(second.model_id, "")
        with pytest.raises(PhotosimError, match="keeps its name"):
            lib.rename_model(lib.encoder_id, "Mine")
        lib.use_model(result.model_id)
        assert lib.card.display_name == "Holiday albums" and lib.info().model_name == "Holiday albums"
        assert lib.encoder_id == result.model_id  # the id stays the id
    card = json.loads((tmp_path / "lib" / "models" / result.model_id / "card.json").read_text())
    assert card["name"] == "Holiday albums" and card["id"] == result.model_id
    code, out, _ = run(capsys, "models", "list", "--library", tmp_path / "lib")
    assert code == 0 and "Holiday albums" in out and result.model_id in out
    code, out, _ = run(capsys, "info", "--library", tmp_path / "lib")
    assert "model:     Holiday albums (" in out
    code, out, _ = run(capsys, "models", "rename", second.model_id, "Second", "try", "--library", tmp_path / "lib")
    assert code == 0 and "Second try" in out
    code, _, err = run(capsys, "models", "rename", second.model_id, "x" * 61, "--library", tmp_path / "lib")
    assert code == 2 and "at most 60 characters" in err
    with Library(tmp_path / "lib", readonly=True) as lib:
        assert {m.name for m in lib.models()} >= {"Holiday albums", "Second try"}
        with pytest.raises(ReadOnlyLibrary):
            lib.rename_model(second.model_id, "Third")
