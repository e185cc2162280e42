"""The command line says what is wrong in one sentence, never a traceback, and never
makes a library by accident (issue 17; the commands live in photosim/commands/, issue 11)."""

from __future__ import annotations

import ast
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from photosim import Library
from photosim.cli import build_parser, main

from conftest import draw_scene, write_scenes

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> dict:
    """One library of six photos (two folders), a failed file and a photo whose name
    holds a newline and an escape sequence; scanned once for the read-only tests."""
    base = tmp_path_factory.mktemp("cli")
    photos = base / "photos"
    write_scenes(photos / "trip", range(3), size=(200, 150))
    write_scenes(photos / "home", range(3, 6), size=(200, 150))
    odd = photos / "home" / "line\nbreak\x1b[31m.jpg"
    shutil.copy(photos / "trip" / "scene_000.jpg", odd)
    (photos / "broken.jpg").write_text("not a photo")
    with Library(base / "lib") as lib:
        lib.scan([photos])
    return {"base": base, "photos": photos, "lib": base / "lib", "odd": odd}


def _lib(d: dict) -> list[str]:
    return ["--library", str(d["lib"])]


# -- layout ---------------------------------------------------------------------------------
def test_every_command_lives_in_photosim_commands_and_common_options_are_defined_once():
    tree = ast.parse((ROOT / "photosim" / "cli.py").read_text())
    assert not [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("cmd_")]
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = list(sub.choices)
    assert names[:5] == ["scan", "similar", "duplicates", "export-vectors", "info"]
    for name, p in sub.choices.items():
        func = p.get_default("func")
        assert func.__module__.startswith("photosim.commands."), name
        assert {"--library", "--device"} <= set(p._option_string_actions), name
    defined = sum(path.read_text().count('add_argument("--library"')
                  for path in [ROOT / "photosim" / "cli.py", *(ROOT / "photosim" / "commands").glob("*.py")])
    assert defined == 1


# -- no library by accident -------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["similar", "{photo}"], ["info"], ["duplicates"], ["export-vectors", "{out}"], ["models", "list"],
    ["models", "use", "ft-x"], ["models", "revert"], ["eval", "{albums}"], ["finetune"],
])
def test_a_mistyped_library_is_an_error_not_a_new_library(tmp_path, capsys, scanned, argv):
    typo = tmp_path / "libary"
    argv = [a.format(photo=scanned["odd"], out=tmp_path / "v.npz", albums=scanned["photos"]) for a in argv]
    code, out, err = run(capsys, *argv, "--library", typo)
    assert code == 2 and out == ""
    assert err == (f"photosim: no library at {typo}; `photosim scan DIR --library {typo}` creates one\n")
    assert not typo.exists()


def test_only_scan_creates_a_library_and_scan_without_a_folder_rescans(tmp_path, capsys):
    photos = tmp_path / "photos"
    write_scenes(photos, range(2), size=(160, 120))
    lib = tmp_path / "lib"
    code, _, err = run(capsys, "scan", "--library", lib)
    assert code == 2 and "give a folder to scan" in err and not lib.exists()
    code, _, err = run(capsys, "scan", tmp_path / "nope", "--library", lib)
    assert code == 2 and "no such folder" in err and not lib.exists()
    assert run(capsys, "scan", photos, "--library", lib)[0] == 0
    write_scenes(photos, [9], size=(160, 120))
    code, out, _ = run(capsys, "scan", "--library", lib)  # no folder: the library's own folders
    assert code == 0 and out.startswith(f"3 photos in {lib}") and "added 1," in out


def test_added_does_not_count_failed_files(tmp_path, capsys):
    photos = tmp_path / "photos"
    write_scenes(photos, range(2), size=(160, 120))
    for i in range(3):
        (photos / f"bad{i}.jpg").write_bytes(os.urandom(100))
    code, out, _ = run(capsys, "scan", photos, "--library", tmp_path / "lib")
    assert code == 0 and "added 2," in out and "failed 3" in out and out.count("  failed: ") == 3
    code, out, _ = run(capsys, "scan", photos, "--library", tmp_path / "lib2", "--json")
    report = json.loads(out)
    assert report["added"] == 2 and len(report["failed"]) == 3


