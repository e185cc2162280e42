"""The ``photosim`` command line: a thin layer over :class:`photosim.library.Library`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from .imageio import display_path
from .values import Cancelled, PhotosimError, ScanProgress


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(s)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


class ProgressBar:
    """One redrawn stderr line on a terminal; silent when stderr is not a terminal."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.enabled = stream.isatty()
        self.width = 30

    def __call__(self, p: ScanProgress) -> None:
        if not self.enabled:
            return
        if p.stage == "scanning" and p.total:
            frac = min(1.0, p.done / p.total)
            bar = "#" * int(frac * self.width) + "-" * (self.width - int(frac * self.width))
            line = (f"\r[{bar}] {p.done}/{p.total} {p.rate:5.1f} photos/s "
                    f"ETA {_fmt_seconds(p.eta)}  failed {p.failed}")
        else:
            line = f"\r{p.stage}... {p.total or ''}"
        self.stream.write(line.ljust(80)[:100])
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _open(args, readonly: bool = False):
    from .library import Library

    return Library(args.library, readonly=readonly, device=getattr(args, "device", None))


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


# -- commands -------------------------------------------------------------
def cmd_scan(args) -> int:
    bar = ProgressBar()
    stop = threading.Event()
    with _open(args) as lib:
        try:
            report = lib.scan(args.dirs, progress=bar, cancel=stop)
        except KeyboardInterrupt:
            stop.set()
            bar.close()
            _out("cancelled")
            return 130
        finally:
            bar.close()
        if args.json:
            _out(json.dumps(report.to_dict(), indent=1))
            return 0
        _out(f"{len(lib.photos())} photos in {lib.path}")
        _out(f"  added {report.added}, updated {report.updated}, moved {report.moved}, "
             f"removed {report.removed}, unchanged {report.unchanged}, re-embedded {report.reembedded}")
        for path, reason in report.failed:
            _out(f"  failed: {display_path(path)}: {reason}")
        for path, reason in report.unreadable_folders:
            _out(f"  unreadable folder: {display_path(path)}: {reason}")
        _out(f"  {report.seconds:.1f} s")
    return 0


def cmd_similar(args) -> int:
    with _open(args, readonly=True) as lib:
        results = lib.query(args.queries, k=args.k, min_score=args.min_score)
    if args.json:
        _out(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        for r in results:
            _out(display_path(r.query))
            if r.error:
                _out(f"  error: {r.error}")
            for m in r.results:
                _out(f"  {m.score:.3f}  {display_path(m.photo.path)}")
    return 1 if any(r.error for r in results) else 0


def cmd_duplicates(args) -> int:
    with _open(args, readonly=True) as lib:
        groups = lib.duplicates(threshold=args.threshold)
    if args.json:
        _out(json.dumps([[{"path": p.path, "score": round(s, 6), "size": p.size, "width": p.width,
                           "height": p.height} for p, s in zip(g.photos, g.scores)] for g in groups], indent=1))
        return 0
    for n, g in enumerate(groups, 1):
        _out(f"group {n} ({len(g.photos)} photos)")
        for p, s in zip(g.photos, g.scores):
            _out(f"  {s:.3f}  {p.width}x{p.height}  {display_path(p.path)}")
    if not groups:
        _out("no near-duplicates found")
    return 0


def cmd_export(args) -> int:
    with _open(args, readonly=True) as lib:
        n = lib.export_vectors(args.out)
        _out(f"wrote {n} vectors ({lib.encoder_id}, dim {lib.card.dim}) to {args.out}")
    return 0


def cmd_info(args) -> int:
    with _open(args, readonly=True) as lib:
        info = lib.info()
        errors = lib.errors()
    if args.json:
        d = info.to_dict()
        d["failed"] = [{"path": p.path, "error": p.error} for p in errors]
        _out(json.dumps(d, indent=1))
        return 0
    _out(f"library:   {info.path} (schema {info.schema_version})")
    _out(f"photos:    {info.photos} ({info.indexed} indexed, {info.errors} failed)")
    if info.unindexed:
        _out(f"note:      {info.unindexed} photos have no vector of this encoder: run photosim scan again")
    _out(f"encoder:   {info.encoder_id} (dim {info.encoder_dim})")
    if info.notice:
        _out(f"note:      {info.notice}")
    _out(f"index:     {info.index_size} vectors")
    for r in info.roots:
        _out(f"folder:    {display_path(r)}")
    for p in errors:
        _out(f"failed:    {display_path(p.path)}: {p.error}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="photosim", description="Find similar photos in your photo library.")
    ap.add_argument("--version", action="version", version=f"photosim {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--library", metavar="LIB", type=Path, default=None,
                        help="library folder (default: the user data folder; or $PHOTOSIM_LIBRARY)")
    common.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if available)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("scan", parents=[common], help="add or refresh photos from folders")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the scan report as JSON")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("similar", parents=[common], help="photos most like the given image files")
    p.add_argument("queries", nargs="+", metavar="QUERY")
    p.add_argument("-k", type=int, default=10, help="number of results per query (default 10)")
    p.add_argument("--min-score", type=float, default=None, help="minimum cosine similarity")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("duplicates", parents=[common], help="groups of near-duplicate photos")
    p.add_argument("--threshold", type=float, default=None,
                   help="minimum similarity (default: the encoder's own, from its card)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_duplicates)

    p = sub.add_parser("export-vectors", parents=[common], help="write paths and vectors to an .npz file")
    p.add_argument("out", metavar="OUT.npz")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", parents=[common], help="library size, encoder, failed files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    for register in _extensions():
        register(sub, common)
    return ap


def _extensions():
    """Commands living in their own modules under ``photosim/commands/`` (eval, gui,
    fine-tuning): each module has ``register(subparsers, common_parent_parser)``."""
    import importlib
    import pkgutil

    from . import commands

    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        yield importlib.import_module(f"{commands.__name__}.{mod.name}").register


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("photosim")
    except PackageNotFoundError:
        return "dev"


def main(argv: list[str] | None = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except Cancelled as exc:
        print(f"photosim: cancelled ({exc})", file=sys.stderr)
        return 130
    except PhotosimError as exc:
        print(f"photosim: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("photosim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
