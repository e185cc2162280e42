"""The main window's sidebar (issue 18): All photos, the folder tree and the albums with
their counts, filtering the gallery, its context-menu actions, and the remembered entry."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from conftest import open_window, scoped_env, write_scenes  # noqa: E402
from conftest import settle_gallery as _settle  # noqa: E402

WAIT = 30_000
SHOTS = os.environ.get("PHOTOSIM_UX_SHOTS")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """photos/{trip: 3, trip/day2: 2, home: 2}; album "best" holds two photos of trip."""
    from photosim import Library

    root = tmp_path_factory.mktemp("sidebar")
    photos = root / "photos"
    write_scenes(photos / "trip", range(0, 3), size=(160, 120))
    write_scenes(photos / "trip" / "day2", range(3, 5), size=(160, 120))
    write_scenes(photos / "home", range(5, 7), size=(160, 120))
    with scoped_env(PHOTOSIM_SETTINGS=str(root / "settings.ini"), PHOTOSIM_CACHE_DIR=str(root / "cache")):
        with Library(root / "lib") as lib:
            lib.scan([photos])
            best = [p.id for p in lib.photos() if p.folder == str(photos / "trip")][:2]
            lib.add_to_album("best", best)
        yield {"root": root, "photos": photos, "lib": root / "lib", "best": set(best)}


def _ready(w) -> bool:
    return bool(w.gallery_ready and w.sidebar.folders)


def _open(qtbot, env):
    w = open_window(env["lib"], ready=_ready, message="gallery or sidebar never loaded")
    qtbot.addWidget(w)
    return w


@pytest.fixture(scope="module")
def window(env, qapp):
    w = open_window(env["lib"], ready=_ready, message="gallery or sidebar never loaded")
    yield w
    w.close()


def _click(qtbot, tree, item):
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _rows(window) -> list:
    _settle(window)
    return [window.model.photo(r) for r in range(window.model.rowCount())]


def _shown(window) -> set[str]:
    return {p.path for p in _rows(window)}


def test_entries_and_counts(window, env):
    sb, photos = window.sidebar, env["photos"]
    assert sb.count_of("all") == 7
    assert sb.count_of("folder", str(photos)) == 7
    assert sb.count_of("folder", str(photos / "trip")) == 5
    assert sb.count_of("folder", str(photos / "trip" / "day2")) == 2
    assert sb.count_of("folder", str(photos / "home")) == 2
    assert sb.count_of("album", "best") == 2
    root = sb.folders[str(photos)]
    assert root.text(0) == str(photos) and root.toolTip(0).startswith(str(photos)) and [root.child(i).text(0) for i in range(root.childCount())] == ["home", "trip"]
    assert root.isExpanded() and sb.excluded_head.isHidden() and not sb.albums_head.isHidden()
    if SHOTS:
        window.grab().save(os.path.join(SHOTS, "sidebar.png"))


def test_clicking_an_entry_filters_the_gallery(qtbot, window, env):
    sb, photos = window.sidebar, env["photos"]
    _click(qtbot, sb.tree, sb.folders[str(photos / "trip")])
    assert sb.selection() == ("folder", str(photos / "trip"))
    _settle(window)
    assert window.model.rowCount() == 5 and "5 of 7" in window.count_label.text()
    assert all(p.startswith(str(photos / "trip") + os.sep) for p in _shown(window))
    _click(qtbot, sb.tree, sb.albums["best"])
    qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=WAIT)  # the album's ids come from a job
    assert {p.id for p in _rows(window)} == env["best"] and window.model.folder is None
    _click(qtbot, sb.tree, sb.folders_head)  # a heading is no filter
    assert sb.selection() == ("album", "best")
    _click(qtbot, sb.tree, sb.all_item)
    _settle(window)
    assert window.model.rowCount() == 7 and window.model.album is None and sb.selection() == ("all", None)


def test_context_menus(window, env):
    sb, photos = window.sidebar, env["photos"]

    def texts(item):
        return [a.text() for a in sb.build_menu(item).actions() if not a.isSeparator()]

    assert texts(sb.folders[str(photos)]) == ["Show in file manager", "Remove from library…"]
    assert texts(sb.folders[str(photos / "trip" / "day2")]) == ["Show in file manager", "Exclude this sub-folder…"]
    assert texts(sb.albums["best"]) == ["Rename…", "Delete album…"]
    assert sb.build_menu(sb.all_item) is None and sb.build_menu(sb.albums_head) is None
    assert all(a.isEnabled() for a in sb.build_menu(sb.albums["best"]).actions())


def test_exclude_a_sub_folder_then_include_it_again(qtbot, window, env, monkeypatch):
    from photosim.gui import sidebar as sidebar_mod

    sb, day2 = window.sidebar, str(env["photos"] / "trip" / "day2")
    asked = []
    monkeypatch.setattr(sidebar_mod, "ask", lambda _p, title, text, yes: asked.append((text, yes)) or False)
    sb.exclude_folder(day2)  # the user says Cancel: nothing changes
    qtbot.waitUntil(lambda: bool(asked), timeout=WAIT)
    window.service.wait_idle()
    assert "forgets its 2 photos" in asked[0][0] and asked[0][1] == "Exclude 2 photos"
    assert sb.count_of("all") == 7 and not sb.excluded

    sb.select("folder", day2)
    monkeypatch.setattr(sidebar_mod, "ask", lambda *_a: True)
    with qtbot.waitSignal(sb.loaded, timeout=WAIT):
        sb.exclude_folder(day2)
    qtbot.waitUntil(lambda: sb.count_of("all") == 5 and day2 in sb.excluded, timeout=WAIT)
    assert sb.selection() == ("all", None)  # its folder went: everything is shown
    assert sb.count_of("folder", str(env["photos"] / "trip")) == 3 and day2 not in sb.folders
    assert not sb.excluded_head.isHidden() and "2 photos left the library" in window.banner.text()
    qtbot.waitUntil(lambda: window.model.rowCount() == 5, timeout=WAIT)
    assert not any(p.startswith(day2 + os.sep) for p in _shown(window))
    assert len(os.listdir(day2)) == 2  # the files are never touched
    menu = sb.build_menu(sb.excluded[day2])
    assert [a.text() for a in menu.actions()] == ["Show in file manager", "Include again"]
    if SHOTS:
        window.grab().save(os.path.join(SHOTS, "sidebar-excluded.png"))

    with qtbot.waitSignal(window.service.scanFinished, timeout=60_000):
        sb.include_folder(day2)  # and a re-scan brings its photos back
    qtbot.waitUntil(lambda: sb.count_of("all") == 7 and not sb.excluded, timeout=WAIT)
    qtbot.waitUntil(lambda: window.model.rowCount() == 7, timeout=WAIT)
    assert sb.excluded_head.isHidden()


def test_rename_and_delete_an_album_keep_its_photos(qtbot, window, env, monkeypatch):
    from photosim.gui import sidebar as sidebar_mod

    sb = window.sidebar
    sb.select("album", "best")
    qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=WAIT)
    monkeypatch.setattr(sidebar_mod, "ask_text", lambda *_a: "favourites")
    with qtbot.waitSignal(sb.loaded, timeout=WAIT):
        sb.rename_album("best")
    assert "favourites" in sb.albums and "best" not in sb.albums and sb.count_of("album", "favourites") == 2
    assert sb.selection() == ("album", "favourites") and window.model.rowCount() == 2
    assert sb.albums["favourites"].isSelected()

    monkeypatch.setattr(sidebar_mod, "ask", lambda *_a: False)
    sb.delete_album("favourites")
    assert "favourites" in sb.albums  # Cancel
    monkeypatch.setattr(sidebar_mod, "ask", lambda *_a: True)
    with qtbot.waitSignal(sb.loaded, timeout=WAIT):
        sb.delete_album("favourites")
    assert not sb.albums and sb.albums_head.isHidden() and sb.selection() == ("all", None)
    qtbot.waitUntil(lambda: window.model.rowCount() == 7, timeout=WAIT)
    assert sb.count_of("all") == 7  # the photos stay
    window.service.call(lambda lib: lib.add_to_album("best", sorted(env["best"])), None, name="album back")
    window.service.wait_idle()
    with qtbot.waitSignal(sb.loaded, timeout=WAIT):
        sb.refresh()


def test_the_selected_album_comes_back_on_relaunch(qtbot, window, env):
    window.sidebar.select("album", "best")
    qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=WAIT)
    window.save_settings()
    w2 = _open(qtbot, env)
    try:
        qtbot.waitUntil(lambda: w2.model.rowCount() == 2, timeout=WAIT)
        assert w2.sidebar.selection() == ("album", "best") and w2.sidebar.albums["best"].isSelected()
        assert {p.id for p in _rows(w2)} == env["best"]
    finally:
        w2.close()
    window.sidebar.select("all")


def test_remove_a_scanned_folder_from_the_sidebar(qtbot, window, env, monkeypatch):
    """Last: it empties the library of this module."""
    from photosim.gui import sidebar as sidebar_mod

    sb, photos = window.sidebar, str(env["photos"])
    asked = []
    monkeypatch.setattr(sidebar_mod, "ask", lambda _p, _t, text, _y: asked.append(text) or True)
    with qtbot.waitSignal(window.folderRemoved, timeout=WAIT):
        sb.remove_folder(photos)
    assert "forgets its 7 photos" in asked[0] and "The files stay" in asked[0]
    qtbot.waitUntil(lambda: not sb.folders and sb.count_of("all") == 0, timeout=WAIT)
    qtbot.waitUntil(lambda: window.model.rowCount() == 0, timeout=WAIT)
    assert os.path.exists(env["photos"] / "home" / "scene_005.jpg")
