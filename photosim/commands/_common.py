"""What the commands share: finding and opening the library, printing paths safely,
checking numbers, the progress line. Not a command itself (the leading ``_``)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from ..errors import PhotosimError
from ..imageio import display_path


def show(path) -> str:
    """A path (or any text) safe to print on one terminal line: undecodable bytes,
    newlines, tabs and escape sequences written as backslash escapes."""
    return display_path(path)


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def note(text: str) -> None:
    sys.stderr.write(f"photosim: note: {text}\n")


# -- the library -------------------------------------------------------------------------
def library_path(args) -> Path:
    from ..library import default_library_path

    return Path(os.path.abspath(args.library)) if getattr(args, "library", None) else default_library_path()


def library_exists(path: Path) -> bool:
    return (path / "library.db").is_file()


def no_library(args) -> PhotosimError:
    path = library_path(args)
    if getattr(args, "library", None):
        return PhotosimError(f"no library at {show(path)}; `photosim scan DIR --library {show(path)}` "
                             "creates one")
    where = "from $PHOTOSIM_LIBRARY" if os.environ.get("PHOTOSIM_LIBRARY") else "the default"
    return PhotosimError(f"no library at {show(path)} ({where}) yet; `photosim scan DIR` creates one")


def open_library(args, *, readonly: bool, create: bool = False):
    """The library of ``--library``; only commands that scan pass ``create=True``: for
    every other one a mistyped path is an error, never a new empty library."""
    path = library_path(args)
    if not create and not library_exists(path):
        raise no_library(args)
    from ..library import Library

    return Library(path, readonly=readonly, device=getattr(args, "device", None))


def require_photos(lib) -> None:
    """An error in words when the library has nothing to search yet."""
    info = lib.info()
    if info.indexed:
        return
    if info.photos == 0:
        raise PhotosimError(f"the library {show(lib.path)} has no photos yet: run `photosim scan DIR` first")
    if info.photos == info.errors:
        raise PhotosimError(f"none of the {info.photos} files of the library could be read (see "
                            "`photosim info`): there is nothing to search")
    raise PhotosimError(f"no photo of the library has a vector of {info.encoder_id} yet: run "
                        "`photosim scan` to embed them")


# -- argument types ----------------------------------------------------------------------
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, not {text!r}")
    return value


def similarity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a cosine similarity, a number from -1 to 1, not {text!r}")
    return value


# -- output ------------------------------------------------------------------------------
def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def fmt_bytes(n: int | None) -> str:
    if not n:
        return "0 B"
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


class ProgressBar:
    """One redrawn stderr line on a terminal; silent when stderr is not a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.width = 30
        self._drawn = False

    def __call__(self, p) -> None:
        if not self.enabled:
            return
        if p.stage == "scanning" and p.total:
            frac = min(1.0, p.done / p.total)
            bar = "#" * int(frac * self.width) + "-" * (self.width - int(frac * self.width))
            line = (f"\r[{bar}] {p.done}/{p.total} {p.rate:5.1f} photos/s "
                    f"ETA {fmt_seconds(p.eta)}  failed {p.failed}")
        elif p.total:
            line = f"\r{p.stage}... {p.done}/{p.total}"
        else:
            line = f"\r{p.stage}..."
        self.stream.write(line.ljust(80)[:100])
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
