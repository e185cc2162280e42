"""``photosim copies-of PATH``: what a library photo is a copy of, its verified copies best
first (the one that holds all of its picture, at the highest resolution, first; called
"original" when it holds all of it at least at its resolution)."""

from __future__ import annotations

import json
import os
import sys

from ._common import ProgressBar, open_library, out, positive_int, require_photos, show


def register(sub, common) -> None:
    p = sub.add_parser("copies-of", parents=[common],
                       help="what a library photo is a copy of: its verified copies, the original first")
    p.add_argument("path", metavar="PATH", help="a photo of the library")
    p.add_argument("-k", "--k", dest="k", metavar="N", type=positive_int, default=10,
                   help="how many of its nearest photos to verify (default 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def to_dict(m) -> dict:
    """One verified copy, as ``duplicates --json`` writes a photo of a group."""
    p = m.photo
    return {"path": p.path, "score": round(m.score, 6), "reasons": list(m.reasons),
            "size": p.size, "width": p.width, "height": p.height,
            "holds": round(m.holds, 4), "resolution": round(m.resolution, 4), "source": m.source}


def _find(lib, path: str):
    photo = lib.photo(path)
    if photo is None and os.path.realpath(path) != os.path.abspath(path):
        photo = lib.photo(os.path.realpath(path))  # given through a link to a library photo
    return photo


def _not_found(path: str) -> str:
    if not os.path.lexists(path):
        return f"{show(path)}: no such file, and no photo of the library has that path"
    if os.path.isdir(path):
        return f"{show(path)} is a folder; give one photo of the library"
    return (f"{show(path)} is not in the library: `photosim scan` its folder to add it, or "
            f"`photosim similar {show(path)}` to search with it as it is")


def _say(text: str) -> None:
    sys.stderr.write(f"photosim: {text}\n")


def run(args) -> int:
    with open_library(args, readonly=True) as lib:
        require_photos(lib)
        photo = _find(lib, args.path)
        if photo is None:
            _say(_not_found(args.path))
            return 1
        if not photo.ok:
            _say(f"{show(photo.path)} could not be read when it was scanned ({photo.error or photo.status}): "
                 "there is nothing to compare")
            return 1
        bar = ProgressBar()
        try:
            lib.wait_index(progress=bar)  # a build in progress (a missing or stale index file) first
        finally:
            bar.close()
        found = lib.copies_of(photo, k=args.k)
    if args.json:
        out(json.dumps([to_dict(m) for m in found], indent=1))
        return 0
    out(show(photo.path))
    if not found:
        out(f"  no verified copies among its {args.k} nearest photos")
    for n, m in enumerate(found):
        p = m.photo
        role = "original" if n == 0 and m.source else "copy    "
        why = f"  ({'; '.join(m.reasons)})" if m.reasons else ""
        out(f"  {role}  {m.score:.3f}  {p.width}x{p.height}  {show(p.path)}{why}")
    if found and not found[0].source:
        out("  none holds all of it at its resolution or more: it is probably the original")
    return 0
