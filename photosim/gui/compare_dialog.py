"""Two photos side by side with synced zoom and pan: is this copy really worse?

Both pictures are laid on one scale, the larger photo's pixels: a half-size copy is shown
enlarged to its original's size, so the same place of the scene sits at the same place
on both sides and blur or JPEG blocks show. Zoom (*Fit*, *100 %*: one pixel of the larger
photo per screen pixel, +/−, Ctrl+wheel) and scrolling move both sides together. Under
each side: its size in pixels, file size, format, date, and the reasons of the ranking
(why the keeper is kept). The photos are decoded in worker threads, at full resolution
(RAW photos through their embedded preview).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .common import read_image
from .photo_model import human_size, photo_date

FULL = 12_000  # long side of the decode: the whole photo, for 100 %
ZOOMS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0)


class _Loaded(QObject):
    done = Signal(int, QImage, str)


class _Load(QRunnable):
    def __init__(self, side: int, path: str, signals: _Loaded):
        super().__init__()
        self.side, self.path, self.signals = side, path, signals

    def run(self) -> None:
        image, error = read_image(self.path, FULL)
        try:
            self.signals.done.emit(self.side, image, error)
        except RuntimeError:  # the dialog went away
            pass


class _View(QGraphicsView):
    """One side; Ctrl+wheel asks the dialog to zoom both."""

    zoomStep = Signal(int)

    def __init__(self):
        super().__init__()
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(240, 200)

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoomStep.emit(1 if event.angleDelta().y() > 0 else -1)
            event.accept()
            return
        super().wheelEvent(event)


def _details(photo, reasons, role: str) -> str:
    fmt = os.path.splitext(photo.path)[1].lstrip(".").upper() or "?"
    dims = f"{photo.width} × {photo.height} px" if photo.width else "size unknown"
    lines = [f"<b>{role}: {photo.name}</b>", f"{dims} · {human_size(photo.size or 0)} · {fmt}",
             f"{photo_date(photo).replace('T', ' ')}" + (f" · {photo.camera}" if photo.camera else "")]
    lines += [f"• {r}" for r in reasons]
    return "<br>".join(lines)


class CompareDialog(QDialog):
    """``photos``: two PhotoInfo (the keeper first); ``reasons``: their lists of words;
    ``roles``: what each side is ("★ Suggested keeper", "Copy")."""

    def __init__(self, photos, reasons=((), ()), parent=None, roles=("★ Suggested keeper", "Copy")):
        super().__init__(parent)
        self.setWindowTitle("Compare side by side — photosim")
        self.setObjectName("compareDialog")
        self.photos = list(photos)
        self.views = [_View(), _View()]
        self.images: list[QImage | None] = [None, None]
        self.zoom: float | None = None  # None: fit
        self._syncing = False
        self.captions = []
        split = QSplitter()
        for i, (photo, view) in enumerate(zip(self.photos, self.views)):
            side = QWidget()
            col = QVBoxLayout(side)
            col.setContentsMargins(0, 0, 0, 0)
            col.addWidget(view, 1)
            caption = QLabel(_details(photo, list(reasons[i]) if i < len(reasons) else [], roles[i]))
            caption.setWordWrap(True)
            caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            caption.setToolTip(photo.path)
            col.addWidget(caption)
            self.captions.append(caption)
            split.addWidget(side)
            view.zoomStep.connect(self.step)
            view.item.setPixmap(QPixmap())
            for bar in (view.horizontalScrollBar(), view.verticalScrollBar()):
                bar.valueChanged.connect(lambda _v, i=i: self._sync_from(i))
            view.scene().setSceneRect(0, 0, 1, 1)
        tallest = max(c.sizeHint().height() for c in self.captions)
        for caption in self.captions:  # one height: both views the same size, the scenes level
            caption.setMinimumHeight(tallest)
            caption.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.fit_button = QPushButton("Fit")
        self.fit_button.clicked.connect(self.fit)
        self.full_button = QPushButton("100 %")
        self.full_button.setToolTip("One pixel of the larger photo per screen pixel; the smaller one enlarged to match")
        self.full_button.clicked.connect(lambda: self.set_zoom(1.0))
        minus, plus = QPushButton("−"), QPushButton("+")
        minus.clicked.connect(lambda: self.step(-1))
        plus.clicked.connect(lambda: self.step(1))
        self.zoom_label = QLabel()
        self.status = QLabel("Loading…")
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        bar = QHBoxLayout()
        for w in (self.fit_button, self.full_button, minus, plus, self.zoom_label):
            bar.addWidget(w)
        bar.addWidget(self.status, 1)
        bar.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addLayout(bar)
        for key, slot in (("0", self.fit), ("1", lambda: self.set_zoom(1.0)), ("+", lambda: self.step(1)),
                          ("=", lambda: self.step(1)), ("-", lambda: self.step(-1))):
            QShortcut(QKeySequence(key), self, activated=slot)
        self.resize(1200, 760)
        self._signals = _Loaded()
        self._signals.done.connect(self._loaded)
        self._pool = QThreadPool()
        self._pool.setMaxThreadCount(2)
        self._pending = len(self.photos)
        for i, photo in enumerate(self.photos):
            self._pool.start(_Load(i, photo.path, self._signals))
        self._update_label()

    # -- loading --------------------------------------------------------------------------
    def wait_loaded(self, ms: int = 20_000) -> bool:
        return self._pool.waitForDone(ms)

    def _loaded(self, side: int, image: QImage, error: str) -> None:
        if image.isNull():
            self.views[side].scene().addText(f"Cannot show this photo: {error}")
            self.images[side] = None
        else:
            self.images[side] = image
            self.views[side].item.setPixmap(QPixmap.fromImage(image))
        self._pending -= 1
        if self._pending <= 0:  # both answered (one may have failed: the other still shows)
            self.status.setText("")
            self._layout_scenes()

    def reference_size(self) -> tuple[int, int]:
        """The larger photo's size in pixels: the scale both sides are shown on."""
        sizes = [(im.width(), im.height()) for im in self.images if im is not None]
        return max(sizes, key=lambda s: s[0] * s[1]) if sizes else (1, 1)

    def _layout_scenes(self) -> None:
        ref_w, _ref_h = self.reference_size()
        for view, image in zip(self.views, self.images):
            if image is None:
                continue
            scale = ref_w / max(1, image.width())
            view.item.setScale(scale)
            view.scene().setSceneRect(view.item.sceneBoundingRect())
        self._apply()

    # -- zoom and pan ---------------------------------------------------------------------
    def fit(self) -> None:
        self.zoom = None
        self._apply()

    def set_zoom(self, zoom: float) -> None:
        self.zoom = zoom
        self._apply()

    def _fit_zoom(self) -> float:
        ref_w, ref_h = self.reference_size()
        fits = []
        for view in self.views:
            vp = view.viewport().size()
            fits.append(min(vp.width() / ref_w, vp.height() / ref_h))
        return min(1.0, min(fits))

    def current_zoom(self) -> float:
        return self._fit_zoom() if self.zoom is None else self.zoom

    def step(self, direction: int) -> None:
        z = self.current_zoom()
        steps = [s for s in ZOOMS if (s > z * 1.01 if direction > 0 else s < z * 0.99)]
        if steps:
            self.set_zoom(steps[0] if direction > 0 else steps[-1])

    def _apply(self) -> None:
        z = self.current_zoom()
        for view in self.views:
            view.resetTransform()
            view.scale(z, z)
        self._update_label()
        self._sync_from(0)

    def _update_label(self) -> None:
        z = self.current_zoom()
        word = "Fit" if self.zoom is None else ""
        self.zoom_label.setText(f"{word} ({z * 100:.0f} %)" if word else f"{z * 100:.0f} %")
        notes = []
        ref_w, _ = self.reference_size()
        for photo, image in zip(self.photos, self.images):
            if image is not None and image.width() < ref_w:
                notes.append(f"{photo.name} shown at {z * ref_w / image.width() * 100:.0f} % of its own pixels")
        self.zoom_label.setToolTip("\n".join(notes) or "Both photos at this scale")
        if all(im is not None for im in self.images):
            self.status.setText("; ".join(notes))

    def _sync_from(self, side: int) -> None:
        """The other side scrolls to the same place of the scene (as a share of the range)."""
        if self._syncing:
            return
        self._syncing = True
        try:
            src = self.views[side]
            for other in self.views:
                if other is src:
                    continue
                for a, b in ((src.horizontalScrollBar(), other.horizontalScrollBar()),
                             (src.verticalScrollBar(), other.verticalScrollBar())):
                    span = a.maximum() - a.minimum()
                    share = (a.value() - a.minimum()) / span if span > 0 else 0.5
                    b.setValue(round(b.minimum() + share * (b.maximum() - b.minimum())))
        finally:
            self._syncing = False

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.zoom is None:
            self._apply()
