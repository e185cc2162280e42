"""Forgetting photos and sending their files to the system trash (never a hard delete)."""

from __future__ import annotations

from collections.abc import Iterable


def forget(store, index, photo_ids: Iterable[int]) -> None:
    """Remove photos from the library (vectors, labels, index); the files are not touched."""
    ids = list(photo_ids)
    store.photos.delete(ids)
    index.remove(ids)
    index.save()


def move_to_trash(store, index, photo_ids: Iterable[int]) -> list[tuple[str, str]]:
    """Returns (path, reason) for files that could not be trashed; those stay in the library."""
    from send2trash import send2trash

    trashed, failed = [], []
    for pid, photo in store.photos.photos_by_id(list(photo_ids)).items():
        try:
            send2trash(photo.path)
            trashed.append(pid)
        except FileNotFoundError:
            trashed.append(pid)  # already gone: nothing to keep
        except OSError as exc:
            failed.append((photo.path, str(exc) or type(exc).__name__))
    if trashed:
        forget(store, index, trashed)
    return failed
