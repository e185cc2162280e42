"""A large preview of one photo (double-click or Space); arrows step through the gallery."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImageReader, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QDialog, QLabel, QSizePolicy, QVBoxLayout


class PreviewDialog(QDialog):
    stepRequested = Signal(int)  # -1 / +1

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preview")
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image.setMinimumSize(200, 200)
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)
        for key in (Qt.Key.Key_Space, Qt.Key.Key_Escape):
            QShortcut(QKeySequence(key), self, activated=self.close)
        QShortcut(QKeySequence(Qt.Key.Key_Left), self, activated=lambda: self.stepRequested.emit(-1))
        QShortcut(QKeySequence(Qt.Key.Key_Right), self, activated=lambda: self.stepRequested.emit(1))
        self._source = QPixmap()
        self.resize(1000, 760)

    def show_photo(self, photo, caption: str) -> None:
        self.setWindowTitle(photo.name)
        reader = QImageReader(photo.path)
        reader.setAutoTransform(True)
        size = reader.size()
        limit = QSize(2400, 2400)
        if size.isValid() and (size.width() > limit.width() or size.height() > limit.height()):
            reader.setScaledSize(size.scaled(limit, Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        self._source = QPixmap.fromImage(image) if not image.isNull() else QPixmap()
        self.caption.setText(caption)
        if self._source.isNull():
            self.image.setText(f"Cannot show this photo: {reader.errorString()}")
        self._fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._source.isNull():
            return
        dpr = self.devicePixelRatioF()
        target = self.image.size() * dpr
        pix = self._source.scaled(target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        pix.setDevicePixelRatio(dpr)
        self.image.setPixmap(pix)
