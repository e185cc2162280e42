"""photosim: find similar photos in your own photo library.

The public API is :class:`photosim.Library`::

    from photosim import Library
    with Library("~/photosim-lib") as lib:
        lib.scan(["~/Pictures"])
        for match in lib.similar_to_image("holiday.jpg", k=5):
            print(match.score, match.photo.path)
"""

from .values import (
    Cancelled,
    CopyMatch,
    DuplicateGroup,
    LibraryInfo,
    Match,
    PhotoInfo,
    PhotosimError,
    QueryResult,
    ScanProgress,
    ScanReport,
)

__all__ = [
    "Library", "LibraryLocked", "default_library_path", "Cancelled", "CopyMatch", "DuplicateGroup",
    "LibraryInfo", "Match", "PhotoInfo", "PhotosimError", "QueryResult", "ScanProgress", "ScanReport",
    "Watcher", "WatchBatch", "apply_batch",
]
__version__ = "0.1.0"

_LAZY = {"Library": "library", "LibraryLocked": "errors", "default_library_path": "library",
         "Watcher": "pipeline.watch", "WatchBatch": "pipeline.watch", "apply_batch": "pipeline.watch"}


def __getattr__(name: str):
    """The library (SQLite, hnswlib, numpy) loads on first use, so ``import photosim``
    stays instant for the GUI's first paint."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
