"""An info bar that offers to undo the last move to the trash: "Moved 3 photos to the
trash · Undo". The window restores them (``Library.restore_from_trash``, freedesktop
trash) and reads them back into the library; where the platform's trash allows no
restore, the engine's one sentence says so."""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton

OFFER_MS = 60_000  # how long the offer stays (the files stay in the trash much longer)


class UndoBar(QFrame):
    undoRequested = Signal(list)  # the paths to restore

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("undoBar")
        self.setStyleSheet("#undoBar { background: palette(tool-tip-base); border: 1px solid palette(mid);"
                           " border-radius: 4px; } #undoBar QLabel { color: palette(tool-tip-text); }")
        self.paths: list[str] = []
        self.label = QLabel()
        self.undo = QPushButton("Undo")
        self.undo.setToolTip("Put the photos back where they were and into the library")
        self.undo.clicked.connect(self._undo)
        self.close_btn = QToolButton()
        self.close_btn.setText("✕")
        self.close_btn.setAutoRaise(True)
        self.close_btn.setToolTip("Dismiss (the photos stay in the trash)")
        self.close_btn.clicked.connect(self.dismiss)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 3, 4, 3)
        row.addWidget(self.label, 1)
        row.addWidget(self.undo)
        row.addWidget(self.close_btn)
        self._timer = QTimer(self, singleShot=True, interval=OFFER_MS, timeout=self.dismiss)
        self.hide()

    def offer(self, paths: list[str]) -> None:
        """Offer to undo moving ``paths`` (replaces an earlier offer)."""
        if not paths:
            return
        self.paths = list(paths)
        n = len(paths)
        self.label.setText(f"Moved {n:,} photo{'s' if n != 1 else ''} to the trash.")
        self.undo.setEnabled(True)
        self.show()
        self._timer.start()

    def dismiss(self) -> None:
        self._timer.stop()
        self.paths = []
        self.hide()

    def _undo(self) -> None:
        paths = self.paths
        if paths:
            self.dismiss()
            self.undoRequested.emit(paths)
