"""Folder watching in the app: the engine's :class:`photosim.Watcher` on the open library's
folders, its batches taken in as service jobs.

The watcher runs on its own thread and only gathers settled paths; each batch becomes one
exclusive job (``apply_batch``: a scan of those paths only), so it never overlaps a scan,
a model switch or a trash. While such a job runs, batches wait here and go in together
once it has finished. ``applied(report)`` says when one is in (the window refreshes the
gallery). On or off is remembered (``watch_folders``, on by default, off where
``$PHOTOSIM_WATCH`` is ``0``, as in the tests); ``watch_poll``
forces polling for every folder (for drives whose events do not arrive and that
``/proc/mounts`` does not tell apart).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal, Slot

from . import settings
from .service import JobRefused, Kind, LibraryService, error_text

SETTING = "watch_folders"
POLL_SETTING = "watch_poll"


def describe(report) -> str:
    """The status bar's words for a batch taken in; "" when it changed nothing."""
    parts = [f"{n:,} {what}" for n, what in ((report.added, "added"), (report.updated, "updated"),
                                               (report.moved, "moved"), (report.removed, "removed")) if n]
    if report.failed:
        parts.append(f"{len(report.failed):,} could not be read")
    return f"From your folders: {', '.join(parts)}." if parts else ""


class FolderWatch(QObject):
    applied = Signal(object)   # the ScanReport of a batch taken in
    problem = Signal(str)      # a sentence: a folder that cannot be watched, a batch that failed

    _from_watcher = Signal(int, object, object)  # generation, batch (None: a problem), error

    def __init__(self, service: LibraryService, parent: QObject | None = None, *, skip=()):
        super().__init__(parent)
        self.service = service
        self.skip = [str(s) for s in skip]  # e.g. the thumbnail cache: JPEGs photosim itself writes
        self.settle, self.debounce, self.poll_interval = 2.0, 1.0, 5.0  # seconds (tests shorten them)
        default = os.environ.get("PHOTOSIM_WATCH", "1") != "0"  # the tests' default: off
        self.enabled = settings.value(SETTING, default, bool) in (True, "true")
        self.watcher = None
        self._generation = 0
        self._queue: list = []  # WatchBatch-es waiting for the exclusive worker
        self._job = None
        self._from_watcher.connect(self._on_watcher)
        service.opened.connect(self._on_opened)
        service.exclusiveChanged.connect(self._on_exclusive)

    # -- on and off ---------------------------------------------------------------------
    def set_enabled(self, on: bool) -> None:
        """Watch (and remember it) or stop watching."""
        on = bool(on)
        settings.set_value(SETTING, on)
        if on == self.enabled:
            return
        self.enabled = on
        if on:
            self._start()
        else:
            self.stop()

    @property
    def watching(self) -> bool:
        return self.watcher is not None

    def stop(self) -> None:
        """Stop the watcher (before the library closes); batches not taken in are dropped."""
        self._generation += 1
        self._queue.clear()
        self._job = None  # a job of the closed library never calls back
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()

    # -- starting -------------------------------------------------------------------------
    @Slot(object)
    def _on_opened(self, _state) -> None:
        self.stop()
        self._start()

    def _start(self) -> None:
        if not self.enabled or not self.service.is_open or self.service.readonly or self.watcher is not None:
            return
        generation = self._generation

        def done(result=None, error=None):
            if error is not None or generation != self._generation or not self.enabled:
                return
            roots, library_folder = result
            from photosim import Watcher

            poll = settings.value(POLL_SETTING, False, bool) in (True, "true")
            self.watcher = Watcher(
                roots, lambda batch, result=None, error=None: self._from_watcher.emit(generation, batch, error),
                skip=[library_folder, *self.skip], settle=self.settle, debounce=self.debounce,
                polling=True if poll else None, poll_interval=self.poll_interval).start()

        self.service.call(lambda lib: (lib.roots(), str(lib.path)), done, name="reading the folders", owner=self)

    @Slot(str)
    def _on_exclusive(self, name: str) -> None:
        if name:
            return
        self._drain()
        if self.watcher is not None:  # a scan may have added a folder, a removal taken one away
            watcher = self.watcher
            self.service.call(lambda lib: lib.roots(),
                              lambda result=None, error=None: error is None and watcher.set_roots(result),
                              name="reading the folders", owner=self)

    # -- batches --------------------------------------------------------------------------
    @Slot(int, object, object)
    def _on_watcher(self, generation: int, batch, error) -> None:
        if generation != self._generation:
            return  # from the watcher of a library closed since
        if batch is None:
            self.problem.emit(f"Folder watching: {error_text(error, 'Watching the folders')}")
            return
        self._queue.append(batch)
        self._drain()

    def _drain(self) -> None:
        if not self._queue or self._job is not None or self.service.exclusive or not self.service.is_open:
            return
        from photosim import WatchBatch, apply_batch

        queued, self._queue = self._queue, []
        batch = WatchBatch(tuple(sorted({p for b in queued for p in b.paths})), sum(b.events for b in queued))
        generation = self._generation

        def done(result=None, error=None):
            if generation != self._generation:
                return  # stop() has forgotten this job
            self._job = None
            if isinstance(error, JobRefused):  # another job took the worker first: wait for it
                self._queue.insert(0, batch)
            elif error is not None:
                self.problem.emit(f"Could not take in changed photos: {error_text(error, 'Taking them in')}")
            else:
                self.applied.emit(result)
            self._drain()

        n = len(batch.paths)  # the name says, when another job is refused, what it waits for
        name = f"taking in {n:,} changed photo{'s' if n != 1 else ''} from your folders"
        self._job = self.service.start(name, lambda lib, job: apply_batch(lib, batch, cancel=job.token), done,
                                       kind=Kind.EXCLUSIVE, owner=self)
        if self._job is None:  # refused: done() has been told (later) and queues the batch again
            self._job = False
