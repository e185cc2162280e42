"""The sidebar at the left of the main window: *All photos*, the library's folders as a
tree and its albums, each with its count of photos; clicking one filters the gallery.

The counts and the tree come from SQL in a worker (``Library.folder_tree``, ``albums``,
``count``): nothing here loops over photos. Context menus: on a folder *Show in file
manager*, *Remove from library…* (a scanned folder) or *Exclude this sub-folder…*; on an
excluded folder *Include again*; on an album *Rename…* and *Delete album…* (its photos
stay). Each change is a :class:`LibraryService` job; the window hears ``libraryChanged``
(re-read the photos), ``removeFolderRequested`` (its own remove-folder flow),
``rescanRequested`` and ``messageRequested``.
"""

from __future__ import annotations

import os
import re
import unicodedata

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QDesktopServices, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .service import Kind, error_text

KindRole = Qt.ItemDataRole.UserRole + 1  # "all" | "folder" | "album" | "excluded" | None (a heading)
KeyRole = Qt.ItemDataRole.UserRole + 2   # the folder's path or the album's name
RootRole = Qt.ItemDataRole.UserRole + 3  # a folder the library scans (not a sub-folder)

ALL = ("all", None)


def label(text: str) -> str:
    """A file name fit for a label: bytes that are not UTF-8 as U+FFFD, control characters
    (a newline in a name) as visible symbols."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join("⏎" if c in "\r\n" else ("�" if unicodedata.category(c) == "Cc" else c) for c in text)


def ask(parent, title: str, text: str, yes: str) -> bool:
    """A question whose safe answer (Cancel) is the default; tests replace this function."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, parent)
    ok = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is ok


def ask_text(parent, title: str, text: str, value: str) -> str | None:
    """A line of text, or None when cancelled; tests replace this function."""
    value, ok = QInputDialog.getText(parent, title, text, text=value)
    return value if ok else None


def _plural(n: int, word: str = "photo") -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


