"""Scan progress (count, rate, ETA, cancel); the files that failed are in problems_panel.py."""

from __future__ import annotations

import math

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
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