def test_a_library_placed_among_photos_is_warned_about_or_refused(tmp_path, capsys):
    photos = tmp_path / "photos"
    write_scenes(photos, range(2), size=(160, 120))
    code, out, err = run(capsys, "scan", photos, "--library", photos / "lib")
    assert code == 0 and out.startswith("2 photos")
    assert "is inside the folder it scans" in err
    # the library would be the scanned folder itself: nothing would be read
    code, out, err = run(capsys, "scan", photos, "--library", photos)
    assert code == 2 and "nothing would be scanned" in err and not (photos / "library.db").exists()
    other = tmp_path / "other"
    write_scenes(other, [5], size=(160, 120))
    code, out, err = run(capsys, "scan", other, "--library", photos)
    assert code == 0 and out.startswith("1 photos")
    assert "holds 2 photos: the library's files (library.db, index files, models/) are written among them" in err


# -- similar ---------------------------------------------------------------------------------
def test_similar_of_a_missing_path_a_url_or_a_folder(capsys, scanned, tmp_path):
    missing = tmp_path / "missing.jpg"
    code, out, _ = run(capsys, "similar", missing, "https://example.org/cat.jpg", tmp_path,
                       scanned["photos"] / "trip" / "scene_001.jpg", "-k", "2", *_lib(scanned))
    assert code == 1
    lines = out.splitlines()
    assert lines[:2] == [str(missing), "  error: no such file"]
    assert lines[2:4] == ["https://example.org/cat.jpg",
                          "  error: URLs are not supported: download the image and give the path of the file"]
    assert lines[5] == "  error: is a folder, not an image file"
    assert lines[6].endswith("scene_001.jpg") and len(lines) == 9  # two results for the real one
    assert "disappeared" not in out
    code, out, _ = run(capsys, "similar", missing, "--json", *_lib(scanned))
    assert code == 1 and json.loads(out) == [{"query": str(missing), "results": [], "error": "no such file"}]


@pytest.mark.parametrize("argv, words", [
    (["similar", "x.jpg", "-k", "0"], "argument -k: must be a whole number of at least 1, not '0'"),
    (["similar", "x.jpg", "-k", "-1"], "argument -k: must be a whole number of at least 1, not '-1'"),
    (["similar", "x.jpg", "-k", "many"], "argument -k: must be a whole number of at least 1"),
    (["similar", "x.jpg", "--min-score", "nan"], "argument --min-score: must be a cosine similarity"),
    (["similar", "x.jpg", "--min-score", "1.5"], "argument --min-score: must be a cosine similarity"),
    (["duplicates", "--threshold", "inf"], "argument --threshold: must be a cosine similarity"),
    (["eval", "d", "--near-dup-sample", "-3"], "must be a whole number of at least 0"),
    (["finetune", "--epochs", "0"], "argument --epochs: must be a whole number of at least 1"),
])
def test_meaningless_numbers_are_refused(capsys, argv, words):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_paths_with_newlines_and_escapes_are_printed_escaped(capsys, scanned):
    code, out, _ = run(capsys, "similar", scanned["odd"], "-k", "1", *_lib(scanned))
    assert code == 0
    assert out.splitlines()[0] == str(scanned["odd"]).replace("\n", "\\n").replace("\x1b", "\\x1b")
    assert "\x1b" not in out and len(out.splitlines()) == 2
    code, out, _ = run(capsys, "duplicates", *_lib(scanned))
    assert "line\\nbreak\\x1b[31m.jpg" in out and "\x1b" not in out


def test_an_empty_library_says_to_scan_first(tmp_path, capsys, scanned):
    Library(tmp_path / "empty").close()
    for argv in (["similar", scanned["odd"]], ["duplicates"]):
        code, out, err = run(capsys, *argv, "--library", tmp_path / "empty")
        assert code == 2 and out == ""
        assert err == f"photosim: the library {tmp_path / 'empty'} has no photos yet: run `photosim scan DIR` first\n"
    code, out, _ = run(capsys, "info", "--library", tmp_path / "empty")
    assert code == 0 and "run `photosim scan DIR`" in out


