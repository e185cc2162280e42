"""Tools → Faster scans (int8): the precision setting from the window."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox  # noqa: E402

from conftest import spin_until, write_scenes  # noqa: E402

WAIT = 120_000


def test_precision_action_switches_to_int8_and_back(qtbot, gui_dirs, qapp, monkeypatch):
    from photosim import Library
    from photosim.gui.main_window import MainWindow

    photos = gui_dirs / "photos"
    write_scenes(photos, range(4), size=(200, 150))
    with Library(gui_dirs / "lib") as lib:
        lib.scan([photos])
        fp32_id = lib.encoder_id
    w = MainWindow(str(gui_dirs / "lib"))
    w.show()
    try:
        assert spin_until(lambda: w.gallery_ready, 60)
        act = w.precision_action.action
        assert act.isEnabled() and not act.isChecked()
        asked = []
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
        act.trigger()  # the user says No: nothing changes, the tick goes back
        assert asked and "int8" in asked[0] and not act.isChecked()
        assert w.service.state.encoder_id == fp32_id

        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
        with qtbot.waitSignal(w.service.modelChanged, timeout=WAIT):
            act.trigger()
        assert w.service.state.encoder_id.startswith(f"{fp32_id}@int8r") and act.isChecked()
        with qtbot.waitSignal(w.service.modelChanged, timeout=WAIT):
            act.trigger()
        assert w.service.state.encoder_id == fp32_id and not act.isChecked()
    finally:
        w.close()
    with Library(gui_dirs / "lib", readonly=True) as lib:
        assert len(lib.store.vectors.photo_ids(fp32_id)) == 4
