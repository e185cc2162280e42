"""``photosim similar QUERY ...``: the library's photos most like each image file."""

from __future__ import annotations

import argparse
import json
import os
import re

from ..values import CopyMatch, QueryResult
from ._common import ProgressBar, open_library, out, positive_int, require_photos, show, similarity

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def register(sub, common) -> None:
    p = sub.add_parser("similar", parents=[common], help="photos most like the given image files")
    p.add_argument("queries", nargs="+", metavar="QUERY", help="image files, in the library or not")
    p.add_argument("-k", type=positive_int, default=10, help="number of results per query (default 10)")
    p.add_argument("--min-score", type=similarity, default=None,
                   help="minimum cosine similarity, from -1 to 1")
    p.add_argument("--copies-first", action=argparse.BooleanOptionalAction, default=True,
                   help="verified copies (the same photo edited) among the nearest first, what the query is "
                        "most likely a copy of first, as the app lists them (default; reads those photos); "
                        "--no-copies-first: by similarity alone")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def query_problem(query: str) -> str | None:
    """Why a query cannot be read, said before any model is loaded; None when it may."""
    if _URL.match(query):
        return "URLs are not supported: download the image and give the path of the file"
    if not os.path.lexists(query):
        return "no such file"
    if os.path.isdir(query):
        return "is a folder, not an image file"
    if not os.path.exists(query):
        return "no such file (a symbolic link to nothing)"
    return None


def run(args) -> int:
    problems = {q: query_problem(q) for q in args.queries}
    with open_library(args, readonly=True) as lib:
        require_photos(lib)
        bar = ProgressBar()
        try:
            lib.wait_index(progress=bar)  # a build in progress (a missing or stale index file) first
        finally:
            bar.close()
        readable = [q for q in args.queries if problems[q] is None]
        found = iter(lib.query(readable, k=args.k, min_score=args.min_score, copies_first=args.copies_first)
                     if readable else [])
        results = [QueryResult(q, [], error=problems[q]) if problems[q] else next(found) for q in args.queries]
    if args.json:
        out(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        for r in results:
            out(show(r.query))
            if r.error:
                out(f"  error: {r.error}")
            elif not r.results:
                out("  no photo above the minimum score" if args.min_score is not None else "  no results")
            for m in r.results:
                copy = "  (verified copy)" if isinstance(m, CopyMatch) else ""
                out(f"  {m.score:.3f}  {show(m.photo.path)}{copy}")
    return 1 if any(r.error for r in results) else 0
