"""``photosim features [all|labelled] [--compact] [--drop-taps]``: what the cache of backbone
features keeps, and the choice; ``--drop-taps`` deletes the taps album imports keep for
standard fine-tuning. The cache lets quick fine-tunes, fp32 / int8 switches and models
sharing a backbone re-embed without reading a photo; it costs ``feature_dim`` × 2 bytes a
photo (5 KB with encoder v5: about 5 GB per million photos)."""

from __future__ import annotations

import json

from ._common import open_library, out


def register(sub, common) -> None:
    p = sub.add_parser("features", parents=[common],
                       help="what the cache of backbone features keeps (its size), and the choice")
    p.add_argument("policy", nargs="?", choices=("all", "labelled"),
                   help="all: every photo's (fast fine-tunes and model switches); labelled: only photos in "
                        "albums or marked (accepting a quick fine-tune then reads every other photo)")
    p.add_argument("--compact", action="store_true",
                   help="give the freed space back to the disk (rewrites library.db: about a minute a GB)")
    p.add_argument("--drop-taps", action="store_true",
                   help="delete the activations album imports keep for standard fine-tuning (about 49 KB a "
                        "photo; a standard fine-tune then reads its photos again)")
    p.add_argument("--json", action="store_true", help="print the state as JSON")
    p.set_defaults(func=run)


def _size(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


def run(args) -> int:
    writes = args.policy is not None or args.compact or args.drop_taps
    with open_library(args, readonly=not writes) as lib:
        before, db = lib.feature_cache(), lib.path / "library.db"
        size, dropped = db.stat().st_size, 0
        freed = lib.drop_taps() if args.drop_taps else 0
        taps = lib.taps.bytes()
        if args.policy is not None or args.compact:
            dropped = lib.set_feature_cache(args.policy or before.policy, compact=args.compact)
        now, total = lib.feature_cache(), lib.count(status="ok")
    if args.drop_taps and not args.json:
        out(f"dropped the taps of standard fine-tuning ({_size(freed)})")
    if args.compact and not args.json:
        out(f"library.db compacted: {_size(size)} -> {_size(db.stat().st_size)}")
    if args.json:
        out(json.dumps({"policy": now.policy, "photos": now.photos, "bytes": now.bytes,
                        "bytes_per_photo": now.per_photo, "library_photos": total, "dropped": dropped,
                        "taps_bytes": taps, "taps_freed": freed}))
        return 0
    if args.policy == "labelled":
        out(f"dropped the features of {dropped:,} photos ({_size(dropped * now.per_photo)})"
            + ("" if args.compact else
               "; SQLite reuses that space (`photosim features --compact` gives it back to the disk)"))
    elif args.policy == "all" and before.policy != "all":
        out("from now on every photo read keeps its features (those dropped come back when their "
            "photos are read again: a re-scan of changed files, a model with its own backbone)")
    kept = "every photo's" if now.policy == "all" else "photos in albums or marked only"
    out(f"feature cache: {kept}: {now.photos:,} of {total:,} photos, about {_size(now.bytes)} "
        f"({now.per_photo / 1024:.1f} KB a photo)")
    if now.policy == "labelled" and total > now.photos:
        out(f"  accepting a quick fine-tune reads the other {total - now.photos:,} photos again")
    if taps:
        out(f"taps: about {_size(taps)} kept from album imports for standard fine-tuning (`--drop-taps` deletes them)")
    return 0
