"""Measure where "same photo", "very similar" and "related" fall for a model, on a library.

    python benchmarks/similarity_bands.py LIB

Pairs, by what the files are (no labels needed):
- same photo: two files of one picture (one stem in sibling size folders, as wallpaper
  packages ship 1920x1080.jpg, 3840x2160.png ... of each picture);
- same set: pictures of one folder family (a wallpaper theme, a Caltech-101 class);
- unrelated: pictures of different families.
It prints score quantiles of each kind and the nearest-neighbour score of each photo, so the
offsets in photosim/gui/bands.py can be checked against the card's duplicate_threshold.

Measured 2026-12-01 (bundled photosim-mnv2-rmac288-v4, duplicate_threshold 0.73; 273 files
of Debian's wallpaper packages; load 6.9 on 2 cores, which only affects the scan time):

    same photo  n= 1047  0.94  1.00  1.00  1.00  1.00  1.00
    same set    n=  337  0.08  0.14  0.20  0.31  0.99  1.00
    unrelated   n=35744  0.00  0.07  0.12  0.20  0.31  0.49
    nearest neighbour per photo: 0.42  0.95  1.00  1.00  1.00

unrelated pairs at or above 0.43: 1.33 %, 0.57: 0.53 %, 0.73: 0.02 %; files of one picture
under 0.57: 0.48 %, under 0.73: 1.43 %.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np


def family(path: str) -> str:
    p = Path(path)
    parts = p.parts
    if "contents" in parts:  # wallpapers/NAME/contents/images/WxH.ext
        return parts[parts.index("contents") - 1]
    return p.parent.name


def picture(path: str) -> str:
    p = Path(path)
    if "contents" in p.parts:
        return family(path) + ("-dark" if "dark" in str(p.parent) else "")
    return str(p.with_suffix(""))


def main(argv: list[str]) -> int:
    from photosim import Library

    with Library(argv[0], readonly=True) as lib:
        photos, vecs = lib.vectors()
        t = lib.card.duplicate_threshold
        kinds: dict[str, list[float]] = {"same photo": [], "same set": [], "unrelated": []}
        sims = vecs @ vecs.T
        for i, j in itertools.combinations(range(len(photos)), 2):
            a, b = photos[i].path, photos[j].path
            kind = ("same photo" if picture(a) == picture(b) else
                    "same set" if family(a) == family(b) else "unrelated")
            kinds[kind].append(float(sims[i, j]))
        np.fill_diagonal(sims, -1)
        print(f"{len(photos)} photos, encoder {lib.encoder_id}, duplicate_threshold {t:.2f}")
        for kind, scores in kinds.items():
            if scores:
                q = np.quantile(scores, [0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
                print(f"{kind:11s} n={len(scores):5d}  " + "  ".join(f"{x:.2f}" for x in q)
                      + "   (quantiles 5 25 50 75 95 99 %)")
        nn = sims.max(axis=1)
        print("nearest neighbour per photo: " + "  ".join(f"{x:.2f}" for x in np.quantile(nn, [0.05, 0.25, 0.5, 0.75, 0.95])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