def test_duplicates_name_the_keeper_in_words(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    draw_scene(1, (640, 480)).save(photos / "original.jpg", quality=95)
    draw_scene(1, (640, 480)).resize((320, 240)).save(photos / "small-copy.jpg", quality=90)
    draw_scene(2, (640, 480)).save(photos / "other.jpg")
    assert run(capsys, "scan", photos, "--library", tmp_path / "lib")[0] == 0
    code, out, _ = run(capsys, "duplicates", "--library", tmp_path / "lib")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"group 1, near copies (2 photos): keep {photos / 'original.jpg'} (larger: 640×480 vs 320×240)"
    assert lines[1].startswith("  keep ") and lines[2].startswith("  copy ") and "small-copy.jpg" in lines[2]
    code, out, _ = run(capsys, "duplicates", "--json", "--library", tmp_path / "lib")
    group = json.loads(out)[0]
    assert group["tier"] == "near" and group["keeper"] == str(photos / "original.jpg")
    assert [p["keep"] for p in group["photos"]] == [True, False]
    assert group["photos"][1]["reasons"][0].startswith("same photo:")


# -- export-vectors ---------------------------------------------------------------------------
def test_export_to_a_folder_or_a_missing_folder_leaves_nothing(tmp_path, capsys, scanned):
    code, _, err = run(capsys, "export-vectors", tmp_path, *_lib(scanned))
    assert code == 2 and err == (f"photosim: {tmp_path} is a folder; give the file to write, e.g. "
                                 f"{tmp_path / 'vectors.npz'}\n")
    code, _, err = run(capsys, "export-vectors", tmp_path / "no" / "v.npz", *_lib(scanned))
    assert code == 2 and "the folder" in err and "does not exist" in err
    assert list(tmp_path.iterdir()) == []
    code, out, _ = run(capsys, "export-vectors", tmp_path / "v.npz", *_lib(scanned))
    assert code == 0 and out.startswith("wrote 7 vectors") and [p.name for p in tmp_path.iterdir()] == ["v.npz"]


def test_a_full_disk_during_export_is_one_sentence_and_no_temp_file(tmp_path, capsys, scanned, monkeypatch):
    import numpy as np

    def full(file, **arrays):
        if hasattr(file, "write"):
            file.write(b"partial")
        else:
            Path(file).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(getattr(file, "name", file)))

    monkeypatch.setattr(np, "savez", full)
    code, out, err = run(capsys, "export-vectors", tmp_path / "v.npz", *_lib(scanned))
    assert code == 2 and out == ""
    assert err.startswith("photosim: the disk is full (") and "free some space" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


# -- damaged library, full disk, closed pipe, Ctrl-C --------------------------------------------
@pytest.mark.parametrize("damage", ["garbage-header", "truncated"])
def test_a_damaged_library_db_is_one_sentence(tmp_path, capsys, scanned, damage):
    lib = tmp_path / "lib"
    shutil.copytree(scanned["lib"], lib)
    db = lib / "library.db"
    if damage == "garbage-header":
        data = bytearray(db.read_bytes())
        data[:100] = os.urandom(100)
        db.write_bytes(bytes(data))
    else:
        os.truncate(db, db.stat().st_size // 2)
    for argv in (["info"], ["similar", scanned["odd"]], ["scan", scanned["photos"]]):
        code, out, err = run(capsys, *argv, "--library", lib)
        assert code == 2 and out == "", argv
        assert err.startswith(f"photosim: the library database {db} is damaged (") and err.count("\n") == 1
        assert "your photos are not touched" in err and f"move {lib} aside" in err
        assert "Traceback" not in err and "sqlalche.me" not in err


def test_a_full_disk_during_a_scan_is_one_sentence(tmp_path, capsys, monkeypatch):
    from sqlalchemy.exc import OperationalError

    photos = tmp_path / "photos"
    write_scenes(photos, [1], size=(160, 120))
    for exc in (OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "lib" / "index.json.tmp")),
                OperationalError("INSERT ...", {}, Exception("database or disk is full"))):
        def scan(self, *a, _exc=exc, **kw):
            raise _exc

        monkeypatch.setattr(Library, "scan", scan)
        code, out, err = run(capsys, "scan", photos, "--library", tmp_path / "lib")
        assert code == 2 and "full" in err and "free some space" in err and err.count("\n") == 1


def test_a_closed_stdout_ends_quietly(capsys, scanned, monkeypatch):
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["info", *_lib(scanned)]) == 141
    assert capsys.readouterr().err == ""


def test_piping_into_a_reader_that_quits_prints_no_traceback(scanned):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "photosim.cli", "info", *_lib(scanned)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # like `| head -n0`: the reader is gone before photosim writes
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141
    assert err == ""


