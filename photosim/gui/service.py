"""The one :class:`photosim.Library` of the process, driven from worker threads.

``photosim.library`` imports torch, so even the import happens off the GUI thread.
Engine calls go through :meth:`LibraryService.call`: the function runs in a worker
and its result (or error message) comes back to a callback on the GUI thread.
Queries share one serial pool (the encoder is not re-entrant); a scan has its own
thread so the gallery and the similar panel keep answering while it runs.
"""

from __future__ import annotations

import itertools
import sys
import threading
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], object], deliver: Callable[[bool, object], None]):
        super().__init__()
        self.setAutoDelete(True)
        self._fn = fn
        self._deliver = deliver

    def run(self) -> None:  # worker thread
        try:
            value = self._fn()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the user
            if not _is_user_error(exc):
                traceback.print_exc()
            self._safe_deliver(False, exc)
            return
        self._safe_deliver(True, value)

    def _safe_deliver(self, ok: bool, value: object) -> None:
        try:
            self._deliver(ok, value)
        except RuntimeError:  # the window closed while this ran: nobody to tell
            pass


def set_torch_threads(n: int) -> None:
    """torch's intra-op thread count, for the calling thread (and threads started later);
    0 means torch's default.

    One interactive query embeds one image: a single thread answers in ~40 ms, while two
    threads on a busy CPU (a scan, other programs) spin-wait and take up to seconds."""
    global _default_threads
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if _default_threads is None:
        _default_threads = torch.get_num_threads()  # torch's own choice (physical cores)
    n = n or _default_threads
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


_default_threads: int | None = None


def _is_user_error(exc: BaseException) -> bool:
    from photosim.errors import PhotosimError

    return isinstance(exc, PhotosimError)


def error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _warm_up(lib) -> str:
    """Load the model and run it once (the first inference is several times slower), so
    the user's first drop is answered as fast as the next ones."""
    from PIL import Image

    lib.embed_image(Image.new("RGB", (224, 224), (128, 128, 128)))
    return lib.encoder.device


class LibraryService(QObject):
    """Owns the library; all engine work is submitted here."""

    opened = Signal(object)        # the Library
    openFailed = Signal(str)
    encoderReady = Signal(str)     # device
    scanProgress = Signal(object)  # ScanProgress
    scanFinished = Signal(object)  # ScanReport, or None when it failed
    scanFailed = Signal(str)
    busyChanged = Signal(bool)

    _result = Signal(int, bool, object)

    def __init__(self, device: str | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.device = device
        self.lib = None
        self.readonly = False
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.scan_pool = QThreadPool(self)
        self.scan_pool.setMaxThreadCount(1)
        self.long_pool = QThreadPool(self)  # slow whole-library work (duplicates) beside queries
        self.long_pool.setMaxThreadCount(1)
        self._tokens = itertools.count(1)
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._scan_cancel: threading.Event | None = None
        self._closed = False
        self._result.connect(self._on_result)

    # -- generic calls ----------------------------------------------------------
    def run(self, fn: Callable[[], object], on_done: Callable | None = None,
            on_error: Callable | None = None, pool: QThreadPool | None = None) -> int:
        if self._closed:
            return -1
        token = next(self._tokens)
        self._callbacks[token] = (on_done, on_error)
        self.busyChanged.emit(True)
        (pool or self.pool).start(_Job(fn, lambda ok, v, t=token: self._result.emit(t, ok, v)))
        return token

    def call(self, fn: Callable, on_done: Callable | None = None, on_error: Callable | None = None,
             long: bool = False) -> int:
        """Run ``fn(library)`` in the query worker (``long``: in the worker for slow jobs, so
        queries are not stuck behind them); callbacks run on the GUI thread."""
        def job():
            if self.lib is None:
                from photosim.values import PhotosimError

                raise PhotosimError("no library is open")
            if self.lib.encoder_loaded:  # torch fully imported (never touch it mid-import)
                set_torch_threads(1)
            return fn(self.lib)
        return self.run(job, on_done, on_error, pool=self.long_pool if long else None)

    @Slot(int, bool, object)
    def _on_result(self, token: int, ok: bool, value: object) -> None:
        on_done, on_error = self._callbacks.pop(token, (None, None))
        if not self._callbacks:
            self.busyChanged.emit(False)
        if ok:
            if on_done:
                on_done(value)
        elif on_error:
            on_error(error_text(value))

    @property
    def busy(self) -> bool:
        return bool(self._callbacks)

    # -- opening ------------------------------------------------------------------
    def open(self, path: str | None) -> None:
        """Open (or create) a library in a worker; falls back to read-only when another
        process holds the writer lock. Then loads the encoder in the background."""
        device = self.device
        self._closed = False

        def job():
            from photosim.library import Library, LibraryLocked

            try:
                return Library(path, device=device), False
            except LibraryLocked:
                return Library(path, readonly=True, device=device), True

        def done(value):
            self.lib, self.readonly = value
            self.opened.emit(self.lib)
            self.call(_warm_up, self.encoderReady.emit, lambda _msg: None)

        self.run(job, done, self.openFailed.emit)

    def close(self) -> None:
        """Stop the scan, finish running work, close the library; later calls are dropped."""
        self._closed = True
        self.cancel_scan()
        self.scan_pool.waitForDone()
        self.long_pool.waitForDone()
        self.pool.waitForDone()
        if self.lib is not None:
            self.lib.close()
            self.lib = None

    # -- scanning -------------------------------------------------------------------
    @property
    def scanning(self) -> bool:
        return self._scan_cancel is not None

    def scan(self, roots: list[str] | None) -> bool:
        """Scan ``roots`` (or re-scan the library's folders when None). False if one is running."""
        if self.scanning or self.lib is None:
            return False
        cancel = self._scan_cancel = threading.Event()
        lib = self.lib

        def job():
            if lib.encoder_loaded:
                set_torch_threads(0)  # torch's default: a scan embeds batches
            progress = self.scanProgress.emit
            if roots is None:
                return lib.rescan(progress=progress, cancel=cancel)
            return lib.scan(roots, progress=progress, cancel=cancel)

        def done(report):
            self._scan_cancel = None
            self.scanFinished.emit(report)

        def failed(msg):
            self._scan_cancel = None
            self.scanFailed.emit(msg)

        self.run(job, done, failed, pool=self.scan_pool)
        return True

    def cancel_scan(self) -> None:
        if self._scan_cancel is not None:
            self._scan_cancel.set()
