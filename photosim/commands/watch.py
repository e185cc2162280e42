"""``photosim watch``: keep the library up to date with its folders until Ctrl-C."""

from __future__ import annotations

import os
import sys
import threading
import time

from ..errors import PhotosimError
from ._common import note, open_library, out, show


def register(sub, common) -> None:
    p = sub.add_parser("watch", parents=[common], help="pick up photos added, changed, moved or deleted",
                       description="Watch the library's folders and pick up photos as they are added, "
                       "changed, moved or deleted, printing each change, until Ctrl-C. A photo still being "
                       "copied is read once its size has stayed the same for --settle seconds; folders on "
                       "network drives (NFS, SMB, sshfs) are polled. Changes made while nothing watched "
                       "are picked up by `photosim scan`.")
    p.add_argument("--poll", action="store_true",
                   help="poll every folder instead of relying on the system's file events")
    p.add_argument("--poll-interval", type=_seconds, default=5.0, metavar="S",
                   help="seconds between two polls (default 5)")
    p.add_argument("--settle", type=_seconds, default=2.0, metavar="S",
                   help="seconds a file's size must stay the same before it is read (default 2)")
    p.add_argument("--debounce", type=_seconds, default=1.0, metavar="S",
                   help="seconds without events before the changes are taken in one go (default 1)")
    p.set_defaults(func=run)


def _seconds(text: str) -> float:
    import argparse
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"give 0 seconds or more, not {text}")
    return v


def _summary(report) -> str:
    parts = [f"{n} {what}" for n, what in ((report.added, "added"), (report.updated, "updated"),
                                             (report.moved, "moved"), (report.removed, "removed")) if n]
    if report.failed:
        parts.append(f"{len(report.failed)} could not be read")
    return ", ".join(parts) or "nothing to change"


def run(args) -> int:
    from ..pipeline.scan import outermost
    from ..pipeline.watch import Watcher, apply_batch

    with open_library(args, readonly=False) as lib:
        roots = lib.roots()
        if not roots:
            raise PhotosimError(f"the library {show(lib.path)} has no folders yet: `photosim scan DIR` first")
        lib.encoder  # noqa: B018 - loaded now, so the first new photo is not kept waiting for it
        done = threading.Event()

        def report(batch, result=None, error=None):
            stamp = time.strftime("%H:%M:%S")
            if batch is None:  # the watching itself (a folder missing, a system limit)
                note(str(error) if isinstance(error, PhotosimError) else f"watching: {error!r}")
                return
            if error is not None:
                text = str(error) if isinstance(error, PhotosimError) else f"{type(error).__name__}: {error}"
                out(f"{stamp} could not take in {len(batch)} changed paths: {text}")
            else:
                out(f"{stamp} {_summary(result)} ({len(batch)} paths, {result.seconds:.1f} s)")
                for p, reason in result.failed:
                    out(f"  could not read {show(p)}: {reason}")
                touched = outermost(batch.paths)  # a folder moved in stands for its photos
                for p in touched[:8]:
                    out(f"  {'+' if os.path.exists(p) else '-'} {show(p)}")
                if len(touched) > 8:
                    out(f"  … and {len(touched) - 8} more")
            sys.stdout.flush()

        watcher = Watcher(roots, report, skip=[str(lib.path)], settle=args.settle, debounce=args.debounce,
                          polling=True if args.poll else None, poll_interval=args.poll_interval)
        watcher.apply = lambda batch: apply_batch(lib, batch, cancel=watcher.stopping)
        watcher.start().wait_ready()
        modes = watcher.modes()
        out(f"watching {len(modes)} folder{'s' if len(modes) != 1 else ''} of {show(lib.path)}; Ctrl-C stops")
        for r, mode in modes.items():
            out(f"  {show(r)}" + (f" (polled every {args.poll_interval:g} s)" if mode == "polling" else ""))
        sys.stdout.flush()
        try:
            while not done.wait(3600):
                pass
        except KeyboardInterrupt:
            out("stopping…")
            sys.stdout.flush()
        finally:
            import faulthandler

            # a stop that hangs says where, on stderr, instead of waiting in silence
            faulthandler.dump_traceback_later(30, exit=False)
            try:
                watcher.stop(timeout=120)  # a scan running stops after its current batch
            finally:
                faulthandler.cancel_dump_traceback_later()
        out("stopped: every change taken in is saved")
    return 0