def test_ctrl_c_during_a_scan_keeps_what_was_read_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from photosim.commands import _common, scan

    photos = tmp_path / "photos"
    write_scenes(photos, range(40), size=(96, 72))

    class InterruptingBar(_common.ProgressBar):
        sent = False

        def __call__(self, p):
            if p.stage == "scanning" and p.done >= 1 and not InterruptingBar.sent:
                InterruptingBar.sent = True
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    monkeypatch.setattr(scan, "ProgressBar", InterruptingBar)
    code, out, err = run(capsys, "scan", photos, "--library", tmp_path / "lib")
    assert code == 130
    assert out.startswith("scan cancelled: ")
    assert f"run `photosim scan {photos} --library {tmp_path / 'lib'}` again to resume" in out
    assert "stopping after the current batch" in err
    with Library(tmp_path / "lib") as lib:
        kept = len(lib.photos())
    assert kept < 40 and f"{kept} photos are in" in out
    monkeypatch.setattr(scan, "ProgressBar", _common.ProgressBar)
    code, out, _ = run(capsys, "scan", photos, "--library", tmp_path / "lib")
    assert code == 0 and out.startswith("40 photos") and f"unchanged {kept}," in out


# -- eval, finetune, models --------------------------------------------------------------------
def test_eval_of_an_empty_folder_or_a_single_album_is_an_error(tmp_path, capsys, scanned):
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "eval", tmp_path / "empty", *_lib(scanned))
    assert code == 2 and out == "" and "no photos to evaluate" in err
    write_scenes(tmp_path / "one" / "album", range(3), size=(96, 72))
    code, out, err = run(capsys, "eval", tmp_path / "one", *_lib(scanned))
    assert code == 2 and out == "" and "at least two albums" in err and "found 1" in err


def test_finetune_does_not_say_nothing_changed_after_scanning_the_albums(tmp_path, capsys):
    albums = tmp_path / "albums"
    write_scenes(albums / "only-one", range(3), size=(96, 72))
    code, out, err = run(capsys, "finetune", "--albums", albums, "--library", tmp_path / "lib")
    assert code == 2
    assert "Nothing was changed" not in err
    assert "The albums were scanned into the library (3 photos, 1 album, kept) but no model was made" in err
    with Library(tmp_path / "lib") as lib:
        assert len(lib.photos()) == 3


@pytest.mark.parametrize("model_id", ["../../x", "/tmp/x", "a/b", ".hidden"])
def test_models_use_refuses_a_path(capsys, scanned, model_id):
    for action in ("use", "delete"):
        code, _, err = run(capsys, "models", action, model_id, *_lib(scanned))
        assert code == 2 and "is not a model ID: IDs are names" in err


def test_a_damaged_card_of_the_active_model_is_no_traceback(tmp_path, capsys, scanned):
    lib = tmp_path / "lib"
    shutil.copytree(scanned["lib"], lib)
    (lib / "models" / "ft-broken").mkdir(parents=True)
    (lib / "models" / "ft-broken" / "card.json").write_text("[1, 2]")
    import sqlite3

    with sqlite3.connect(lib / "library.db") as db:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('encoder_id', '\"ft-broken\"')")
    code, out, err = run(capsys, "models", "list", "--library", lib)
    assert code == 0 and "ft-broken" in out and "cannot be used: the model card" in out
    code, out, _ = run(capsys, "info", "--library", lib)
    assert code == 0 and "photos:    8 (7 indexed, 1 failed)" in out
    code, _, err = run(capsys, "models", "use", "ft-broken", "--library", lib)
    assert code == 2 and "is not usable: it holds a list" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_similar_of_a_named_pipe_answers_at_once(tmp_path, scanned):
    fifo = tmp_path / "some-fifo.jpg"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run([sys.executable, "-m", "photosim.cli", "similar", str(fifo), *_lib(scanned)],
                              capture_output=True, text=True, env=env, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("photosim similar blocked on a named pipe")
    assert proc.returncode == 1 and proc.stderr == ""
    assert proc.stdout == f"{fifo}\n  error: not a regular file (a named pipe): not read\n"


def test_a_permission_problem_is_one_sentence(tmp_path, capsys, monkeypatch):
    photos = tmp_path / "photos"
    write_scenes(photos, [1], size=(160, 120))

    def scan(self, *a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "lib" / "lock"))

    monkeypatch.setattr(Library, "scan", scan)
    code, out, err = run(capsys, "scan", photos, "--library", tmp_path / "lib")
    assert code == 2 and out == ""
    assert err == (f"photosim: permission denied ({tmp_path / 'lib' / 'lock'}): what was saved before is kept; "
                   "this command needs to write there (similar, info and duplicates only read)\n")
