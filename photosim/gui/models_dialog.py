"""Tools → Models: every encoder this library has, and switching between them.

A fine-tune that turned out worse in daily use must be easy to leave: the user
picks any earlier model or the bundled one and switches, with progress and
cancel (switching computes every vector first, so cancelling changes nothing).
Only :meth:`Library.models`, :meth:`Library.use_model` and
:meth:`Library.delete_model` are used: the same front door as ``photosim models``.
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

from .duplicates_view import confirm
from .worker import TaskWorker

COLUMNS = ("", "Model", "Made", "Trained", "Albums", "MAP@R before → after")


def _made(created: str | None) -> str:
    return created[:16].replace("T", " ") if created else ""


class ModelsDialog(QDialog):
    model_changed = Signal(str)

    def __init__(self, library, parent=None):
        super().__init__(parent)
        self.library = library
        self._worker: TaskWorker | None = None
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
        self.refresh()
        self.status.setText(f"Active: {library.encoder_id}")

    def refresh(self) -> None:
        keep = self.selected()
        self.tree.clear()
        for m in self.library.models():
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
        busy = self._worker is not None and self._worker.isRunning()
        self.use_btn.setEnabled(not busy and m is not None and not m.active and not m.problem)
        self.delete_btn.setEnabled(not busy and m is not None and not m.active and not m.bundled)
        self.cancel_btn.setEnabled(busy)
        self.close_btn.setEnabled(not busy)
        self.tree.setEnabled(not busy)

    def _explain_selection(self) -> None:
        """Say why a model cannot be used rather than leave a greyed button unexplained."""
        m = self.selected()
        if self._worker is not None and self._worker.isRunning():
            return
        if m is not None and m.problem:
            self.status.setText(f"Cannot use {m.id}: it was made for an earlier photosim encoder. "
                                "Fine-tune again from the same albums.")
        elif self.status.text().startswith("Cannot use "):
            self.status.setText(f"Active: {self.library.encoder_id}")

    def use_selected(self) -> None:
        m = self.selected()
        if m is None or m.active or m.problem or (self._worker is not None and self._worker.isRunning()):
            return
        lib = self.library
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText(f"Switching to {m.id}: embedding your photos with it…")

        def job(progress, cancel):
            lib.use_model(m.id, progress=lambda p: progress((p.stage, p.done, p.total)), cancel=cancel)
            return m.id

        self._worker = TaskWorker(job, self, what="switching models")
        self._worker.progressed.connect(self._on_progress)
        self._worker.succeeded.connect(self._switched)
        self._worker.failed.connect(self._failed)
        self._worker.finished.connect(self._update_buttons)
        self._worker.start()
        self._update_buttons()

    def _on_progress(self, p) -> None:
        stage, done, total = p
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.status.setText(f"{stage.capitalize()}: {done} / {total}")

    def _switched(self, model_id: str) -> None:
        self.progress.hide()
        self.status.setText(f"Now searching with {model_id}.")
        self.refresh()
        self.model_changed.emit(model_id)

    def _failed(self, message: str, cancelled: bool) -> None:
        self.progress.hide()
        self.status.setText(("Cancelled: " if cancelled else "⚠ ") + message)
        self.refresh()

    def cancel(self) -> None:
        if self._worker is not None and self._worker.isRunning():
            self._worker.cancel_event.set()
            self.status.setText("Cancelling…")

    def delete_selected(self) -> None:
        m = self.selected()
        if m is None or m.active or m.bundled:
            return
        if not confirm(self, "Delete model", f"Delete the fine-tuned model {m.id}? Your photos are not touched."):
            return
        self.library.delete_model(m.id)
        self.status.setText(f"Deleted {m.id}.")
        self.refresh()

    def wait_idle(self, ms: int = 120_000) -> None:
        if self._worker is not None:
            self._worker.wait(ms)

    def reject(self) -> None:
        if self._worker is not None and self._worker.isRunning():
            self.cancel()
            return
        super().reject()
