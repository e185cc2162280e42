"""``photosim eval DIR``: how well the active encoder fits an album folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..values import PhotosimError


def register(sub, common) -> None:
    p = sub.add_parser(
        "eval", parents=[common],
        help="measure retrieval quality on a folder with one sub-folder per album/class",
        description="Embed every photo of DIR (one sub-folder per class) with the library's active "
        "encoder and print Recall@1, Precision@10 and mAP@R (same folder = relevant), plus "
        "near-duplicate Recall@1 on edited copies of a sample. Nothing is added to the library.",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.add_argument("--near-dup-sample", type=int, default=200, metavar="N",
                   help="photos to make edited copies of (0 to skip; default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluation import evaluate_folder
    from ..library import Library

    from ..library import default_library_path

    folder = Path(args.library) if args.library else default_library_path()
    try:
        if (folder / "library.db").is_file():  # the library's active model
            with Library(folder, readonly=True, device=args.device) as lib:
                report = evaluate_folder(lib.encoder, args.dir, near_dup_sample=args.near_dup_sample,
                                         seed=args.seed)
        else:  # no library yet: the bundled encoder
            from ..encoder import Encoder

            report = evaluate_folder(Encoder.load(device=args.device), args.dir,
                                     near_dup_sample=args.near_dup_sample, seed=args.seed)
    except (NotADirectoryError, ValueError) as exc:
        raise PhotosimError(str(exc)) from exc
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=1) + "\n")
    else:
        sys.stdout.write(report.format_text() + "\n")
    return 0
