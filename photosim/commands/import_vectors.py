"""``photosim import-vectors FILE.npz``: photos and their vectors from an ``export-vectors`` file."""

from __future__ import annotations

import json

from ._common import ProgressBar, open_library, out, show


def register(sub, common) -> None:
    p = sub.add_parser("import-vectors", parents=[common],
                       help="add photos with their vectors from an .npz file (as export-vectors writes)")
    p.add_argument("npz", metavar="FILE.npz")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    bar = ProgressBar()
    with open_library(args, readonly=False, create=True) as lib:
        try:
            report = lib.import_vectors(args.npz, progress=bar)
            indexed = len(lib.wait_index(progress=bar))  # returns once the index holds them
        finally:
            bar.close()
    if args.json:
        out(json.dumps({**report.to_dict(), "index_size": indexed}, indent=1))
        return 0
    out(f"imported {report.imported} photos with their vectors from {show(args.npz)} "
        f"({report.seconds:.1f} s); the index holds {indexed}")
    if report.already:
        out(f"kept:      {report.already} photos already in the library as they were")
    if report.missing:
        out(f"missing:   {report.missing} paths are not files here (moved, deleted or on another machine)")
    if report.unsupported:
        out(f"skipped:   {report.unsupported} files are not of a photo type photosim reads")
    return 0
