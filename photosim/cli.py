"""The ``photosim`` command line: builds the parser and dispatches; every command lives
in its own module under :mod:`photosim.commands` (``register(subparsers, common)``).

Errors end as one line on stderr: a :class:`~photosim.errors.PhotosimError` as its
message (exit 2); a damaged library database, a full disk or a permission problem as a
sentence saying what happened, what is safe and what to do (exit 2); a cancel or Ctrl-C
as exit 130; a closed stdout (``photosim info | head``) quietly, as exit 141.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

from .errors import Cancelled, PhotosimError
from .imageio import display_path

#: Commands in the order ``photosim --help`` lists them; other modules of
#: photosim/commands/ (not starting with ``_``) follow, by name.
ORDER = ("scan", "similar", "duplicates", "export_vectors", "info", "import_vectors", "eval", "finetune", "models", "gui")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="photosim", description="Find similar photos in your photo library.")
    ap.add_argument("--version", action="version", version=f"photosim {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--library", metavar="LIB", type=Path, default=None,
                        help="library folder (default: the user data folder; or $PHOTOSIM_LIBRARY)")
    common.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if available)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _commands():
        register(sub, common)
    return ap


def _commands():
    import importlib
    import pkgutil

    from . import commands

    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in names:
        yield importlib.import_module(f"{commands.__name__}.{name}").register


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("photosim")
    except PackageNotFoundError:
        return "dev"


def _say(text: str) -> None:
    try:
        sys.stderr.write(f"photosim: {display_path(text)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _library(args) -> str:
    from .library import default_library_path

    lib = getattr(args, "library", None)
    return display_path(os.path.abspath(lib) if lib else default_library_path())


def explain(exc: BaseException, args) -> str | None:
    """One sentence (what happened, what is safe, what to do) for an error of the
    machine or of the library's files rather than of photosim; None for anything else."""
    import sqlite3

    from sqlalchemy.exc import DatabaseError

    lib = _library(args)
    if isinstance(exc, DatabaseError | sqlite3.DatabaseError):
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
        low = text.lower()
        if "full" in low:
            return (f"the disk holding the library {lib} is full ({text}): what was saved before is "
                    "kept; free some space and run the command again (a scan resumes where it stopped)")
        if "locked" in low or "busy" in low:
            return (f"the library {lib} is busy ({text}): another program holds its database; nothing "
                    "was changed; try again in a moment")
        if "readonly" in low or "read-only" in low:
            return (f"the library {lib} cannot be written here ({text}): nothing was changed; commands "
                    "that only read it (similar, info, duplicates) still work")
        if any(w in low for w in ("not a database", "malformed", "corrupt", "encrypted", "i/o error")):
            return (f"the library database {lib}{os.sep}library.db is damaged ({text}); your photos are "
                    f"not touched; move {lib} aside and run `photosim scan DIR --library {lib}` to build a "
                    "new library (its fine-tuned models are in the models folder of the old one)")
        return f"the library database {lib}{os.sep}library.db could not be used ({text}); nothing was changed"
    if isinstance(exc, OSError) and exc.errno is not None:
        where = f" ({display_path(exc.filename)})" if exc.filename else ""
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return (f"the disk is full{where}: what was saved before is kept and the library stays "
                    "consistent; free some space and run the command again (a scan resumes where it stopped)")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return (f"{exc.strerror.lower() if exc.strerror else 'permission denied'}{where}: what was "
                    "saved before is kept; this command needs to write there (similar, info and duplicates "
                    "only read)")
        if exc.errno == errno.EIO:
            return (f"the disk reported an input/output error{where}: what was saved before is kept; check "
                    "the disk, then run the command again")
    return None


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's last flush
    cannot raise a second BrokenPipeError at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args) or 0
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except Cancelled as exc:
        _say(f"cancelled ({exc})")
        return 130
    except PhotosimError as exc:
        _say(str(exc))
        return 2
    except KeyboardInterrupt:
        _say("interrupted; what was saved before is kept")
        return 130
    except Exception as exc:
        message = explain(exc, args)
        if message is None:
            raise
        _say(message)
        return 2


if __name__ == "__main__":
    sys.exit(main())
