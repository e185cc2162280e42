"""Every error photosim means for the user has one root, :class:`PhotosimError`.

A message of any of these is a sentence to show as is (CLI: one line, exit 1; GUI: a
message box or the status bar); anything else that escapes is a bug and keeps its
traceback. Callers catch ``PhotosimError``, never class names as strings.
"""

from __future__ import annotations


class PhotosimError(Exception):
    """An error whose message is meant for the user."""


class Cancelled(PhotosimError):
    """The user cancelled a long operation; nothing was lost."""


class PhotoError(PhotosimError):
    """A photo could not be read; the message says why in words for the user."""


class PhotoVanished(PhotoError):
    """The file disappeared between listing and reading it."""


class LibraryLocked(PhotosimError):
    """Another photosim process is writing to this library."""


class SchemaTooNew(PhotosimError):
    """The library was written by a newer photosim."""


class ReadOnlyLibrary(PhotosimError):
    """A change was asked of a library opened read-only."""


class UnknownModel(PhotosimError):
    """No model of that id in the library (or bundled)."""


class ModelUnusable(PhotosimError):
    """A model exists but cannot be loaded (damaged card or weights, missing backbone)."""
