"""``photosim copies-of PATH``: an edited copy lists its original first (issue #13), a photo
without copies says so, and a path that is not a library photo is one sentence (exit 1)."""

from __future__ import annotations

import json

import pytest

from photosim import Library
from photosim.cli import main

from conftest import draw_scene, write_copy_set


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> dict:
    """An original, a resized and re-encoded copy, an 80 % crop, and three other photos."""
    base = tmp_path_factory.mktemp("copies")
    photos = base / "photos"
    write_copy_set(photos, (7, 8, 9))
    draw_scene(10, (800, 600)).save(base / "outside.jpg")
    (photos / "broken.jpg").write_text("not a photo")
    with Library(base / "lib") as lib:
        lib.scan([photos])
    return {"base": base, "photos": photos, "lib": ["--library", str(base / "lib")]}


@pytest.mark.parametrize("copy", ["small.jpg", "crop80.jpg"])
def test_an_edited_copy_lists_its_original_first(capsys, copies, copy):
    photos = copies["photos"]
    code, out, err = run(capsys, "copies-of", photos / copy, *copies["lib"])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == str(photos / copy)
    assert lines[1].startswith("  original  ") and "  800x600  " in lines[1]
    assert f"  {photos / 'original.jpg'}  (holds all of this photo" in lines[1] and "same photo:" in lines[1]
    assert all(line.startswith("  copy      ") for line in lines[2:])
    listed = [line.split()[3] for line in lines[1:]]
    assert set(listed) <= {str(photos / n) for n in ("original.jpg", "small.jpg", "crop80.jpg")} - {str(photos / copy)}
    assert len(listed) == 2  # the original and the other edited copy, never another photo

    code, out, _ = run(capsys, "copies-of", photos / copy, "--json", *copies["lib"])
    found = json.loads(out)
    assert code == 0 and found[0]["path"] == str(photos / "original.jpg")
    assert found[0]["reasons"][0].startswith("holds all of this photo")
    assert (found[0]["width"], found[0]["height"]) == (800, 600)
    assert set(found[0]) == {"path", "score", "reasons", "size", "width", "height", "holds", "resolution", "source"}
    assert found[0]["source"] and found[0]["holds"] == 1.0 and not any(f["source"] for f in found[1:])
    assert all(-1.0 <= f["score"] <= 1.0 for f in found)


def test_a_crop_held_by_its_original_says_how_much(capsys, copies):
    photos = copies["photos"]
    code, out, _ = run(capsys, "copies-of", photos / "original.jpg", "--json", *copies["lib"])
    found = {f["path"]: f for f in json.loads(out)}
    assert code == 0 and set(found) == {str(photos / "small.jpg"), str(photos / "crop80.jpg")}
    crop, small = found[str(photos / "crop80.jpg")], found[str(photos / "small.jpg")]
    assert crop["reasons"][0].startswith("holds 64% of this photo") and crop["holds"] == pytest.approx(0.64, abs=0.03)
    assert "at 50% of its resolution" in small["reasons"][0] and small["resolution"] == pytest.approx(0.5, abs=0.03)
    assert not crop["source"] and not small["source"]
    code, out, _ = run(capsys, "copies-of", photos / "original.jpg", *copies["lib"])
    assert out.splitlines()[-1] == "  none holds all of it at its resolution or more: it is probably the original"


def test_a_photo_without_copies_says_so(capsys, copies):
    code, out, err = run(capsys, "copies-of", copies["photos"] / "other7.jpg", "-k", "4", *copies["lib"])
    assert code == 0 and err == ""
    assert out.splitlines() == [str(copies["photos"] / "other7.jpg"), "  no verified copies among its 4 nearest photos"]
    code, out, _ = run(capsys, "copies-of", copies["photos"] / "other7.jpg", "--json", *copies["lib"])
    assert code == 0 and json.loads(out) == []


