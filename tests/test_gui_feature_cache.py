"""Tools → Feature cache…: what it keeps and its size, told in a dialog; the choice made there
reaches the library (and Cancel changes nothing)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from conftest import spin_until, write_scenes  # noqa: E402


def _button(box, text):
    return next(b for b in box.buttons() if b.text().startswith(text))


def test_the_feature_cache_dialog_tells_the_size_and_applies_the_choice(qtbot, gui_dirs, qapp, tmp_path):
    from photosim import Library
    from photosim.gui.main_window import MainWindow

    photos = gui_dirs / "photos"
    write_scenes(photos, range(4), size=(200, 150))
    with Library(gui_dirs / "lib") as lib:
        lib.scan([photos], keep_taps=True)  # as an album import scans
        lib.add_to_album("kept", [lib.photos()[0].id])
        taps = lib.taps.bytes()
    assert taps > 0
    w = MainWindow(str(gui_dirs / "lib"))
    w.show()
    try:
        assert spin_until(lambda: w.gallery_ready, 60)
        action = w.feature_cache_action
        assert action.action.isEnabled()
        action.action.trigger()
        assert spin_until(lambda: action.box is not None, 30)
        box = action.box
        text = box.text()
        assert "every photo's features: 4 of 4 photos" in text and "KB a photo" in text
        assert not _button(box, "Keep every photo's").isEnabled()  # the current choice
        assert "Album imports also kept about" in text and "of taps" in text
        assert _button(box, "Delete the taps (").isEnabled()
        box.grab().save(str(tmp_path / "feature-cache.png"))
        _button(box, "Cancel").click()
        assert spin_until(lambda: action.box is None, 10)
        with Library(gui_dirs / "lib", readonly=True) as lib:
            assert lib.feature_cache().policy == "all"

        action.action.trigger()
        assert spin_until(lambda: action.box is not None, 30)
        _button(action.box, "Only labelled photos").click()
        assert spin_until(lambda: "Dropped the cached features of 3 photos" in w.statusBar().currentMessage(), 30)
        with Library(gui_dirs / "lib", readonly=True) as lib:
            cache = lib.feature_cache()
            assert (cache.policy, cache.photos, cache.labelled) == ("labelled", 1, 1)
        action.action.trigger()
        assert spin_until(lambda: action.box is not None, 30)
        assert "accepting a quick fine-tune reads the other 3 photos again" in action.box.text()
        assert not _button(action.box, "Only labelled photos").isEnabled()
        _button(action.box, "Cancel").click()
        with Library(gui_dirs / "lib", readonly=True) as lib:
            assert lib.taps.bytes() == taps  # neither choice nor Cancel touched the taps

        action.action.trigger()
        assert spin_until(lambda: action.box is not None, 30)
        _button(action.box, "Delete the taps").click()
        assert spin_until(lambda: "Deleted the taps of standard fine-tuning" in w.statusBar().currentMessage(), 30)
        with Library(gui_dirs / "lib", readonly=True) as lib:
            assert lib.taps.bytes() == 0 and lib.feature_cache().photos == 1  # the features stay
        action.action.trigger()
        assert spin_until(lambda: action.box is not None, 30)
        assert "taps" not in action.box.text() and not any(b.text().startswith("Delete") for b in action.box.buttons())
        _button(action.box, "Cancel").click()
    finally:
        w.close()
