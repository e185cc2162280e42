"""Near-duplicates: groups from the engine's duplicate finder, compared side by side;
chosen copies go to the system trash (send2trash, after confirmation, never deleted)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .common import confirm, fitted_pixmap
from .photo_model import human_size, photo_date
from .service import Kind, error_text

CARD_SIDE = 220


def move_to_trash(lib, photos) -> tuple[list[str], list[tuple[str, str]]]:  # worker thread
    """Send photos to the system trash through the engine (which also forgets them);
    returns (moved paths, [(path, reason)])."""
    failed = lib.move_to_trash([p.id for p in photos])
    bad = {path for path, _ in failed}
    return [p.path for p in photos if p.path not in bad], failed


class _Card(QFrame):
    def __init__(self, photo, score: float, keeper: bool, thumbs):
        super().__init__()
        self.photo = photo
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.image = QLabel()
        self.image.setFixedSize(CARD_SIDE, CARD_SIDE)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.check = QCheckBox("Move to trash")
        self.check.setAccessibleName(f"Move {photo.name} to trash")
        badge = QLabel("★ Suggested keeper" if keeper else f"similarity {score:.3f}")
        font = badge.font()
        font.setBold(keeper)
        badge.setFont(font)
        dims = f"{photo.width} × {photo.height}" if photo.width else "?"
        info = QLabel(f"<b>{photo.name}</b><br>{dims} px · {human_size(photo.size)}<br>"
                      f"{photo_date(photo).replace('T', ' ')}<br><small>{photo.folder}</small>")
        info.setWordWrap(True)
        info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        info.setFixedWidth(CARD_SIDE)
        info.setToolTip(photo.path)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image)
        layout.addWidget(badge)
        layout.addWidget(info)
        layout.addWidget(self.check)
        layout.addStretch(1)
        self.refresh(thumbs)

    def refresh(self, thumbs) -> None:
        image = thumbs.get(self.photo.path, self.photo.size, self.photo.mtime_ns)
        if image is None:
            self.image.setText("…")
            return
        self.image.setPixmap(fitted_pixmap(image, QSize(CARD_SIDE, CARD_SIDE), self.devicePixelRatioF()))


class DuplicatesView(QWidget):
    """A separate window; ``trashed(paths)`` tells the main window what left."""

    trashed = Signal(list)    # paths that left the library
    trashDone = Signal(list)  # a trash request is answered (paths moved; maybe none)

    def __init__(self, service, thumbs, parent=None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Near-duplicates — photosim")
        self.service = service
        self.thumbs = thumbs
        self.groups = []
        self.cards: list[_Card] = []
        self._serial = 0

        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.50, 1.00)
        self.threshold.setSingleStep(0.01)
        self.threshold.setDecimals(2)
        state = service.state  # each encoder has its own similarity scale
        self.threshold.setValue(state.duplicate_threshold if state is not None else 0.95)
        self.threshold.setToolTip("Photos at least this similar are grouped (1.00 = identical)")
        self.find = QPushButton("Find duplicates")
        self.find.clicked.connect(self.refresh)
        self.threshold.editingFinished.connect(self.refresh)
        self.status = QLabel()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(160)
        self.busy.setMaximumHeight(12)
        self.busy.hide()
        top = QHBoxLayout()
        top.addWidget(QLabel("Similarity at least"))
        top.addWidget(self.threshold)
        top.addWidget(self.find)
        top.addWidget(self.busy)
        top.addWidget(self.status, 1)

        self.group_list = QListWidget()
        self.group_list.setIconSize(QSize(64, 64))
        self.group_list.currentRowChanged.connect(self._show_group)
        self.compare = QWidget()
        self.compare_row = QHBoxLayout(self.compare)
        self.compare_row.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.compare)
        self.pick_copies = QPushButton("Select all but the keeper")
        self.pick_copies.clicked.connect(self._pick_copies)
        self.trash = QPushButton("Move selected to trash…")
        self.trash.clicked.connect(self.trash_selected)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.pick_copies)
        buttons.addWidget(self.trash)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(scroll, 1)
        rl.addLayout(buttons)
        split = QSplitter()
        split.addWidget(self.group_list)
        split.addWidget(right)
        split.setSizes([260, 800])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        thumbs.ready.connect(self._thumb_ready)
        self.resize(1100, 640)
        self._update_buttons()

    def model_changed(self, state) -> None:
        """Another encoder is active: its own similarity scale, and the groups shown are stale."""
        self.threshold.setValue(state.duplicate_threshold)
        if self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        self._serial += 1
        serial = self._serial
        threshold = self.threshold.value()
        self.status.setText("Comparing every photo with its neighbours…")
        self.find.setEnabled(False)
        self.busy.show()

        def done(result=None, error=None):
            if serial != self._serial:
                return
            self.find.setEnabled(True)
            self.busy.hide()
            if error is not None:
                self.status.setText(f"⚠ {error_text(error, 'Finding duplicates')}")
            else:
                self.set_groups(result)

        self.service.call(lambda lib: lib.duplicates(threshold=threshold), done, kind=Kind.LONG,
                          name="finding duplicates", owner=self)

    def set_groups(self, groups) -> None:
        self.groups = [g for g in groups if len(g.photos) > 1]
        self.group_list.clear()
        for g in self.groups:
            keeper = g.photos[0]
            item = QListWidgetItem(f"{len(g.photos)} photos\n{keeper.name}")
            item.setToolTip(keeper.folder)
            self._set_icon(item, keeper)
            self.group_list.addItem(item)
        n = sum(len(g.photos) - 1 for g in self.groups)
        self.status.setText(f"{len(self.groups)} groups, {n} extra copies" if self.groups
                            else "No near-duplicates at this similarity.")
        if self.groups:
            self.group_list.setCurrentRow(0)
        else:
            self._show_group(-1)

    def _set_icon(self, item, photo) -> None:
        image = self.thumbs.get(photo.path, photo.size, photo.mtime_ns)
        if image is not None:
            item.setIcon(QIcon(QPixmap.fromImage(image)))

    def _show_group(self, row: int) -> None:
        for card in self.cards:
            card.setParent(None)
            card.deleteLater()
        self.cards = []
        if 0 <= row < len(self.groups):
            g = self.groups[row]
            for i, (photo, score) in enumerate(zip(g.photos, g.scores)):
                card = _Card(photo, score, i == 0, self.thumbs)
                card.check.toggled.connect(self._update_buttons)
                self.compare_row.addWidget(card)
                self.cards.append(card)
        self._update_buttons()

    def _thumb_ready(self, path: str) -> None:
        for card in self.cards:
            if card.photo.path == path:
                card.refresh(self.thumbs)
        for row, g in enumerate(self.groups):
            if g.photos[0].path == path:
                self._set_icon(self.group_list.item(row), g.photos[0])

    def _pick_copies(self) -> None:
        for i, card in enumerate(self.cards):
            card.check.setChecked(i > 0)

    def chosen(self) -> list:
        return [c.photo for c in self.cards if c.check.isChecked()]

    def _update_buttons(self) -> None:
        n = len(self.chosen())
        self.trash.setEnabled(n > 0)
        self.trash.setText(f"Move {n} to trash…" if n else "Move selected to trash…")
        self.pick_copies.setEnabled(len(self.cards) > 1)

    def trash_selected(self) -> list:
        """Ask, then move the chosen copies to the trash in a job; returns the photos asked
        for ([] when not confirmed). ``trashed(paths)`` follows when some moved."""
        photos = self.chosen()
        if not photos:
            return []
        if len(photos) == len(self.cards):
            text = (f"Move all {len(photos)} copies, keeping none, to the trash?\n\n"
                    + "\n".join(p.path for p in photos))
        else:
            text = (f"Move {len(photos)} photo{'s' if len(photos) > 1 else ''} to the trash?\n\n"
                    + "\n".join(p.path for p in photos) + "\n\nYou can restore them from the trash.")
        if not confirm(self, "Move to trash", text):
            return []
        self.trash.setEnabled(False)
        self.status.setText(f"Moving {len(photos)} to the trash…")
        self.service.call(lambda lib: move_to_trash(lib, photos), self._trash_done, kind=Kind.EXCLUSIVE,
                          name="moving photos to the trash", owner=self)
        return photos

    def _trash_done(self, result=None, error=None) -> None:
        """The photos that left go from the groups (a group of one is no group)."""
        if error is not None:  # e.g. a read-only library, or a scan running
            self.status.setText(f"⚠ Nothing was moved: {error_text(error, 'Moving to the trash')}")
            self._update_buttons()
            self.trashDone.emit([])
            return
        moved, failed = result
        if failed:
            self.status.setText("⚠ Could not move: " + "; ".join(f"{os.path.basename(p)} ({r})" for p, r in failed))
        else:
            self.status.setText(f"Moved {len(moved)} to the trash and out of the library.")
        if moved:
            gone = set(moved)
            for row in reversed(range(len(self.groups))):
                g = self.groups[row]
                keep = [(p, s) for p, s in zip(g.photos, g.scores) if p.path not in gone]
                if len(keep) == len(g.photos):
                    continue
                current = row == self.group_list.currentRow()
                if len(keep) > 1:
                    g.photos, g.scores = [p for p, _ in keep], [s for _, s in keep]
                    if current:
                        self._show_group(row)
                else:
                    del self.groups[row]
                    self.group_list.takeItem(row)
            if not self.groups:
                self._show_group(-1)
            self.trashed.emit(moved)
        self._update_buttons()
        self.trashDone.emit(moved)
