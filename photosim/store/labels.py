"""Albums and similarity marks: the user's labels, which fine-tuning learns from."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import delete, func, select

from ..errors import PhotosimError
from ..values import AlbumInfo, MarkInfo, PhotoInfo
from .schema import Album, AlbumPhoto, Mark, Photo

_CHUNK = 900


class LabelRepo:
    def __init__(self, store):
        self._store = store

    # -- albums ---------------------------------------------------------------
    def albums(self) -> list[AlbumInfo]:
        with self._store.read() as s:
            rows = s.execute(
                select(Album.id, Album.name, Album.source, func.count(AlbumPhoto.photo_id))
                .outerjoin(AlbumPhoto, AlbumPhoto.album_id == Album.id)
                .group_by(Album.id).order_by(Album.name)
            ).all()
        return [AlbumInfo(r[0], r[1], r[2], r[3]) for r in rows]

    def add_to_album(self, name: str, photo_ids: Iterable[int], source: str = "user") -> AlbumInfo:
        name = name.strip()
        if not name:
            raise PhotosimError("an album needs a name")
        photo_ids = list(photo_ids)
        with self._store.write() as s:
            album = s.scalars(select(Album).where(Album.name == name)).first()
            if album is None:
                album = Album(name=name, source=source, created_at=time.time())
                s.add(album)
                s.flush()
            have = set(s.scalars(select(AlbumPhoto.photo_id).where(AlbumPhoto.album_id == album.id)))
            valid: set[int] = set()
            for start in range(0, len(photo_ids), _CHUNK):
                valid.update(s.scalars(select(Photo.id).where(Photo.id.in_(photo_ids[start:start + _CHUNK]))))
            for pid in sorted(valid - have):
                s.add(AlbumPhoto(album_id=album.id, photo_id=pid))
            album_id = album.id
        return next(a for a in self.albums() if a.id == album_id)

    def remove_from_album(self, name: str, photo_ids: Iterable[int]) -> None:
        with self._store.write() as s:
            album = s.scalars(select(Album).where(Album.name == name)).first()
            if album is not None:
                s.execute(delete(AlbumPhoto).where(AlbumPhoto.album_id == album.id,
                                                   AlbumPhoto.photo_id.in_(list(photo_ids))))

    def delete_album(self, name: str) -> None:
        with self._store.write() as s:
            s.execute(delete(Album).where(Album.name == name))

    def rename_album(self, name: str, new_name: str) -> AlbumInfo:
        """Give an album another name (its photos stay in it)."""
        new_name = new_name.strip()
        if not new_name:
            raise PhotosimError("an album needs a name")
        with self._store.write() as s:
            album = s.scalars(select(Album).where(Album.name == name)).first()
            if album is None:
                raise PhotosimError(f"there is no album called “{name}”")
            if new_name != name and s.scalars(select(Album.id).where(Album.name == new_name)).first() is not None:
                raise PhotosimError(f"there is already an album called “{new_name}”")
            album.name, album_id = new_name, album.id
        return next(a for a in self.albums() if a.id == album_id)

    def album_photos(self, name: str) -> list[PhotoInfo]:
        with self._store.read() as s:
            rows = s.scalars(
                select(Photo).join(AlbumPhoto, AlbumPhoto.photo_id == Photo.id)
                .join(Album, Album.id == AlbumPhoto.album_id)
                .where(Album.name == name).order_by(Photo.id)
            )
            return [PhotoInfo.from_row(r) for r in rows]

    # -- marks ----------------------------------------------------------------
    def mark(self, query: int, result: int, similar: bool) -> None:
        """A later mark of the same pair replaces the earlier one."""
        if query == result:
            raise PhotosimError("a photo cannot be marked against itself")
        with self._store.write() as s:
            if s.get(Photo, query) is None or s.get(Photo, result) is None:
                raise PhotosimError("both photos must be in the library")
            s.execute(delete(Mark).where(Mark.query_id == query, Mark.result_id == result))
            s.add(Mark(query_id=query, result_id=result, label=1 if similar else -1, created_at=time.time()))

    def unmark(self, query: int, result: int) -> None:
        with self._store.write() as s:
            s.execute(delete(Mark).where(Mark.query_id == query, Mark.result_id == result))

    def marks(self) -> list[MarkInfo]:
        with self._store.read() as s:
            rows = s.execute(select(Mark.query_id, Mark.result_id, Mark.label).order_by(Mark.id)).all()
        return [MarkInfo(r[0], r[1], r[2]) for r in rows]
