"""Library management in the app (issue 18): the problems panel (show in the file manager,
try again, ignore / un-ignore) and Undo after a move to the trash, restored from a
freedesktop trash in a temporary XDG_DATA_HOME through the real send2trash."""

from __future__ import annotations

import io
import os
import stat

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from conftest import draw_scene, open_window, scoped_env, write_scenes  # noqa: E402
from conftest import spin_until as _spin_until  # noqa: E402

WAIT = 60_000
SHOTS = os.environ.get("PHOTOSIM_UX_SHOTS")  # a folder: save screenshots of the screens tested


def _shot(widget, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        widget.grab().save(os.path.join(SHOTS, name))


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Six photos and three files that cannot be read, scanned; settings, cache and the
    freedesktop trash in the test's folder (send2trash's module-level paths follow)."""
    from send2trash import plat_other

    from photosim import Library

    photos = tmp_path / "photos"
    write_scenes(photos, range(6), size=(160, 120))
    for name in ("bad1.jpg", "bad2.jpg", "bad3.png"):
        (photos / name).write_bytes(b"\xff\xd8\xff\xe0 not a photo " + name.encode())
    data = tmp_path / "xdg"
    data.mkdir()
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(data / "Trash"))
    monkeypatch.setattr(plat_other, "get_dev", lambda _p: 1)  # every file "on the home volume"
    with scoped_env(XDG_DATA_HOME=str(data), PHOTOSIM_SETTINGS=str(tmp_path / "settings.ini"),
                    PHOTOSIM_CACHE_DIR=str(tmp_path / "cache")):
        with Library(tmp_path / "lib") as lib:
            lib.scan([photos])
        yield {"photos": photos, "lib": tmp_path / "lib", "trash": data / "Trash", "tmp": tmp_path}


@pytest.fixture
def window(env, qapp):
    w = open_window(env["lib"])
    yield w
    w.close()


def _fix(path, seed=9):
    """Replace a broken file by a photo (the user fixed it)."""
    buf = io.BytesIO()
    draw_scene(seed, (160, 120)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue())


def test_problems_panel_retry_ignore_and_unignore(qtbot, window, env):
    photos = env["photos"]
    w = window
    p = w.problems
    assert "3 files could not be read" in w.problems_button.text() and p.count() == 3
    w.problems_button.click()
    assert w.problems_dock.isVisible()
    assert not p.retry_btn.isEnabled() and not p.ignore_btn.isEnabled()  # nothing selected
    _shot(w, "problems-panel.png")

    # Try again on two selected rows: the fixed one leaves the list and joins the gallery
    _fix(photos / "bad1.jpg")
    p.select_paths([str(photos / "bad1.jpg"), str(photos / "bad2.jpg")])
    assert sorted(p.selected_paths()) == [str(photos / "bad1.jpg"), str(photos / "bad2.jpg")]
    assert p.retry_btn.isEnabled() and p.ignore_btn.isEnabled() and p.reveal_btn.isEnabled()
    menu = p.build_menu()
    assert [a.text() for a in menu.actions()] == ["Show in file manager", "Try again (2 files)", "Ignore"]
    rows = w.model.rowCount()
    with qtbot.waitSignal(p.changed, timeout=WAIT) as changed:
        p.retry_btn.click()
    assert changed.args[0] == [str(photos / "bad1.jpg")]
    assert "1 file read fine now and joined the gallery" in p.status.text()
    assert "1 file still cannot be read" in p.status.text()
    qtbot.waitUntil(lambda: w.model.rowCount() == rows + 1, timeout=WAIT)
    assert w.model.row_of(str(photos / "bad1.jpg")) is not None
    # the problems list comes with the library's info, read in a job of its own after the gallery's
    qtbot.waitUntil(lambda: p.count() == 2, timeout=WAIT)
    assert "2 files could not be read" in w.problems_button.text()
    assert w.library_label.text().startswith("7 photos")

    # Ignore: out of the list, counted, kept across a re-scan; un-ignore brings it back
    p.select_paths([str(photos / "bad3.png")])
    with qtbot.waitSignal(p.changed, timeout=WAIT):
        p.ignore_btn.click()
    qtbot.waitUntil(lambda: p.count() == 1 and p.ignored_count() == 1, timeout=WAIT)
    assert "1 file could not be read" in w.problems_button.text()
    assert p.show_ignored.isVisible() and p.show_ignored.text() == "Show 1 ignored"
    with qtbot.waitSignal(w.service.scanFinished, timeout=WAIT):
        assert w.start_scan(None)
    qtbot.waitUntil(lambda: not w.service.busy, timeout=WAIT)
    qtbot.waitUntil(lambda: p.count() == 1 and p.ignored_count() == 1, timeout=WAIT)  # the re-scan kept it ignored
    p.show_ignored.setChecked(True)
    assert p.count() == 2 and p.unignore_btn.isVisible()
    ignored_row = next(r for r in range(p.count()) if p.table.item(r, 0).text().endswith("bad3.png"))
    assert p.table.item(ignored_row, 1).text().startswith("ignored · ")
    _shot(w.problems_dock, "problems-ignored.png")
    p.select_paths([str(photos / "bad3.png")])
    assert p.unignore_btn.isEnabled() and not p.ignore_btn.isEnabled()
    with qtbot.waitSignal(p.changed, timeout=WAIT):
        p.unignore_btn.click()
    qtbot.waitUntil(lambda: p.ignored_count() == 0 and "2 files could not be read" in w.problems_button.text(),
                    timeout=WAIT)


def test_show_in_file_manager_tries_the_file_manager_then_xdg_open_then_says_so(qtbot, tmp_path, qapp,
                                                                                monkeypatch):
    from photosim.gui.reveal import Revealer, reveal_commands

    target = tmp_path / "pics" / "a,b.jpg"
    target.parent.mkdir()
    target.write_bytes(b"x")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.txt"

    def tool(name, code):
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit {code}\n')
        path.chmod(path.stat().st_mode | stat.S_IEXEC)

    monkeypatch.setenv("PATH", str(bin_dir))
    assert reveal_commands([str(target)], "linux") == []
    r = Revealer()
    failed, shown = [], []
    r.failed.connect(failed.append)
    r.shown.connect(shown.append)
    r.reveal([str(target)])  # nothing that can show it: one clear sentence, no exception
    assert _spin_until(lambda: failed, 10)
    assert "Nothing on this system could show the file" in failed[0] and str(target.parent) in failed[0]

    tool("dbus-send", 1)  # no file manager answers the D-Bus call
    tool("xdg-open", 0)
    failed.clear()
    r.reveal([str(target)])
    assert _spin_until(lambda: shown or failed, 10)
    assert shown == ["xdg-open"] and not failed
    calls = log.read_text().splitlines()
    assert calls[0].startswith("dbus-send ") and "ShowItems" in calls[0]
    assert "a%2Cb.jpg" in calls[0]  # a comma in a name cannot split dbus-send's array
    assert calls[1] == f"xdg-open {target.parent}"

    tool("dbus-send", 0)  # a file manager selects the file itself
    shown.clear()
    r.reveal([str(target)])
    assert _spin_until(lambda: shown, 10) and shown == ["dbus-send"]
    tool("open", 0)
    assert reveal_commands([str(target)], "darwin") == [["open", "-R", str(target)]]


def test_trash_from_the_gallery_offers_undo_and_counters_agree(qtbot, window, env, monkeypatch):
    from PySide6.QtWidgets import QApplication

    from photosim.gui import trash_dialog

    photos = env["photos"]
    w = window
    monkeypatch.setattr(trash_dialog, "confirm_trash", lambda parent, ps: True)
    victims = [str(photos / "scene_001.jpg"), str(photos / "scene_002.jpg")]
    before = w.info.photos
    shown = w.model.rowCount()
    with qtbot.waitSignal(w.trashDone, timeout=WAIT) as done:
        assert w.trash_photos([w.model.photo(w.model.row_of(v)) for v in victims])
    assert sorted(done.args[0]) == victims
    assert not any(os.path.exists(v) for v in victims)
    assert sorted(os.listdir(env["trash"] / "files")) == ["scene_001.jpg", "scene_002.jpg"]  # the real trash
    assert w.undo_bar.isVisible() and w.undo_bar.label.text() == "Moved 2 photos to the trash."
    qtbot.waitUntil(lambda: w.info.photos == before - 2, timeout=WAIT)
    qtbot.waitUntil(lambda: w.model.rowCount() == shown - 2, timeout=WAIT)  # the gallery is read in its own job
    assert w.count_label.text() == f"{shown - 2:,} photos"
    assert w.library_label.text().startswith(f"{before - 2 - w.info.errors:,} photos")
    w.resize(1024, 700)
    QApplication.processEvents()
    _shot(w, "trash-undo.png")

    with qtbot.waitSignal(w.trashUndone, timeout=WAIT) as undone:
        w.undo_bar.undo.click()
    assert sorted(undone.args[0]) == victims and all(os.path.exists(v) for v in victims)
    assert not w.undo_bar.isVisible()
    assert "Restored 2 photos from the trash." in w.banner.text()
    qtbot.waitUntil(lambda: w.info.photos == before, timeout=WAIT)
    qtbot.waitUntil(lambda: w.model.rowCount() == shown, timeout=WAIT)
    assert all(w.model.row_of(v) is not None for v in victims)
    assert w.count_label.text() == f"{shown:,} photos"
    assert w.library_label.text().startswith(f"{before - w.info.errors:,} photos")
    assert not os.listdir(env["trash"] / "files")

    # Undo when the trash was emptied meanwhile: a clear reason, nothing breaks
    with qtbot.waitSignal(w.trashDone, timeout=WAIT):
        w.trash_photos([w.model.photo(w.model.row_of(victims[0]))])
    for f in (env["trash"] / "files").iterdir():
        f.unlink()
    with qtbot.waitSignal(w.trashUndone, timeout=WAIT) as undone:
        w.undo_bar.undo.click()
    assert undone.args[0] == []
    assert "not in the trash any more" in w.banner.text()


def test_undo_where_the_trash_cannot_restore_says_so(qtbot, window, env, monkeypatch):
    import photosim.pipeline.trash as engine_trash
    from photosim.gui import trash_dialog

    monkeypatch.setattr(trash_dialog, "confirm_trash", lambda parent, ps: True)
    w = window
    victim = str(env["photos"] / "scene_003.jpg")
    with qtbot.waitSignal(w.trashDone, timeout=WAIT):
        w.trash_photos([w.model.photo(w.model.row_of(victim))])
    monkeypatch.setattr(engine_trash.sys, "platform", "darwin")  # the engine's check: no freedesktop trash
    w.undo_bar.undo.click()
    qtbot.waitUntil(lambda: "Could not undo" in w.banner.text(), timeout=WAIT)
    assert "Finder or Recycle Bin" in w.banner.text()
