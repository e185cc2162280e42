"""First-use comforts of the desktop app (issue 18): About/Help, a gallery whose layout
and order hold still, the gallery and the similar panel agreeing on the query."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from conftest import draw_scene, open_window, scanned_app_env  # noqa: E402
from conftest import settle_gallery as _settle  # noqa: E402
from conftest import spin_until as _spin_until  # noqa: E402

WAIT = 30_000
SHOTS = os.environ.get("PHOTOSIM_UX_SHOTS")  # a folder: save screenshots of the screens tested


def _shot(widget, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        widget.grab().save(os.path.join(SHOTS, name))




@pytest.fixture(scope="module")
def ux_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("ux")
    photos = root / "photos"
    (photos / "a").mkdir(parents=True)
    (photos / "b").mkdir(parents=True)
    for i in range(1, 25):  # IMG_1 ... IMG_24: natural order is not the string order
        draw_scene(i, (160, 120)).save(photos / "a" / f"IMG_{i}.jpg", quality=85)
    for i in range(3):
        draw_scene(100 + i, (160, 120)).save(photos / "b" / f"b{i}.jpg", quality=85)
    with scanned_app_env(root, photos) as env:
        yield env


@pytest.fixture(scope="module")
def window(ux_env, qapp):
    w = open_window(ux_env["lib"], ready=lambda win: win.gallery_ready and win.sidebar.folders)
    w.sort_combo.setCurrentIndex(w.sort_combo.findData("name"))
    w.sort_order.setChecked(False)
    _settle(w)
    yield w
    w.close()


def _names(window):
    _settle(window)
    return [window.model.photo(r).name for r in range(window.model.rowCount())]


def test_about_names_version_encoder_licence_and_credits(qtbot, window):
    from photosim import __version__

    assert [a.text() for a in window.menuBar().actions()][-1] == "&Help"
    box = window.show_about()
    qtbot.addWidget(box)
    text = box.text()
    assert f"photosim {__version__}" in text
    assert window.info.encoder_id in text
    assert "GNU General Public License" in text and "Caltech-101" in text and "Debian" in text
    assert "README.md#the-desktop-app" in text  # a checkout: its own README's desktop-app section
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    assert "\n## The desktop app\n" in readme
    _shot(box, "about.png")
    box.close()


def test_name_sort_is_natural_and_descending_reverses(window):
    window.sidebar.select("all")
    names = _names(window)
    a = [n for n in names if n.startswith("IMG_")]
    assert a[:3] == ["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"] and a.index("IMG_2.jpg") < a.index("IMG_10.jpg")
    window.sort_order.setChecked(True)
    try:
        assert _names(window) == names[::-1]
        assert window.sort_order.text() == "↓"
    finally:
        window.sort_order.setChecked(False)
    assert _names(window) == names


def test_gallery_columns_do_not_change_when_the_list_outgrows_the_view(window):
    grid = window.grid
    window.size_slider.setValue(120)
    few = next(f for f in window.sidebar.folders if f.endswith(os.sep + "b"))
    window.sidebar.select("folder", few)  # three photos: no scrolling needed
    _settle(window)
    QApplication.processEvents()
    assert grid.verticalScrollBar().maximum() == 0
    width_few, cell_few = grid.viewport().width(), grid.gridSize()
    window.sidebar.select("all")  # all 27: they need the scroll bar
    _settle(window)
    QApplication.processEvents()
    assert grid.verticalScrollBar().maximum() > 0
    assert grid.viewport().width() == width_few and grid.gridSize() == cell_few
    # a click lands on the photo under the pointer, and its tooltip is that photo's
    for row in (0, 5, 13):
        rect = grid.visualRect(window.model.index(row))
        assert grid.indexAt(rect.center()).row() == row
        assert window.model.index(row).data(Qt.ItemDataRole.ToolTipRole).startswith(window.model.photo(row).path)
    # the last row is reachable whole
    grid.scrollToBottom()
    QApplication.processEvents()
    last = grid.visualRect(window.model.index(window.model.rowCount() - 1))
    assert last.bottom() <= grid.viewport().height() and last.top() >= 0
    _shot(window, "gallery-1024.png")


def test_gallery_highlight_follows_the_query_after_a_result_click_and_back(qtbot, window, ux_env):
    window.sidebar.select("all")
    _settle(window)
    start = str(ux_env["photos"] / "a" / "IMG_3.jpg")
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.select_photo(start)
    clicked = window.panel.model.photo(0)
    rect = window.panel.results.visualRect(window.panel.model.index(0))
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        qtbot.mouseClick(window.panel.results.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    _settle(window)  # its row in the gallery is found in SQL
    assert window.panel.title.text() == clicked.name
    assert window.grid.currentIndex().data(Qt.ItemDataRole.UserRole + 1).path == clicked.path
    assert [window.model.photo(ix.row()).path for ix in window.grid.selectionModel().selectedIndexes()] == [clicked.path]
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.panel.back.click()
    _settle(window)
    assert window.panel.title.text() == "IMG_3.jpg"
    assert window.grid.currentIndex().data(Qt.ItemDataRole.UserRole + 1).path == start
    assert len(window.grid.selectionModel().selectedIndexes()) == 1


def test_gallery_refresh_during_a_scan_is_stable(window, monkeypatch):
    seen = []
    real = window.model.reload
    monkeypatch.setattr(window.model, "reload", lambda stable=False, **kw: (seen.append(stable), real(stable, **kw)))
    monkeypatch.setattr(type(window.service), "scanning", property(lambda self: True))
    window.refresh_photos()
    assert seen == [True]
    monkeypatch.undo()
    _settle(window)


def test_bands_follow_the_models_duplicate_threshold():
    from photosim.gui.bands import RELATED_BELOW, VERY_BELOW, Bands

    b = Bands.for_threshold(0.73)
    assert (b.same, b.very, b.related) == (0.73, round(0.73 - VERY_BELOW, 2), round(0.73 - RELATED_BELOW, 2))
    assert b.label(0.9) == "same photo" and b.label(b.very) == "very similar"
    assert b.label(b.related + 0.001) == "related" and b.label(b.related - 0.01) is None
    other = Bands.for_threshold(0.95)  # another encoder, another scale
    assert other.cutoff > b.cutoff and other.label(0.8) != "same photo"


def test_cutoff_starts_at_the_models_value_for_every_query_and_counts_the_rest(qtbot, window, ux_env):
    panel = window.panel
    cut = round(panel.bands.cutoff * 100)
    assert panel.bands.same == pytest.approx(window.service.state.duplicate_threshold, abs=0.005)
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.select_photo(str(ux_env["photos"] / "a" / "IMG_4.jpg"))
    assert panel.min_score.value() == cut
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        panel.min_score.setValue(95)
    nearest = panel.k()
    shown = panel.model.rowCount()
    text = panel.status.text()
    assert f"{nearest - shown} more below the cut-off" in text
    assert panel.show_below.isVisible() and panel.show_below.text() == f"Show {nearest - shown} more"
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        panel.show_below.click()
    assert panel.min_score.value() == 0 and panel.model.rowCount() == nearest and not panel.show_below.isVisible()
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        panel.min_score.setValue(95)
    assert all(panel.model.data(panel.model.index(i), Qt.ItemDataRole.UserRole + 2) >= 0.95 for i in range(shown))
    # the next query starts at the model's cut-off again, not at 0.95
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.select_photo(str(ux_env["photos"] / "a" / "IMG_5.jpg"))
    assert panel.min_score.value() == cut
    scores = [panel.model.data(panel.model.index(i), Qt.ItemDataRole.UserRole + 2) for i in range(panel.model.rowCount())]
    assert all(s >= cut / 100 for s in scores)
    labels = {panel.bands.label(s) for s in scores}
    assert labels <= {"same photo", "very similar", "related"}
    for band in labels:
        assert band in panel.status.text()
    if scores:
        tip = panel.model.data(panel.model.index(0), Qt.ItemDataRole.ToolTipRole)
        assert f"similarity {scores[0]:.2f}" in tip and panel.bands.label(scores[0]) in tip
    _shot(window, "similar-bands.png")


def test_relaunch_restores_folder_filter_query_and_scroll(qtbot, ux_env, qapp):
    from photosim.gui.main_window import MainWindow

    folder = str(ux_env["photos"] / "a")
    w = MainWindow(str(ux_env["lib"]))
    w.resize(1024, 700)
    w.show()
    assert _spin_until(lambda: w.gallery_ready, 60)
    w.size_slider.setValue(200)
    w.sidebar.select("folder", folder)
    _settle(w)
    target = next(w.model.photo(r).path for r in range(w.model.rowCount()) if w.model.photo(r).name == "IMG_20.jpg")
    with qtbot.waitSignal(w.resultsShown, timeout=WAIT):
        w.select_photo(target)
    w.grid.verticalScrollBar().setValue(w.grid.verticalScrollBar().maximum() // 2 or 1)
    scroll = w.grid.verticalScrollBar().value()
    assert scroll > 0
    w.close()

    w2 = MainWindow(str(ux_env["lib"]))
    qtbot.addWidget(w2)
    w2.resize(1024, 700)
    w2.show()
    with qtbot.waitSignal(w2.resultsShown, timeout=WAIT):
        assert _spin_until(lambda: w2.gallery_ready, 60)
    assert w2.sidebar.selection() == ("folder", folder) and w2.model.folder == folder
    assert w2.panel.title.text() == "IMG_20.jpg"
    assert w2.grid.currentIndex().data(Qt.ItemDataRole.UserRole + 1).path == target
    assert w2.grid.verticalScrollBar().value() == scroll
    _shot(w2, "relaunch.png")
    w2.close()


def test_delete_key_trashes_the_selection_after_a_summary_and_counters_agree(qtbot, window, ux_env, monkeypatch):
    import send2trash

    from photosim.gui import trash_dialog

    trashed = []
    monkeypatch.setattr(send2trash, "send2trash", lambda p: trashed.append(p))
    window.sidebar.select("all")
    _settle(window)
    victims = [str(ux_env["photos"] / "a" / f"IMG_{i}.jpg") for i in (7, 8)]
    window.grid.setFocus()  # before selecting: focusing a view without a current row selects its first
    QApplication.processEvents()
    sel = window.grid.selectionModel()
    sel.setCurrentIndex(window.model.index(window.model.row_of(victims[0])), sel.SelectionFlag.ClearAndSelect)
    sel.select(window.model.index(window.model.row_of(victims[1])), sel.SelectionFlag.Select)
    asked = []
    monkeypatch.setattr(trash_dialog, "confirm_trash", lambda parent, photos: asked.append(photos) or False)
    qtbot.keyClick(window.grid, Qt.Key.Key_Delete)
    assert [p.path for p in asked[0]] == victims and trashed == []  # Cancel: nothing moved
    # the real dialog: a summary with count and size, a list, the buttons on screen, Cancel the default
    dialog = trash_dialog.TrashConfirmDialog(asked[0], window)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.summary.text().startswith("Move 2 photos (") and "KB" in dialog.summary.text()
    assert dialog.list.count() == 2 and victims[0] in dialog.list.item(0).text()
    assert dialog.ok.text() == "Move 2 to trash" and not dialog.ok.isDefault()
    _shot(dialog, "trash-confirm.png")
    big = trash_dialog.TrashConfirmDialog([window.model.photo(0)] * 300, window)
    qtbot.addWidget(big)
    big.show()
    assert big.height() <= 520 and big.buttons.geometry().bottom() <= big.height()  # 300 rows scroll
    dialog.close()
    big.close()

    before = window.info.photos
    monkeypatch.setattr(trash_dialog, "confirm_trash", lambda parent, photos: True)
    with qtbot.waitSignal(window.trashDone, timeout=WAIT) as done:
        qtbot.keyClick(window.grid, Qt.Key.Key_Delete)
    assert sorted(done.args[0]) == sorted(victims) and sorted(trashed) == sorted(victims)
    _settle(window)  # read again from the database
    assert all(window.model.row_of(v) is None for v in victims)
    qtbot.waitUntil(lambda: window.info.photos == before - 2, timeout=WAIT)
    assert window.library_label.text().startswith(f"{before - 2:,} photos")
    assert window.count_label.text() == f"{before - 2:,} photos"


def test_similar_panel_context_menu_moves_a_result_to_trash(qtbot, window, ux_env, monkeypatch):
    import send2trash

    from photosim.gui import trash_dialog

    trashed = []
    monkeypatch.setattr(send2trash, "send2trash", lambda p: trashed.append(p))
    monkeypatch.setattr(trash_dialog, "confirm_trash", lambda parent, photos: True)
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.select_photo(str(ux_env["photos"] / "a" / "IMG_11.jpg"))
    window.panel.min_score.setValue(0)
    qtbot.waitSignal(window.resultsShown, timeout=WAIT).wait()
    result = window.panel.model.photo(0)
    menu = window.build_photo_menu([result], from_results=True)
    action = next(a for a in menu.actions() if a.text() == "Move to trash…")
    with qtbot.waitSignal(window.trashDone, timeout=WAIT):
        action.trigger()
    assert trashed == [result.path]
    assert result.path not in [p.path for p in window.panel.model.photos()]
    _settle(window)
    assert window.model.row_of(result.path) is None


def test_remove_a_folder_from_the_library(qtbot, window, ux_env):
    folder = str(ux_env["photos"] / "b")
    window.service.call(lambda lib: lib.scan([folder]), None, name="adding b as its own folder")
    window.service.wait_idle()
    window.refresh_photos()
    qtbot.waitUntil(lambda: folder in window.info.roots, timeout=WAIT)
    with qtbot.waitSignal(window.folderRemoved, timeout=WAIT):
        window.remove_folder(folder)
    qtbot.waitUntil(lambda: folder not in (window.info.roots or []), timeout=WAIT)
    _settle(window)
    # the parent folder still covers b's photos, so they stay; the files are never touched
    assert window.model.row_of(str(ux_env["photos"] / "b" / "b0.jpg")) is not None
    assert (ux_env["photos"] / "b" / "b0.jpg").exists()
    parent = str(ux_env["photos"])
    with qtbot.waitSignal(window.folderRemoved, timeout=WAIT):
        window.remove_folder(parent)
    qtbot.waitUntil(lambda: window.model.rowCount() == 0, timeout=WAIT)
    assert "forgotten" in window.banner.text() and (ux_env["photos"] / "b" / "b0.jpg").exists()


def test_preview_fits_without_enlarging_and_shows_100_percent(qtbot, tmp_path):
    from PIL import Image

    from photosim.gui.preview import PreviewDialog

    small = tmp_path / "small.jpg"
    draw_scene(1, (300, 200)).save(small, quality=90)
    big = tmp_path / "big.png"
    Image.new("RGB", (3200, 2000), (40, 90, 160)).save(big)
    dialog = PreviewDialog()
    qtbot.addWidget(dialog)
    dialog.resize(1000, 760)
    dialog.show()
    photo = lambda p: SimpleNamespace(path=str(p), name=p.name)  # noqa: E731
    dialog.show_photo(photo(small), "small")
    assert dialog.wait_loaded()
    qtbot.waitUntil(lambda: not dialog._thumb, timeout=WAIT)
    dpr = dialog.devicePixelRatioF()
    assert dialog.image.size().width() == round(300 / dpr)  # fit: never blown up past 100 %
    assert "Fit (100 %)" in dialog.zoom_label.text()
    dialog.show_photo(photo(big), "big")
    assert dialog.wait_loaded()
    qtbot.waitUntil(lambda: not dialog._thumb, timeout=WAIT)
    assert dialog.image.width() <= dialog.scroll.viewport().width()  # the whole photo
    assert dialog._source.width() == 2400 and not dialog._full  # a preview-sized decode first
    qtbot.keyClick(dialog, Qt.Key.Key_1)
    assert dialog.wait_loaded()
    qtbot.waitUntil(lambda: dialog._source.width() == 3200, timeout=WAIT)  # 100 %: the full photo
    assert dialog.image.width() == round(3200 / dpr) and dialog.zoom_label.text() == "100 %"
    assert dialog.scroll.horizontalScrollBar().maximum() > 0  # it scrolls
    qtbot.keyClick(dialog, Qt.Key.Key_Plus)
    assert dialog.zoom == 1.5 and dialog.image.width() == round(4800 / dpr)
    qtbot.keyClick(dialog, Qt.Key.Key_0)
    assert dialog.zoom is None and dialog.image.width() <= dialog.scroll.viewport().width()
    dialog.show_photo(photo(small), "small")
    dialog.wait_loaded()
    qtbot.waitUntil(lambda: not dialog._thumb, timeout=WAIT)
    dialog.set_zoom(1.0)
    _shot(dialog, "preview-100.png")

