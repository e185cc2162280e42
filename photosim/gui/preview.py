"""A large preview of one photo (double-click or Space); arrows step through the gallery.

The thumbnail shows at once; the full image is decoded in a worker thread (a 40 MP
JPEG takes a few hundred milliseconds) and replaces it when ready.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QDialog, QLabel, QSizePolicy, QVBoxLayout

from .common import fitted_pixmap, read_image

LIMIT = 2400  # long side of the decoded full image, in pixels


class _Loaded(QObject):
    done = Signal(str, QImage, str)


class _Load(QRunnable):
    def __init__(self, path: str, signals: _Loaded):
        super().__init__()
        self.path = path
        self.signals = signals

    def run(self) -> None:
        image, error = read_image(self.path, LIMIT)
        try:
            self.signals.done.emit(self.path, image, error)
        except RuntimeError:  # the dialog went away
            pass


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
        self._path = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Loaded(self)
        self._signals.done.connect(self._loaded)
        self.resize(1000, 760)

    def show_photo(self, photo, caption: str, thumbnail: QImage | None = None) -> None:
        self.setWindowTitle(photo.name)
        self._path = photo.path
        self.caption.setText(caption)
        self._source = QPixmap.fromImage(thumbnail) if thumbnail is not None and not thumbnail.isNull() else QPixmap()
        if self._source.isNull():
            self.image.setText("Loading…")
        self._fit()
        self._pool.clear()
        self._pool.start(_Load(photo.path, self._signals))

    def _loaded(self, path: str, image: QImage, error: str) -> None:
        if path != self._path:
            return
        if image.isNull():
            if self._source.isNull():
                self.image.setText(f"Cannot show this photo: {error}")
            return
        self._source = QPixmap.fromImage(image)
        self._fit()

    def wait_loaded(self, ms: int = 10_000) -> bool:
        return self._pool.waitForDone(ms)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._source.isNull():
            return
        dpr = self.devicePixelRatioF()
        target = self.image.size()
        if self._source.width() <= target.width() * dpr and self._source.height() <= target.height() * dpr \
                and self._source.width() >= 400:
            target = self._source.size() / dpr  # small photos at 100 %, never blown up (thumbnails may be)
        self.image.setPixmap(fitted_pixmap(self._source, target, dpr))
