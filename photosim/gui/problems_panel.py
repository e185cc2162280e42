"""The panel of files that could not be read: the reason for each, and what to do about it.

Per row or for a multi-selection (buttons, a context menu, keys): *Show in file manager*,
*Try again* (the engine reads them again in an exclusive job, however unchanged they look:
a fixed file leaves the list and joins the gallery) and *Ignore* (kept in the library, so
re-scans do not bring it back; "N ignored · Show" lists them again, with *Un-ignore*).
Everything goes through ``lib.problems`` in :class:`LibraryService` jobs.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .reveal import Revealer
from .service import Kind, error_text

PathRole = Qt.ItemDataRole.UserRole
IgnoredRole = Qt.ItemDataRole.UserRole + 1


def _files(n: int) -> str:
    return f"{n} file{'s' if n != 1 else ''}"


class ProblemsPanel(QWidget):
    """Files that could not be read, with the reason; lives in a dock the user opens.
    ``changed(fixed_paths)`` after a retry or an (un-)ignore (the window re-reads the
    library), ``messageShown(text)`` for what the window should say."""

    changed = Signal(list)
    messageShown = Signal(str)

    def __init__(self, service=None, parent=None):
        super().__init__(parent)
        self.service = service
        self._problems: list[tuple[str, str]] = []
        self._ignored: list[tuple[str, str]] = []
        self._job = None
        self.revealer = Revealer(self)
        self.revealer.failed.connect(self._say)

        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setWordWrap(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _ix: self.reveal_selected())
        self.empty = QLabel("No problems: every file was read.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.reveal_btn = QPushButton("Show in file manager")
        self.reveal_btn.setToolTip("Open the folder of the selected file, with the file selected where possible")
        self.retry_btn = QPushButton("Try again")
        self.retry_btn.setToolTip("Read the selected files again (after you fixed or replaced them); "
                                  "those that can be read now join the gallery")
        self.ignore_btn = QPushButton("Ignore")
        self.ignore_btn.setToolTip("Leave the selected files out of this list; the library remembers it "
                                   "across re-scans")
        self.unignore_btn = QPushButton("Un-ignore")
        self.unignore_btn.setToolTip("List the selected ignored files among the problems again")
        self.show_ignored = QCheckBox()
        self.show_ignored.toggled.connect(lambda _on: self._fill())
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.reveal_btn.clicked.connect(self.reveal_selected)
        self.retry_btn.clicked.connect(self.retry_selected)
        self.ignore_btn.clicked.connect(self.ignore_selected)
        self.unignore_btn.clicked.connect(self.unignore_selected)

        buttons = QHBoxLayout()
        for b in (self.reveal_btn, self.retry_btn, self.ignore_btn, self.unignore_btn):
            buttons.addWidget(b)
        buttons.addSpacing(12)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.show_ignored)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.set_problems([])

    # -- contents ------------------------------------------------------------------------------
    def set_problems(self, items: list[tuple[str, str]], ignored: list[tuple[str, str]] = ()) -> None:
        """``items``: (path, reason) of the files listed; ``ignored``: those the user ignored."""
        self._problems, self._ignored = list(items), list(ignored)
        self._fill()

    def _fill(self) -> None:
        keep = set(self.selected_paths())
        rows = [(p, r, False) for p, r in self._problems]
        if self.show_ignored.isChecked():
            rows += [(p, r, True) for p, r in self._ignored]
        self.table.blockSignals(True)
        self.table.clearSelection()
        self.table.setRowCount(len(rows))
        grey = self.palette().color(self.palette().ColorGroup.Disabled, self.palette().ColorRole.Text)
        for row, (path, reason, ignored) in enumerate(rows):
            cell = QTableWidgetItem(path)
            cell.setToolTip(path)
            cell.setData(PathRole, path)
            cell.setData(IgnoredRole, ignored)
            why = QTableWidgetItem(f"ignored · {reason}" if ignored else reason)
            why.setToolTip(reason)
            if ignored:
                cell.setForeground(grey)
                why.setForeground(grey)
            self.table.setItem(row, 0, cell)
            self.table.setItem(row, 1, why)
        self.table.blockSignals(False)
        self.select_paths(keep)
        self.table.resizeColumnToContents(0)
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), 480))
        self.table.setVisible(bool(rows))
        n_ign = len(self._ignored)
        self.empty.setText("No problems: every file was read." if not n_ign else
                           f"No problems left to look at ({_files(n_ign)} ignored).")
        self.empty.setVisible(not rows)
        self.show_ignored.setText(f"Show {n_ign} ignored")
        self.show_ignored.setVisible(bool(n_ign) or self.show_ignored.isChecked())
        self.unignore_btn.setVisible(self.show_ignored.isChecked())
        self._update_buttons()

    def count(self) -> int:
        """Rows listed (problems, and ignored files while they are shown)."""
        return self.table.rowCount()

    def ignored_count(self) -> int:
        return len(self._ignored)

    def selected_rows(self) -> list[tuple[str, bool]]:
        rows = sorted({ix.row() for ix in self.table.selectionModel().selectedRows()})
        out = []
        for r in rows:
            item = self.table.item(r, 0)
            if item is not None:
                out.append((item.data(PathRole), bool(item.data(IgnoredRole))))
        return out

    def selected_paths(self) -> list[str]:
        return [p for p, _ in self.selected_rows()]

    def select_paths(self, paths) -> None:
        wanted = set(paths)
        sel = self.table.selectionModel()
        sel.clearSelection()
        flags = sel.SelectionFlag.Select | sel.SelectionFlag.Rows
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(PathRole) in wanted:
                sel.select(self.table.model().index(r, 0), flags)

    def _busy(self) -> bool:
        return self._job is not None and not self._job.finished

    def _update_buttons(self) -> None:
        rows = self.selected_rows()
        writable = self.service is not None and self.service.is_open and not self.service.readonly
        idle = not self._busy()
        self.reveal_btn.setEnabled(bool(rows))
        self.retry_btn.setEnabled(bool(rows) and writable and idle)
        self.ignore_btn.setEnabled(any(not ign for _, ign in rows) and writable and idle)
        self.unignore_btn.setEnabled(any(ign for _, ign in rows) and writable and idle)
        if self.service is not None and self.service.readonly:
            self.retry_btn.setToolTip("This library is open read-only (another photosim is using it)")

    def _context(self, pos) -> None:
        if not self.selected_rows():
            return
        self.build_menu().exec(self.table.viewport().mapToGlobal(pos))

    def build_menu(self) -> QMenu:
        menu = QMenu(self)
        n = len(self.selected_rows())
        for text, btn, slot in (("Show in file manager", self.reveal_btn, self.reveal_selected),
                                (f"Try again ({_files(n)})" if n > 1 else "Try again", self.retry_btn,
                                 self.retry_selected),
                                ("Ignore", self.ignore_btn, self.ignore_selected),
                                ("Un-ignore", self.unignore_btn, self.unignore_selected)):
            if btn is self.unignore_btn and not self.show_ignored.isChecked():
                continue
            menu.addAction(text, slot).setEnabled(btn.isEnabled())
        return menu

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.messageShown.emit(text)

    # -- actions -------------------------------------------------------------------------------
    def reveal_selected(self) -> None:
        paths = self.selected_paths()
        if paths:
            self.revealer.reveal(paths)

    def retry_selected(self) -> None:
        """Read the selected files again in an exclusive job (like a scan of just them)."""
        paths = self.selected_paths()
        if not paths or self.service is None or self._busy():
            return
        self.status.setText(f"Reading {_files(len(paths))} again…")

        def job(lib, job):
            return lib.problems.retry(paths, progress=job.report, cancel=job.token)

        self._job = self.service.start("reading files again", job, self._retried, owner=self)
        self._update_buttons()

    def _retried(self, result=None, error=None) -> None:
        self._job = None
        if error is not None:
            self._say(f"Nothing was read again: {error_text(error, 'Reading the files again')}")
            self._update_buttons()
            return
        parts = []
        if result.fixed:
            parts.append(f"{_files(len(result.fixed))} read fine now and joined the gallery")
        if result.failed:
            reason = result.failed[0][1]
            still = f"{_files(len(result.failed))} still cannot be read"
            parts.append(f"{still} ({reason})" if len(result.failed) == 1 else still)
        if result.gone:
            parts.append(f"{_files(len(result.gone))} no longer exist and left the list")
        self._say(("Read again: " + "; ".join(parts) + ".") if parts else "Nothing was read again.")
        self._update_buttons()
        self.changed.emit(list(result.fixed))

    def _set_ignored(self, paths: list[str], ignore: bool) -> None:
        if not paths or self.service is None:
            return

        def done(result=None, error=None):
            if error is not None:
                what = "Ignoring" if ignore else "Un-ignoring"
                self._say(f"Nothing changed: {error_text(error, what)}")
                return
            if ignore:
                self._say(f"Ignored {_files(result)}: they stay out of this list, also after re-scans.")
            else:
                self._say(f"{_files(result).capitalize()} listed among the problems again.")
            self.changed.emit([])

        op = (lambda lib: lib.problems.ignore(paths)) if ignore else (lambda lib: lib.problems.unignore(paths))
        self.service.call(op, done, kind=Kind.QUERY, name="ignoring files" if ignore else "un-ignoring files",
                          owner=self)

    def ignore_selected(self) -> None:
        self._set_ignored([p for p, ign in self.selected_rows() if not ign], True)

    def unignore_selected(self) -> None:
        self._set_ignored([p for p, ign in self.selected_rows() if ign], False)
