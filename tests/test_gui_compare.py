"""The duplicates view: a member compared side by side with its keeper (synced zoom and
pan, 100 %, sizes, formats, dates, reasons), and the trash confirmation's sidecar choice
(off by default) carried to the engine, whose keeper inherits the copy's album."""

from __future__ import annotations

import os
import shutil

import pytest
from PIL import Image

from conftest import draw_scene
from rawfile import jpeg_bytes

WAIT = 60_000


def _exif(taken: str) -> Image.Exif:
    e = Image.Exif()
    e.get_ifd(0x8769)[0x9003] = taken
    return e


@pytest.fixture
def dup_window(tmp_path, gui_dirs, qapp):
    from photosim import Library
    from photosim.gui.main_window import MainWindow

    photos = tmp_path / "photos"
    photos.mkdir()
    scene = draw_scene(51, (640, 480))
    (photos / "keeper.jpg").write_bytes(jpeg_bytes(scene))
    (photos / "copy.jpg").write_bytes(jpeg_bytes(scene.resize((320, 240)), quality=70, exif=_exif("2020:02:02 02:02:02")))
    for seed in (52, 53, 54, 55):
        (photos / f"x{seed}.jpg").write_bytes(jpeg_bytes(draw_scene(seed)))
    with Library(tmp_path / "lib") as lib:
        lib.scan([photos])
        lib.add_to_album("Trip", [lib.photo(photos / "copy.jpg").id])
    w = MainWindow(str(tmp_path / "lib"))
    w.resize(1200, 760)
    w.show()
    yield w, photos
    w.close()


def test_compare_side_by_side_with_synced_zoom_and_a_merging_trash(qtbot, dup_window, tmp_path, monkeypatch):
    from photosim.gui import duplicates_view

    window, photos = dup_window
    qtbot.waitUntil(lambda: window.gallery_ready, timeout=WAIT)
    view = window.show_duplicates()
    view.refresh()
    qtbot.waitUntil(lambda: bool(view.find.isEnabled() and view.groups), timeout=WAIT)
    (group,) = view.groups
    assert [p.name for p in group.photos] == ["keeper.jpg", "copy.jpg"]
    view.group_list.setCurrentRow(0)
    assert view.cards[0].compare is None and view.cards[1].compare is not None

    view.cards[1].compare.click()
    dialog = view._compare
    qtbot.waitUntil(lambda: all(im is not None for im in dialog.images), timeout=WAIT)
    assert dialog.reference_size() == (640, 480)
    left, right = dialog.captions
    assert "640 × 480 px" in left.text() and "Suggested keeper" in left.text() and "JPG" in left.text()
    assert "320 × 240 px" in right.text() and "2020-02-02 02:02:02" in right.text()
    assert "keeper is larger: 640×480 vs 320×240" in right.text()
    dialog.resize(900, 600)
    dialog.set_zoom(1.0)
    qtbot.wait(50)
    a, b = dialog.views
    assert a.transform().m11() == b.transform().m11() == 1.0
    # the copy is laid on its keeper's scale: the same scene, the same size on screen
    assert b.item.sceneBoundingRect().width() == a.item.sceneBoundingRect().width() == 640
    a.horizontalScrollBar().setValue(a.horizontalScrollBar().maximum())
    a.verticalScrollBar().setValue(0)
    assert b.horizontalScrollBar().value() == b.horizontalScrollBar().maximum() > 0
    b.verticalScrollBar().setValue(b.verticalScrollBar().maximum())
    assert a.verticalScrollBar().value() == a.verticalScrollBar().maximum()
    dialog.step(1)
    assert a.transform().m11() == b.transform().m11() == 1.5
    dialog.fit()
    assert a.transform().m11() == b.transform().m11() < 1.0
    dialog.grab().save(str(tmp_path / "compare.png"))
    dialog.close()

    # the confirmation: the sidecar choice, off by default
    box = duplicates_view.TrashConfirm(view, "Move to trash", "Move 1 photo?", [str(photos / "copy.jpg")])
    assert box.sidecar.text() == duplicates_view.SIDECAR_TEXT and not box.sidecar.isChecked()
    assert "inherits the albums" in box.merge_note.text()
    box.close()

    bin_ = tmp_path / "bin"
    bin_.mkdir()
    monkeypatch.setattr("send2trash.send2trash", lambda p: shutil.move(os.fspath(p), bin_ / os.path.basename(p)))
    monkeypatch.setattr(duplicates_view, "confirm", lambda *a: duplicates_view.TrashAnswer(True, sidecar=True))
    view.cards[1].check.setChecked(True)
    with qtbot.waitSignal(view.trashDone, timeout=WAIT) as done:
        view.trash_selected()
    assert done.args == [[str(photos / "copy.jpg")]]
    assert "inherited 1 album membership" in view.status.text()
    assert "1 XMP sidecar written" in view.status.text()
    assert (photos / "keeper.jpg.xmp").is_file()
    assert [p.name for p in window.service.lib.album_photos("Trip")] == ["keeper.jpg"]
