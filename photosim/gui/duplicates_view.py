"""Duplicates: copies of one photo in tiers (exact, near: each a verified copy of its
keeper) and stacks of other shots (never proposed for the trash), compared side by side
with the reasons beside each photo; ticked copies (kept while switching groups) go to
the system trash after a summary that always shows its buttons (send2trash, never deleted)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
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

from .common import fitted_pixmap
from .photo_model import human_size, photo_date
from .service import Kind, error_text

CARD_SIDE = 220
TIER_NAMES = {"exact": "Exact copies", "near": "Edited copies", "similar": "Stack: other shots"}


SIDECAR_TEXT = "Write the copies' date taken / GPS into an XMP sidecar next to the keeper"


class TrashConfirm(QDialog):
    """A summary (count, size) above a scrolling list of paths, the buttons always on screen;
    below the list, the choice (off by default) of an XMP sidecar for the keepers."""

    def __init__(self, parent, title: str, summary: str, items: list[str]):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("duplicatesTrashConfirm")
        self.summary = QLabel(summary)
        self.summary.setWordWrap(True)
        self.items = QListWidget()
        self.items.addItems(items)
        self.items.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.merge_note = QLabel("Each keeper inherits the albums, marks and verdicts its copies had in the library.")
        self.merge_note.setWordWrap(True)
        self.sidecar = QCheckBox(SIDECAR_TEXT)
        self.sidecar.setChecked(False)
        self.sidecar.setToolTip("Only the date taken and GPS a keeper lacks, into <keeper>.xmp; an existing "
                                "sidecar is never overwritten and the photos themselves are never changed")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.addButton("Move to trash", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok.setAutoDefault(False)
        self.cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.items, 1)
        layout.addWidget(self.merge_note)
        layout.addWidget(self.sidecar)
        layout.addWidget(self.buttons)
        self.resize(640, 460)
        self.setMaximumHeight(720)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.ok.setDefault(False)
        self.cancel.setDefault(True)  # Enter never trashes by accident
        self.cancel.setFocus()


class TrashAnswer:
    """The confirmation's answer: true when the user said yes; ``sidecar`` the checkbox."""

    def __init__(self, accepted: bool, sidecar: bool = False):
        self.accepted, self.sidecar = accepted, sidecar

    def __bool__(self) -> bool:
        return self.accepted


def confirm(parent, title: str, text: str) -> TrashAnswer:
    """Ask before trashing (tests replace this; a plain True or False answer works too):
    ``text``'s first paragraph is the summary, its other lines the list, shown scrolling
    so the buttons stay on screen."""
    summary, _, rest = text.partition("\n\n")
    lines = [line for line in rest.splitlines() if line.strip()]
    note = [line for line in lines if not line.startswith("/") and not os.path.isabs(line)]
    items = [line for line in lines if line not in note]
    dialog = TrashConfirm(parent, title, "\n".join([summary, *note]), items)
    ok = dialog.exec() == QDialog.DialogCode.Accepted
    return TrashAnswer(ok, ok and dialog.sidecar.isChecked())


def move_to_trash(lib, photos, merge_into=None, sidecar: bool = False):  # worker thread
    """Send photos to the system trash through the engine (which also forgets them), their
    keepers (``merge_into``: {copy id: keeper id}) inheriting their labels; returns
    (moved paths, [(path, reason)], the merge's summary in words)."""
    failed = lib.move_to_trash([p.id for p in photos], merge_into=merge_into, sidecar=sidecar)
    bad = {path for path, _ in failed}
    merged = getattr(failed, "merged", None)
    return [p.path for p in photos if p.path not in bad], list(failed), merged.summary() if merged else ""


