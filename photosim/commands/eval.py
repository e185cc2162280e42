"""``photosim eval DIR``: how well the active encoder fits an album folder."""

from __future__ import annotations

import json
import os

from ..errors import PhotosimError
from ._common import non_negative_int, open_library, out, show


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
    p.add_argument("--near-dup-sample", type=non_negative_int, default=200, metavar="N",
                   help="photos to make edited copies of (0 to skip; default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def check_albums(folder: str) -> None:
    """Refuse, before the model loads, a folder with nothing to measure: metrics of no
    photos (or of one album, where every photo is relevant) would be numbers that mean nothing."""
    from ..evaluation import list_album

    if not os.path.exists(folder):
        raise PhotosimError(f"no such folder: {show(folder)}")
    if not os.path.isdir(folder):
        raise PhotosimError(f"not a folder: {show(folder)}")
    albums: dict[str, int] = {}
    for _path, album in list_album(folder):
        albums[album] = albums.get(album, 0) + 1
    usable = [a for a, n in albums.items() if n >= 2]
    if not albums:
        raise PhotosimError(f"no photos to evaluate in {show(folder)}: eval needs one sub-folder per "
                            "album, each holding photos")
    if len(usable) < 2:
        raise PhotosimError(f"eval needs at least two albums (sub-folders of {show(folder)}) with two or "
                            f"more photos each; found {len(usable)}")


def run(args) -> int:
    from ..evaluation import evaluate_folder

    check_albums(args.dir)
    with open_library(args, readonly=True) as lib:
        try:
            report = evaluate_folder(lib.encoder, args.dir, near_dup_sample=args.near_dup_sample, seed=args.seed)
        except (NotADirectoryError, ValueError) as exc:
            raise PhotosimError(str(exc)) from exc
    if report.n_photos < 2 or report.n_classes < 2:
        first = f" (first: {report.skipped[0]})" if report.skipped else ""
        raise PhotosimError(f"only {report.n_photos} of the photos in {show(args.dir)} could be read, in "
                            f"{report.n_classes} album(s): nothing to measure{first}")
    if args.json:
        out(json.dumps(report.to_dict(), indent=1))
    else:
        out(report.format_text())
    return 0
