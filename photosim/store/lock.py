"""One writer per library: an OS file lock, released by the OS if the process dies."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import LibraryLocked, ReadOnlyLibrary




class LibraryLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = None

    def acquire(self) -> None:
        try:
            fh = open(self.path, "a+")
        except OSError as exc:
            raise ReadOnlyLibrary(
                f"the library {self.path.parent} cannot be changed ({exc.strerror or exc}); photosim can "
                "still search it read-only (photosim gui opens it so, and similar/info/duplicates work)"
            ) from None
        try:
            _lock(fh)
        except OSError:
            fh.seek(0)
            owner = fh.read().strip() or "unknown"
            fh.close()
            raise LibraryLocked(
                f"the library {self.path.parent} is in use by another photosim process "
                f"(pid {owner}); close it and try again"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            try:
                _unlock(self._fh)
            finally:
                self._fh.close()
                self._fh = None


try:
    import fcntl

    def _lock(fh) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fh) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _lock(fh) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(fh) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
