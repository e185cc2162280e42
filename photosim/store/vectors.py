"""Stored vectors (per encoder id) and cached backbone features (per backbone id)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.orm import Session

from .schema import Feature, Photo, Vector, blob_to_vector, vector_to_blob

_CHUNK = 900


class VectorRepo:
    """Unit vectors of photos, keyed by (photo id, encoder id): two models never mix."""

    def __init__(self, store):
        self._store = store

    def load(self, encoder_id: str, dim: int, ids: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """(photo ids, float32 matrix) of readable photos, by photo id."""
        q = select(Vector.photo_id, Vector.data).join(Photo, Photo.id == Vector.photo_id).where(
            Vector.encoder_id == encoder_id, Photo.status == "ok")
        with self._store.read() as s:
            if ids is None:
                rows = s.execute(q.order_by(Vector.photo_id)).all()
            else:
                ids = list(ids)
                rows = [r for start in range(0, len(ids), _CHUNK)
                        for r in s.execute(q.where(Vector.photo_id.in_(ids[start:start + _CHUNK]))).all()]
                rows.sort(key=lambda r: r.photo_id)
        if not rows:
            return [], np.zeros((0, dim), dtype=np.float32)
        return [r.photo_id for r in rows], np.stack([blob_to_vector(r.data) for r in rows])

    def get(self, photo_id: int, encoder_id: str) -> np.ndarray | None:
        with self._store.read() as s:
            row = s.get(Vector, (photo_id, encoder_id))
            return blob_to_vector(row.data).copy() if row else None

    def photo_ids(self, encoder_id: str) -> set[int]:
        with self._store.read() as s:
            return set(s.scalars(select(Vector.photo_id).where(Vector.encoder_id == encoder_id)))

    def count(self, encoder_id: str) -> int:
        with self._store.read() as s:
            return s.scalar(select(func.count()).select_from(Vector).where(Vector.encoder_id == encoder_id)) or 0

    @staticmethod
    def put(session: Session, encoder_id: str, ids: Sequence[int], vectors: np.ndarray) -> None:
        if len(ids):
            session.execute(insert(Vector).prefix_with("OR REPLACE"),
                            [{"photo_id": pid, "encoder_id": encoder_id, "data": vector_to_blob(v)}
                             for pid, v in zip(ids, vectors)])

    def keep_only(self, encoder_id: str) -> None:
        """Drop every other model's vectors (they are re-made from features on demand)."""
        with self._store.write() as s:
            s.execute(delete(Vector).where(Vector.encoder_id != encoder_id))

    def drop(self, encoder_id: str, session: Session | None = None) -> None:
        if session is not None:
            session.execute(delete(Vector).where(Vector.encoder_id == encoder_id))
            return
        with self._store.write() as s:
            s.execute(delete(Vector).where(Vector.encoder_id == encoder_id))

    @staticmethod
    def drop_photos(session: Session, ids: Iterable[int]) -> None:
        session.execute(delete(Vector).where(Vector.photo_id.in_(list(ids))))


class FeatureRepo:
    """Pooled backbone features (float16), so a new head re-embeds without decoding."""

    def __init__(self, store):
        self._store = store

    def load(self, backbone_id: str, dim: int, ids: Sequence[int] | None = None,
             dtype=np.float32) -> tuple[list[int], np.ndarray]:
        q = select(Feature.photo_id, Feature.data).where(Feature.backbone_id == backbone_id)
        with self._store.read() as s:
            if ids is None:
                rows = s.execute(q.order_by(Feature.photo_id)).all()
            else:
                ids = list(ids)
                rows = [r for start in range(0, len(ids), _CHUNK)
                        for r in s.execute(q.where(Feature.photo_id.in_(ids[start:start + _CHUNK]))).all()]
                rows.sort(key=lambda r: r.photo_id)
        if not rows:
            return [], np.zeros((0, dim), dtype=dtype)
        return [r.photo_id for r in rows], np.stack([blob_to_vector(r.data, np.float16) for r in rows]).astype(dtype)

    def photo_ids(self, backbone_id: str) -> set[int]:
        with self._store.read() as s:
            return set(s.scalars(select(Feature.photo_id).where(Feature.backbone_id == backbone_id)))

    @staticmethod
    def put(session: Session, backbone_id: str, ids: Sequence[int], features: np.ndarray) -> None:
        if len(ids):
            session.execute(insert(Feature).prefix_with("OR REPLACE"),
                            [{"photo_id": pid, "backbone_id": backbone_id, "data": vector_to_blob(f, np.float16)}
                             for pid, f in zip(ids, features)])

    def drop(self, backbone_id: str) -> None:
        with self._store.write() as s:
            s.execute(delete(Feature).where(Feature.backbone_id == backbone_id))

    @staticmethod
    def drop_photos(session: Session, ids: Iterable[int]) -> None:
        session.execute(delete(Feature).where(Feature.photo_id.in_(list(ids))))
