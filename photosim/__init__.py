"""photosim: find similar photos in your own photo library.

The public API is :class:`photosim.Library`::

    from photosim import Library
    with Library("~/photosim-lib") as lib:
        lib.scan(["~/Pictures"])
        for match in lib.similar_to_image("holiday.jpg", k=5):
            print(match.score, match.photo.path)
"""

from .library import Library, LibraryLocked, default_library_path
from .values import (
    Cancelled,
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
    "Library", "LibraryLocked", "default_library_path", "Cancelled", "DuplicateGroup",
    "LibraryInfo", "Match", "PhotoInfo", "PhotosimError", "QueryResult", "ScanProgress", "ScanReport",
]
__version__ = "0.1.0"
