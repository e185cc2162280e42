"""The similar panel's "Find what this is a copy of" (issue #13): a background job, the
verified copies listed under a header that names what the photo is a copy of."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from conftest import open_window, scanned_app_env, write_copy_set  # noqa: E402
from conftest import settle_gallery as _settle  # noqa: E402
from conftest import spin_until as _spin_until  # noqa: E402

WAIT = 60_000
SHOTS = os.environ.get("PHOTOSIM_UX_SHOTS")  # a folder: save screenshots of the screens tested


@pytest.fixture(scope="module")
def copies_env(tmp_path_factory):
    """An original, a half-size re-encoded copy, an 80 % crop, and four other photos."""
    root = tmp_path_factory.mktemp("copies-gui")
    photos = root / "photos"
    write_copy_set(photos, (7, 8, 9, 10))
    with scanned_app_env(root, photos) as env:
        yield env


@pytest.fixture(scope="module")
def window(copies_env, qapp):
    w = open_window(copies_env["lib"])
    _settle(w)
    yield w
    w.close()


def _select(qtbot, window, path):
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        assert window.select_photo(str(path))
    assert window.panel.title.text() == path.name and not window.history.current.copies


def _names(window):
    return [window.panel.model.photo(r).name for r in range(window.panel.model.rowCount())]


def test_the_panels_button_lists_what_a_copy_is_a_copy_of(qtbot, window, copies_env, monkeypatch):
    photos, panel = copies_env["photos"], window.panel
    _select(qtbot, window, photos / "small.jpg")
    assert panel.copies.isEnabled() and panel.copies.text() == "Find what this is a copy of"
    similar = _names(window)
    jobs = []
    real_call = window.service.call
    monkeypatch.setattr(window.service, "call",
                        lambda fn, cb=None, **kw: jobs.append(kw.get("name")) or real_call(fn, cb, **kw))
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        qtbot.mouseClick(panel.copies, Qt.MouseButton.LeftButton)
        assert panel.status.text() == "Comparing it with its 10 nearest photos…"  # the job runs in a worker
    monkeypatch.undo()
    assert "finding copies" in jobs
    names = _names(window)
    assert names == ["original.jpg", "crop80.jpg"]  # the original first; no other photo, whatever the cosine
    assert panel.status.text() == ("Copy of: original.jpg (holds all of this photo, at 2.0× its resolution)"
                                   " · 1 other verified copy")
    tip = panel.model.data(panel.model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "holds all of this photo, at 2.0× its resolution" in tip and "same photo:" in tip
    assert not panel.copies.isEnabled() and not panel.count.isEnabled() and not panel.min_score.isEnabled()
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        _spin_until(lambda: False, 0.5)  # the panel's layout settles on the new header
        window.grab().save(os.path.join(SHOTS, "gui-copies.png"))
    # Back: the similar photos of the same photo again, the controls back on
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        panel.back.click()
    assert not window.history.current.copies and _names(window) == similar
    assert panel.copies.isEnabled() and panel.count.isEnabled() and "Copy of" not in panel.status.text()


def test_the_photo_menu_finds_copies_of_an_original_and_of_a_photo_without_any(qtbot, window, copies_env):
    photos, panel = copies_env["photos"], window.panel
    _select(qtbot, window, photos / "original.jpg")
    menu = window.build_photo_menu([window.history.current.photo])
    action = next(a for a in menu.actions() if a.text() == "Find what this is a copy of")
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        action.trigger()
    assert sorted(_names(window)) == ["crop80.jpg", "small.jpg"]
    assert panel.status.text() == ("Probably the original: 2 verified copies, none holds all of it at its "
                                   "resolution.")
    _select(qtbot, window, photos / "other7.jpg")
    menu = window.build_photo_menu([window.history.current.photo], from_results=False)
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        next(a for a in menu.actions() if a.text() == "Find what this is a copy of").trigger()
    assert panel.title.text() == "other7.jpg" and window.history.current.copies
    assert _names(window) == [] and panel.status.text() == "No verified copies among the 10 nearest."
