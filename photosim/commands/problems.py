"""``photosim problems``: files that could not be read; ``--retry`` reads them again,
``--ignore PATH`` leaves one out of the list (kept across re-scans), ``--unignore``."""

from __future__ import annotations

import json

from ._common import open_library, out, show


def register(sub, common) -> None:
    p = sub.add_parser("problems", parents=[common], help="files that could not be read: retry or ignore them")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--retry", nargs="*", metavar="PATH",
                   help="read these files (default: every listed one) again, e.g. after fixing them")
    g.add_argument("--ignore", nargs="+", metavar="PATH", help="leave these files out of the list from now on")
    g.add_argument("--unignore", nargs="*", metavar="PATH", help="list these (default: all) ignored files again")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    changes = args.retry is not None or args.ignore or args.unignore is not None
    with open_library(args, readonly=not changes) as lib:
        if args.retry is not None:
            r = lib.problems.retry(args.retry or None)
            out(f"read again: {len(r.fixed)} fixed (now in the library), {len(r.failed)} still cannot be "
                f"read, {len(r.gone)} no longer exist (forgotten)")
            for path in r.fixed:
                out(f"fixed:     {show(path)}")
            for path, reason in r.failed:
                out(f"failed:    {show(path)}: {reason}")
            for path in r.gone:
                out(f"gone:      {show(path)}")
            return 0
        if args.ignore:
            n = lib.problems.ignore(args.ignore)
            out(f"ignored {n} file{'s' if n != 1 else ''} (`photosim problems --unignore` lists them again)")
            return 0
        if args.unignore is not None:
            n = lib.problems.unignore(args.unignore or None)
            out(f"{n} file{'s' if n != 1 else ''} listed again")
            return 0
        shown, ignored = lib.problems.list(), lib.problems.ignored()
    if args.json:
        out(json.dumps({"problems": [{"path": p.path, "error": p.error} for p in shown],
                        "ignored": [{"path": p.path, "error": p.error} for p in ignored]}, indent=1))
        return 0
    for p in shown:
        out(f"{show(p.path)}: {p.error}")
    if not shown:
        out("no problems: every file was read" + (" (or is ignored)" if ignored else ""))
    if ignored:
        out(f"({len(ignored)} ignored: `photosim problems --unignore` lists them again)")
    return 0
