"""Moving photos to the system trash from the gallery or the similar panel: one safe
confirmation (how many, how big, which: a scrolling list; the buttons always on screen,
Cancel the default), then a :class:`LibraryService` job through ``Library.move_to_trash``."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QVBoxLayout,
)

from .photo_model import human_size


class TrashConfirmDialog(QDialog):
    def __init__(self, photos: list, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Move to trash")
        self.setObjectName("trashConfirm")
        n = len(photos)
        size = sum(p.size or 0 for p in photos)
        self.summary = QLabel(f"Move {n:,} photo{'s' if n != 1 else ''} ({human_size(size)}) to the trash?")
        font = self.summary.font()
        font.setBold(True)
        self.summary.setFont(font)
        note = QLabel("They leave the library and go to your system's trash, from where you can restore them. "
                      "Nothing is deleted.")
        note.setWordWrap(True)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        for p in photos:
            self.list.addItem(f"{p.path}  ({human_size(p.size or 0)})")
        self.list.setMinimumHeight(80)
        self.buttons = QDialogButtonBox()
        self.ok = self.buttons.addButton(f"Move {n:,} to trash", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok.setAutoDefault(False)
        self.cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(note)
        layout.addWidget(self.list, 1)  # the list scrolls; the summary and buttons never leave the screen
        layout.addWidget(self.buttons)
        self.resize(560, min(520, 170 + 22 * min(n, 12)))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.ok.setDefault(False)
        self.cancel.setDefault(True)  # Enter never trashes by accident
        self.cancel.setFocus()


def confirm_trash(parent, photos: list) -> bool:
    """Ask (tests replace this)."""
    return TrashConfirmDialog(photos, parent).exec() == QDialog.DialogCode.Accepted


def move_to_trash(lib, photos: list) -> tuple[list[str], list[tuple[str, str]]]:  # worker thread
    """(paths moved, (path, reason) of those that stayed)."""
    failed = lib.move_to_trash([p.id for p in photos])
    stayed = {path for path, _ in failed}
    return [p.path for p in photos if p.path not in stayed], failed
