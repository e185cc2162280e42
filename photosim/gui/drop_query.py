"""Turning dropped or pasted data (file URLs, raw image data from a browser) into query images."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData
from PySide6.QtGui import QImage

from photosim.imageio import is_supported

#: Mime types browsers and image viewers use for the pixels themselves.
IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff")


@dataclass
class DropContent:
    images: list = field(default_factory=list)    # local paths (str) or encoded bytes
    rejected: list[str] = field(default_factory=list)  # why something was not used

    def message(self) -> str:
        if not self.rejected:
            return ""
        head = "; ".join(self.rejected[:3])
        more = f" (and {len(self.rejected) - 3} more)" if len(self.rejected) > 3 else ""
        return head + more


def has_usable_data(mime: QMimeData) -> bool:
    return mime.hasUrls() or mime.hasImage() or any(mime.hasFormat(t) for t in IMAGE_MIME_TYPES)


def qimage_to_png(image: QImage) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


def read_mime(mime: QMimeData) -> DropContent:
    """Local image files by URL; otherwise the image data itself (a browser drag or a
    clipboard image). Non-images are reported, not raised."""
    out = DropContent()
    web_urls = []
    for url in mime.urls() if mime.hasUrls() else []:
        if url.isLocalFile():
            path = url.toLocalFile()
            name = os.path.basename(path.rstrip("/\\")) or path
            if os.path.isdir(path):
                out.rejected.append(f"{name} is a folder (use Add folder to put it in the library)")
            elif not os.path.isfile(path):
                out.rejected.append(f"{name} does not exist")
            elif not is_supported(path):
                out.rejected.append(f"{name} is not an image photosim can read")
            else:
                out.images.append(path)
        else:
            web_urls.append(url.toString())
    if not out.images:
        for fmt in IMAGE_MIME_TYPES:
            if mime.hasFormat(fmt):
                raw = bytes(mime.data(fmt).data())
                if raw:
                    out.images.append(raw)
                    break
        else:
            if mime.hasImage():
                image = mime.imageData()
                if isinstance(image, QImage) and not image.isNull():
                    out.images.append(qimage_to_png(image))
    if not out.images and web_urls:
        out.rejected.append("that is a web link, not an image: drag the picture itself, or save it first")
    if not out.images and not out.rejected:
        out.rejected.append("nothing there is an image")
    return out
