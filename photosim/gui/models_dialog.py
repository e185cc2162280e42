"""Tools → Models: every encoder this library has, and switching between them.

A fine-tune that turned out worse in daily use must be easy to leave: the user
picks any earlier model or the bundled one and switches, with progress and
cancel (switching computes every vector first, so cancelling changes nothing).
Only :meth:`Library.models`, :meth:`Library.use_model` and
:meth:`Library.delete_model` are used (the same front door as ``photosim models``),
each in a :class:`LibraryService` job.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from photosim.errors import Cancelled

from .common import confirm, show_progress
from .service import JobRefused, Kind, error_text

COLUMNS = ("", "Model", "Made", "Trained", "Albums", "MAP@R before → after")


def _made(created: str | None) -> str:
    return created[:16].replace("T", " ") if created else ""


class ModelsDialog(QDialog):
    model_changed = Signal(str)

    def __init__(self, service, parent=None):
        super().__init__(parent)
        self.service = service
        self._job = None
        self.setWindowTitle("Models — photosim")
        self.resize(820, 380)
        root = QVBoxLayout(self)
        intro = QLabel("The encoder turns photos into the vectors searches compare. Switch to any "
                       "model below; searches keep using the active one (●) until the new one has "
                       "embedded every photo.")
        intro.setWordWrap(True)
        root.addWidget(intro)
        self.tree = QTreeWidget()
        self.tree.setRootIsDecorated(False)
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemSelectionChanged.connect(self._explain_selection)
        self.tree.itemDoubleClicked.connect(lambda *_: self.use_selected())
        root.addWidget(self.tree, 1)
        self.progress = QProgressBar()
        self.progress.hide()
        root.addWidget(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        root.addWidget(self.status)
        row = QHBoxLayout()
        self.use_btn = QPushButton("Use this model")
        self.delete_btn = QPushButton("Delete…")
        self.cancel_btn = QPushButton("Cancel")
        self.close_btn = QPushButton("Close")
        self.use_btn.clicked.connect(self.use_selected)
        self.delete_btn.clicked.connect(self.delete_selected)
        self.cancel_btn.clicked.connect(self.cancel)
        self.close_btn.clicked.connect(self.reject)
        row.addWidget(self.delete_btn)
        row.addStretch(1)
        for b in (self.use_btn, self.cancel_btn, self.close_btn):
            row.addWidget(b)
        root.addLayout(row)
        self.status.setText(self._active_text())
        self.refresh()

    def _active_text(self) -> str:
        state = self.service.state
        return f"Active: {state.encoder_id}" if state is not None else ""

    @property
    def busy(self) -> bool:
        return self._job is not None and not self._job.finished

    def refresh(self) -> None:
        """Re-read the models (in a job) and list them."""
        self.service.call(lambda lib: lib.models(), self._listed, name="listing models", owner=self)

    def _listed(self, result=None, error=None) -> None:
        if error is not None:
            self.status.setText(f"⚠ {error_text(error, 'Listing the models')}")
            return
        keep = self.selected()
        self.tree.clear()
        for m in result:
            after = m.after.get("map_at_r")
            score = f"{m.before.get('map_at_r', 0):.3f} → {after:.3f}" if after is not None else ""
            trained = "bundled with photosim" if m.bundled else {
                "quick": "quick (head)", "thorough": "thorough (blocks and head)"}.get(m.mode or "", "")
            if m.problem:
                trained = "needs the old encoder"
            item = QTreeWidgetItem(["●" if m.active else "", m.id, _made(m.created), trained,
                                    ", ".join(m.albums), score])
            item.setData(0, Qt.ItemDataRole.UserRole, m)
            tip = m.description or m.id
            if m.based_on:
                tip += f"\nbased on {m.based_on}"
            if m.problem:
                tip += f"\n\nCannot be used: {m.problem}"
            for c in range(len(COLUMNS)):
                item.setToolTip(c, tip)
            if m.problem:
                for c in range(len(COLUMNS)):
                    item.setForeground(c, self.palette().color(self.palette().ColorGroup.Disabled,
                                                               self.palette().ColorRole.Text))
            if m.active:
                font = item.font(1)
                font.setBold(True)
                for c in range(len(COLUMNS)):
                    item.setFont(c, font)
            self.tree.addTopLevelItem(item)
            if keep is not None and m.id == keep.id:
                self.tree.setCurrentItem(item)
        self._update_buttons()

    def selected(self):
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def _update_buttons(self) -> None:
        m = self.selected()
        busy = self.busy
        self.use_btn.setEnabled(not busy and m is not None and not m.active and not m.problem)
        self.delete_btn.setEnabled(not busy and m is not None and not m.active and not m.bundled)
        self.cancel_btn.setEnabled(busy)
        self.close_btn.setEnabled(not busy)
        self.tree.setEnabled(not busy)

    def _explain_selection(self) -> None:
        """Say why a model cannot be used rather than leave a greyed button unexplained."""
        m = self.selected()
        if self.busy:
            return
        if m is not None and m.problem:
            self.status.setText(f"Cannot use {m.id}: it was made for an earlier photosim encoder. "
                                "Fine-tune again from the same albums.")
        elif self.status.text().startswith("Cannot use "):
            self.status.setText(self._active_text())

    def use_selected(self) -> None:
        m = self.selected()
        if m is None or m.active or m.problem or self.busy:
            return
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText(f"Switching to {m.id}: embedding your photos with it…")
        self._job = self.service.switch_model(m.id, self._switched, progress=self._on_progress, owner=self)
        self._update_buttons()

    def _on_progress(self, p) -> None:
        show_progress(self.progress, self.status, p)

    def _switched(self, result=None, error=None) -> None:
        self.progress.hide()
        self._job = None
        if error is not None:
            if isinstance(error, Cancelled):
                self.status.setText("Cancelled: " + error_text(error))
            elif isinstance(error, JobRefused):
                self.status.setText("⚠ " + error_text(error))
            else:
                self.status.setText("⚠ " + error_text(error, "Switching models").rstrip(".")
                                    + "; the active model is unchanged.")
        else:
            self.status.setText(f"Now searching with {result}.")
            self.model_changed.emit(result)
        self._update_buttons()
        self.refresh()

    def cancel(self) -> None:
        if self.busy:
            self._job.cancel()
            self.status.setText("Cancelling…")

    def delete_selected(self) -> None:
        m = self.selected()
        if m is None or m.active or m.bundled or self.busy:
            return
        if not confirm(self, "Delete model", f"Delete the fine-tuned model {m.id}? Your photos are not touched."):
            return

        def done(result=None, error=None):
            if error is not None:
                self.status.setText(f"⚠ Could not delete {m.id}: {error_text(error, 'Deleting the model')}")
            else:
                self.status.setText(f"Deleted {m.id}.")
            self.refresh()

        self.service.call(lambda lib: lib.delete_model(m.id), done, kind=Kind.EXCLUSIVE,
                          name="deleting a model", owner=self)

    def wait_idle(self, ms: int = 120_000) -> bool:
        return self.service.wait_idle(ms)

    def reject(self) -> None:
        if self.busy:
            self.cancel()
            return
        super().reject()
