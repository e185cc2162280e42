"""The desktop app against one scanned library of generated photos (shared by the module)."""

from __future__ import annotations

import os
import random

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from conftest import draw_scene, open_window, scanned_app_env, write_scenes  # noqa: E402
from conftest import settle_gallery as _settle  # noqa: E402

from photosim.gui.bands import Bands  # noqa: E402

WAIT = 30_000


@pytest.fixture(scope="module")
def gui_env(tmp_path_factory):
    """Photos (with edited copies), a scanned library, and settings/cache dirs of our own."""
    from photosim.edits import colour

    root = tmp_path_factory.mktemp("gui")
    photos = root / "photos"
    write_scenes(photos / "trip", range(0, 5), size=(320, 240))
    write_scenes(photos / "home", range(5, 10), size=(320, 240))
    base = draw_scene(3, (320, 240))
    base.resize((256, 192)).save(photos / "home" / "copy_of_003.jpg", quality=70)
    colour(base, random.Random(2)).save(photos / "home" / "edited_003.jpg", quality=85)
    outside = root / "outside"
    outside.mkdir()
    colour(draw_scene(7, (320, 240)), random.Random(5)).save(outside / "query.jpg", quality=90)
    (outside / "notes.txt").write_text("not a photo")
    with scanned_app_env(root, photos, outside=outside) as env:
        yield env


@pytest.fixture(scope="module")
def window(gui_env, qapp):
    w = open_window(gui_env["lib"], size=(1200, 760))
    yield w
    w.close()




def _run_and_wait_results(qtbot, window, action):
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        action()


def test_window_shows_gallery_and_status(window):
    assert window.pages.currentIndex() == 1
    assert window.model.rowCount() == 12
    assert "12 photos" in window.count_label.text()
    assert window.encoder_label.text().startswith("model: Bundled encoder")  # its name, the id in the tooltip
    assert "photosim-" in window.encoder_label.toolTip()
    assert window.windowTitle().startswith("photosim")


def test_select_photo_shows_similar_with_scores(qtbot, window, gui_env):
    target = str(gui_env["photos"] / "trip" / "scene_003.jpg")
    _run_and_wait_results(qtbot, window, lambda: window.select_photo(target))
    panel = window.panel
    assert panel.title.text() == "scene_003.jpg"
    photos = panel.model.photos()
    assert photos and target not in [p.path for p in photos]
    top = {p.name for p in photos[:2]}
    assert top == {"copy_of_003.jpg", "edited_003.jpg"}
    # the verified copies first, badged, their tooltip saying how; the rest by similarity
    copies = [p for p in photos if p.id in panel.model.notes]
    assert {p.name for p in copies} == top and photos[:2] == copies
    tip = panel.model.data(panel.model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "Verified copy:" in tip
    assert panel.status.text().startswith(f"{len(copies)} verified cop")
    scores = [panel.model.data(panel.model.index(i), Qt.ItemDataRole.UserRole + 2) for i in range(len(photos))]
    rest = scores[len(copies):]
    assert rest == sorted(rest, reverse=True) and all(0 < s <= 1.0001 for s in scores)


def test_count_and_min_similarity_controls(qtbot, window, gui_env):
    window.select_photo(str(gui_env["photos"] / "trip" / "scene_001.jpg"))
    qtbot.waitSignal(window.resultsShown, timeout=WAIT).wait()
    _run_and_wait_results(qtbot, window, lambda: window.panel.count.setValue(3))
    assert window.panel.model.rowCount() == 3
    _run_and_wait_results(qtbot, window, lambda: window.panel.min_score.setValue(99))
    assert window.panel.model.rowCount() == 0
    assert "No photos at or above" in window.panel.status.text()
    _run_and_wait_results(qtbot, window, lambda: window.panel.min_score.setValue(0))
    _run_and_wait_results(qtbot, window, lambda: window.panel.count.setValue(24))


def test_click_result_browses_and_back_returns(qtbot, window, gui_env):
    first = str(gui_env["photos"] / "trip" / "scene_000.jpg")
    _run_and_wait_results(qtbot, window, lambda: window.select_photo(first))
    result_view = window.panel.results
    ix = window.panel.model.index(0)
    clicked = window.panel.model.photo(0)
    rect = result_view.visualRect(ix)
    _run_and_wait_results(qtbot, window, lambda: qtbot.mouseClick(result_view.viewport(), Qt.MouseButton.LeftButton,
                                                                   pos=rect.center()))
    assert window.panel.title.text() == clicked.name
    assert window.panel.back.isEnabled()
    _run_and_wait_results(qtbot, window, window.panel.back.click)
    assert window.panel.title.text() == "scene_000.jpg"


def _drop(window, mime):
    pos = QPointF(200, 200)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    accepted = enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    return accepted


def test_drop_file_url_queries_without_adding(qtbot, window, gui_env):
    query = gui_env["outside"] / "query.jpg"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(query))])
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        assert _drop(window, mime)
    assert window.panel.title.text() == "query.jpg"
    assert window.panel.model.photos()[0].name == "scene_007.jpg"
    assert "not added" in window.panel.subtitle.text()
    assert window.model.rowCount() == 12  # never added to the library
    assert window.last_query_seconds < 10


