"""The one :class:`photosim.Library` of the window, and every background job on it.

Widgets and dialogs get this service, never the library: each engine call is a job
that runs ``fn(library)`` in a worker, and its callback runs on the GUI thread as
``callback(result=value, error=None)`` or ``callback(result=None, error=exception)``
(as MusicBrainz Picard's ``run_task``). ``photosim.errors.PhotosimError`` is a
sentence for the user (:func:`error_text`); any other exception is a bug and its
traceback is printed before the callback sees it.

Jobs come in three kinds:

- ``Kind.QUERY``: fast reads and small writes (similar photos, the photo list, marks);
  one serial worker, because the encoder is not re-entrant.
- ``Kind.LONG``: slow whole-library reads (duplicates); their own worker, so queries
  never wait behind them.
- ``Kind.READ``: the gallery's pages, counts and row look-ups (milliseconds of SQL);
  their own worker, so scrolling never waits behind the encoder or a search.
- ``Kind.EXCLUSIVE``: what changes the library wholesale (scan, model switch,
  fine-tune, trash, forget, deleting a model): one at a time. A second one is refused
  with :class:`JobRefused` ("Switching models is still running; …") rather than queued,
  so the user knows why nothing happens; :attr:`LibraryService.exclusive` names the
  running one and ``exclusiveChanged`` says when that changes.
- ``Kind.INDEX``: one job that waits while the index is built in the background (after
  opening, a model switch or a scan) and relays its progress as ``indexProgress``.

Progress is one form, :class:`photosim.progress.Progress` (``ScanProgress`` and
``TrainProgress`` are ones); cancel is a :class:`photosim.progress.CancelToken`.
``photosim.library`` imports torch, so even that import happens off the GUI thread.
"""

from __future__ import annotations

import enum
import itertools
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QRunnable, QThreadPool, Signal, Slot

from photosim.errors import Cancelled, PhotosimError
from photosim.progress import CancelToken, Progress

from . import guard


class Kind(enum.Enum):
    QUERY = "query"
    LONG = "long"
    READ = "read"
    EXCLUSIVE = "exclusive"
    INDEX = "index"  # waits for a background build of the index, reporting its progress


class JobRefused(PhotosimError):
    """Another job that changes the library is running."""


@dataclass(frozen=True)
class LibraryState:
    """What the widgets may know about the open library without calling it (read in a worker)."""

    path: str
    readonly: bool
    encoder_id: str
    duplicate_threshold: float  # each encoder has its own similarity scale
    #: the similarity from which the duplicate search verifies neighbours by default
    duplicate_bound: float
    model_name: str = ""  # the active model's display name (the user's, else made from its record)

    @classmethod
    def read(cls, lib) -> LibraryState:  # worker thread
        # the library's threshold: the model's, calibrated by the duplicates view's verdicts
        calibration = lib.duplicate_calibration()
        return cls(str(lib.path), bool(lib.readonly), lib.encoder_id, float(calibration.threshold),
                   lib.candidate_bound(calibration), lib.card.display_name)


def error_text(error: BaseException, what: str = "") -> str:
    """The sentence to show for ``error``: a user error's own message; for a bug, what
    failed and the exception (its traceback went to stderr)."""
    if isinstance(error, PhotosimError):
        return str(error) or type(error).__name__
    head = f"{what} failed" if what else "Something went wrong"
    return f"{head} ({type(error).__name__}: {error})"


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


def _warm_up(lib) -> str:
    """Load the model and run it once (the first inference is several times slower), so
    the user's first drop is answered as fast as the next ones."""
    from PIL import Image

    lib.embed_image(Image.new("RGB", (224, 224), (128, 128, 128)))
    enc = lib.encoder
    return enc.device, ("ONNX Runtime" if enc.backend == "onnxruntime" else "PyTorch"), enc.notice


class Job:
    """One submitted job: its kind, a name for messages, and its cancel token."""

    def __init__(self, service: LibraryService, job_id: int, kind: Kind, name: str):
        self._service = service
        self.id = job_id
        self.kind = kind
        self.name = name
        self.token = CancelToken()
        self.finished = False

    def cancel(self) -> None:
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def report(self, p: Progress) -> None:
        """Worker side: pass a :class:`Progress` on to the GUI thread."""
        try:
            self._service._progress.emit(self.id, p)
        except RuntimeError:  # the window closed while this ran: nobody to tell
            pass

    def __repr__(self) -> str:
        return f"Job({self.id}, {self.kind.value}, {self.name!r})"


