"""Removing a scanned folder from the library (its files are never touched)."""

from __future__ import annotations

import os

from photosim.errors import PhotosimError

from .trash import forget


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def remove_root(store, index, root: str) -> int:
    """Forget ``root`` (as scanned) and every photo under it, failed ones included; it is
    no longer re-scanned. Photos another scanned folder also covers (a parent, or a folder
    inside it scanned on its own) stay. Returns how many photos the library forgot."""
    roots = store.roots.all()
    if root not in roots:
        raise PhotosimError(f"{root} is not one of this library's folders")
    others = [r for r in roots if r != root]
    store.roots.remove([root])
    if any(_inside(root, r) for r in others):
        return 0
    nested = [r for r in others if _inside(r, root)]
    ids = [p.id for p in store.photos.list(status=None, folder=root)
           if not any(_inside(p.path, r) for r in nested)]
    if ids:
        forget(store, index, ids)
    return len(ids)
