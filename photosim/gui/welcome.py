"""The first-run page: pick the folder where the photos live (or a recent library)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget


class WelcomePage(QWidget):
    chooseFolder = Signal()
    openRecent = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("Welcome to photosim")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 2)
        font.setBold(True)
        self.title.setFont(font)
        self.text = QLabel("photosim finds photos that look alike in your own library, on this computer.\n"
                           "Choose the folder where your photos live to start; nothing is uploaded or changed.")
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.button = QPushButton("Choose photo folder…")
        self.button.setDefault(True)
        self.button.setMinimumHeight(40)
        self.button.clicked.connect(self.chooseFolder)
        self.recent_label = QLabel("Recent libraries")
        self.recent = QListWidget()
        self.recent.setMaximumHeight(140)
        self.recent.itemActivated.connect(lambda item: self.openRecent.emit(item.text()))
        box = QWidget()
        box.setFixedWidth(560)
        inner = QVBoxLayout(box)
        inner.setSpacing(14)
        inner.addWidget(self.title, 0, Qt.AlignmentFlag.AlignHCenter)
        inner.addWidget(self.text)
        inner.addWidget(self.button, 0, Qt.AlignmentFlag.AlignHCenter)
        inner.addSpacing(12)
        inner.addWidget(self.recent_label)
        inner.addWidget(self.recent)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)
        self.set_loading(None)

    def set_loading(self, text: str | None) -> None:
        """While the library opens show only a line of text."""
        loading = text is not None
        self.title.setText("photosim" if loading else "Welcome to photosim")
        self.text.setText(text if loading else
                          "photosim finds photos that look alike in your own library, on this computer.\n"
                          "Choose the folder where your photos live to start; nothing is uploaded or changed.")
        self.button.setVisible(not loading)
        has_recent = self.recent.count() > 0
        self.recent.setVisible(not loading and has_recent)
        self.recent_label.setVisible(not loading and has_recent)

    def set_recent(self, paths: list[str], current: str | None) -> None:
        self.recent.clear()
        for p in paths:
            if p != current:
                self.recent.addItem(p)