class _Card(QFrame):
    def __init__(self, photo, score: float, keeper: bool, thumbs, reasons=(), tier: str = "near",
                 on_compare=None):
        super().__init__()
        self.photo = photo
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.image = QLabel()
        self.image.setFixedSize(CARD_SIDE, CARD_SIDE)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.check = QCheckBox("Move to trash")
        self.check.setAccessibleName(f"Move {photo.name} to trash")
        if tier == "similar":  # other shots are never proposed for the trash
            self.check.setEnabled(False)
            self.check.setToolTip("Another shot of the scene, not a copy: not offered for the trash")
        badge = QLabel(("★ Suggested keeper" if tier != "similar" else "★ Best shot") if keeper
                       else f"similarity {score:.3f}")
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
        if reasons:
            self.reasons = QLabel("<br>".join(f"• {r}" for r in reasons))
            self.reasons.setWordWrap(True)
            self.reasons.setFixedWidth(CARD_SIDE)
            self.reasons.setStyleSheet("color: palette(placeholder-text)" if not keeper else "")
            layout.addWidget(self.reasons)
        self.compare = None
        if on_compare is not None:
            self.compare = QPushButton("Compare with the " + ("keeper" if tier != "similar" else "best shot") + "…")
            self.compare.setToolTip("Side by side with synced zoom (100 %) and the reasons")
            self.compare.clicked.connect(on_compare)
            layout.addWidget(self.compare)
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
        self.ticked: dict[int, object] = {}  # photo id -> photo, across groups
        self._serial = 0
        self.tier = QComboBox()
        self.tier.addItem("Copies (exact and edited)", "duplicates")
        self.tier.addItem("Stacks (other shots)", "similar")
        self.tier.setToolTip("Copies: the same photo, verified. Stacks: other shots of one scene, to look at")

        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.30, 1.00)
        self.threshold.setSingleStep(0.01)
        self.threshold.setDecimals(2)
        state = service.state  # each encoder has its own similarity scale
        self._default = state.duplicate_bound if state is not None else 0.95
        self.threshold.setValue(self._default)
        self.threshold.setToolTip("Neighbours at least this similar are checked pixel by pixel; only "
                                  "verified copies are grouped (the search runs when you press Find)")
        self.find = QPushButton("Find")
        self.find.setDefault(True)
        self.find.clicked.connect(self.refresh)
        self.status = QLabel()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(160)
        self.busy.setMaximumHeight(12)
        self.busy.hide()
        top = QHBoxLayout()
        top.addWidget(self.tier)
        top.addWidget(QLabel("Check neighbours from similarity"))
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
        self.not_dups = QPushButton("Not duplicates")
        self.not_dups.setToolTip("Remember that this group's photos are different photos (kept across re-scans)")
        self.not_dups.clicked.connect(lambda: self.set_verdict("not duplicates"))
        self.keep_both = QPushButton("Keep all")
        self.keep_both.setToolTip("Remember to keep every photo of this group; it is not proposed again")
        self.keep_both.clicked.connect(lambda: self.set_verdict("keep both"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.not_dups)
        buttons.addWidget(self.keep_both)
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
        self._default = state.duplicate_bound
        self.threshold.setValue(state.duplicate_bound)
        if self.isVisible():
            self.refresh()

    def bound_changed(self, state) -> None:
        """Verdicts moved the library's threshold (and so the default bound): a box still at
        the old default follows; a number the user typed stays. Nothing is searched."""
        if abs(self.threshold.value() - round(self._default, self.threshold.decimals())) < 1e-6:
            self.threshold.setValue(state.duplicate_bound)
        self._default = state.duplicate_bound

    def refresh(self) -> None:
        self._serial += 1
        serial = self._serial
        # the model's own bound unless the user chose another (verification decides)
        threshold = None if abs(self.threshold.value() - self._default) < 0.005 else self.threshold.value()
        tier = self.tier.currentData()
        self.status.setText("Comparing every photo with its neighbours, then checking the pixels…")
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

        self.service.call(lambda lib: lib.duplicates(threshold=threshold, tier=tier), done, kind=Kind.LONG,
                          name="finding duplicates", owner=self)

    def set_groups(self, groups) -> None:
        notices = list(getattr(groups, "notices", []))
        self.groups = [g for g in groups if len(g.photos) > 1]
        live = {p.id for g in self.groups for p in g.photos[1:] if getattr(g, "tier", "near") != "similar"}
        self.ticked = {pid: p for pid, p in self.ticked.items() if pid in live}
        self.group_list.clear()
        for g in self.groups:
            keeper = g.photos[0]
            tier = TIER_NAMES.get(getattr(g, "tier", "near"), "")
            item = QListWidgetItem(f"{tier}: {len(g.photos)} photos\n{keeper.name}")
            item.setToolTip(keeper.folder)
            self._set_icon(item, keeper)
            self.group_list.addItem(item)
        n = sum(len(g.photos) - 1 for g in self.groups)
        if self.tier.currentData() == "similar":
            text = f"{len(self.groups)} stacks of other shots" if self.groups else "No stacks of other shots."
        else:
            text = f"{len(self.groups)} groups, {n} extra copies" if self.groups else "No copies found."
        bound = getattr(groups, "threshold", None)
        checked = [f"neighbours from similarity {bound:.2f} checked"] if bound is not None else []
        self.status.setText(" · ".join([text, *checked, *("⚠ " + x for x in notices)]))
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
            reasons = getattr(g, "reasons", None) or [[] for _ in g.photos]
            for i, (photo, score) in enumerate(zip(g.photos, g.scores)):
                card = _Card(photo, score, i == 0, self.thumbs, reasons[i], getattr(g, "tier", "near"),
                             on_compare=(lambda _c=False, g=g, i=i: self.compare_with_keeper(g, i)) if i else None)
                card.check.setChecked(photo.id in self.ticked)
                card.check.toggled.connect(lambda on, p=photo: self._tick(p, on))
                self.compare_row.addWidget(card)
                self.cards.append(card)
        self._update_buttons()

    def compare_with_keeper(self, group, i: int):
        """Member ``i`` of ``group`` beside its keeper: synced zoom, sizes and the reasons."""
        from .compare_dialog import CompareDialog

        reasons = getattr(group, "reasons", None) or [[] for _ in group.photos]
        similar = getattr(group, "tier", "near") == "similar"
        roles = ("★ Best shot", "Other shot") if similar else ("★ Suggested keeper", "Copy")
        self._compare = CompareDialog([group.photos[0], group.photos[i]], [reasons[0], reasons[i]], self, roles)
        self._compare.show()
        return self._compare

    def _keepers(self, photos) -> dict[int, int]:
        """{copy id: the photo its group keeps}: the best-ranked member not going to the trash."""
        going = {p.id for p in photos}
        out = {}
        for g in self.groups:
            if getattr(g, "tier", "near") == "similar":
                continue
            stays = next((p for p in g.photos if p.id not in going), None)
            if stays is not None:
                out.update({p.id: stays.id for p in g.photos if p.id in going and p.id not in out})
        return out

    def _thumb_ready(self, path: str) -> None:
        for card in self.cards:
            if card.photo.path == path:
                card.refresh(self.thumbs)
        for row, g in enumerate(self.groups):
            if g.photos[0].path == path:
                self._set_icon(self.group_list.item(row), g.photos[0])

    def _tick(self, photo, on: bool) -> None:
        if on:
            self.ticked[photo.id] = photo
        else:
            self.ticked.pop(photo.id, None)
        self._update_buttons()

    def _pick_copies(self) -> None:
        for i, card in enumerate(self.cards):
            if card.check.isEnabled():
                card.check.setChecked(i > 0)

    def chosen(self) -> list:
        """The ticked photos of every group (ticks survive switching groups)."""
        return list(self.ticked.values())

    def _current_group(self):
        row = self.group_list.currentRow()
        return self.groups[row] if 0 <= row < len(self.groups) else None

    def _update_buttons(self) -> None:
        n = len(self.chosen())
        self.trash.setEnabled(n > 0)
        self.trash.setText(f"Move {n} to trash…" if n else "Move selected to trash…")
        copies = self.cards and any(c.check.isEnabled() for c in self.cards)
        self.pick_copies.setEnabled(bool(copies) and len(self.cards) > 1)
        group = self._current_group()
        for b in (self.not_dups, self.keep_both):
            b.setEnabled(group is not None and getattr(group, "tier", "near") != "similar")

    def set_verdict(self, verdict: str) -> None:
        """Remember the user's word on the shown group; it leaves the list."""
        group = self._current_group()
        if group is None:
            return
        ids = [p.id for p in group.photos]

        def done(result=None, error=None):
            if error is not None:
                self.status.setText(f"⚠ {error_text(error, 'Saving the verdict')}")
                return
            if group in self.groups:
                row = self.groups.index(group)
                del self.groups[row]
                self.group_list.takeItem(row)
                for pid in ids:
                    self.ticked.pop(pid, None)
                if not self.groups:
                    self._show_group(-1)
            self.status.setText(f"Remembered: “{verdict}” for {len(ids)} photos.")
            self._update_buttons()

        self.service.set_verdict(ids, verdict, done, owner=self)

    def trash_selected(self) -> list:
        """Ask, then move the chosen copies to the trash in a job; returns the photos asked
        for ([] when not confirmed). ``trashed(paths)`` follows when some moved."""
        photos = self.chosen()
        if not photos:
            return []
        size = human_size(sum(p.size for p in photos))
        chosen = {p.id for p in photos}
        whole = [g for g in self.groups if all(p.id in chosen for p in g.photos)]
        warn = (f" ⚠ In {len(whole)} group{'s' if len(whole) > 1 else ''} no photo is kept." if whole else "")
        text = (f"Move {len(photos)} photo{'s' if len(photos) > 1 else ''} ({size}) to the trash?{warn}\n\n"
                + "\n".join(p.path for p in photos) + "\n\nYou can restore them from the trash.")
        answer = confirm(self, "Move to trash", text)
        if not answer:
            return []
        sidecar = bool(getattr(answer, "sidecar", False))
        keepers = self._keepers(photos)
        self.trash.setEnabled(False)
        self.status.setText(f"Moving {len(photos)} to the trash…")
        self.service.call(lambda lib: move_to_trash(lib, photos, keepers, sidecar), self._trash_done,
                          kind=Kind.EXCLUSIVE, name="moving photos to the trash", owner=self)
        return photos

    def _trash_done(self, result=None, error=None) -> None:
        """The photos that left go from the groups (a group of one is no group)."""
        if error is not None:  # e.g. a read-only library, or a scan running
            self.status.setText(f"⚠ Nothing was moved: {error_text(error, 'Moving to the trash')}")
            self._update_buttons()
            self.trashDone.emit([])
            return
        moved, failed, merged = (*result, "")[:3]
        if failed:
            self.status.setText("⚠ Could not move: " + "; ".join(f"{os.path.basename(p)} ({r})" for p, r in failed))
        else:
            self.status.setText(f"Moved {len(moved)} to the trash and out of the library."
                                + (f" {merged[0].upper()}{merged[1:]}." if merged else ""))
        if moved:
            gone = set(moved)
            self.ticked = {pid: p for pid, p in self.ticked.items() if p.path not in gone}
            for row in reversed(range(len(self.groups))):
                g = self.groups[row]
                keep = [(p, s) for p, s in zip(g.photos, g.scores) if p.path not in gone]
                if len(keep) == len(g.photos):
                    continue
                current = row == self.group_list.currentRow()
                if len(keep) > 1:
                    kept = [i for i, p in enumerate(g.photos) if p.path not in gone]
                    if getattr(g, "reasons", None):
                        g.reasons = [g.reasons[i] for i in kept]
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
