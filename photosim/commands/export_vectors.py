"""``photosim export-vectors OUT.npz``: every indexed photo's path and vector."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import PhotosimError
from ._common import open_library, out, show


def register(sub, common) -> None:
    p = sub.add_parser("export-vectors", parents=[common], help="write paths and vectors to an .npz file")
    p.add_argument("out", metavar="OUT.npz")
    p.set_defaults(func=run)


def check_target(target: Path) -> None:
    """A clear sentence, before anything is written, when ``target`` cannot be a file."""
    if target.is_dir():
        raise PhotosimError(f"{show(target)} is a folder; give the file to write, e.g. "
                            f"{show(target / 'vectors.npz')}")
    parent = target.parent
    if not parent.exists():
        raise PhotosimError(f"the folder {show(parent)} does not exist; create it first or give another path")
    if not parent.is_dir():
        raise PhotosimError(f"{show(parent)} is not a folder, so {show(target)} cannot be written")
    if not os.access(parent, os.W_OK):
        raise PhotosimError(f"cannot write in {show(parent)}: permission denied")


def run(args) -> int:
    target = Path(os.path.abspath(args.out))
    check_target(target)
    tmp = target.with_name(target.name + ".tmp.npz")  # what Library.export_vectors writes first
    leftover = tmp.exists()
    with open_library(args, readonly=True) as lib:
        try:
            n = lib.export_vectors(target)
        except BaseException:
            if not leftover:  # never remove a file this run did not make
                tmp.unlink(missing_ok=True)
            raise
        out(f"wrote {n} vectors ({lib.encoder_id}, dim {lib.card.dim}) to {show(target)}")
    return 0
