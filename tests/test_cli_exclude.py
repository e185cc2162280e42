"""``photosim exclude`` / ``include`` and the excluded folders in ``photosim info``."""

from __future__ import annotations

import json
import os

from conftest import write_scenes

from photosim.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_exclude_include_and_info(tmp_path, capsys):
    photos = tmp_path / "photos"
    write_scenes(photos / "keep", range(2), size=(96, 72))
    write_scenes(photos / "drafts", range(2, 5), size=(96, 72))
    lib = ["--library", tmp_path / "lib"]
    assert run(capsys, "scan", photos, *lib)[0] == 0
    drafts = photos / "drafts"

    code, text, _ = run(capsys, "exclude", drafts, "--dry-run", *lib)
    assert code == 0 and "would forget 3 photos" in text
    code, text, _ = run(capsys, "info", *lib)
    assert "photos:    5" in text and "excluded:" not in text  # a dry run changes nothing

    code, text, _ = run(capsys, "exclude", drafts, *lib)
    assert code == 0 and f"excluded {drafts}: forgot 3 photos (the files were not touched)" in text
    assert "photosim include" in text and all(p.exists() for p in drafts.iterdir())
    code, text, _ = run(capsys, "info", *lib)
    assert f"excluded:  {drafts}\n" in text and "photos:    2" in text
    code, text, _ = run(capsys, "info", "--json", *lib)
    assert json.loads(text)["excluded"] == [str(drafts)]
    code, text, _ = run(capsys, "scan", *lib)  # a re-scan skips it
    assert code == 0 and "2 photos in" in text and "added 0," in text

    code, _, err = run(capsys, "exclude", drafts, *lib)
    assert code == 2 and "excluded already" in err and err.count("\n") == 1
    code, _, err = run(capsys, "exclude", photos, *lib)
    assert code == 2 and "remove it from the library" in err
    code, _, err = run(capsys, "include", photos / "keep", *lib)
    assert code == 2 and "not an excluded folder" in err

    code, text, _ = run(capsys, "include", drafts, *lib)
    assert code == 0 and "photosim scan" in text
    run(capsys, "scan", *lib)
    code, text, _ = run(capsys, "info", *lib)
    assert "photos:    5" in text and "excluded:" not in text


def test_exclude_on_a_mistyped_library_makes_none(tmp_path, capsys):
    code, _, err = run(capsys, "exclude", tmp_path, "--library", tmp_path / "nope")
    assert code == 2 and "no library at" in err and not (tmp_path / "nope").exists()
    code, _, err = run(capsys, "include", tmp_path, "--library", tmp_path / "nope")
    assert code == 2 and not (tmp_path / "nope").exists()
    assert os.listdir(tmp_path) == []
