"""Folder watching: photos added, changed, moved or deleted under a library's folders are
picked up while the app (or ``photosim watch``) runs.

A :class:`Watcher` listens to the operating system's file events through watchdog
(inotify, FSEvents, ReadDirectoryChangesW) and, for folders on network drives where
those events do not arrive (NFS, SMB/CIFS, sshfs, ... read from ``/proc/mounts``), or
when asked to, polls them instead. Events are gathered into a :class:`WatchBatch`:

- a file is waited for until it is *settled*: its size and mtime unchanged, and no event
  about it, for ``settle`` seconds (a photo still being copied is not read half-written);
- a batch goes out once no event arrived for ``debounce`` seconds and every path of it is
  settled (or, under a steady stream of events, with what has settled after ``max_delay``):
  copying a thousand photos in makes one batch, not a thousand;
- :func:`apply_batch` runs one scan limited to the batch's paths (``Library.scan(paths=)``):
  new and changed photos are read, a moved photo keeps its row (found by content hash, so
  its vector, albums and marks stay), a deleted one leaves the library (its file is
  never touched), and nothing else is listed.

``callback(batch, result=..., error=...)`` (as MusicBrainz Picard's callbacks) runs on the
watcher's thread: with ``apply`` given, ``result`` is what ``apply(batch)`` returned (a
:class:`~photosim.values.ScanReport` for :func:`apply_batch`) or ``error`` what it raised;
without, ``result`` is ``None`` and the caller applies the batch itself (the GUI queues it
as a job). Problems of the watching itself (a folder that cannot be watched, the inotify
watch limit) come as ``callback(None, error=PhotosimError)``; the watcher carries on.

No Qt here: the GUI wraps it in ``photosim/gui/watching.py``.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import PhotosimError
from ..imageio import is_supported

#: File systems whose changes made elsewhere (another machine, the host of a VM) reach no
#: inotify watch: folders on them are polled.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p", "drvfs",
    "afs", "ncpfs", "davfs", "fuse.davfs2", "fuse.rclone", "fuse.s3fs", "fuse.gvfsd-fuse",
    "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph", "lustre", "gpfs", "beegfs", "vboxsf",
    "fuse.vmhgfs-fuse", "fuse.mergerfs",
})

_EVENT_TYPES = {"created", "modified", "moved", "deleted", "attrib"}


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def trash_folders() -> list[str]:
    """The user's trash: a photo sent there (by photosim or a file manager) has left the
    library, even when the trash lies under a watched folder (a library of the home folder)."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return [os.path.join(data, "Trash"), os.path.join(os.path.expanduser("~"), ".Trash")]


def _in_a_trash(path: str) -> bool:
    """Under a drive's own trash folder (``.Trash-1000``, ``.Trash``, ``$RECYCLE.BIN``)."""
    return any(part.startswith(".Trash") or part.upper() == "$RECYCLE.BIN" for part in path.split(os.sep))


