"""Small pieces several widgets share: reading and fitting images, asking before a
change the user may regret, showing a job's progress."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QLabel, QMessageBox, QProgressBar


def read_image(source, max_side: int) -> tuple[QImage, str]:
    """A QImage of a path or encoded bytes, EXIF orientation applied, decoded at most
    ``max_side`` pixels on its long side (a scaled decode: cheap even for a 40 MP JPEG);
    and the reader's error text when it could not be read."""
    if isinstance(source, bytes | bytearray):
        image = QImage.fromData(bytes(source))
        return image, "" if not image.isNull() else "not an image Qt can read"
    from photosim.raw import is_raw

    if is_raw(source):  # Qt reads no camera RAW: its embedded preview, through the engine's reader
        from photosim.imageio import open_image
        from photosim.errors import PhotoError

        from .thumbnails import pil_to_qimage

        try:
            return pil_to_qimage(open_image(source, max_side)), ""
        except PhotoError as exc:
            return QImage(), str(exc)
    reader = QImageReader(source)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > max_side:
        reader.setScaledSize(size.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    return image, reader.errorString()


def fitted_pixmap(source: QImage | QPixmap, size: QSize, dpr: float) -> QPixmap:
    """``source`` scaled (smoothly, aspect kept) to fill ``size`` logical pixels on a screen
    of device pixel ratio ``dpr``, so it is sharp on high-DPI screens."""
    target = QSize(int(size.width() * dpr), int(size.height() * dpr))
    scaled = source.scaled(target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    pix = QPixmap.fromImage(scaled) if isinstance(scaled, QImage) else scaled
    pix.setDevicePixelRatio(dpr)
    return pix


def confirm(parent, title: str, text: str) -> bool:
    """Ask before doing something the user may regret (tests replace this)."""
    answer = QMessageBox.question(parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                  QMessageBox.StandardButton.Cancel)
    return answer == QMessageBox.StandardButton.Yes


def show_progress(bar: QProgressBar, label: QLabel, p) -> None:
    """A :class:`photosim.progress.Progress` on a bar and a line of text ("Re-embedding:
    120 / 400"); a busy bar while the total is not known."""
    if p.total > 0:
        bar.setRange(0, p.total)
        bar.setValue(min(p.done, p.total))
        text = f"{p.stage.capitalize()}: {p.done:,} / {p.total:,}"
    else:
        bar.setRange(0, 0)
        text = f"{p.stage.capitalize()}…"
    label.setText(text + (f" · {p.detail}" if p.detail else ""))
