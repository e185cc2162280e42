"""Stored vectors (per encoder id) and cached backbone features (per backbone id)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

import numpy as np
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.orm import Session

from ..progress import as_token
from .schema import Feature, Photo, Vector, blob_to_vector, vector_to_blob

_CHUNK = 900


def _load(store, q, id_column, ids: Sequence[int] | None, dim: int, stored, dtype) -> tuple[list[int], np.ndarray]:
    """(ids, matrix) of query ``q``'s (id, blob) rows, by id; only ``ids`` when given."""
    with store.read() as s:
        if ids is None:
            rows = s.execute(q.order_by(id_column)).all()
        else:
            ids = list(ids)
            rows = [r for start in range(0, len(ids), _CHUNK)
                    for r in s.execute(q.where(id_column.in_(ids[start:start + _CHUNK]))).all()]
            rows.sort(key=lambda r: r[0])
    if not rows:
        return [], np.zeros((0, dim), dtype=dtype)
    return [r[0] for r in rows], np.stack([blob_to_vector(r[1], stored) for r in rows]).astype(dtype, copy=False)


class VectorRepo:
    """Unit vectors of photos, keyed by (photo id, encoder id): two models never mix."""

    def __init__(self, store):
        self._store = store

    def load(self, encoder_id: str, dim: int, ids: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """(photo ids, float32 matrix) of readable photos, by photo id. All of them are read
        in rowid chunks into one matrix and ordered in numpy: no SQL sort of the whole table."""
        if ids is None:
            cap = self.count(encoder_id)
            all_ids, matrix, n = np.empty(cap, dtype=np.int64), np.empty((cap, dim), dtype=np.float32), 0
            for chunk_ids, chunk in self.chunks(encoder_id, dim):
                if n + len(chunk_ids) > cap:  # rows written meanwhile
                    cap = 2 * (n + len(chunk_ids))
                    all_ids, matrix = np.resize(all_ids, cap), np.resize(matrix, (cap, dim))
                all_ids[n:n + len(chunk_ids)], matrix[n:n + len(chunk_ids)] = chunk_ids, chunk
                n += len(chunk_ids)
            all_ids, matrix = all_ids[:n], matrix[:n]
            if n > 1 and not np.all(all_ids[1:] > all_ids[:-1]):  # rowid order is nearly always id order
                order = np.argsort(all_ids, kind="stable")
                all_ids, matrix = all_ids[order], matrix[order]
            return all_ids.tolist(), matrix
        q = select(Vector.photo_id, Vector.data).join(Photo, Photo.id == Vector.photo_id).where(
            Vector.encoder_id == encoder_id, Photo.status == "ok")
        return _load(self._store, q, Vector.photo_id, ids, dim, np.float32, np.float32)

    def chunks(self, encoder_id: str, dim: int, chunk: int = 16384, cancel=None):
        """(photo ids, float32 matrix) of readable photos in chunks of ``chunk`` rows, in the
        table's rowid order: each chunk is a rowid range walk (``rowid > last ... LIMIT``) of
        its own short read, so nothing sorts the whole table (``ORDER BY photo_id`` made SQLite
        build a 2 GB temporary B-tree at 10^6 photos) and memory holds one chunk at a time.
        Rows written meanwhile past the last rowid read are still met."""
        q = text("SELECT v.rowid, v.photo_id, v.data FROM vectors AS v JOIN photos AS p ON p.id = v.photo_id "
                 "WHERE v.rowid > :last AND v.encoder_id = :enc AND p.status = 'ok' ORDER BY v.rowid LIMIT :n")
        last, width = -1, dim * 4
        while cancel is None or not cancel():
            with self._store.read() as s:
                rows = s.connection().execute(q, {"last": last, "enc": encoder_id, "n": chunk}).all()
            if not rows:
                return
            last = rows[-1][0]
            good = [r for r in rows if len(r[2]) == width]  # a blob of another length is never misread
            if good:
                yield ([r[1] for r in good],
                       np.frombuffer(b"".join(r[2] for r in good), dtype=np.float32).reshape(len(good), dim))

    def get(self, photo_id: int, encoder_id: str) -> np.ndarray | None:
        with self._store.read() as s:  # the blob alone: no ORM object (a search at 10^6 reads one)
            data = s.execute(select(Vector.data).where(Vector.photo_id == photo_id,
                                                       Vector.encoder_id == encoder_id)).scalar()
            return blob_to_vector(data).copy() if data is not None else None

    def photo_ids(self, encoder_id: str) -> set[int]:
        with self._store.read() as s:
            return set(s.scalars(select(Vector.photo_id).where(Vector.encoder_id == encoder_id)))

    def count(self, encoder_id: str) -> int:
        with self._store.read() as s:  # kept by triggers (migration 9): one row
            return int(s.execute(text("SELECT n FROM vector_counts WHERE encoder_id = :e"),
                                 {"e": encoder_id}).scalar() or 0)

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


#: what the feature cache keeps: every photo's features, or those of the photos fine-tuning
#: learns from (in an album, marked, or in a "not duplicates" verdict)
FEATURE_POLICIES = ("all", "labelled")

_KEEP_EVERY = contextvars.ContextVar("photosim_keep_every_feature", default=False)

#: the photos fine-tuning learns from (their ids), in SQL
LABELLED_SQL = ("SELECT photo_id AS id FROM album_photos UNION SELECT query_id FROM marks UNION "
                "SELECT result_id FROM marks UNION SELECT photo_a FROM verdicts UNION SELECT photo_b FROM verdicts")


class FeatureRepo:
    """Pooled backbone features (float16), so a new head re-embeds without decoding.

    The cache costs ``feature_dim`` × 2 bytes a photo (5 KB for encoder v5: 5 GB per million
    photos), so what it keeps is the library's choice (:attr:`policy`, in the metadata):
    ``"all"`` (the default: quick fine-tunes, fp32 / int8 switches and models sharing a
    backbone never read a photo), or ``"labelled"``: only the photos fine-tuning learns from,
    and then accepting a quick fine-tune reads every other photo once."""

    def __init__(self, store):
        self._store = store

    @property
    def policy(self) -> str:
        value = self._store.meta.get("feature_cache", "all")
        return value if value in FEATURE_POLICIES else "all"

    def set_policy(self, policy: str) -> None:
        if policy not in FEATURE_POLICIES:
            raise ValueError(f"feature cache: {policy!r} is not one of {', '.join(FEATURE_POLICIES)}")
        self._store.meta.set("feature_cache", policy)

    @contextmanager
    def keeping_every_photo(self):
        """Within it (this thread, or this task), every photo keeps its features whatever the
        policy: the photos of albums being imported, about to be learnt from."""
        token = _KEEP_EVERY.set(True)
        try:
            yield
        finally:
            _KEEP_EVERY.reset(token)

    def keep(self, session: Session, ids: Sequence[int]) -> list[bool]:
        """Which of ``ids`` keep their features under the policy (in ``session``)."""
        if _KEEP_EVERY.get() or self.policy == "all" or not len(ids):
            return [True] * len(ids)
        wanted = ",".join(str(int(i)) for i in ids)
        labelled = {r[0] for r in session.execute(text(f"SELECT id FROM ({LABELLED_SQL}) WHERE id IN ({wanted})"))}
        return [int(i) in labelled for i in ids]

    def count(self, backbone_id: str, *, labelled: bool = False) -> int:
        """Photos with features of ``backbone_id`` (``labelled``: of those, the ones
        fine-tuning learns from)."""
        where = f" AND photo_id IN ({LABELLED_SQL})" if labelled else ""
        with self._store.read() as s:
            return int(s.execute(text(f"SELECT count(*) FROM features WHERE backbone_id = :b{where}"),
                                 {"b": backbone_id}).scalar() or 0)

    def drop_unlabelled(self, cancel=None, chunk: int = 20000) -> int:
        """(``cancel``: anything :func:`photosim.progress.as_token` takes.) Forget the features of every photo fine-tuning does not learn from (all backbones),
        a short transaction per ``chunk`` rows (a scan may write beside it); returns how many
        were dropped. SQLite reuses the space; :meth:`compact` gives it back to the disk."""
        token, dropped, last = as_token(cancel), 0, -1
        while not token.cancelled:
            with self._store.write() as s:
                rows = s.execute(text("SELECT rowid FROM features WHERE rowid > :last ORDER BY rowid LIMIT :n"),
                                 {"last": last, "n": chunk}).all()
                if not rows:
                    break
                hi = rows[-1][0]
                dropped += s.execute(text(f"DELETE FROM features WHERE rowid > :last AND rowid <= :hi AND "
                                          f"photo_id NOT IN ({LABELLED_SQL})"), {"last": last, "hi": hi}).rowcount
                last = hi
        return dropped

    def compact(self) -> None:
        """Give the space freed inside library.db back to the disk (:meth:`Store.compact`)."""
        self._store.compact()

    def load(self, backbone_id: str, dim: int, ids: Sequence[int] | None = None,
             dtype=np.float32) -> tuple[list[int], np.ndarray]:
        q = select(Feature.photo_id, Feature.data).where(Feature.backbone_id == backbone_id)
        return _load(self._store, q, Feature.photo_id, ids, dim, np.float16, dtype)

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
