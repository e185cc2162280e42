"""Thumbnails made off the GUI thread and cached on disk.

A thumbnail is a JPEG under ``$PHOTOSIM_CACHE_DIR`` (or platformdirs' user cache dir)
named by a hash of the photo's path, size and mtime, so an edited file gets a fresh
one. Requests are served newest first (what is on screen now), and the queue is
bounded, so scrolling through 100,000 photos never builds a backlog.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

#: Long side of cached thumbnails, in device pixels (sharp up to 256 logical px at 1.5x).
THUMB_SIDE = 384


def cache_dir() -> Path:
    env = os.environ.get("PHOTOSIM_CACHE_DIR")
    if env:
        return Path(env) / "thumbnails"
    import platformdirs

    return Path(platformdirs.user_cache_dir("photosim", appauthor=False)) / "thumbnails"


def cache_key(path: str, size: int, mtime_ns: int, side: int = THUMB_SIDE) -> str:
    raw = f"{os.fsencode(path)!r}|{size}|{mtime_ns}|{side}".encode()
    return hashlib.sha1(raw).hexdigest()


def make_thumbnail(path: str, dest: Path, side: int = THUMB_SIDE) -> QImage:
    """Decode a reduced image (JPEG draft decode, EXIF orientation applied), save it to
    ``dest`` and return it as a QImage. Raises PhotoError for unreadable files."""
    from photosim.imageio import open_image

    im = open_image(path, max_side=side)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".{threading.get_ident()}.tmp")
    try:
        im.save(tmp, "JPEG", quality=85)
        os.replace(tmp, dest)
    except OSError:
        tmp.unlink(missing_ok=True)
    return pil_to_qimage(im)


def pil_to_qimage(im) -> QImage:
    im = im.convert("RGB")
    data = im.tobytes("raw", "RGB")
    q = QImage(data, im.width, im.height, im.width * 3, QImage.Format.Format_RGB888)
    return q.copy()  # own the pixels; ``data`` goes away


class _Worker(QRunnable):
    def __init__(self, owner: ThumbnailCache):
        super().__init__()
        self.owner = owner

    def run(self) -> None:
        owner = self.owner
        while True:
            job = owner._next_job()
            if job is None:
                return
            path, key = job
            dest = owner.dir / key[:2] / f"{key}.jpg"
            image = QImage()
            if dest.is_file():
                image = QImage(str(dest))
            if image.isNull():
                try:
                    image = make_thumbnail(path, dest, owner.side)
                except Exception:  # noqa: BLE001 - unreadable file: show a placeholder
                    image = QImage()
            owner._loaded.emit(path, key, image)


class ThumbnailCache(QObject):
    """``get(photo)`` returns a QImage from memory, or None and loads it in the background;
    ``ready(path)`` is emitted when it arrives."""

    ready = Signal(str)
    idle = Signal()
    _loaded = Signal(str, str, QImage)

    def __init__(self, directory: Path | None = None, side: int = THUMB_SIDE, memory: int = 800,
                 queue_limit: int = 300, threads: int | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.dir = Path(directory) if directory else cache_dir()
        self.side = side
        self._memory: OrderedDict[str, QImage] = OrderedDict()
        self._memory_limit = memory
        self._failed: set[str] = set()
        self._queue: OrderedDict[str, str] = OrderedDict()  # path -> key; newest last
        self._in_flight: set[str] = set()
        self._queue_limit = queue_limit
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads or max(2, (os.cpu_count() or 2) - 1))
        self._workers = 0
        self._loaded.connect(self._on_loaded)

    def get(self, path: str, size: int, mtime_ns: int) -> QImage | None:
        key = cache_key(path, size, mtime_ns, self.side)
        image = self._memory.get(key)
        if image is not None:
            self._memory.move_to_end(key)
            return image
        if key in self._failed:
            return None
        self.request(path, key)
        return None

    def failed(self, path: str, size: int, mtime_ns: int) -> bool:
        return cache_key(path, size, mtime_ns, self.side) in self._failed

    def request(self, path: str, key: str) -> None:
        with self._lock:
            if path in self._in_flight:
                return
            self._queue.pop(path, None)
            self._queue[path] = key
            while len(self._queue) > self._queue_limit:
                self._queue.popitem(last=False)  # oldest request: scrolled away long ago
            start = self._workers < self._pool.maxThreadCount() and not self._stopping
            if start:
                self._workers += 1
            else:
                self._wake.notify()
        if start:
            self._pool.start(_Worker(self))

    def _next_job(self) -> tuple[str, str] | None:
        with self._lock:
            if not self._queue and not self._stopping:
                # stay a moment: starting a pool thread per burst costs more than waiting
                self._wake.wait(timeout=2.0)
            if not self._queue or self._stopping:
                self._workers -= 1
                return None
            path, key = self._queue.popitem(last=True)  # newest first
            self._in_flight.add(path)
            return path, key

    @Slot(str, str, QImage)
    def _on_loaded(self, path: str, key: str, image: QImage) -> None:
        with self._lock:
            self._in_flight.discard(path)
            idle = not self._queue and not self._in_flight
        if image.isNull():
            self._failed.add(key)
        else:
            self._memory[key] = image
            while len(self._memory) > self._memory_limit:
                self._memory.popitem(last=False)
        self.ready.emit(path)
        if idle:
            self.idle.emit()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._in_flight)

    def shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            self._queue.clear()
            self._wake.notify_all()
        self._pool.waitForDone()
