"""Launching the app: first-run welcome, scanning with progress and cancel, the CLI command."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from conftest import write_scenes  # noqa: E402

WAIT = 60_000


def _open(qtbot, path):
    from photosim.gui.main_window import MainWindow

    w = MainWindow(str(path))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.gallery_ready, timeout=WAIT)
    return w


def test_first_run_welcome_then_scan_with_progress_and_problems(qtbot, gui_dirs):
    photos = gui_dirs / "photos"
    write_scenes(photos / "a", range(0, 6), size=(256, 192))
    (photos / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    w = _open(qtbot, gui_dirs / "lib")
    assert w.pages.currentWidget() is w.welcome
    assert w.welcome.button.isVisible()

    progress = []
    w.service.scanProgress.connect(progress.append)
    with qtbot.waitSignal(w.service.scanFinished, timeout=WAIT) as done:
        assert w.start_scan([str(photos)])
        assert w.scan_bar.isVisible()
    report = done.args[0]
    assert len(report.failed) == 1 and not report.cancelled
    assert any(p.stage == "scanning" and p.total == 7 for p in progress)
    assert progress[-1].done == 7
    qtbot.waitUntil(lambda: w.model.rowCount() == 6, timeout=WAIT)
    qtbot.waitUntil(lambda: not w.service.busy, timeout=WAIT)  # the problems come in their own job
    assert not w.scan_bar.isVisible()
    assert w.pages.currentIndex() == 1
    assert "Scan finished" in w.banner.text()
    # the failed file is listed in a panel the user opens, not a modal dialog
    assert w.problems_button.isVisible() and "1 file could not be read" in w.problems_button.text()
    assert not w.problems_dock.isVisible()
    w.problems_button.click()
    assert w.problems_dock.isVisible()
    assert w.problems.count() == 1
    assert w.problems.table.item(0, 0).text().endswith("broken.jpg")
    assert "recognised" in w.problems.table.item(0, 1).text()
    # the progress text has count, rate and ETA
    from photosim.values import ScanProgress

    w.scan_bar.update_progress(ScanProgress("scanning", total=100, done=25, elapsed=5.0))
    assert "25 / 100" in w.scan_bar.label.text() and "5.0 photos read/s" in w.scan_bar.label.text()
    assert "ETA 00:15" in w.scan_bar.label.text()
    # a re-scan: only the photos read in this scan count towards the rate
    w.scan_bar.update_progress(ScanProgress("scanning", total=100, done=25, unchanged=20, elapsed=5.0))
    assert "20 unchanged" in w.scan_bar.label.text() and "1.0 photos read/s" in w.scan_bar.label.text()
    w.scan_bar.update_progress(ScanProgress("scanning", total=100, done=25, unchanged=25, elapsed=5.0))
    assert "photos read/s" not in w.scan_bar.label.text()


def test_scan_cancel_keeps_what_was_indexed(qtbot, gui_dirs):
    photos = gui_dirs / "many"
    write_scenes(photos, range(0, 70), size=(160, 120))
    w = _open(qtbot, gui_dirs / "lib")
    cancelled = []

    def on_progress(p):
        if p.stage == "scanning" and p.done > 0 and not cancelled:
            cancelled.append(p.done)
            w.scan_bar.cancel.click()

    w.service.scanProgress.connect(on_progress)
    with qtbot.waitSignal(w.service.scanFinished, timeout=WAIT) as done:
        w.start_scan([str(photos)])
    report = done.args[0]
    assert cancelled and report.cancelled
    assert report.added < 70
    assert "cancelled" in w.banner.text().lower()
    qtbot.waitUntil(lambda: not w.service.busy, timeout=WAIT)
    assert 0 < w.model.rowCount() < 70
    assert w.act_rescan.isEnabled()
    # the cancelled first scan still knows its folder: F5 re-scans it instead of asking
    assert w.info.roots == [str(photos)]
    assert w.service.lib.roots() == [str(photos)]


def test_gui_command_is_registered_without_importing_qt():
    import subprocess
    import sys

    code = ("import sys; from photosim.cli import build_parser; "
            "a = build_parser().parse_args(['gui', '--library', 'x', '--screenshot', 'o.png']); "
            "print(a.screenshot, 'PySide6' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["o.png", "False"]


def test_screenshot_mode_saves_png(qtbot, gui_dirs):
    from PySide6.QtGui import QImage

    from photosim import Library
    from photosim.gui import app

    photos = write_scenes(gui_dirs / "p", range(20, 24), size=(200, 150))
    with Library(gui_dirs / "lib") as lib:
        lib.scan([gui_dirs / "p"])
    out = gui_dirs / "shot.png"
    code = app.main(["--library", str(gui_dirs / "lib"), "--screenshot", str(out), "--select", str(photos[0]),
                     "--size", "900x600"])
    assert code == 0
    image = QImage(str(out))
    assert not image.isNull() and image.width() >= 900


def test_library_in_use_opens_read_only(qtbot, gui_dirs):
    from photosim import Library

    write_scenes(gui_dirs / "p", range(30, 33), size=(160, 120))
    with Library(gui_dirs / "lib") as lib:
        lib.scan([gui_dirs / "p"])
        w = _open(qtbot, gui_dirs / "lib")  # the writer lock is held: browse and search only
        assert w.service.readonly
        assert "read-only" in w.banner.text()
        assert not w.act_add.isEnabled() and not w.act_rescan.isEnabled()
        assert w.model.rowCount() == 3
        assert not w.start_scan([str(gui_dirs / "p")])
        w.close()


def test_library_from_another_encoder_is_reindexed_on_open(qtbot, gui_dirs, monkeypatch):
    """After an upgrade ships a new encoder, stored vectors belong to the old one: the
    window re-indexes by itself (here from cached features) instead of showing nothing."""
    from sqlalchemy import text

    from photosim import Library

    photos = gui_dirs / "photos"
    write_scenes(photos, range(20, 24), size=(256, 192))
    with Library(gui_dirs / "lib") as lib:
        lib.scan([photos])
        with lib.store.write() as s:  # as if written by an older encoder
            s.execute(text("UPDATE vectors SET encoder_id = 'an-older-encoder'"))
        assert lib.info().unindexed == 4
    reports = []
    from photosim.gui import main_window

    original = main_window.MainWindow._on_opened

    def spy(self, lib):
        self.service.scanFinished.connect(reports.append)
        original(self, lib)

    monkeypatch.setattr(main_window.MainWindow, "_on_opened", spy)
    w = _open(qtbot, gui_dirs / "lib")
    qtbot.waitUntil(lambda: len(reports) == 1, timeout=WAIT)
    assert reports[0].reembedded == 4 and reports[0].added == 0
    info = w.service.lib.info()
    assert info.indexed == 4 and info.unindexed == 0
    w.close()