def test_drop_two_files_merges_results(qtbot, window, gui_env):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(gui_env["outside"] / "query.jpg")),
                  QUrl.fromLocalFile(str(gui_env["photos"] / "trip" / "scene_002.jpg"))])
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        _drop(window, mime)
    names = [p.name for p in window.panel.model.photos()]
    assert "2 dropped images" in window.panel.title.text()
    assert "scene_007.jpg" in names[:2]


def test_drop_raw_image_data_from_browser(qtbot, window):
    image = QImage(str(window.model.photo(0).path))  # any picture; the pixels are what count
    mime = QMimeData()
    mime.setImageData(image)
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        assert _drop(window, mime)
    assert window.panel.title.text() == "Dropped image"
    assert window.panel.model.rowCount() > 0

    png = QMimeData()
    from photosim.gui.drop_query import qimage_to_png

    png.setData("image/png", qimage_to_png(image))
    png.setUrls([QUrl("https://example.com/photo.png")])
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        _drop(window, png)
    assert window.panel.model.rowCount() > 0


def test_drop_non_image_shows_message(qtbot, window, gui_env):
    before = window.panel.title.text()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(gui_env["outside"] / "notes.txt"))])
    with qtbot.waitSignal(window.messageShown, timeout=2000) as sig:
        _drop(window, mime)
    assert "notes.txt is not an image" in sig.args[0]
    assert window.banner.isVisible() and "not an image" in window.banner.text()
    assert QApplication.activeModalWidget() is None
    assert window.panel.title.text() == before

    web = QMimeData()
    web.setUrls([QUrl("https://example.com/page.html")])
    with qtbot.waitSignal(window.messageShown, timeout=2000) as sig:
        _drop(window, web)
    assert "web link" in sig.args[0]


def test_paste_image_from_clipboard(qtbot, window, gui_env):
    QGuiApplication.clipboard().setImage(QImage(str(gui_env["outside"] / "query.jpg")))
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.act_paste.trigger()
    assert window.panel.title.text() == "Pasted image"
    assert window.panel.model.photos()[0].name == "scene_007.jpg"


def test_sort_filter_and_thumbnail_size(qtbot, window, gui_env):
    window.sort_combo.setCurrentIndex(window.sort_combo.findData("name"))
    _settle(window)
    names = [window.model.photo(r).name for r in range(window.model.rowCount())]
    assert names == sorted(names, key=str.lower)
    trip = str(gui_env["photos"] / "trip")
    window.sidebar.select("folder", trip)
    _settle(window)
    assert window.model.rowCount() == 5 and "5 of 12" in window.count_label.text()
    assert {window.model.photo(r).folder for r in range(5)} == {trip}
    window.sidebar.select("all")
    _settle(window)
    assert window.model.rowCount() == 12
    wide = window.grid.gridSize().width()
    window.size_slider.setValue(96)
    # cells share the gallery's width between whole columns: smaller thumbnails, more and narrower ones
    assert window.grid.gridSize().height() < 140 and window.grid.gridSize().width() < wide
    window.size_slider.setValue(160)
    window.sort_combo.setCurrentIndex(window.sort_combo.findData("date"))
    _settle(window)


