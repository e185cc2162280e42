"""``photosim duplicates``: groups of near-duplicate photos, each with the one to keep."""

from __future__ import annotations

import json

from ._common import fmt_bytes, open_library, out, require_photos, show, similarity


def register(sub, common) -> None:
    p = sub.add_parser("duplicates", parents=[common], help="groups of near-duplicate photos")
    p.add_argument("--threshold", type=similarity, default=None,
                   help="minimum similarity, from -1 to 1 (default: the encoder's own, from its card)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def keeper_reason(group) -> str:
    """Why the first photo of a group is the one to keep, in words (the library orders
    a group by pixels, then file size, then path)."""
    def px(p) -> int:
        return (p.width or 0) * (p.height or 0)

    a, others = group.photos[0], group.photos[1:]
    ties = [p for p in others if px(p) == px(a)]
    if not ties:
        return "the most pixels"
    if all(a.size > p.size for p in ties):
        return "the largest file" if len(ties) == len(others) else "the most pixels, then the largest file"
    return "same pixels and file size as another; the first by path"


def run(args) -> int:
    with open_library(args, readonly=True) as lib:
        require_photos(lib)
        groups = lib.duplicates(threshold=args.threshold)
        threshold = lib.card.duplicate_threshold if args.threshold is None else args.threshold
    if args.json:
        out(json.dumps([[{"path": p.path, "score": round(s, 6), "size": p.size, "width": p.width,
                          "height": p.height, "keep": i == 0}
                         for i, (p, s) in enumerate(zip(g.photos, g.scores))] for g in groups], indent=1))
        return 0
    for n, g in enumerate(groups, 1):
        out(f"group {n} ({len(g.photos)} photos): keep {show(g.photos[0].path)} ({keeper_reason(g)})")
        for i, (p, s) in enumerate(zip(g.photos, g.scores)):
            role = "keep " if i == 0 else "copy "
            out(f"  {role} {s:.3f}  {p.width}x{p.height}  {fmt_bytes(p.size):>8}  {show(p.path)}")
    if not groups:
        out(f"no near-duplicates found (similarity {threshold:.2f} or more)")
    return 0
