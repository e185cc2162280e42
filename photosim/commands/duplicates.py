"""``photosim duplicates``: copies of one photo in tiers (exact, near), each group with the
copy to keep and the reasons; ``--tier similar`` lists stacks of other shots instead."""

from __future__ import annotations

import json

from ._common import ProgressBar, fmt_bytes, open_library, out, require_photos, show, similarity


def register(sub, common) -> None:
    p = sub.add_parser("duplicates", parents=[common], help="copies of one photo (exact, near) or stacks (similar)")
    p.add_argument("--threshold", type=similarity, default=None,
                   help="similarity from which neighbours are checked, from -1 to 1 (default: a "
                        "little below the encoder's duplicate threshold, from its card; verification decides)")
    p.add_argument("--tier", choices=["duplicates", "exact", "near", "similar"], default="duplicates",
                   help="duplicates (exact and near, the default), exact, near, or similar: stacks of "
                        "other shots of one scene, never proposed for the trash")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def keeper_reason(group) -> str:
    """Why the first photo of a group is the one to keep, in words."""
    first = group.reasons[0][0] if group.reasons and group.reasons[0] else "keeper: the best copy"
    return first.removeprefix("keeper: ")


def run(args) -> int:
    with open_library(args, readonly=True) as lib:
        require_photos(lib)
        bar = ProgressBar()
        try:
            lib.wait_index(progress=bar)  # a build in progress first: every photo's neighbours need it
        finally:
            bar.close()
        groups = lib.duplicates(threshold=args.threshold, tier=args.tier)
    if args.json:
        out(json.dumps([g.to_dict() for g in groups], indent=1))
        return 0
    for n, g in enumerate(groups, 1):
        what = "stack" if g.tier == "similar" else f"{g.tier} copies"
        out(f"group {n}, {what} ({len(g.photos)} photos): keep {show(g.photos[0].path)} ({keeper_reason(g)})")
        for i, (p, s) in enumerate(zip(g.photos, g.scores)):
            role = "keep " if i == 0 else ("shot " if g.tier == "similar" else "copy ")
            out(f"  {role} {s:.3f}  {p.width}x{p.height}  {fmt_bytes(p.size):>8}  {show(p.path)}")
            if i:
                for r in g.reasons[i] if g.reasons else []:
                    out(f"         {r}")
    for notice in getattr(groups, "notices", []):
        out(f"note: {notice}")
    if not groups:
        threshold = getattr(groups, "threshold", None) or args.threshold or 0.0
        kind = "stacks" if args.tier == "similar" else "duplicates"
        out(f"no {kind} found (neighbours checked from similarity {threshold:.2f})")
    return 0