def test_thumbnails_are_cached_on_disk(qtbot, window, gui_env):
    qtbot.waitUntil(lambda: window.thumbs.pending == 0, timeout=WAIT)
    window.grid.viewport().repaint()
    qtbot.waitUntil(lambda: window.thumbs.pending == 0, timeout=WAIT)
    cached = list((gui_env["root"] / "cache" / "thumbnails").rglob("*.jpg"))
    assert len(cached) >= 8


def test_context_menu_marks_and_album(qtbot, window, gui_env, monkeypatch):
    from photosim.gui import main_window

    target = str(gui_env["photos"] / "trip" / "scene_003.jpg")
    _run_and_wait_results(qtbot, window, lambda: window.select_photo(target))
    result = window.panel.model.photo(0)
    menu = window.build_photo_menu([result], from_results=True)
    texts = [a.text() for a in menu.actions() if a.text()]
    for wanted in ("Open", "Show in file manager", "Copy path", "Find similar", "Add to album…",
                   "Mark as similar", "Mark as not similar"):
        assert wanted in texts
    empty = gui_env["photos"].parent / "no-programs"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))  # no file manager, no xdg-open: a sentence, not silence
    with qtbot.waitSignal(window.messageShown, timeout=WAIT) as shown:
        next(a for a in menu.actions() if a.text() == "Show in file manager").trigger()
    assert shown.args[0].startswith("Nothing on this system could show the file")
    assert shown.args[0].endswith(os.path.dirname(result.path))  # where it is, at least
    monkeypatch.undo()
    next(a for a in menu.actions() if a.text() == "Copy path").trigger()
    assert QGuiApplication.clipboard().text() == result.path

    with qtbot.waitSignal(window.panel.model.dataChanged, timeout=WAIT):
        next(a for a in menu.actions() if a.text() == "Mark as similar").trigger()
    assert window.panel.model.data(window.panel.model.index(0), Qt.ItemDataRole.UserRole + 3) == 1

    monkeypatch.setattr(main_window.QInputDialog, "getItem", lambda *a, **k: ("Holiday", True))
    window.add_to_album([window.model.photo(0), window.model.photo(1)])
    got = {}
    qtbot.waitUntil(lambda: not window.service.busy, timeout=WAIT)
    window.service.call(lambda lib: (lib.marks(), lib.album_photos("Holiday")),
                        lambda result=None, error=None: got.update(v=result, error=error))
    qtbot.waitUntil(lambda: "v" in got, timeout=WAIT)
    assert got["error"] is None
    marks, album = got["v"]
    q = window.history.current.photo
    assert any(m.query_id == q.id and m.result_id == result.id and m.label == 1 for m in marks)
    assert len(album) == 2


def test_preview_opens_on_space(qtbot, window):
    window.grid.setFocus()
    window.grid.setCurrentIndex(window.model.index(0))
    qtbot.keyClick(window.grid, Qt.Key.Key_Space)
    assert window._preview is not None and window._preview.isVisible()
    assert window._preview.wait_loaded()
    photo = window.model.photo(0)
    qtbot.waitUntil(lambda: window._preview._source.width() == photo.width, timeout=WAIT)  # the full image
    assert window._preview.image.pixmap() is not None and not window._preview.image.pixmap().isNull()
    window._preview.close()