class Sidebar(QWidget):
    filterChanged = Signal(str, object)     # kind ("all" | "folder" | "album"), key (path, name, None)
    libraryChanged = Signal()               # photos left or came back: re-read them
    removeFolderRequested = Signal(str)     # a scanned folder to forget (the window's flow)
    rescanRequested = Signal()
    messageRequested = Signal(str)
    loaded = Signal()                       # the tree and the counts were (re)read

    def __init__(self, service, parent=None):
        super().__init__(parent)
        self.service = service
        self._selection: tuple[str, object] = ALL
        self._loading = False
        self._dirty = False
        self._expanded: set[str] | None = None  # folder paths the user opened (None: not loaded yet)
        self._shown: tuple | None = None  # what populate() shows now
        self.folders: dict[str, QTreeWidgetItem] = {}
        self.albums: dict[str, QTreeWidgetItem] = {}
        self.excluded: dict[str, QTreeWidgetItem] = {}

        self.tree = QTreeWidget()
        self.tree.setObjectName("sidebar")
        self.tree.setAccessibleName("Folders and albums")
        self.tree.setColumnCount(2)
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setIndentation(14)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.setStyleSheet("QTreeView::item { padding: 3px 2px; }")
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._on_selection_changed)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.itemExpanded.connect(lambda it: self._remember_expanded(it, True))
        self.tree.itemCollapsed.connect(lambda it: self._remember_expanded(it, False))

        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.hint.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.hint)

        self.all_item = self._item(None, "All photos", "all", None)
        self.folders_head = self._heading("Folders")
        self.albums_head = self._heading("Albums")
        self.excluded_head = self._heading("Excluded folders")
        self.excluded_head.setHidden(True)
        self._select_item(self.all_item)

    def sizeHint(self) -> QSize:
        return QSize(190, 400)

    # -- items ------------------------------------------------------------------------------
    def _heading(self, text: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(self.tree, [text.upper(), ""])
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        font = item.font(0)
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 0.85)
        item.setFont(0, font)
        item.setForeground(0, QBrush(self.palette().color(QPalette.ColorRole.PlaceholderText)))
        item.setFirstColumnSpanned(True)
        item.setExpanded(True)  # (DontShowIndicator would hide its children altogether)
        return item

    def _item(self, parent, text: str, kind: str, key, count: int | None = None,
              tip: str | None = None) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent if parent is not None else self.tree, [text, "" if count is None else f"{count:,}"])
        item.setData(0, KindRole, kind)
        item.setData(0, KeyRole, key)
        item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setForeground(1, QBrush(self.palette().color(QPalette.ColorRole.PlaceholderText)))
        item.setToolTip(0, tip or text)
        if kind == "excluded":
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)  # nothing to show: only its context menu
            font = item.font(0)
            font.setItalic(True)
            item.setFont(0, font)
            item.setForeground(0, QBrush(self.palette().color(QPalette.ColorRole.PlaceholderText)))
        return item

    def count_of(self, kind: str, key=None) -> int | None:
        """The count an entry shows (tests, the window), or None when it is not listed."""
        item = {"all": {None: self.all_item}, "folder": self.folders, "album": self.albums}[kind].get(key)
        return int(item.text(1).replace(",", "")) if item is not None and item.text(1) else None

    # -- loading ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the tree and the counts in a worker (a second call while one runs reads
        once more afterwards, never twice at once)."""
        if not self.service.is_open:
            return
        if self._loading:
            self._dirty = True
            return
        self._loading = True

        def job(lib):
            return lib.count(status="ok"), lib.folder_tree(), lib.albums(), lib.info().excluded

        self.service.call(job, self._loaded, kind=Kind.LONG, name="reading the folders", owner=self)

    def _loaded(self, result=None, error=None) -> None:
        self._loading = False
        if self._dirty:
            self._dirty = False
            self.refresh()
            return
        if error is not None:
            self.messageRequested.emit(f"Could not read the folders: {error_text(error, 'Reading the folders')}")
            return
        self.populate(*result)
        self.loaded.emit()

    def populate(self, total: int, tree: list, albums: list, excluded: list[str]) -> None:
        """Show the tree of :class:`photosim.values.FolderInfo`, the albums (``AlbumInfo``) and
        the excluded folders; the selection stays (or falls back to *All photos* when its
        folder or album is gone)."""
        if (total, tree, albums, excluded) != self._shown:  # else a refresh that found nothing new
            self._build(total, tree, albums, excluded)
        kind, key = self._selection
        if (kind == "folder" and key not in self.folders) or (kind == "album" and key not in self.albums):
            self.select(*ALL)  # its folder or album is gone: show everything again
        else:
            self._highlight()

    def _build(self, total: int, tree: list, albums: list, excluded: list[str]) -> None:
        self._shown = (total, tree, albums, excluded)
        first = self._expanded is None
        expanded = set() if first else set(self._expanded)
        self.tree.blockSignals(True)
        self.tree.setUpdatesEnabled(False)
        try:
            self.all_item.setText(1, f"{total:,}")
            for head in (self.folders_head, self.albums_head, self.excluded_head):
                head.takeChildren()
            self.folders, self.albums, self.excluded = {}, {}, {}

            def add(parent, node, is_root: bool):
                tip = f"{label(node.path)}\n{_plural(node.count)}"
                if node.more:
                    tip += " (some sub-folders are not listed)"
                item = self._item(parent, label(node.name) if not is_root else _root_label(node.path), "folder",
                                  node.path, node.count, tip)
                item.setData(0, RootRole, is_root)
                self.folders[node.path] = item
                for child in sorted(node.children, key=lambda c: _natural(c.name)):
                    add(item, child, False)
                if first and is_root:
                    expanded.add(node.path)
                item.setExpanded(node.path in expanded)

            for node in tree:
                add(self.folders_head, node, True)
            for album in albums:
                self.albums[album.name] = self._item(self.albums_head, label(album.name), "album", album.name,
                                                     album.count, f"{label(album.name)}\n{_plural(album.count)}")
            for path in excluded:
                self.excluded[path] = self._item(self.excluded_head, label(os.path.basename(path) or path), "excluded",
                                                 path, None, f"{label(path)}\nexcluded: scans skip it "
                                                 "(right-click to include it again)")
            self.albums_head.setHidden(not albums)
            self.excluded_head.setHidden(not excluded)
            self.folders_head.setHidden(not tree)
            for head in (self.folders_head, self.albums_head, self.excluded_head):
                head.setExpanded(True)  # an item without children does not stay expanded
            self._expanded = expanded
        finally:
            self.tree.setUpdatesEnabled(True)
            self.tree.blockSignals(False)
        self.hint.setText("No albums yet: select photos and choose “Add to album…”." if not albums else "")
        self.hint.setVisible(not albums and bool(tree))

    def _remember_expanded(self, item, on: bool) -> None:
        if item.data(0, KindRole) == "folder" and self._expanded is not None:
            (self._expanded.add if on else self._expanded.discard)(item.data(0, KeyRole))

    # -- selection ----------------------------------------------------------------------------
    def selection(self) -> tuple[str, object]:
        return self._selection

    def select(self, kind: str, key=None, *, emit: bool = True) -> None:
        """Show ``kind`` ("all", "folder", "album") ``key`` in the gallery (``filterChanged``)."""
        self._selection = (kind, None if kind == "all" else key)
        self._highlight()
        if emit:
            self.filterChanged.emit(*self._selection)

    def _highlight(self) -> None:
        kind, key = self._selection
        item = {"all": self.all_item, "folder": self.folders.get(key), "album": self.albums.get(key)}.get(kind)
        self.tree.blockSignals(True)
        try:
            self._select_item(item)
        finally:
            self.tree.blockSignals(False)

    def _select_item(self, item) -> None:
        self.tree.clearSelection()
        if item is not None:
            parent = item.parent()
            while parent is not None:
                parent.setExpanded(True)
                parent = parent.parent()
            item.setSelected(True)
            self.tree.setCurrentItem(item)
            self.tree.scrollToItem(item)

    def _on_selection_changed(self) -> None:
        items = self.tree.selectedItems()
        if not items:
            return
        kind = items[0].data(0, KindRole)
        if kind in ("all", "folder", "album"):
            key = items[0].data(0, KeyRole)
            if (kind, key) != self._selection:
                self.select(kind, key)

    # -- context menus ------------------------------------------------------------------------
    def _context_menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        menu = self.build_menu(item) if item is not None else None
        if menu is not None and not menu.isEmpty():
            menu.exec(self.tree.viewport().mapToGlobal(pos))

    def build_menu(self, item) -> QMenu | None:
        kind, key = item.data(0, KindRole), item.data(0, KeyRole)
        writable = self.service.is_open and not self.service.readonly
        menu = QMenu(self)
        if kind == "folder":
            menu.addAction("Show in file manager", lambda: self.show_in_file_manager(key))
            menu.addSeparator()
            if item.data(0, RootRole):
                act = menu.addAction("Remove from library…", lambda: self.remove_folder(key))
            else:
                act = menu.addAction("Exclude this sub-folder…", lambda: self.exclude_folder(key))
            act.setEnabled(writable)
        elif kind == "excluded":
            menu.addAction("Show in file manager", lambda: self.show_in_file_manager(key))
            menu.addAction("Include again", lambda: self.include_folder(key)).setEnabled(writable)
        elif kind == "album":
            menu.addAction("Rename…", lambda: self.rename_album(key)).setEnabled(writable)
            menu.addAction("Delete album…", lambda: self.delete_album(key)).setEnabled(writable)
        else:
            return None
        return menu

    def show_in_file_manager(self, folder: str) -> bool:
        return QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def _busy(self) -> bool:
        if self.service.exclusive:  # a scan, a model switch, a trash: never beside one
            self.messageRequested.emit(self.service.refusal())
            return True
        return False

    def remove_folder(self, folder: str) -> None:
        """Ask (how many photos it forgets), then hand it to the window's remove-folder flow."""
        if self._busy():
            return

        def counted(result=None, error=None):
            if error is not None:
                self.messageRequested.emit(f"The folder stays: {error_text(error, 'Counting its photos')}")
                return
            if ask(self, "Remove from library",
                   f"Remove {label(folder)} from the library?\n\nThe library forgets its {_plural(result)} "
                   "and no longer scans it. The files stay where they are.", "Remove from library"):
                self.removeFolderRequested.emit(folder)

        self.service.call(lambda lib: lib.count(folder=folder), counted, name="counting photos", owner=self)

    def exclude_folder(self, folder: str) -> None:
        """Ask (how many photos the library forgets), then exclude it in a job."""
        if self._busy():
            return

        def done(result=None, error=None):
            if error is not None:
                self.messageRequested.emit(f"Nothing was excluded: {error_text(error, 'Excluding the folder')}")
                return
            kind, key = self._selection
            if kind == "folder" and (key == folder or key.startswith(folder.rstrip(os.sep) + os.sep)):
                self.select(*ALL)
            self.messageRequested.emit(f"Excluded {label(folder)}: {_plural(result)} left the library (the files "
                                       "were not touched). Right-click it under Excluded folders to include it again.")
            self.libraryChanged.emit()

        def counted(result=None, error=None):
            if error is not None:
                self.messageRequested.emit(f"Nothing was excluded: {error_text(error, 'Counting its photos')}")
                return
            if ask(self, "Exclude this sub-folder",
                   f"Exclude {label(folder)}?\n\nThe library forgets its {_plural(result)} (their vectors and "
                   "album places too) and scans skip the folder from now on. The files stay where they are; "
                   "“Include again” brings them back with the next scan.", f"Exclude {_plural(result)}"):
                self.service.call(lambda lib: lib.exclude_folder(folder), done, kind=Kind.EXCLUSIVE,
                                  name="excluding a folder", owner=self)

        self.service.call(lambda lib: lib.count(folder=folder), counted, name="counting photos", owner=self)

    def include_folder(self, folder: str) -> None:
        """No longer exclude it, and re-scan so its photos come back."""
        if self._busy():
            return

        def done(result=None, error=None):
            if error is not None:
                self.messageRequested.emit(f"It stays excluded: {error_text(error, 'Including the folder')}")
                return
            self.messageRequested.emit(f"Included {label(folder)} again: scanning for its photos.")
            self.libraryChanged.emit()
            self.rescanRequested.emit()

        self.service.call(lambda lib: lib.include_folder(folder), done, kind=Kind.EXCLUSIVE,
                          name="including a folder", owner=self)

    def rename_album(self, name: str) -> None:
        new = ask_text(self, "Rename album", "New name of the album:", name)
        if new is None or not new.strip() or new.strip() == name:
            return

        def done(result=None, error=None):
            if error is not None:
                self.messageRequested.emit(f"The album keeps its name: {error_text(error, 'Renaming the album')}")
                return
            if self._selection == ("album", name):
                self._selection = ("album", result.name)  # the same photos: the gallery stays as it is
            self.refresh()

        self.service.call(lambda lib: lib.rename_album(name, new), done, name="renaming an album", owner=self)

    def delete_album(self, name: str) -> None:
        n = self.count_of("album", name) or 0
        if not ask(self, "Delete album", f"Delete the album “{label(name)}”?\n\nIts {_plural(n)} stay in the "
                   "library and on disk; only the album goes.", "Delete album"):
            return

        def done(result=None, error=None):
            if error is not None:
                self.messageRequested.emit(f"The album stays: {error_text(error, 'Deleting the album')}")
                return
            if self._selection == ("album", name):
                self.select(*ALL)
            self.messageRequested.emit(f"Deleted the album “{label(name)}” (its photos stay).")
            self.refresh()

        self.service.call(lambda lib: lib.delete_album(name), done, name="deleting an album", owner=self)


def _root_label(path: str) -> str:
    """A scanned folder by its whole path (the tree elides its middle when narrow), the
    home folder written ~: "~/Pictures", "/media/usb/DCIM"."""
    home = os.path.expanduser("~").rstrip(os.sep)
    if home and (path == home or path.startswith(home + os.sep)):
        return label("~" + path[len(home):])
    return label(path)


def _natural(text: str) -> tuple:
    """IMG_2 before IMG_10, case-insensitive."""
    parts = re.split(r"(\d+)", text.casefold())
    return tuple((0, int(part), "") if i % 2 else (1, 0, part) for i, part in enumerate(parts) if part)


__all__ = ["Sidebar", "ALL", "label"]