def test_a_path_that_is_no_library_photo_is_one_sentence(capsys, copies, tmp_path):
    base = copies["base"]
    code, out, err = run(capsys, "copies-of", base / "outside.jpg", *copies["lib"])
    assert code == 1 and out == ""
    assert err == (f"photosim: {base / 'outside.jpg'} is not in the library: `photosim scan` its folder to add "
                   f"it, or `photosim similar {base / 'outside.jpg'}` to search with it as it is\n")
    code, out, err = run(capsys, "copies-of", tmp_path / "nope.jpg", *copies["lib"])
    assert code == 1 and out == "" and err.count("\n") == 1 and "no such file" in err
    code, out, err = run(capsys, "copies-of", copies["photos"], *copies["lib"])
    assert code == 1 and out == "" and "is a folder" in err
    code, out, err = run(capsys, "copies-of", copies["photos"] / "broken.jpg", *copies["lib"])
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "broken.jpg could not be read when it was scanned (" in err
    code, out, err = run(capsys, "copies-of", copies["photos"] / "small.jpg", "--library", tmp_path / "typo")
    assert code == 2 and out == "" and err.startswith(f"photosim: no library at {tmp_path / 'typo'}")
    assert not (tmp_path / "typo").exists()


def test_similar_with_copies_first_lists_the_verified_copies_first(capsys, copies):
    photos = copies["photos"]
    code, out, err = run(capsys, "similar", photos / "crop80.jpg", "--copies-first", "-k", "4", *copies["lib"])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == str(photos / "crop80.jpg") and len(lines) == 5
    assert lines[1].endswith(f"  {photos / 'original.jpg'}  (verified copy)")
    marked = [line for line in lines[1:] if line.endswith("(verified copy)")]
    assert lines[1:1 + len(marked)] == marked and len(marked) == 2  # the original, the small copy
    code, out, _ = run(capsys, "similar", photos / "crop80.jpg", "--copies-first", "-k", "4", "--json",
                       *copies["lib"])
    found = json.loads(out)[0]["results"]
    assert code == 0 and [f.get("copy", False) for f in found] == [True, True, False, False]
    assert found[0]["path"] == str(photos / "original.jpg") and found[0]["reasons"]
    assert not any("reasons" in f for f in found[2:])
    # the default is the same (as the app lists them); --no-copies-first: the cosine's order, no copy marked
    code, out, _ = run(capsys, "similar", photos / "crop80.jpg", "-k", "4", "--json", *copies["lib"])
    assert code == 0 and json.loads(out)[0]["results"] == found
    code, out, _ = run(capsys, "similar", photos / "crop80.jpg", "-k", "4", "--json", "--no-copies-first",
                       *copies["lib"])
    plain = json.loads(out)[0]["results"]
    assert not any("copy" in f for f in plain)
    assert [f["score"] for f in plain] == sorted((f["score"] for f in plain), reverse=True)
    assert {f["path"] for f in plain} == {f["path"] for f in found}


def test_an_image_from_outside_gets_its_verified_copies_first_too(capsys, copies, tmp_path):
    """A dropped or pasted copy (a file, its bytes, a PIL image): the photo it was made from
    first, compared as it is, never added to the library."""
    from PIL import Image

    from photosim.values import CopyMatch

    photos = copies["photos"]
    with Image.open(photos / "original.jpg") as im:
        crop = im.convert("RGB").crop((40, 30, 660, 495))  # 77 % of its sides, past crop80.jpg's
    crop.save(tmp_path / "crop.jpg", quality=80)
    code, out, err = run(capsys, "similar", tmp_path / "crop.jpg", "--copies-first", "-k", "4", *copies["lib"])
    lines = out.splitlines()
    assert code == 0 and err == "" and lines[0] == str(tmp_path / "crop.jpg")
    assert lines[1].endswith(f"  {photos / 'original.jpg'}  (verified copy)")
    assert not any("other" in line and "(verified copy)" in line for line in lines)
    with Library(copies["base"] / "lib", readonly=True) as lib:
        n = lib.count()
        for image in ((tmp_path / "crop.jpg").read_bytes(), crop, [str(tmp_path / "crop.jpg")]):
            found = (lib.similar_to_images(image, k=4, copies_first=True) if isinstance(image, list)
                     else lib.similar_to_image(image, k=4, copies_first=True))
            assert found[0].photo.name == "original.jpg" and isinstance(found[0], CopyMatch)
            assert found[0].source and found[0].reasons[0].startswith("holds all of this photo")
            assert not any(isinstance(m, CopyMatch) for m in found if m.photo.name.startswith("other"))
            plain = lib.similar_to_image(crop, k=4)
            assert {m.photo.id for m in plain} == {m.photo.id for m in found}
            assert not any(isinstance(m, CopyMatch) for m in plain)
        assert lib.count() == n  # nothing added
