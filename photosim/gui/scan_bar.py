"""Scan progress (count, rate, ETA, cancel) and the panel listing files that failed."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(math.ceil(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


PHASES = {"listing": "Looking for photos…", "removing": "Forgetting removed files…",
          "saving": "Saving the index…", "done": "Finishing…"}


class ScanBar(QWidget):
    """Shown while a scan runs."""

    cancelRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(14)
        self.label = QLabel()
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop after the current batch; what was indexed stays")
        self.cancel.clicked.connect(self._cancel)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.label, 2)
        row.addWidget(self.bar, 3)
        row.addWidget(self.cancel)
        self.last = None
        self.hide()

    def start(self, what: str) -> None:
        self.last = None
        self.cancel.setEnabled(True)
        self.cancel.setText("Cancel")
        self.label.setText(what)
        self.bar.setRange(0, 0)
        self.show()

    def update_progress(self, p) -> None:
        self.last = p
        if p.stage == "scanning" and p.total:
            self.bar.setRange(0, p.total)
            self.bar.setValue(p.done)
            fail = f" · {p.failed} failed" if p.failed else ""
            kept = f" · {p.unchanged:,} unchanged" if p.unchanged else ""
            rate = f" · {p.rate:.1f} photos read/s · ETA {fmt_seconds(p.eta)}" if p.read else ""
            self.label.setText(f"Indexing {p.done:,} / {p.total:,}{kept}{rate}{fail}")
        else:
            self.bar.setRange(0, 0)
            self.label.setText(PHASES.get(p.stage, p.stage) + (f" {p.total:,} found" if p.total else ""))

    def _cancel(self) -> None:
        self.cancel.setEnabled(False)
        self.cancel.setText("Cancelling…")
        self.cancelRequested.emit()


class ProblemsPanel(QWidget):
    """Files that could not be read, with the reason; lives in a dock the user opens."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.empty = QLabel("No problems: every file was read.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.empty)
        layout.addWidget(self.table)
        self.set_problems([])

    def set_problems(self, items: list[tuple[str, str]]) -> None:
        self.table.setRowCount(len(items))
        for row, (path, reason) in enumerate(items):
            cell = QTableWidgetItem(path)
            cell.setToolTip(path)
            self.table.setItem(row, 0, cell)
            self.table.setItem(row, 1, QTableWidgetItem(reason))
        self.table.resizeColumnToContents(0)
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), 480))
        self.table.setVisible(bool(items))
        self.empty.setVisible(not items)

    def count(self) -> int:
        return self.table.rowCount()
