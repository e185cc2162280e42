"""The gallery pages through the database (issue 15): sort and filters in SQL, a selection
that survives pages, sorts and filters, photos added while the user looks at the middle,
and a 100,000-photo library opened and painted without reading every row."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication  # noqa: E402

from conftest import spin_until  # noqa: E402
from test_gallery_sql import fill_rows  # noqa: E402

from photosim.gui.photo_model import PAGE_ROWS  # noqa: E402

WAIT = 60


def _settle(w) -> None:
    assert spin_until(lambda: w.model.settled and w.gallery_ready, WAIT), "the gallery never settled"


def _open(qtbot, lib_path, size=(1024, 700)):
    from photosim.gui.main_window import MainWindow

    w = MainWindow(str(lib_path))
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    _settle(w)
    return w


def _library(path, paths):
    from photosim import Library

    with Library(path) as lib:
        fill_rows(lib, paths)


def _current(w):
    ix = w.grid.currentIndex()
    return w.model.photo(ix.row()).path if ix.isValid() and w.model.photo(ix.row()) is not None else None


def test_selection_survives_pages_sorts_and_filters(qtbot, gui_dirs):
    paths = [f"/p/a/IMG_{i}.jpg" for i in range(600)] + [f"/p/b/IMG_{i}.jpg" for i in range(400)]
    _library(gui_dirs / "lib", paths)
    w = _open(qtbot, gui_dirs / "lib")
    w.sort_combo.setCurrentIndex(w.sort_combo.findData("name"))
    _settle(w)
    assert w.model.rowCount() == 1000 and w.model.total == 1000
    assert w.model.loaded_rows() < 1000  # only the pages seen
    target = "/p/b/IMG_350.jpg"
    w.select_photo(target)
    _settle(w)
    row = w.grid.currentIndex().row()
    # name order: IMG_0 (a), IMG_0 (b), IMG_1 (a), ...: photo 350 of b is row 701, page 3
    assert row == 701 and row // PAGE_ROWS == 2 and _current(w) == target
    assert w.history.current.photo.path == target

    w.sort_order.setChecked(True)  # descending: the same photo, at the mirrored row, in view
    _settle(w)
    assert w.grid.currentIndex().row() == 999 - 701 and _current(w) == target
    assert w.grid.viewport().rect().intersects(w.grid.visualRect(w.grid.currentIndex()))

    w.sidebar.select("folder", "/p/b")
    _settle(w)
    assert w.model.rowCount() == 400 and "400 of 1,000" in w.count_label.text()
    assert _current(w) == target and w.grid.currentIndex().row() == 399 - 350
    assert all(w.model.photo(r).folder == "/p/b" for r in range(0, 400, 37))

    w.sidebar.select("folder", "/p/a")  # it is not shown here
    _settle(w)
    assert w.model.rowCount() == 600 and not w.grid.currentIndex().isValid()
    w.sidebar.select("all")
    _settle(w)

    # an album (the sidebar's filter), in SQL as well
    got = {}
    ids = [w.model.photo(r).id for r in (0, 1, 2)]

    def make_album(lib):
        lib.add_to_album("Pick", ids)
        return next(a.id for a in lib.albums() if a.name == "Pick")

    w.service.call(make_album, lambda result=None, error=None: got.update(album=result, error=error))
    assert spin_until(lambda: "album" in got, WAIT) and got["error"] is None
    w.sidebar.select("album", "Pick")  # looked up by name, filtered by id in SQL
    _settle(w)
    assert spin_until(lambda: w.model.album == got["album"], WAIT)
    _settle(w)
    assert w.model.rowCount() == 3 and sorted(w.model.photo(r).id for r in range(3)) == sorted(ids)
    w.sidebar.select("all")
    _settle(w)
    assert w.model.rowCount() == 1000

    # a selection over pages never read: trash, albums and copy get every photo of it
    from PySide6.QtCore import QItemSelection, QItemSelectionModel

    w.grid.selectionModel().select(QItemSelection(w.model.index(100), w.model.index(900)),
                                   QItemSelectionModel.SelectionFlag.ClearAndSelect)
    picked = []
    w.with_selection(picked.append)
    assert spin_until(lambda: picked, WAIT)
    assert len(picked[0]) == 801 and len({p.id for p in picked[0]}) == 801
    w.close()


def test_photos_added_mid_scroll_come_after_and_nothing_moves(qtbot, gui_dirs, monkeypatch):
    _library(gui_dirs / "lib", [f"/p/IMG_{i}.jpg" for i in range(1, 1201)])
    w = _open(qtbot, gui_dirs / "lib")
    w.sort_combo.setCurrentIndex(w.sort_combo.findData("name"))
    _settle(w)
    bar = w.grid.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    QApplication.processEvents()
    w.grid.viewport().repaint()
    _settle(w)
    probe = w.grid.viewport().rect().center()
    row = w.grid.indexAt(probe).row()
    assert row > PAGE_ROWS
    shown = w.model.photo(row).path
    w.grid.setCurrentIndex(w.model.index(row))
    _settle(w)

    resets, inserted = [], []
    w.model.modelReset.connect(lambda: resets.append(1))
    w.model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    monkeypatch.setattr(type(w.service), "scanning", property(lambda self: True))
    fill_rows(w.service.lib, [f"/p/AAA_{i}.jpg" for i in range(5)])  # a scan adds photos that sort first
    scroll = bar.value()
    w.refresh_photos()
    _settle(w)
    assert resets == [] and inserted == [(1200, 1204)]
    assert bar.value() == scroll and w.grid.indexAt(probe).row() == row and w.model.photo(row).path == shown
    assert _current(w) == shown
    w.model.photo(1200)  # off screen: its page is asked for
    _settle(w)
    assert [w.model.photo(r).name for r in range(1200, 1205)] == [f"AAA_{i}.jpg" for i in range(5)]

    monkeypatch.undo()  # the scan finished: one full sort, the current photo still current
    w.refresh_photos()
    _settle(w)
    assert resets == [1] and w.model.photo(0).name == "AAA_0.jpg" and _current(w) == shown
    assert w.grid.currentIndex().row() == row + 5
    w.close()


def test_a_hundred_thousand_photos_open_and_paint_without_reading_every_row(qtbot, gui_dirs):
    n = 100_000
    _library(gui_dirs / "lib", [f"/p/{i // 500:03d}/IMG_{i}.jpg" for i in range(n)])
    t0 = time.perf_counter()
    w = _open(qtbot, gui_dirs / "lib", size=(1920, 1080))
    w.grid.viewport().repaint()
    painted = time.perf_counter() - t0
    read = w.service.lib.gallery.rows_read
    assert w.model.rowCount() == n and f"{n:,} photos" in w.count_label.text()
    assert read <= 4 * PAGE_ROWS and w.model.rows_read <= 4 * PAGE_ROWS  # the pages on screen, not 100,000
    assert painted < 60  # generous: a busy 2-core machine; the figure itself is the benchmark's
    w.grid.scrollToBottom()
    QApplication.processEvents()
    w.grid.viewport().repaint()
    assert spin_until(lambda: w.model.photo(n - 1) is not None, WAIT)  # the last page, read when seen
    last = w.model.photo(n - 1)
    assert last is not None and last.name == f"IMG_{n - 1}.jpg" and w.service.lib.gallery.rows_read <= 8 * PAGE_ROWS
    w.close()


def test_pages_scrolled_past_before_their_turn_are_not_read(qtbot, gui_dirs):
    import threading

    from photosim.gui.photo_model import SKIP_AFTER
    from photosim.gui.service import Kind

    _library(gui_dirs / "lib", [f"/p/IMG_{i}.jpg" for i in range(30 * PAGE_ROWS)])
    w = _open(qtbot, gui_dirs / "lib", size=(800, 600))
    before = w.model.rows_read
    gate = threading.Event()
    w.service.call(lambda lib: gate.wait(30), kind=Kind.READ, name="holding the reader")  # a slow read
    for page in range(5, 25):  # a drag of the scroll bar paints 20 pages while the reader is busy
        assert w.model.photo(page * PAGE_ROWS) is None
    gate.set()
    _settle(w)
    read = (w.model.rows_read - before) // PAGE_ROWS
    assert read == SKIP_AFTER  # the last ones asked; the earlier ones were skipped
    assert w.model.photo(24 * PAGE_ROWS) is not None and w.model.photo(5 * PAGE_ROWS) is None
    w.close()
