"""A large preview of one photo (double-click or Space); arrows step through the gallery.

The thumbnail shows at once; the image is decoded in a worker thread (a 40 MP JPEG takes
a few hundred milliseconds) and replaces it when ready. *Fit* (0) shows the whole photo,
never enlarged past 100 % (small photos stay sharp); *100 %* (1) shows one photo pixel per
screen pixel, decoding the full resolution when the preview's decode was smaller; + and -
(or Ctrl+wheel) zoom, and the photo scrolls when larger than the window.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout

from .common import read_image

LIMIT = 2400  # long side of the first decode, in pixels (100 % decodes the full image)
FULL = 1 << 20
ZOOMS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0)


class _Loaded(QObject):
    done = Signal(str, QImage, str)


class _Load(QRunnable):
    def __init__(self, path: str, signals: _Loaded, limit: int = LIMIT):
        super().__init__()
        self.path = path
        self.signals = signals
        self.limit = limit

    def run(self) -> None:
        image, error = read_image(self.path, self.limit)
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
        self.scroll = QScrollArea()
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.scroll.setWidget(self.image)
        self.scroll.setMinimumSize(200, 200)
        self.scroll.viewport().installEventFilter(self)
        self.caption = QLabel()
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.zoom_label = QLabel()
        self.zoom_label.setMinimumWidth(self.zoom_label.fontMetrics().horizontalAdvance("Fit (100 %)  "))
        bar = QHBoxLayout()
        bar.addWidget(self.caption, 1)
        for text, tip, slot in (("−", "Zoom out (-)", lambda: self.zoom_by(-1)),
                                ("+", "Zoom in (+)", lambda: self.zoom_by(1)),
                                ("Fit", "The whole photo, never enlarged (0)", self.fit),
                                ("100 %", "One photo pixel per screen pixel (1)", lambda: self.set_zoom(1.0))):
            b = QToolButton(text=text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            bar.addWidget(b)
        bar.addWidget(self.zoom_label)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll, 1)
        layout.addLayout(bar)
        for key in (Qt.Key.Key_Space, Qt.Key.Key_Escape):
            QShortcut(QKeySequence(key), self, activated=self.close)
        QShortcut(QKeySequence(Qt.Key.Key_Left), self, activated=lambda: self.stepRequested.emit(-1))
        QShortcut(QKeySequence(Qt.Key.Key_Right), self, activated=lambda: self.stepRequested.emit(1))
        QShortcut(QKeySequence(Qt.Key.Key_1), self, activated=lambda: self.set_zoom(1.0))
        QShortcut(QKeySequence(Qt.Key.Key_0), self, activated=self.fit)
        for key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            QShortcut(QKeySequence(key), self, activated=lambda: self.zoom_by(1))
        QShortcut(QKeySequence(Qt.Key.Key_Minus), self, activated=lambda: self.zoom_by(-1))
        self.zoom: float | None = None  # None: fit
        self._full = False  # the decode is the photo's full resolution
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
        self._full = False
        self._thumb = True
        self.caption.setText(caption)
        self._source = QPixmap.fromImage(thumbnail) if thumbnail is not None and not thumbnail.isNull() else QPixmap()
        if self._source.isNull():
            self._say("Loading…")
        self._fit()
        self._pool.clear()
        self._pool.start(_Load(photo.path, self._signals))

    def _loaded(self, path: str, image: QImage, error: str) -> None:
        if path != self._path:
            return
        if image.isNull():
            if self._source.isNull():
                self._say(f"Cannot show this photo: {error}")
            return
        self._source = QPixmap.fromImage(image)
        self._thumb = False
        size = QImageReader(path).size()
        self._full = not size.isValid() or max(size.width(), size.height()) <= max(image.width(), image.height())
        self._fit()

    def wait_loaded(self, ms: int = 10_000) -> bool:
        return self._pool.waitForDone(ms)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _say(self, text: str) -> None:
        self.image.setText(text)
        self.image.resize(self.scroll.viewport().size())

    # -- zoom -------------------------------------------------------------------------------
    def fit(self) -> None:
        self.zoom = None
        self._fit()

    def set_zoom(self, zoom: float) -> None:
        self.zoom = max(ZOOMS[0], min(ZOOMS[-1], zoom))
        if self.zoom > self._fit_scale() and not self._full and self._path:
            self._pool.start(_Load(self._path, self._signals, FULL))  # 100 % of the real photo
            self._full = True
        self._fit()

    def zoom_by(self, step: int) -> None:
        now = self.zoom if self.zoom is not None else self._fit_scale()
        bigger = [z for z in ZOOMS if z > now + 1e-6]
        smaller = [z for z in ZOOMS if z < now - 1e-6]
        if step > 0 and bigger:
            self.set_zoom(bigger[0])
        elif step < 0 and smaller:
            self.set_zoom(smaller[-1])

    def eventFilter(self, obj, event) -> bool:
        if obj is self.scroll.viewport() and event.type() == event.Type.Wheel \
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(1 if event.angleDelta().y() > 0 else -1)
            return True
        return super().eventFilter(obj, event)

    def _fit_scale(self) -> float:
        """The scale that shows the whole photo, at most 1 (never enlarged)."""
        if self._source.isNull():
            return 1.0
        dpr = self.devicePixelRatioF()
        view = self.scroll.viewport().size()
        w, h = self._source.width() / dpr, self._source.height() / dpr
        return min(1.0, view.width() / max(1.0, w), view.height() / max(1.0, h))

    def shown_scale(self) -> float:
        return self.zoom if self.zoom is not None else self._fit_scale()

    def _fit(self) -> None:
        if self._source.isNull():
            return
        dpr = self.devicePixelRatioF()
        scale = self.shown_scale()
        if self._thumb and self.zoom is None:  # the thumbnail while the photo loads: fill the view
            view = self.scroll.viewport().size()
            scale = min(view.width() * dpr / self._source.width(), view.height() * dpr / self._source.height())
        device = QSize(max(1, round(self._source.width() * scale)), max(1, round(self._source.height() * scale)))
        mode = Qt.TransformationMode.SmoothTransformation if scale < 1 else Qt.TransformationMode.FastTransformation
        pix = self._source if device == self._source.size() else self._source.scaled(
            device, Qt.AspectRatioMode.KeepAspectRatio, mode)  # above 100 %: crisp pixels, not a blur
        pix.setDevicePixelRatio(dpr)
        self.image.setPixmap(pix)
        self.image.resize(round(device.width() / dpr), round(device.height() / dpr))
        label = "Fit" if self.zoom is None else ""
        self.zoom_label.setText(f"{label} ({scale * 100:.0f} %)" if label else f"{scale * 100:.0f} %")