class _Runnable(QRunnable):
    def __init__(self, fn: Callable[[], object], deliver: Callable[[bool, object], None]):
        super().__init__()
        self.setAutoDelete(True)
        self._fn = fn
        self._deliver = deliver

    def run(self) -> None:  # worker thread
        try:
            value = self._fn()
        except Exception as exc:  # noqa: BLE001 - every failure reaches a callback
            if not isinstance(exc, PhotosimError):
                traceback.print_exc()
            self._safe_deliver(False, exc)
            return
        self._safe_deliver(True, value)

    def _safe_deliver(self, ok: bool, value: object) -> None:
        try:
            self._deliver(ok, value)
        except RuntimeError:  # the window closed while this ran: nobody to tell
            pass


@dataclass
class _Pending:
    job: Job
    callback: Callable | None
    progress: Callable | None
    owner: QObject | None
    epoch: int


def _alive(owner: QObject | None) -> bool:
    if owner is None:
        return True
    import shiboken6

    return shiboken6.isValid(owner)


class LibraryService(QObject):
    """Owns the library and all work on it; see the module docstring."""

    opened = Signal(object)          # LibraryState
    openFailed = Signal(object)      # the exception
    encoderReady = Signal(str)       # device and runtime, e.g. "cpu · ONNX Runtime"
    encoderNotice = Signal(str)      # why the encoder runs slower than it could (one sentence)
    scanProgress = Signal(object)    # ScanProgress
    scanFinished = Signal(object)    # ScanReport
    scanFailed = Signal(object)      # the exception
    modelChanged = Signal(object)    # LibraryState with the new encoder
    stateChanged = Signal(object)    # LibraryState after verdicts moved the duplicate threshold
    exclusiveChanged = Signal(str)   # the running exclusive job's name, "" when none
    indexProgress = Signal(object)   # Progress of the index's background build; None once it is ready

    _result = Signal(int, bool, object)
    _progress = Signal(int, object)

    def __init__(self, device: str | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.device = device
        self._lib = None
        self._owns_lib = False
        self.state: LibraryState | None = None
        self._pools: dict[Kind, QThreadPool] = {}
        for kind in Kind:
            pool = QThreadPool(self)
            pool.setMaxThreadCount(1)
            self._pools[kind] = pool
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._exclusive: Job | None = None
        self._scan_job: Job | None = None
        self._index_job: Job | None = None
        self._opening = None
        self._epoch = 0  # results of jobs from before a close() are dropped
        self._closed = False
        self._result.connect(self._on_result)
        self._progress.connect(self._on_progress)

    # -- state ------------------------------------------------------------------------
    @property
    def lib(self):
        """The Library, for jobs (``fn(lib)`` gets it) and tests. GUI code never calls it:
        the guard (:mod:`photosim.gui.guard`) makes that fail in the tests."""
        return self._lib

    @property
    def is_open(self) -> bool:
        return self._lib is not None and self.state is not None

    @property
    def readonly(self) -> bool:
        return bool(self.state and self.state.readonly)

    @property
    def busy(self) -> bool:
        """Jobs submitted whose callbacks have not run yet."""
        return bool(self._pending)

    @property
    def exclusive(self) -> str:
        """The name of the running exclusive job ("scanning", "switching models", ...), or ""."""
        return self._exclusive.name if self._exclusive is not None else ""

    @property
    def scanning(self) -> bool:
        return self._scan_job is not None

    def refusal(self) -> str:
        """Why an exclusive job cannot start now."""
        return f"{self.exclusive.capitalize()} is still running; try again when it has finished."

    # -- submitting -------------------------------------------------------------------
    def call(self, fn: Callable, callback: Callable | None = None, *, kind: Kind = Kind.QUERY,
             name: str = "", owner: QObject | None = None) -> Job | None:
        """Run ``fn(library)`` as a job of ``kind``; ``callback(result=, error=)`` on the GUI
        thread (skipped when ``owner``, a widget, was deleted meanwhile). Returns the job,
        or None when it was refused (the callback then gets ``error=JobRefused``)."""
        return self._submit(lambda lib, _job: fn(lib), callback, kind, name, None, owner)

    def start(self, name: str, fn: Callable, callback: Callable | None = None, *,
              progress: Callable | None = None, kind: Kind = Kind.EXCLUSIVE,
              owner: QObject | None = None) -> Job | None:
        """Run ``fn(library, job)`` (a job that reports ``job.report(Progress)`` and looks at
        ``job.token``); ``progress(p)`` and ``callback(result=, error=)`` run on the GUI thread."""
        return self._submit(fn, callback, kind, name, progress, owner)

    def _submit(self, fn, callback, kind: Kind, name: str, progress, owner,
                needs_library: bool = True) -> Job | None:
        job = Job(self, next(self._ids), kind, name or kind.value)
        if self._closed:
            return None
        refused = None
        if self._lib is None and needs_library:
            refused = PhotosimError("no library is open")
        elif kind is Kind.EXCLUSIVE and self._exclusive is not None:
            refused = JobRefused(self.refusal())
        self._pending[job.id] = _Pending(job, callback, progress, owner, self._epoch)
        if refused is not None:
            self._result.emit(job.id, False, refused)  # delivered like any result, later
            return None
        if kind is Kind.EXCLUSIVE:
            self._exclusive = job
            self.exclusiveChanged.emit(job.name)

        def work():
            lib = self._lib
            if lib is not None and lib.encoder_loaded:  # torch fully imported (never touch it mid-import)
                set_torch_threads(0 if kind is Kind.EXCLUSIVE else 1)  # batches vs one image
            return fn(lib, job)

        self._pools[kind].start(_Runnable(work, lambda ok, v, i=job.id: self._result.emit(i, ok, v)))
        return job

    @Slot(int, bool, object)
    def _on_result(self, job_id: int, ok: bool, value: object) -> None:
        entry = self._pending.pop(job_id, None)
        if entry is None:
            return
        entry.job.finished = True
        if self._exclusive is entry.job:
            self._exclusive = None
            self.exclusiveChanged.emit("")
        if entry.epoch != self._epoch or not _alive(entry.owner):
            return  # the library was closed meanwhile, or the widget that asked is gone
        if entry.callback is not None:
            if ok:
                entry.callback(result=value, error=None)
            else:
                entry.callback(result=None, error=value)
        elif not ok:
            print(f"photosim: {entry.job.name}: {error_text(value)}", file=sys.stderr)

    @Slot(int, object)
    def _on_progress(self, job_id: int, p: object) -> None:
        entry = self._pending.get(job_id)
        if entry is not None and entry.progress is not None and entry.epoch == self._epoch and _alive(entry.owner):
            entry.progress(p)

    def wait_idle(self, ms: int = 600_000) -> bool:
        """Run the event loop until every job has finished and its callback has run (tests,
        scripts). False on timeout."""
        return self._spin(lambda: not self._pending, ms)

    def wait(self, job: Job | None, ms: int = 600_000) -> bool:
        """Run the event loop until ``job`` has finished and its callback has run (a dialog
        closing after a cancel). False on timeout."""
        return job is None or self._spin(lambda: job.finished, ms)

    @staticmethod
    def _spin(done: Callable[[], bool], ms: int) -> bool:
        end = time.monotonic() + ms / 1000
        while not done() and time.monotonic() < end:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if not done():
                time.sleep(0.005)
        return done()

    # -- opening and closing ----------------------------------------------------------------
    def open(self, source, *, index_now: bool = True, warm_now: bool = True) -> None:
        """Open (or create) the library at ``source`` (a path, or None for the default) in a
        worker, read-only when another process holds the writer lock; or adopt an open
        :class:`photosim.Library` (``source``; it stays the caller's to close). Then emits
        ``opened(state)`` and loads the encoder in the background unless ``warm_now`` is
        false, and the index unless ``index_now`` is false (the caller then calls
        :meth:`warm_up` and :meth:`watch_index` when it suits it: importing torch from a
        cold disk and reading a saved index both hold Python's lock for seconds at 10^6
        photos, so nothing else in the process runs meanwhile)."""
        device = self.device
        self._closed = False

        def job(_lib, _job):
            from photosim import Library
            from photosim.errors import LibraryLocked

            if guard.enabled():
                guard.install(Library)
            if isinstance(source, Library):
                lib, owned = source, False
            else:
                owned = True
                try:
                    lib = Library(source, device=device)
                except LibraryLocked:
                    lib = Library(source, readonly=True, device=device)
            self._opening = lib, owned  # close() closes it should the result never be delivered
            return lib, owned, LibraryState.read(lib)

        def done(result=None, error=None):
            self._opening = None
            if error is not None:
                self.openFailed.emit(error)
                return
            self._lib, self._owns_lib, self.state = result
            self.opened.emit(self.state)
            if warm_now:
                self.warm_up()
            if index_now:
                self.watch_index()

        self._submit(job, done, Kind.EXCLUSIVE, "opening the library", None, None, needs_library=False)

    def warm_up(self) -> None:
        """Load the active model and run it once in the query worker; ``encoderReady(device)``."""
        self.call(_warm_up, self._warmed, name="loading the model")

    def watch_index(self) -> None:
        """Relay a background build of the index (started here when the saved one is missing
        or stale) as ``indexProgress(Progress)``, then ``indexProgress(None)``; meanwhile
        searches answer from an exact search over the vectors read so far."""
        if self._index_job is not None and not self._index_job.finished:
            return

        def job(lib, job):
            lib.wait_index(progress=job.report, cancel=job.token)

        def done(result=None, error=None):
            self._index_job = None
            self.indexProgress.emit(None)
            if error is not None and not isinstance(error, Cancelled):
                print(f"photosim: building the index: {error_text(error)}", file=sys.stderr)

        self._index_job = self._submit(job, done, Kind.INDEX, "building the index", self.indexProgress.emit, None)

    def _warmed(self, result=None, error=None) -> None:
        if error is None:
            device, runtime, notice = result
            self.encoderReady.emit(f"{device.upper()} · {runtime}")
            if notice:
                self.encoderNotice.emit(notice)
        elif not isinstance(error, PhotosimError):
            print(f"photosim: loading the model: {error_text(error)}", file=sys.stderr)

    def close(self) -> None:
        """Cancel what runs, wait for the workers, close the library; results still on their
        way are dropped, and later calls too until the next :meth:`open`."""
        self._closed = True
        for entry in self._pending.values():
            entry.job.cancel()
        for pool in self._pools.values():
            pool.waitForDone()
        lib, owned = self._lib, self._owns_lib
        if lib is None and self._opening is not None:  # opened, but the result was not delivered yet
            lib, owned = self._opening
        self._lib, self.state, self._opening = None, None, None
        self._epoch += 1
        for entry in self._pending.values():
            entry.job.finished = True  # its result, if any, is dropped
        self._pending.clear()
        self._scan_job = self._index_job = None
        if self._exclusive is not None:
            self._exclusive = None
            self.exclusiveChanged.emit("")
        if lib is not None and owned:  # closed in a worker, like every engine call
            pool = self._pools[Kind.EXCLUSIVE]
            pool.start(_Runnable(lib.close, lambda ok, v: None))
            pool.waitForDone()

    # -- scanning ---------------------------------------------------------------------------
    def scan(self, roots: list[str] | None) -> bool:
        """Scan ``roots`` (or re-scan the library's folders when None): ``scanProgress``,
        then ``scanFinished(report)`` or ``scanFailed(error)``. False (nothing starts) when
        no library is open or another exclusive job runs."""
        if not self.is_open or self._exclusive is not None:
            return False

        def job(lib, job):
            if roots is None:
                return lib.rescan(progress=job.report, cancel=job.token)
            return lib.scan(roots, progress=job.report, cancel=job.token)

        def done(result=None, error=None):
            self._scan_job = None
            self.watch_index()  # a scan of a library whose index was stale starts a build
            if error is None:
                self.scanFinished.emit(result)
            else:
                self.scanFailed.emit(error)

        self._scan_job = self.start("scanning", job, done, progress=self.scanProgress.emit)
        return self._scan_job is not None

    def cancel_scan(self) -> None:
        if self._scan_job is not None:
            self._scan_job.cancel()

    def set_verdict(self, photo_ids, verdict: str, callback: Callable | None = None, *,
                    owner: QObject | None = None) -> Job | None:
        """Remember ``verdict`` on the photos' pairs (one exclusive job); the verdicts
        calibrate the library's duplicate threshold, so ``stateChanged(state)`` follows,
        then ``callback(result=, error=)``."""
        ids = list(photo_ids)

        def job(lib, _job):
            lib.set_verdict(ids, verdict)
            return LibraryState.read(lib)

        def done(result=None, error=None):
            if error is None:
                self.state = result
                self.stateChanged.emit(result)
            if callback is not None and _alive(owner):
                callback(result=result, error=error)

        return self.start("saving a verdict", job, done)

    # -- models -----------------------------------------------------------------------------
    def switch_model(self, model_id: str, callback: Callable | None = None, *,
                     progress: Callable | None = None, owner: QObject | None = None) -> Job | None:
        """Make ``model_id`` the active model in one exclusive job: every vector first, then
        the switch (and the re-scan ``use_model`` makes of the library's folders when some
        photos could not be read). Nothing else that changes the library (F5 included) runs
        meanwhile. On success ``modelChanged(state)``, then ``callback(result=model_id)``."""
        def job(lib, job):
            lib.use_model(model_id, progress=job.report, cancel=job.token)
            return LibraryState.read(lib)

        def done(result=None, error=None):  # runs even when ``owner`` is gone: the window must know
            if error is None:
                self.state = result
                self.modelChanged.emit(result)
                self.watch_index()  # the new model's index builds in the background
            if callback is not None and _alive(owner):
                callback(result=model_id if error is None else None, error=error)

        def report(p):
            if progress is not None and _alive(owner):
                progress(p)

        return self.start("switching models", job, done, progress=report)
