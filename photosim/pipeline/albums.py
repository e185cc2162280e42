"""Albums made from folders: one per sub-folder of a scanned folder."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import Cancelled, PhotosimError


def import_albums(lib, folder, progress=None, cancel=None) -> list:
    """Scan ``folder`` and make one album (source "folder") per sub-folder, named after it,
    holding the library's photos anywhere under that sub-folder."""
    folder = Path(os.path.abspath(os.fspath(folder)))
    if not folder.is_dir():
        raise PhotosimError(f"not a folder: {folder}")
    with lib.store.features.keeping_every_photo():  # whatever the cache keeps: fine-tuning learns from them
        report = lib.scan([folder], progress=progress, cancel=cancel, keep_taps=True)
    if report.cancelled:
        raise Cancelled("album import cancelled")
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        ids = [p.id for p in lib.photos(folder=str(sub))]
        if ids:
            out.append(lib.add_to_album(sub.name, ids, source="folder"))
    return out