def test_duplicates_view_groups_edited_copies_and_trashes_after_confirm(qtbot, window, gui_env, monkeypatch):
    from photosim.gui import duplicates_view

    view = window.show_duplicates()
    own = window.service.lib.candidate_bound()  # the encoder's own
    assert view.threshold.value() == pytest.approx(own, abs=0.005)
    view.threshold.setValue(round(own + 0.05, 2))  # a user's own setting
    view.refresh()
    qtbot.waitUntil(lambda: bool(view.find.isEnabled() and view.groups), timeout=WAIT)
    group = next(g for g in view.groups if any(p.name == "scene_003.jpg" for p in g.photos))
    names = {p.name for p in group.photos}
    assert {"scene_003.jpg", "copy_of_003.jpg", "edited_003.jpg"} <= names
    view.group_list.setCurrentRow(view.groups.index(group))
    assert len(view.cards) == len(group.photos)
    assert "Suggested keeper" in " ".join(lbl.text() for lbl in view.cards[0].findChildren(duplicates_view.QLabel))

    trashed = []
    import send2trash

    monkeypatch.setattr(send2trash, "send2trash", lambda p: trashed.append(p))
    monkeypatch.setattr(duplicates_view, "confirm", lambda *a: False)
    view.cards[1].check.setChecked(True)
    victim = view.cards[1].photo.path
    assert view.trash_selected() == []
    assert trashed == []  # no confirmation, nothing moved

    asked = []
    monkeypatch.setattr(duplicates_view, "confirm", lambda parent, title, text: asked.append(text) or True)
    with qtbot.waitSignal(view.trashDone, timeout=WAIT) as done:
        assert [p.path for p in view.trash_selected()] == [victim]  # asked for; moved in a job
    assert done.args == [[victim]]
    assert trashed == [victim] and victim in asked[0]
    _settle(window)
    assert window.model.row_of(victim) is None  # left the gallery
    assert window.service.lib.photo(victim) is None  # and the library

    # Another model becomes active (the service says so after a switch, with that model's
    # state): the view takes up its threshold and finds the groups again.
    import dataclasses

    state = dataclasses.replace(window.service.state, duplicate_threshold=0.87, duplicate_bound=0.65)
    view.set_groups([])
    window.service.modelChanged.emit(state)
    assert view.threshold.value() == pytest.approx(0.65)
    qtbot.waitUntil(lambda: bool(view.find.isEnabled() and view.groups), timeout=WAIT)

    # "Not duplicates" is remembered and calibrates the library's threshold: the similar
    # panel's bands follow the state the service reads after it
    view.group_list.setCurrentRow(0)
    ids = [p.id for p in view.groups[0].photos]
    with qtbot.waitSignal(window.service.stateChanged, timeout=WAIT) as changed:
        view.not_dups.click()
    lib = window.service.lib
    calibration = lib.duplicate_calibration()
    assert calibration.different == len(ids) * (len(ids) - 1) // 2
    assert changed.args[0].duplicate_threshold == calibration.threshold == window.service.state.duplicate_threshold
    assert window.panel.bands == Bands.for_threshold(calibration.threshold)
    assert "Remembered" in view.status.text()
    lib.clear_verdict(ids)
    view.close()


def test_settings_remember_library_and_geometry(window, gui_env):
    from photosim.gui import settings

    assert settings.recent_libraries()[0] == os.path.abspath(gui_env["lib"])
    window.save_settings()
    assert settings.value("geometry") is not None


def test_drag_shows_hint_and_finetune_action_opens_dialog(qtbot, window, gui_env):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(gui_env["outside"] / "query.jpg"))])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted() and window.drop_hint.isVisible()
    from PySide6.QtGui import QDragLeaveEvent

    QApplication.sendEvent(window, QDragLeaveEvent())
    assert not window.drop_hint.isVisible()

    pytest.importorskip("photosim.gui.finetune_dialog")
    assert window.act_finetune.isEnabled()
    window.act_finetune.trigger()
    qtbot.waitUntil(lambda: window._finetune is not None and window._finetune.isVisible(), timeout=WAIT)
    window._finetune.close()

    assert window.act_models.isEnabled()
    window.act_models.trigger()
    qtbot.waitUntil(lambda: window._models is not None and window._models.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: window._models.tree.topLevelItemCount() > 0, timeout=WAIT)  # listed in a job
    assert window._models.tree.topLevelItem(0).text(1) == "in use · bundled"  # the bundled model, active
    window._models.close()


def test_keyboard_navigation_changes_query(qtbot, window):
    window.grid.setFocus()
    window.grid.setCurrentIndex(window.model.index(0))
    qtbot.waitUntil(lambda: not window.service.busy, timeout=WAIT)
    first = window.history.current.photo
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        qtbot.keyClick(window.grid, Qt.Key.Key_Right)
    assert window.history.current.photo.path == window.model.photo(1).path != first.path
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        qtbot.keyClick(window.grid, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert window.history.current.photo.path == first.path


def test_selecting_the_current_photo_still_shows_its_results(qtbot, window):
    photo = window.model.photo(2)
    _run_and_wait_results(qtbot, window, lambda: window.select_photo(photo.path))
    qtbot.waitUntil(lambda: not window.service.busy, timeout=WAIT)
    _run_and_wait_results(qtbot, window, lambda: window.select_photo(photo.path))
    assert window.panel.title.text() == photo.name
