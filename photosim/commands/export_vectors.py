"""``photosim export-vectors OUT.npz``: every indexed photo's path and vector."""

from __future__ import annotations

import os
from pathlib import Path

from ._common import open_library, out, show


def register(sub, common) -> None:
    p = sub.add_parser("export-vectors", parents=[common], help="write paths and vectors to an .npz file")
    p.add_argument("out", metavar="OUT.npz")
    p.set_defaults(func=run)


def run(args) -> int:
    target = Path(os.path.abspath(args.out))
    with open_library(args, readonly=True) as lib:
        n = lib.export_vectors(target)  # checks the target first; never leaves a temporary file
        out(f"wrote {n} vectors ({lib.encoder_id}, dim {lib.card.dim}) to {show(target)}")
    return 0
