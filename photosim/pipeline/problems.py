"""Files that could not be read: list them, read them again, ignore or un-ignore them.

A file that failed stays in the library as a row with its reason (so a re-scan costs a
``stat``, not another failed decode). The user may *retry* some (after fixing or
replacing them: they are read again however unchanged they look, and a fixed one joins
the gallery), or *ignore* some: an ignored path is remembered in the library (its own
table, by path), so it stays out of the problems list across re-scans until un-ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import PhotosimError, ReadOnlyLibrary
from ..values import PhotoInfo


@dataclass
class RetryReport:
    """What reading the files again gave: ``fixed`` paths are in the library now, ``failed``
    ones still cannot be read (path, reason), ``gone`` ones no longer exist (forgotten)."""

    fixed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    cancelled: bool = False


class Problems:
    """``lib.problems``: ``list()``, ``ignored()``, ``retry(refs)``, ``ignore(refs)``,
    ``unignore(refs)``; ``refs`` are photo ids, :class:`PhotoInfo` or paths."""

    def __init__(self, store, scan_files: Callable[..., object]):
        self._store = store
        self._scan_files = scan_files  # scan_files(paths, progress=, cancel=) -> ScanReport

    def _split(self) -> tuple[list[PhotoInfo], list[PhotoInfo]]:
        ignored = self._store.ignored.all()
        errors = self._store.photos.list(status="error")
        return [p for p in errors if p.path not in ignored], [p for p in errors if p.path in ignored]

    def list(self) -> list[PhotoInfo]:
        """Files that could not be read, the ignored ones left out."""
        return self._split()[0]

    def ignored(self) -> list[PhotoInfo]:
        """Files that could not be read and that the user chose to ignore."""
        return self._split()[1]

    def counts(self) -> tuple[int, int]:
        """(problems shown, ignored)."""
        shown, ignored = self._split()
        return len(shown), len(ignored)

    def _paths(self, refs: Iterable, *, failing: bool = True) -> list[str]:
        """Paths of ``refs``; with ``failing``, each must be a file that could not be read."""
        out = []
        for ref in refs:
            if isinstance(ref, PhotoInfo):
                ref = ref.id
            if isinstance(ref, int):
                photo = self._store.photos.photo(ref)
                if photo is None:
                    raise PhotosimError(f"no photo with id {ref} in this library")
                path = photo.path
            else:
                path = os.path.abspath(os.fspath(ref))
                photo = self._store.photos.photo(path) if failing else None
            if failing and (photo is None or photo.ok):
                raise PhotosimError(f"{path} is not among the files that could not be read"
                                    + (" (it was read fine)" if photo is not None else ""))
            out.append(path)
        return out

    def _check_writable(self) -> None:
        if self._store.readonly:
            raise ReadOnlyLibrary("this library was opened read-only")

    def ignore(self, refs: Iterable) -> int:
        """Leave these files out of the problems list from now on; returns how many."""
        self._check_writable()
        paths = self._paths(refs)
        self._store.ignored.add(paths)
        return len(paths)

    def unignore(self, refs: Iterable | None = None) -> int:
        """List these (None: all ignored) files among the problems again; returns how many."""
        self._check_writable()
        before = self._store.ignored.all()
        paths = None if refs is None else self._paths(refs, failing=False)
        self._store.ignored.remove(paths)
        return len(before) if paths is None else len(before & set(paths))

    def retry(self, refs: Iterable | None = None, *, progress=None, cancel=None) -> RetryReport:
        """Read these files (None: every listed problem, ignored ones left out) again through
        the scan pipeline, however unchanged they look. Fixed files join the library; files
        gone from disk are forgotten; the rest keep (maybe new) reasons."""
        self._check_writable()
        paths = [p.path for p in self.list()] if refs is None else self._paths(refs)
        report = RetryReport()
        if not paths:
            return report
        scan = self._scan_files(paths, progress=progress, cancel=cancel)
        report.cancelled = bool(scan.cancelled)
        for path in paths:
            photo = self._store.photos.photo(path)
            if photo is None:
                report.gone.append(path)
            elif photo.ok:
                report.fixed.append(path)
            else:
                report.failed.append((path, photo.error or "could not be read"))
        if report.fixed:  # fixed: nothing left to ignore
            self._store.ignored.remove(report.fixed)
        return report
