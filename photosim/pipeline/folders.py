"""The library's folders: removing a scanned folder, excluding sub-folders of one (and
including them again), and the tree of folders with their photo counts. Files are never
touched: only the library forgets."""

from __future__ import annotations

import os
from collections import deque

from photosim.errors import PhotosimError

from ..store.roots import inside as _inside
from ..values import FolderInfo
from .trash import forget

#: the folder tree lists at most this many folders (one SQL query for each that has sub-folders)
TREE_LIMIT = 2000


def _abs(folder) -> str:
    return os.path.abspath(os.fspath(folder))


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


class Folders:
    """The folder operations of :class:`photosim.Library` (delegated by name)."""

    def __init__(self, store, index):
        self._store, self._index = store, index

    def remove_root(self, folder) -> int:
        """Forget a scanned folder and its photos (the files stay), and its excluded sub-folders
        that no other scanned folder covers; returns how many photos left."""
        n = remove_root(self._store, self._index, _abs(folder))
        roots = self._store.roots.all()
        for e in self._store.roots.excluded():
            if not any(_inside(e, r) for r in roots):
                self._store.roots.include(e)
        return n

    def exclude_folder(self, folder) -> int:
        """Exclude a sub-folder of a scanned folder: scans skip it from now on and the library
        forgets its photos (rows, vectors, albums, index; never the files). Returns how many
        photos it forgot (``count(folder=...)`` says beforehand). A scanned folder inside it
        is no longer scanned on its own either."""
        folder = _abs(folder)
        roots, excluded = self._store.roots.all(), self._store.roots.excluded()
        if folder in roots:
            raise PhotosimError(f"{folder} is one of the library's folders: remove it from the library "
                                "instead of excluding it")
        around = [(len(r), "root", r) for r in roots if _inside(folder, r)]
        around += [(len(e), "excluded", e) for e in excluded if _inside(folder, e)]
        if not around:
            raise PhotosimError(f"{folder} is not inside any of this library's folders, so there is "
                                "nothing to exclude")
        _, kind, nearest = max(around)
        if kind == "excluded":
            raise PhotosimError(f"{folder} is excluded already" + ("" if nearest == folder else f" (with {nearest})"))
        self._store.roots.exclude(folder)
        ids = self._store.photos.ids(status=None, folder=folder)
        if ids:
            forget(self._store, self._index, ids)
        return len(ids)

    def include_folder(self, folder) -> None:
        """No longer exclude a sub-folder; the next scan reads its photos again."""
        folder = _abs(folder)
        if not self._store.roots.include(folder):
            raise PhotosimError(f"{folder} is not an excluded folder of this library")

    def folder_tree(self, limit: int = TREE_LIMIT) -> list[FolderInfo]:
        """The scanned folders (those not inside another one), each with its sub-folders that
        hold readable photos and their counts, breadth first up to ``limit`` folders: one
        SQL GROUP BY per folder that has sub-folders, never a row per photo."""
        roots = self._store.roots.all()
        tops = [r for r in roots if not any(o != r and _inside(r, o) for o in roots)]
        found: dict[str, tuple[int, list[str], bool]] = {}  # path -> (count, children, more)
        queue, listed = deque(tops), len(tops)
        counts: dict[str, int | None] = {r: None for r in tops}
        while queue:
            folder = queue.popleft()
            direct, subs = self._store.photos.subfolders(folder)
            kids, more = [], False
            for path, count, deeper in sorted(subs):
                if listed >= limit:
                    more = True
                    continue
                listed += 1
                counts[path] = count
                kids.append(path)
                if deeper:  # a folder without sub-folders needs no query of its own
                    queue.append(path)
                else:
                    found[path] = (count, [], False)
            total = counts[folder] if counts[folder] is not None else direct + sum(c for _, c, _ in subs)
            found[folder] = (total, kids, more)

        def build(path: str) -> FolderInfo:
            count, kids, more = found[path]
            return FolderInfo(path, count, tuple(build(k) for k in kids), more)

        return [build(r) for r in tops]
