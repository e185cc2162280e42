"""Queries: photos most like a library photo, or like any image from anywhere."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from .errors import PhotosimError
from .imageio import DECODE_SIDE, decode_bytes, open_image
from .values import CopyMatch, Match, PhotoInfo, QueryResult

ImageLike = str | os.PathLike | bytes | Image.Image


class Search:
    """``store`` holds photos and vectors, ``index()`` gives the active model's index,
    ``active`` is the :class:`photosim.models.active.ActiveModel`; ``dups`` (a
    :class:`photosim.pipeline.duplicates.Duplicates`) puts a photo's verified copies first."""

    def __init__(self, store, index, active, dups=None):
        self._store = store
        self._index = index
        self._active = active
        self._dups = dups

    def matches(self, vector: np.ndarray, k: int, min_score: float | None, exclude=()) -> list[Match]:
        hits = self._index.get().query(vector, k, exclude=exclude)
        if min_score is not None:
            hits = [(pid, sc) for pid, sc in hits if sc >= min_score]
        by_id = self._store.photos.photos_by_id([pid for pid, _ in hits])
        return [Match(by_id[pid], sc) for pid, sc in hits if pid in by_id]

    def similar(self, ref: int | str | os.PathLike | PhotoInfo, k: int = 10,
                min_score: float | None = None, *, copies_first: bool = False) -> list[Match]:
        """``copies_first``: its verified copies among the nearest first (each a
        :class:`CopyMatch` with its reasons), what it is most likely a copy of first, then
        the rest by the cosine; verifying them reads those photos (tens of ms)."""
        photo = ref if isinstance(ref, PhotoInfo) else None
        if photo is None and not isinstance(ref, int):
            photo = self._store.photos.photo(ref)
            if photo is None:
                raise PhotosimError(f"not in the library: {ref}")
        pid = ref if photo is None else photo.id  # by id: the vector alone (one look-up at 10^6, not two)
        vec = self._index.get().vector(pid)  # the graph's copy of the stored vector, else the stored one
        if vec is None:
            vec = self._store.vectors.get(pid, self._active.encoder_id)
        if vec is None:
            photo = photo or self._store.photos.photo(pid)
            if photo is None:
                raise PhotosimError(f"not in the library: {ref}")
            raise PhotosimError(f"{photo.path} has no vector ({photo.error or 'not indexed yet'})")
        found = self.matches(vec, k, min_score, exclude={pid})
        if copies_first and found and self._dups is not None:
            found = self._dups.copies_first(photo or pid, found)
        return found

    def embed_image(self, image: ImageLike) -> np.ndarray:
        if isinstance(image, Image.Image):
            im = image.copy()
            im.thumbnail((DECODE_SIDE, DECODE_SIDE), Image.Resampling.BILINEAR)
            im = im.convert("RGB")
        elif isinstance(image, bytes | bytearray):
            im = decode_bytes(bytes(image))[0]
        else:
            im = open_image(image)
        return self._active.encoder.embed([im])[0]

    def similar_to_image(self, image: ImageLike, k: int = 10, min_score: float | None = None, *,
                         copies_first: bool = False) -> list[Match]:
        """``copies_first``: its verified copies first (see :meth:`similar`), for an image
        from outside the library too."""
        if isinstance(image, str | os.PathLike):
            photo = self._store.photos.photo(image)
            if photo is not None and photo.ok:
                try:
                    return self.similar(photo, k, min_score, copies_first=copies_first)
                except PhotosimError:
                    pass  # no vector yet: embed the file below
        found = self.matches(self.embed_image(image), k, min_score)
        if copies_first and found and self._dups is not None:
            found = self._dups.copies_first_of_image(image, found)
        return found

    def similar_to_images(self, images: Sequence[ImageLike], k: int = 10,
                          min_score: float | None = None, *, copies_first: bool = False) -> list[Match]:
        """Most like any of ``images``, each photo at its best score (``copies_first``: a
        verified copy of any of them first)."""
        if len(images) == 1:  # its own order (verified copies: what it is most likely a copy of first)
            return self.similar_to_image(images[0], k, min_score, copies_first=copies_first)
        best: dict[int, Match] = {}
        for image in images:
            for m in self.similar_to_image(image, k, min_score, copies_first=copies_first):
                old = best.get(m.photo.id)
                if old is None or (isinstance(m, CopyMatch), m.score) > (isinstance(old, CopyMatch), old.score):
                    best[m.photo.id] = m
        return sorted(best.values(), key=lambda m: (not isinstance(m, CopyMatch), -m.score))[:k]

    def query(self, queries: Sequence[str | os.PathLike], k: int = 10,
              min_score: float | None = None, *, copies_first: bool = False) -> list[QueryResult]:
        out = []
        for q in queries:
            try:
                out.append(QueryResult(os.fspath(q), self.similar_to_image(q, k, min_score,
                                                                           copies_first=copies_first)))
            except PhotosimError as exc:  # PhotoError is one
                out.append(QueryResult(os.fspath(q), [], error=str(exc)))
        return out
