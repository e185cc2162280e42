"""``photosim scan [DIR ...]``: add or refresh photos; with no folder, the library's own."""

from __future__ import annotations

import json
import os
import signal
import threading

from ..errors import Cancelled, PhotosimError
from ._common import ProgressBar, library_exists, library_path, note, open_library, out, show


def register(sub, common) -> None:
    p = sub.add_parser("scan", parents=[common], help="add or refresh photos from folders",
                       description="Add the photos under each DIR to the library, or refresh them; "
                       "with no DIR, re-scan the folders the library already holds. Creates the library "
                       "if it does not exist. Ctrl-C stops after the current batch and keeps what was read.")
    p.add_argument("dirs", nargs="*", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the scan report as JSON")
    p.set_defaults(func=run)


def _inside(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


def placement_notes(lib_path, roots: list[str], exists: bool) -> list[str]:
    """Warnings about where the library is: inside a folder it scans, or about to be
    created among photos. photosim skips its own folder, so both work; they are warned
    about, not refused (moving a library later is easy; refusing would need one more
    flag). A library that is, or holds, a folder it scans is refused: the scan would
    skip everything."""
    lib = os.path.realpath(lib_path)
    notes = []
    for r in roots:
        if _inside(os.path.realpath(r), lib):
            raise PhotosimError(f"the library {show(lib)} would hold the folder it scans ({show(r)}), and "
                                "photosim never reads its own library folder, so nothing would be scanned; "
                                "give another --library (or omit it for the default)")
        if _inside(lib, os.path.realpath(r)):
            notes.append(f"the library {show(lib)} is inside the folder it scans ({show(r)}); its own files "
                         "are skipped, but a library kept apart (omit --library for the default) is safer")
            break
    if not exists and os.path.isdir(lib):
        from ..imageio import is_supported

        try:
            photos = sum(1 for e in os.scandir(lib) if is_supported(e.name))
        except OSError:
            photos = 0
        if photos:
            notes.append(f"{show(lib)} holds {photos} photo{'s' if photos != 1 else ''}: the library's files "
                         "(library.db, index files, models/) are written among them")
    return notes


def run(args) -> int:
    path = library_path(args)
    exists = library_exists(path)
    if not args.dirs and not exists:
        raise PhotosimError(f"give a folder to scan: `photosim scan DIR` (there is no library at {show(path)} yet)")
    for d in args.dirs:
        # before the library is created: a typo creates nothing
        if not os.path.exists(d):
            raise PhotosimError(f"no such folder: {show(d)}")
        if not os.path.isdir(d):
            raise PhotosimError(f"not a folder: {show(d)}")
    for text in placement_notes(path, [os.path.abspath(d) for d in args.dirs], exists):
        note(text)
    bar = ProgressBar()
    stop = threading.Event()
    with open_library(args, readonly=False, create=True) as lib:
        roots = [os.path.abspath(d) for d in args.dirs]
        if not roots:
            roots = [r for r in lib.roots() if os.path.isdir(r)]
            for r in lib.roots():
                if not os.path.isdir(r):
                    note(f"the folder {show(r)} is missing (moved or unmounted?): skipped; its photos stay "
                         "in the library")
            if not roots:
                raise PhotosimError("none of the library's folders is there to re-scan; give a folder: "
                                    "`photosim scan DIR`" if lib.roots() else
                                    "this library has no folders yet: `photosim scan DIR`")
        try:
            with _ctrl_c_cancels(stop, bar):
                report = lib.scan(roots, progress=bar, cancel=stop)
                if lib.index_status() is not None:  # the scan met a missing or stale index: finish it
                    try:
                        lib.wait_index(progress=bar, cancel=stop)
                    except Cancelled:
                        note("the index was not finished: the next search builds it again")
        except KeyboardInterrupt:
            bar.close()
            kept = lib.count(status="ok")
            out(f"scan interrupted: {kept} photos are in {show(lib.path)}, every batch saved before is kept; "
                f"run `{_again(args, roots)}` again to resume")
            return 130
        finally:
            bar.close()
        readable = lib.count(status="ok")  # counted in SQL: no photo list is loaded
        # New readable photos only: the scan counts a file that failed as "failed", not
        # "added", and a moved photo as "moved" (it keeps its row under a new path).
        added = report.added
        if args.json:
            d = report.to_dict()
            d["added"] = added
            out(json.dumps(d, indent=1))
            return 130 if report.cancelled else 0
        if report.cancelled:
            out(f"scan cancelled: {readable} photos are in {show(lib.path)} ({added} added before the "
                f"stop, all kept); run `{_again(args, roots)}` again to resume: photos already read cost a stat")
        else:
            out(f"{readable} photos in {show(lib.path)}")
        out(f"  added {added}, updated {report.updated}, moved {report.moved}, removed {report.removed}, "
            f"unchanged {report.unchanged}, re-embedded {report.reembedded}, failed {len(report.failed)}")
        for p, reason in report.failed:
            out(f"  failed: {show(p)}: {reason}")
        for p, reason in report.unreadable_folders:
            out(f"  unreadable folder: {show(p)}: {reason}")
        out(f"  {report.seconds:.1f} s")
    return 130 if report.cancelled else 0


def _again(args, roots: list[str]) -> str:
    """The command that resumes this scan (a cancelled scan does not record its folders)."""
    import shlex

    lib = f" --library {shlex.quote(show(args.library))}" if args.library else ""
    return f"photosim scan {' '.join(shlex.quote(show(r)) for r in roots)}{lib}"


class _ctrl_c_cancels:
    """While scanning, the first Ctrl-C asks the scan to stop after the current batch
    (it then saves its index and reports); a second one interrupts at once."""

    def __init__(self, stop: threading.Event, bar: ProgressBar):
        self.stop, self.bar, self.old = stop, bar, None

    def _handler(self, signum, frame):
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        self.bar.close()
        note("stopping after the current batch (Ctrl-C again to stop at once)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