def _unescape_mount(field_: str) -> str:
    """/proc/mounts writes a space as \\040, a tab \\011, a newline \\012, a backslash \\134."""
    out, i = [], 0
    while i < len(field_):
        if field_[i] == "\\" and field_[i + 1:i + 4].isdigit() and len(field_[i + 1:i + 4]) == 3:
            out.append(chr(int(field_[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field_[i])
            i += 1
    return "".join(out)


def mount_type(path: str, mounts: str | None = None) -> str | None:
    """The file system type of the mount holding ``path`` (Linux: from ``/proc/mounts``, or
    the text given as ``mounts``); None where that is not known (other systems)."""
    if mounts is None:
        try:
            with open("/proc/mounts", encoding="utf-8", errors="surrogateescape") as f:
                mounts = f.read()
        except OSError:
            return None
    target = os.path.realpath(path)
    best, best_type = "", None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = _unescape_mount(parts[1])
        if _inside(target, point) and len(point) >= len(best):
            best, best_type = point, parts[2]
    return best_type


def needs_polling(path: str, mounts: str | None = None) -> bool:
    """Whether file events cannot be trusted for ``path`` (it is on a network file system)."""
    kind = mount_type(path, mounts)
    return kind is not None and kind.lower() in NETWORK_FILESYSTEMS


@dataclass(frozen=True)
class WatchBatch:
    """Paths touched under the watched folders, settled: files and folders created,
    changed, moved (from and to) or deleted. ``events`` counts what was gathered."""

    paths: tuple[str, ...]
    events: int = 0
    created_at: float = field(default_factory=time.time)

    def __len__(self) -> int:
        return len(self.paths)


def apply_batch(library, batch: WatchBatch, *, progress=None, cancel=None):
    """One scan of the batch's paths (never of whole folders) into ``library``; returns its
    :class:`~photosim.values.ScanReport`. Paths under a folder that is missing just now (an
    unmounted drive) are left alone, so their photos stay in the library."""
    from ..values import ScanReport

    roots = [r for r in library.roots() if os.path.isdir(r)]
    paths = [p for p in batch.paths if any(_inside(p, r) for r in roots) and p not in roots]
    if not paths:
        return ScanReport(roots=roots)
    return library.scan(roots, paths=paths, progress=progress, cancel=cancel)


def _filter() -> list:
    """The events asked of the system (under inotify, its mask: not the opens and closes
    that photosim's own reads make)."""
    from watchdog import events as ev

    kinds = [ev.FileCreatedEvent, ev.FileModifiedEvent, ev.FileMovedEvent, ev.FileDeletedEvent,
             ev.DirCreatedEvent, ev.DirMovedEvent, ev.DirDeletedEvent]
    return kinds + [ev.FileAttribEvent] if hasattr(ev, "FileAttribEvent") else kinds


@dataclass
class _Pending:
    first: float  # when the first event about it came
    changed: float  # the last event about it, or the last time its size or mtime moved
    signature: tuple | None = None  # (size, mtime_ns) of a file, ("dir",), or None: gone
    checked: float = 0.0  # when ``signature`` was read


class _Handler:
    """watchdog's event handler: keeps the paths that matter, hands them to the watcher."""

    def __init__(self, watcher: Watcher):
        self._watcher = watcher

    def dispatch(self, event) -> None:  # an observer's thread
        if event.event_type not in _EVENT_TYPES:
            return  # opened / closed: our own reads make those
        if event.is_directory and event.event_type in ("modified", "attrib"):
            return  # a folder's entries changed: its files have their own events
        paths = [event.src_path]
        if event.event_type == "moved":
            paths.append(event.dest_path)
        self._watcher._note([os.fsdecode(p) for p in paths], event.is_directory)


class Watcher:
    """Watch ``roots`` for photos coming, changing, moving and going; see the module doc.

    ``skip``: folders never reported (the library's own, which may sit inside a root; the
    user's trash folders are always skipped).
    ``polling``: None decides per folder from its file system, True polls every folder
    (forced by a setting), False never polls. ``poll_interval``: seconds between polls."""

    def __init__(self, roots: Iterable[str], callback: Callable[..., None], *,
                 apply: Callable[[WatchBatch], object] | None = None, skip: Iterable[str] = (),
                 settle: float = 2.0, debounce: float = 1.0, max_delay: float = 30.0,
                 polling: bool | None = None, poll_interval: float = 5.0, mounts: str | None = None):
        self.callback = callback
        self.apply = apply
        self.skip = [os.path.abspath(os.fspath(s)) for s in (*skip, *trash_folders())]
        self.settle, self.debounce, self.max_delay = float(settle), float(debounce), float(max_delay)
        self.polling, self.poll_interval = polling, float(poll_interval)
        self._mounts = mounts
        self._roots: list[str] = sorted({os.path.abspath(os.fspath(r)) for r in roots})
        self._lock = threading.Condition()
        self._incoming: list[tuple[str, bool]] = []
        self._pending: dict[str, _Pending] = {}
        self._events = 0
        self._last_event = 0.0
        self._stop = threading.Event()
        #: set by :meth:`stop`: a cancel for ``apply`` (a scan stops after its current batch)
        self.stopping = self._stop
        self._thread: threading.Thread | None = None
        self._observers: dict[str, object] = {}  # "events" / "polling" -> watchdog observer
        self._watches: dict[str, tuple[str, object]] = {}  # root -> (mode, ObservedWatch)
        self._roots_changed = True
        self._set_up = threading.Event()  # the folders given last are being watched

    # -- public -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def roots(self) -> list[str]:
        return list(self._roots)

    def modes(self) -> dict[str, str]:
        """How each folder is watched now: "events" or "polling" (absent: not watched)."""
        with self._lock:
            return {root: mode for root, (mode, _) in self._watches.items()}

    def pending(self) -> int:
        """Paths waiting to settle or to be batched."""
        with self._lock:
            return len(self._pending) + len(self._incoming)

    def start(self) -> Watcher:
        """Start watching (returns at once: folders are set up on the watcher's thread,
        which a large tree under inotify takes a moment for)."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="photosim-watch", daemon=True)
        self._thread.start()
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the folders are watched (events from before may be missed)."""
        return self._set_up.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching; a batch being applied finishes first. Events not batched yet are
        dropped (the next scan of the folders finds those changes)."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None
        self._close_observers()

    def set_roots(self, roots: Iterable[str]) -> None:
        """Watch these folders from now on (a folder added to or removed from the library)."""
        roots = sorted({os.path.abspath(os.fspath(r)) for r in roots})
        with self._lock:
            if roots != self._roots:
                self._roots, self._roots_changed = roots, True
                self._set_up.clear()
                self._lock.notify_all()

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- events (observer threads) ------------------------------------------------------
    def _wanted(self, path: str, is_dir: bool) -> bool:
        if not any(_inside(path, r) for r in self._roots) or any(_inside(path, s) for s in self.skip):
            return False
        if _in_a_trash(path):
            return False
        return is_dir or is_supported(path)

    def _note(self, paths: list[str], is_dir: bool) -> None:
        wanted = [(p, is_dir) for p in paths if self._wanted(p, is_dir)]
        if not wanted:
            return
        with self._lock:
            self._incoming.extend(wanted)
            self._lock.notify_all()

    # -- the watcher's thread -------------------------------------------------------------
    def _tick(self) -> float:
        return min(0.5, max(0.02, min(self.settle or 1.0, self.debounce or 1.0) / 4))

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    if self._roots_changed:
                        self._roots_changed = False
                        roots = list(self._roots)
                    else:
                        roots = None
                if roots is not None:
                    self._reschedule(roots)
                    with self._lock:
                        if not self._roots_changed:
                            self._set_up.set()
                with self._lock:
                    if not self._incoming:
                        self._lock.wait(self._tick() if (self._pending or self._roots_changed) else 1.0)
                    incoming, self._incoming = self._incoming, []
                if self._stop.is_set():
                    break
                now = time.monotonic()
                self._take(incoming, now)
                batch = self._ready(now)
                if batch is not None:
                    self._deliver(batch)
        except Exception as exc:  # noqa: BLE001 - the watcher's failure reaches the callback
            self._report(None, error=exc)
        finally:
            self._close_observers()

    def _take(self, incoming: list[tuple[str, bool]], now: float) -> None:
        if incoming:
            self._last_event = now
        self._events += len(incoming)
        for path in dict.fromkeys(p for p, _ in incoming):  # each path once, in order
            entry = self._pending.get(path)
            if entry is None:
                entry = self._pending[path] = _Pending(now, now)
            entry.changed, entry.signature, entry.checked = now, self._signature(path), now
            # a folder is not settled while something inside it still changes
            parent = os.path.dirname(path)
            while parent and parent != path and any(_inside(parent, r) for r in self._roots):
                up = self._pending.get(parent)
                if up is not None:
                    up.changed = now
                path, parent = parent, os.path.dirname(parent)

    def _signature(self, path: str) -> tuple | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if stat_mod.S_ISDIR(st.st_mode):
            return ("dir",)
        return (st.st_size, st.st_mtime_ns)

    def _ready(self, now: float) -> WatchBatch | None:
        """A batch when the quiet period is over and every path has settled: no event about
        it and the same size and mtime for ``settle`` seconds. Each path is looked at (one
        ``stat``) when an event names it and at most once per ``settle`` after that, so a
        thousand files waiting cost a thousand stats per period, not per tick."""
        if not self._pending:
            return None
        settled = []
        for path, entry in self._pending.items():
            if now - entry.changed < self.settle:
                continue
            if now - entry.checked >= self.settle or self.settle == 0:
                sig, entry.checked = self._signature(path), now
                if sig != entry.signature:  # it changed with no event (a network drive): wait again
                    entry.signature, entry.changed = sig, now
                    continue
            settled.append(path)
        quiet = now - self._last_event >= self.debounce
        if quiet and len(settled) == len(self._pending):
            take = settled
        elif settled and now - min(self._pending[p].first for p in settled) >= self.max_delay:
            take = settled  # a steady stream of events: do not hold what has settled forever
        else:
            return None
        for p in take:
            del self._pending[p]
        events, self._events = self._events, 0
        return WatchBatch(tuple(sorted(take)), events=events)

    def _deliver(self, batch: WatchBatch) -> None:
        if self.apply is None:
            self._report(batch, result=None)
            return
        try:
            result = self.apply(batch)
        except Exception as exc:  # noqa: BLE001 - reported, and the watcher carries on
            self._report(batch, error=exc)
        else:
            self._report(batch, result=result)

    def _report(self, batch, result=None, error=None) -> None:
        try:
            self.callback(batch, result=result, error=error)
        except Exception:  # noqa: BLE001 - a broken callback must not stop the watching
            import traceback

            traceback.print_exc()

    # -- observers --------------------------------------------------------------------------
    def _mode(self, root: str) -> str:
        if self.polling is not None:
            return "polling" if self.polling else "events"
        return "polling" if needs_polling(root, self._mounts) else "events"

    def _observer(self, mode: str):
        obs = self._observers.get(mode)
        if obs is None:
            if mode == "polling":
                from watchdog.observers.polling import PollingObserver

                obs = PollingObserver(timeout=self.poll_interval)
            else:
                from watchdog.observers import Observer

                obs = Observer()
            obs.daemon = True
            obs.start()
            self._observers[mode] = obs
        return obs

    def _reschedule(self, roots: Sequence[str]) -> None:
        for root in [r for r in self._watches if r not in roots]:
            mode, watch = self._watches.pop(root)
            try:
                self._observers[mode].unschedule(watch)
            except (KeyError, OSError):
                pass
        handler = _Handler(self)
        for root in roots:
            if root in self._watches or self._stop.is_set():
                continue
            if any(r != root and _inside(root, r) for r in roots):
                continue  # inside another watched folder: its events come from there
            if not os.path.isdir(root):
                self._report(None, error=PhotosimError(
                    f"the folder {root} is missing (moved or unmounted?), so it is not watched; "
                    "its photos stay in the library"))
                continue
            mode = self._mode(root)
            try:
                watch = self._observer(mode).schedule(handler, root, recursive=True, event_filter=_filter())
            except OSError as exc:
                if mode == "polling":
                    self._report(None, error=PhotosimError(f"the folder {root} cannot be watched: {exc}"))
                    continue
                why = ("the system's limit on watched folders is reached (raise "
                       "fs.inotify.max_user_watches)" if exc.errno in (errno.ENOSPC, errno.EMFILE)
                       else (exc.strerror or str(exc)))
                self._report(None, error=PhotosimError(
                    f"the folder {root} cannot be watched for changes ({why}); it is polled instead, "
                    f"every {self.poll_interval:g} s"))
                mode = "polling"
                try:
                    watch = self._observer(mode).schedule(handler, root, recursive=True, event_filter=_filter())
                except OSError as exc2:
                    self._report(None, error=PhotosimError(f"the folder {root} cannot be watched: {exc2}"))
                    continue
            with self._lock:
                self._watches[root] = (mode, watch)

    def _close_observers(self) -> None:
        observers, self._observers = self._observers, {}
        for obs in observers.values():
            try:
                obs.stop()
            except Exception:  # noqa: BLE001
                pass
        for obs in observers.values():
            try:
                obs.join(5)
            except RuntimeError:
                pass
        with self._lock:
            self._watches.clear()
            self._roots_changed = True  # a start() after a stop() sets them up again
            self._set_up.clear()
