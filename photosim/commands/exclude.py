"""``photosim exclude DIR`` / ``photosim include DIR``: leave a sub-folder of the library's
folders out of scans (its photos are forgotten; the files are never touched), or take it
back (the next scan reads it again). ``photosim info`` lists what is excluded."""

from __future__ import annotations

import os

from ._common import open_library, out, show


def register(sub, common) -> None:
    p = sub.add_parser("exclude", parents=[common],
                       help="leave a sub-folder out of scans and forget its photos (files untouched)")
    p.add_argument("folder", metavar="DIR", help="a folder inside one of the library's folders")
    p.add_argument("--dry-run", action="store_true", help="only say how many photos it would forget")
    p.set_defaults(func=run_exclude)
    p = sub.add_parser("include", parents=[common], help="scan an excluded sub-folder again")
    p.add_argument("folder", metavar="DIR", help="a folder excluded with `photosim exclude`")
    p.set_defaults(func=run_include)


def _n(count: int) -> str:
    return f"{count} photo{'s' if count != 1 else ''}"


def run_exclude(args) -> int:
    folder = os.path.abspath(args.folder)
    with open_library(args, readonly=args.dry_run) as lib:
        if args.dry_run:
            out(f"excluding {show(folder)} would forget {_n(lib.count(folder=folder))} of the library "
                "(the files stay where they are)")
            return 0
        n = lib.exclude_folder(folder)
    out(f"excluded {show(folder)}: forgot {_n(n)} (the files were not touched); scans skip it from now on; "
        f"`photosim include {show(folder)}` takes it back")
    return 0


def run_include(args) -> int:
    folder = os.path.abspath(args.folder)
    with open_library(args, readonly=False) as lib:
        lib.include_folder(folder)
    out(f"included {show(folder)} again: `photosim scan` reads its photos")
    return 0
