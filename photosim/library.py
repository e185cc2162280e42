"""The front door: one :class:`Library` that the CLI, the GUI and the tests all use.

A library is a directory holding ``library.db`` (SQLite: photos, vectors, cached
features, albums, marks) and ``index.bin``/``index.json`` (hnswlib). The
database is the truth; the index is a cache rebuilt from stored vectors when it
is missing, damaged, or from another encoder.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import platformdirs
from PIL import Image
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from . import migrations
from .db import Album, AlbumPhoto, Feature, Mark, Meta, Photo, Vector, blob_to_vector, make_engine
from .encoder import Encoder, backbone_problem, bundled_model_dir
from .imageio import PhotoError, decode_bytes, open_image
from .index import VectorIndex
from .lock import LibraryLock, LibraryLocked
from .card import ModelCard
from .values import (
    AlbumInfo,
    Cancelled,
    DuplicateGroup,
    LibraryInfo,
    MarkInfo,
    Match,
    PhotoInfo,
    PhotosimError,
    QueryResult,
    ScanReport,
)

__all__ = ["Library", "LibraryLocked", "default_library_path"]

ImageLike = str | os.PathLike | bytes | Image.Image


def default_library_path() -> Path:
    """``$PHOTOSIM_LIBRARY`` or the platform's user data dir (e.g. ~/.local/share/photosim/library)."""
    env = os.environ.get("PHOTOSIM_LIBRARY")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("photosim", appauthor=False)) / "library"


class Library:
    """A photo library: scan folders, query by example, find duplicates, export vectors.

    Open with ``Library.open(path)`` (or as a context manager). ``readonly=True``
    takes no writer lock, so queries work while another process scans.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, readonly: bool = False,
                 device: str | None = None):
        self.path = Path(path) if path else default_library_path()
        self.readonly = readonly
        self.device = device
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PhotosimError(f"cannot create the library folder {self.path}: {exc.strerror}") from exc
        self._lock = LibraryLock(self.path / "lock")
        if not readonly:
            self._lock.acquire()
        try:
            self._engine = make_engine(self.path / "library.db")
            self.schema_from, self.schema_version = migrations.upgrade(self._engine)
        except Exception:
            self._lock.release()
            raise
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._encoder: Encoder | None = None
        self._encoder_lock = threading.Lock()
        self._index: VectorIndex | None = None
        self._index_lock = threading.RLock()
        self.notice = ""  # set when the library could not stay on its last model
        self._card = self._active_card()

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, **kw) -> Library:
        return cls(path, **kw)

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._lock.release()

    # -- internals shared with scanner/training -----------------------------
    @contextmanager
    def _session(self) -> Iterable[Session]:
        with self._sessions() as s:
            yield s

    def _meta(self, key: str, default: str | None = None) -> str | None:
        with self._session() as s:
            row = s.get(Meta, key)
            return row.value if row else default

    def _set_meta(self, key: str, value: str, session: Session | None = None) -> None:
        if session is not None:
            session.merge(Meta(key=key, value=value))
            return
        with self._session() as s, s.begin():
            s.merge(Meta(key=key, value=value))

    def _generation(self) -> int:
        return int(self._meta("generation", "0"))

    def _bump_generation(self, session: Session | None = None) -> None:
        """Every change to stored vectors bumps this; a saved index of another generation is stale."""
        if session is None:
            with self._session() as s, s.begin():
                return self._bump_generation(s)
        row = session.get(Meta, "generation")
        value = int(row.value) + 1 if row else 1
        session.merge(Meta(key="generation", value=str(value)))

    def _require_writable(self) -> None:
        if self.readonly:
            raise PhotosimError("this library was opened read-only")

    # -- encoder ------------------------------------------------------------
    def model_dir(self, model_id: str) -> Path:
        """Directory of a model by id: the bundled encoder or one under ``models/``."""
        bundled = bundled_model_dir()
        if model_id == ModelCard.load(bundled / "card.json").id:
            return bundled
        candidate = self.path / "models" / model_id
        if (candidate / "card.json").is_file():
            return candidate
        raise PhotosimError(f"unknown model {model_id!r}")

    def _active_card(self) -> ModelCard:
        wanted = self._meta("encoder_id")
        if wanted:
            try:
                card = ModelCard.load(self.model_dir(wanted) / "card.json")
                problem = backbone_problem(card, self.model_dir)
                if problem is None:
                    return card
                self.notice = (f"the fine-tuned model {wanted} was made for an earlier photosim encoder, "
                               "so searches use the bundled encoder; fine-tune again from the same albums")
            except (PhotosimError, OSError, ValueError):
                pass  # model gone (an upgrade replaced the bundled one): fall back
        return ModelCard.load(bundled_model_dir() / "card.json")

    @property
    def encoder_id(self) -> str:
        return self._card.id

    @property
    def backbone_id(self) -> str:
        return self._card.backbone_id

    @property
    def card(self) -> ModelCard:
        return self._card

    @property
    def encoder(self) -> Encoder:
        """The active encoder, loaded on first use (torch import and weights: ~1-2 s)."""
        with self._encoder_lock:
            if self._encoder is None or self._encoder.id != self._card.id:
                self._encoder = Encoder.load(self.model_dir(self._card.id), device=self.device,
                                             resolve_parent=self.model_dir)
            return self._encoder

    @property
    def encoder_loaded(self) -> bool:
        return self._encoder is not None

    def set_active_encoder(self, model_id: str) -> None:
        """Switch the library to another model; vectors come from cached features when possible
        (call :meth:`scan` or :meth:`reembed` to fill them)."""
        self._require_writable()
        card = ModelCard.load(self.model_dir(model_id) / "card.json")
        self._set_meta("encoder_id", card.id)
        with self._index_lock:
            self._card = card
            self._index = None

    # -- index --------------------------------------------------------------
    def _load_vectors(self, ids: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        with self._session() as s:
            q = select(Vector.photo_id, Vector.data).join(Photo, Photo.id == Vector.photo_id).where(
                Vector.encoder_id == self.encoder_id, Photo.status == "ok")
            if ids is not None:
                q = q.where(Vector.photo_id.in_(list(ids)))
            rows = s.execute(q.order_by(Vector.photo_id)).all()
        if not rows:
            return [], np.zeros((0, self._card.dim), dtype=np.float32)
        return [r.photo_id for r in rows], np.stack([blob_to_vector(r.data) for r in rows])

    @property
    def index(self) -> VectorIndex:
        with self._index_lock:
            if self._index is None:
                generation = self._generation()
                index = VectorIndex.load(self.path, self.encoder_id, self._card.dim, generation)
                if index is None:
                    ids, vecs = self._load_vectors()
                    index = VectorIndex.build(self._card.dim, self.encoder_id, ids, vecs)
                    self._index = index
                    if not self.readonly:
                        index.save(self.path, generation)
                self._index = index
            return self._index

    def _index_add(self, ids: list[int], vectors: np.ndarray) -> None:
        self.index.add(ids, vectors)

    def _index_remove(self, ids: Iterable[int]) -> None:
        self.index.remove(ids)

    def _save_index(self) -> None:
        if not self.readonly:
            with self._index_lock:
                self.index.save(self.path, self._generation())

    def _delete_photos(self, ids: list[int]) -> None:
        """Forget photos (the files are not touched): rows, vectors, features, labels, index."""
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            with self._session() as s, s.begin():
                s.execute(delete(Photo).where(Photo.id.in_(chunk)))
                self._bump_generation(s)
            self._index_remove(chunk)

    # -- scanning -----------------------------------------------------------
    def scan(self, roots: Sequence[str | os.PathLike], *, progress=None, cancel=None,
             batch_size: int = 32, workers: int = 2) -> ScanReport:
        """Add or refresh the photos under ``roots``. ``progress(ScanProgress)`` is called
        about ten times a second; ``cancel()`` returning True stops after the current batch
        (what was committed stays). Photos are only ever opened for reading."""
        from .scanner import Scan

        self._require_writable()
        roots = [os.path.abspath(os.fspath(r)) for r in roots]
        report = Scan(self, roots, progress, _as_cancel(cancel), batch_size=batch_size, workers=workers).run()
        known = set(self.roots())
        if not report.cancelled and not known.issuperset(roots):
            self._set_meta("roots", "\n".join(sorted(known | set(roots))))
        return report

    def roots(self) -> list[str]:
        """Folders that have been scanned into this library."""
        value = self._meta("roots", "")
        return [r for r in value.split("\n") if r]

    def rescan(self, **kw) -> ScanReport:
        return self.scan(self.roots(), **kw)

    # -- photos -------------------------------------------------------------
    def photos(self, *, status: str | None = "ok", folder: str | None = None) -> list[PhotoInfo]:
        with self._session() as s:
            q = select(Photo)
            if status:
                q = q.where(Photo.status == status)
            rows = [PhotoInfo.from_row(r) for r in s.scalars(q.order_by(Photo.id))]
        if folder:
            prefix = os.path.abspath(folder).rstrip(os.sep) + os.sep
            rows = [p for p in rows if p.path.startswith(prefix)]
        return rows

    def errors(self) -> list[PhotoInfo]:
        return self.photos(status="error")

    def photo(self, ref: int | str | os.PathLike) -> PhotoInfo | None:
        with self._session() as s:
            if isinstance(ref, int):
                row = s.get(Photo, ref)
            else:
                row = s.scalars(select(Photo).where(Photo.path == os.path.abspath(os.fspath(ref)))).first()
            return PhotoInfo.from_row(row) if row else None

    def photos_by_id(self, ids: Iterable[int]) -> dict[int, PhotoInfo]:
        ids = list(ids)
        out: dict[int, PhotoInfo] = {}
        with self._session() as s:
            for start in range(0, len(ids), 900):
                for r in s.scalars(select(Photo).where(Photo.id.in_(ids[start:start + 900]))):
                    out[r.id] = PhotoInfo.from_row(r)
        return out

    def vector(self, photo_id: int) -> np.ndarray | None:
        with self._session() as s:
            row = s.get(Vector, (photo_id, self.encoder_id))
            return blob_to_vector(row.data).copy() if row else None

    def vectors(self) -> tuple[list[PhotoInfo], np.ndarray]:
        """Every indexed photo and its vector (same order), for export or analysis."""
        ids, vecs = self._load_vectors()
        by_id = self.photos_by_id(ids)
        keep = [i for i, pid in enumerate(ids) if pid in by_id]
        return [by_id[ids[i]] for i in keep], vecs[keep]

    # -- queries ------------------------------------------------------------
    def _matches(self, vector: np.ndarray, k: int, min_score: float | None, exclude=()) -> list[Match]:
        hits = self.index.query(vector, k, exclude=exclude)
        if min_score is not None:
            hits = [(pid, sc) for pid, sc in hits if sc >= min_score]
        by_id = self.photos_by_id([pid for pid, _ in hits])
        return [Match(by_id[pid], sc) for pid, sc in hits if pid in by_id]

    def similar(self, ref: int | str | os.PathLike | PhotoInfo, k: int = 10,
                min_score: float | None = None) -> list[Match]:
        """Photos most like a photo of the library (itself excluded), best first."""
        photo = ref if isinstance(ref, PhotoInfo) else self.photo(ref)
        if photo is None:
            raise PhotosimError(f"not in the library: {ref}")
        vec = self.vector(photo.id)
        if vec is None:
            raise PhotosimError(f"{photo.path} has no vector ({photo.error or 'not indexed yet'})")
        return self._matches(vec, k, min_score, exclude={photo.id})

    def embed_image(self, image: ImageLike) -> np.ndarray:
        """Vector of any image (file path, encoded bytes or PIL image); nothing is stored."""
        if isinstance(image, Image.Image):
            from .imageio import DECODE_SIDE

            im = image.copy()
            im.thumbnail((DECODE_SIDE, DECODE_SIDE), Image.Resampling.BILINEAR)
            im = im.convert("RGB")
        elif isinstance(image, bytes | bytearray):
            im = decode_bytes(bytes(image))[0]
        else:
            im = open_image(image)
        return self.encoder.embed([im])[0]

    def similar_to_image(self, image: ImageLike, k: int = 10, min_score: float | None = None) -> list[Match]:
        """Photos most like an image from anywhere; a library photo's own path uses its
        stored vector and is excluded from its results. The image is never added."""
        if isinstance(image, str | os.PathLike):
            photo = self.photo(image)
            if photo is not None and photo.ok:
                try:
                    return self.similar(photo, k, min_score)
                except PhotosimError:
                    pass
        return self._matches(self.embed_image(image), k, min_score)

    def similar_to_images(self, images: Sequence[ImageLike], k: int = 10,
                          min_score: float | None = None) -> list[Match]:
        """Photos most like any of several images (e.g. a multi-file drop): each photo
        keeps its best score over the queries."""
        best: dict[int, Match] = {}
        for image in images:
            for m in self.similar_to_image(image, k, min_score):
                if m.photo.id not in best or m.score > best[m.photo.id].score:
                    best[m.photo.id] = m
        return sorted(best.values(), key=lambda m: -m.score)[:k]

    def query(self, queries: Sequence[str | os.PathLike], k: int = 10,
              min_score: float | None = None) -> list[QueryResult]:
        """Many queries in one call; the model loads at most once. A query that cannot be
        read gets its error instead of results and does not stop the others."""
        out = []
        for q in queries:
            try:
                out.append(QueryResult(os.fspath(q), self.similar_to_image(q, k, min_score)))
            except (PhotoError, PhotosimError) as exc:
                out.append(QueryResult(os.fspath(q), [], error=str(exc)))
        return out

    def duplicates(self, threshold: float | None = None, k: int = 16, *, progress=None,
                   cancel=None) -> list[DuplicateGroup]:
        """Groups of near-identical photos: linked when cosine similarity ≥ threshold
        (default: the active model's ``duplicate_threshold``).

        ``progress(done, total)`` is called per chunk; ``cancel()`` returning True raises
        :class:`Cancelled`."""
        threshold = self.card.duplicate_threshold if threshold is None else threshold
        cancel = _as_cancel(cancel) or (lambda: False)
        ids, vecs = self._load_vectors()
        if len(ids) < 2:
            return []
        parent = {pid: pid for pid in ids}

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        index = self.index
        chunk = 1024
        for start in range(0, len(ids), chunk):
            if cancel():
                raise Cancelled("duplicate search cancelled")
            labels, scores = index.query_many(vecs[start:start + chunk], k + 1)
            for pid, row_labels, row_scores in zip(ids[start:start + chunk], labels, scores):
                for other, score in zip(row_labels.tolist(), row_scores.tolist()):
                    if score < threshold:
                        break
                    if other != pid and other in parent:
                        ra, rb = find(pid), find(other)
                        if ra != rb:
                            parent[rb] = ra
            if progress:
                progress(min(start + chunk, len(ids)), len(ids))
        groups: dict[int, list[int]] = {}
        for pid in ids:
            groups.setdefault(find(pid), []).append(pid)
        row_of = {pid: i for i, pid in enumerate(ids)}
        members = [g for g in groups.values() if len(g) > 1]
        info = self.photos_by_id([pid for g in members for pid in g])
        out = []
        for g in members:
            photos = sorted((info[p] for p in g), key=lambda p: (-(p.width or 0) * (p.height or 0), -p.size, p.path))
            keeper = vecs[row_of[photos[0].id]]
            scores = [float(vecs[row_of[p.id]] @ keeper) for p in photos]
            out.append(DuplicateGroup(photos, scores))
        out.sort(key=lambda g: (-len(g.photos), g.photos[0].path))
        return out

    def forget(self, photo_ids: Iterable[int]) -> None:
        """Remove photos from the library (vectors, labels, index); the files are not touched."""
        self._require_writable()
        self._delete_photos(list(photo_ids))
        self._save_index()

    def move_to_trash(self, photo_ids: Iterable[int]) -> list[tuple[str, str]]:
        """Send photos' files to the system trash (never a hard delete) and forget them.
        Returns (path, reason) for files that could not be trashed; those stay in the library."""
        from send2trash import send2trash

        self._require_writable()
        trashed, failed = [], []
        for pid, photo in self.photos_by_id(list(photo_ids)).items():
            try:
                send2trash(photo.path)
                trashed.append(pid)
            except FileNotFoundError:
                trashed.append(pid)  # already gone: nothing to keep
            except OSError as exc:
                failed.append((photo.path, str(exc) or type(exc).__name__))
        if trashed:
            self.forget(trashed)
        return failed

    # -- export & info -------------------------------------------------------
    def export_vectors(self, out: str | os.PathLike) -> int:
        """Write ``paths`` (absolute path strings) and ``vectors`` (float32) to an .npz file."""
        photos, vecs = self.vectors()
        out = Path(out)
        tmp = out.with_name(out.name + ".tmp.npz")
        np.savez(tmp, paths=np.array([p.path for p in photos], dtype=str),
                 vectors=vecs.astype(np.float32), encoder_id=np.array(self.encoder_id))
        os.replace(tmp, out)
        return len(photos)

    def info(self) -> LibraryInfo:
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(Photo)) or 0
            errors = s.scalar(select(func.count()).select_from(Photo).where(Photo.status == "error")) or 0
            indexed = s.scalar(
                select(func.count()).select_from(Vector).where(Vector.encoder_id == self.encoder_id)) or 0
        return LibraryInfo(
            path=str(self.path), schema_version=self.schema_version, photos=total, indexed=indexed,
            errors=errors, encoder_id=self.encoder_id, encoder_dim=self._card.dim,
            index_size=len(self.index), roots=self.roots(),
            device=self._encoder.device if self._encoder else None, notice=self.notice,
        )

    def cached_features(self, ids: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """Cached backbone features (float32) of the active backbone."""
        with self._session() as s:
            q = select(Feature.photo_id, Feature.data).where(Feature.backbone_id == self.backbone_id)
            if ids is not None:
                q = q.where(Feature.photo_id.in_(list(ids)))
            rows = s.execute(q.order_by(Feature.photo_id)).all()
        if not rows:
            return [], np.zeros((0, self._card.feature_dim), dtype=np.float32)
        return [r.photo_id for r in rows], np.stack([blob_to_vector(r.data, np.float16) for r in rows]).astype(np.float32)

    # -- albums and marks (labels for fine-tuning) ----------------------------
    def albums(self) -> list[AlbumInfo]:
        with self._session() as s:
            rows = s.execute(
                select(Album.id, Album.name, Album.source, func.count(AlbumPhoto.photo_id))
                .outerjoin(AlbumPhoto, AlbumPhoto.album_id == Album.id)
                .group_by(Album.id).order_by(Album.name)
            ).all()
        return [AlbumInfo(r[0], r[1], r[2], r[3]) for r in rows]

    def add_to_album(self, name: str, photo_ids: Iterable[int], source: str = "user") -> AlbumInfo:
        """Add photos to an album, creating it if needed."""
        import time

        self._require_writable()
        name = name.strip()
        if not name:
            raise PhotosimError("an album needs a name")
        with self._session() as s, s.begin():
            album = s.scalars(select(Album).where(Album.name == name)).first()
            if album is None:
                album = Album(name=name, source=source, created_at=time.time())
                s.add(album)
                s.flush()
            have = set(s.scalars(select(AlbumPhoto.photo_id).where(AlbumPhoto.album_id == album.id)))
            valid = set(s.scalars(select(Photo.id).where(Photo.id.in_(list(photo_ids)))))
            for pid in sorted(valid - have):
                s.add(AlbumPhoto(album_id=album.id, photo_id=pid))
            album_id = album.id
        return next(a for a in self.albums() if a.id == album_id)

    def remove_from_album(self, name: str, photo_ids: Iterable[int]) -> None:
        self._require_writable()
        with self._session() as s, s.begin():
            album = s.scalars(select(Album).where(Album.name == name)).first()
            if album is not None:
                s.execute(delete(AlbumPhoto).where(AlbumPhoto.album_id == album.id,
                                                   AlbumPhoto.photo_id.in_(list(photo_ids))))

    def delete_album(self, name: str) -> None:
        """Forget an album (its photos stay in the library and on disk)."""
        self._require_writable()
        with self._session() as s, s.begin():
            s.execute(delete(Album).where(Album.name == name))

    def album_photos(self, name: str) -> list[PhotoInfo]:
        with self._session() as s:
            rows = s.scalars(
                select(Photo).join(AlbumPhoto, AlbumPhoto.photo_id == Photo.id)
                .join(Album, Album.id == AlbumPhoto.album_id)
                .where(Album.name == name).order_by(Photo.id)
            )
            return [PhotoInfo.from_row(r) for r in rows]

    def mark(self, query: int, result: int, similar: bool) -> None:
        """Record the user's judgement of a result; a later mark of the same pair replaces it."""
        import time

        self._require_writable()
        if query == result:
            raise PhotosimError("a photo cannot be marked against itself")
        with self._session() as s, s.begin():
            if s.get(Photo, query) is None or s.get(Photo, result) is None:
                raise PhotosimError("both photos must be in the library")
            s.execute(delete(Mark).where(Mark.query_id == query, Mark.result_id == result))
            s.add(Mark(query_id=query, result_id=result, label=1 if similar else -1, created_at=time.time()))

    def unmark(self, query: int, result: int) -> None:
        self._require_writable()
        with self._session() as s, s.begin():
            s.execute(delete(Mark).where(Mark.query_id == query, Mark.result_id == result))

    def marks(self) -> list[MarkInfo]:
        with self._session() as s:
            rows = s.execute(select(Mark.query_id, Mark.result_id, Mark.label).order_by(Mark.id)).all()
        return [MarkInfo(r[0], r[1], r[2]) for r in rows]

    # -- models and fine-tuning --------------------------------------------
    # Fine-tuned models live in ``<library>/models/<id>/`` (the default library is in
    # platformdirs' user data dir, so they are too): a model stays with the cached
    # features and vectors it was made for. See photosim/training/.
    def models(self) -> list:
        """The bundled model and every fine-tune of this library (``ModelInfo``), oldest first."""
        from .training.models_store import list_models

        return list_models(self.path / "models", bundled_model_dir(), self.encoder_id,
                           problem=lambda card: backbone_problem(card, self.model_dir))

    def finetune(self, albums: Sequence[str] | None = None, *, use_marks: bool = True, mode: str = "quick",
                 epochs: int | None = None, seed: int = 0, progress=None, cancel=None, config=None):
        """Train on the albums (default: all) and marks; writes a new *inactive* model and
        returns a ``FineTuneResult``. Accept it with :meth:`use_model`. ``mode`` "quick" trains
        the head on cached features (seconds); "thorough" then also the last backbone blocks
        from the photos themselves (minutes; accepting it reads the library's photos again)."""
        from .training.runner import finetune

        self._require_writable()
        return finetune(self, albums, use_marks=use_marks, mode=mode, epochs=epochs, seed=seed,
                        progress=progress, cancel=_as_cancel(cancel), config=config)

    def reembed(self, model_id: str | None = None, *, progress=None, cancel=None) -> tuple[int, int]:
        """Vectors of every photo under ``model_id`` (default: the active model) from cached
        features, no decoding; returns (re-embedded, photos lacking features). Vectors of a
        non-active model are invisible to searches until :meth:`use_model` switches to it."""
        self._require_writable()
        model_id = model_id or self.encoder_id
        enc = self.encoder if model_id == self.encoder_id else Encoder.load(
            self.model_dir(model_id), device=self.device, resolve_parent=self.model_dir)
        return self._reembed(enc, progress, cancel)

    def _reembed(self, enc: Encoder, progress=None, cancel=None) -> tuple[int, int]:
        with self._session() as s:
            ok = list(s.scalars(select(Photo.id).where(Photo.status == "ok").order_by(Photo.id)))
            have = set(s.scalars(select(Feature.photo_id).where(Feature.backbone_id == enc.backbone_id)))
        todo = [pid for pid in ok if pid in have]
        done = 0
        for ids, _ in self._project_cached(enc, todo, cancel):
            done += len(ids)
            if progress:
                progress("re-embedding", done, len(todo))
        if enc.id == self.encoder_id:
            self._rebuild_index(progress)
        return done, len(ok) - len(todo)

    def _project_cached(self, enc: Encoder, photo_ids: Sequence[int], cancel=None, chunk: int = 2048):
        """Store ``enc``'s vectors of photos from their cached features (no decoding), a
        transaction per chunk; yields each chunk's (ids, vectors). ``cancel()`` True between
        chunks raises :class:`Cancelled` (what was stored stays, under ``enc.id``)."""
        from sqlalchemy.dialects.sqlite import insert

        from .db import vector_to_blob

        cancel = _as_cancel(cancel) or (lambda: False)
        for start in range(0, len(photo_ids), chunk):
            if cancel():
                raise Cancelled("re-embedding cancelled; the active model is unchanged")
            with self._session() as s:
                rows = s.execute(select(Feature.photo_id, Feature.data).where(
                    Feature.backbone_id == enc.backbone_id,
                    Feature.photo_id.in_(list(photo_ids[start:start + chunk])))).all()
            if not rows:
                continue
            vecs = enc.project(np.stack([blob_to_vector(r.data, np.float16) for r in rows]))
            with self._session() as s, s.begin():
                s.execute(insert(Vector).prefix_with("OR REPLACE"),
                          [{"photo_id": r.photo_id, "encoder_id": enc.id, "data": vector_to_blob(v)}
                           for r, v in zip(rows, vecs)])
                self._bump_generation(s)
            yield [r.photo_id for r in rows], vecs

    def _decode_embed(self, enc: Encoder, photo_ids: Sequence[int], progress=None, cancel=None,
                      batch: int = 32) -> int:
        """Store ``enc``'s features and vectors of photos decoded afresh (a model with a backbone
        of its own has no cached features yet); returns how many were stored. Photos that
        cannot be read now are skipped: the re-scan after the switch reports them."""
        from concurrent.futures import ThreadPoolExecutor

        from sqlalchemy.dialects.sqlite import insert

        from .db import vector_to_blob

        cancel = _as_cancel(cancel) or (lambda: False)
        paths = {pid: p.path for pid, p in self.photos_by_id(photo_ids).items()}
        todo = [pid for pid in photo_ids if pid in paths]

        def pixels(pid):
            try:
                return pid, enc.preprocess(open_image(paths[pid]))
            except (PhotoError, OSError, MemoryError):
                return pid, None

        stored = seen = 0
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="photosim-decode") as pool:
            for start in range(0, len(todo), batch):
                if cancel():
                    raise Cancelled("reading photos for the new model was cancelled; the active "
                                    "model is unchanged")
                got = [(pid, x) for pid, x in pool.map(pixels, todo[start:start + batch]) if x is not None]
                seen += len(todo[start:start + batch])
                if got:
                    feats = enc.features(np.stack([x for _, x in got]))
                    vecs = enc.project(feats)
                    with self._session() as s, s.begin():
                        s.execute(insert(Feature).prefix_with("OR REPLACE"),
                                  [{"photo_id": pid, "backbone_id": enc.backbone_id,
                                    "data": vector_to_blob(f, np.float16)} for (pid, _), f in zip(got, feats)])
                        s.execute(insert(Vector).prefix_with("OR REPLACE"),
                                  [{"photo_id": pid, "encoder_id": enc.id, "data": vector_to_blob(v)}
                                   for (pid, _), v in zip(got, vecs)])
                    stored += len(got)
                if progress:
                    progress("reading photos", seen, len(todo))
        return stored

    def _rebuild_index(self, progress=None) -> None:
        with self._index_lock:
            self._index = None
            if progress:
                progress("indexing", 0, 1)
            _ = self.index  # built from the stored vectors and saved
            if progress:
                progress("indexing", 1, 1)

    def use_model(self, model_id: str, *, progress=None, cancel=None) -> tuple[int, int]:
        """Make ``model_id`` the active model: all vectors first (cancellable, the old model stays
        active meanwhile), then the switch and a new index. Photos without cached features for
        the model's backbone (a thorough fine-tune's own backbone) are decoded before the switch,
        so searches never see a half-embedded library. Returns (vectors made, photos left to
        the re-scan that follows: those that could not be read)."""
        self._require_writable()
        previous = self.encoder_id
        card = ModelCard.load(self.model_dir(model_id) / "card.json")
        problem = backbone_problem(card, self.model_dir)
        if problem:
            raise PhotosimError(problem)
        enc = self.encoder if card.id == previous else Encoder.load(
            self.model_dir(card.id), device=self.device, resolve_parent=self.model_dir)
        done, lacking = self._reembed(enc, progress=progress, cancel=cancel)
        if lacking:
            with self._session() as s:
                have = set(s.scalars(select(Vector.photo_id).where(Vector.encoder_id == card.id)))
                ok = s.scalars(select(Photo.id).where(Photo.status == "ok").order_by(Photo.id))
                todo = [pid for pid in ok if pid not in have]
            read = self._decode_embed(enc, todo, progress, cancel)
            done, lacking = done + read, lacking - read
        counts = (done, lacking)
        if card.id != previous:
            history = [h for h in self._meta("model_history", "").split("\n") if h]
            self._set_meta("model_history", "\n".join((history + [previous])[-50:]))
        self.set_active_encoder(card.id)
        self._rebuild_index(progress)
        with self._session() as s, s.begin():  # other models' vectors are re-made from features on demand
            s.execute(delete(Vector).where(Vector.encoder_id != card.id))
        if lacking and self.roots():
            self.rescan(cancel=cancel)
        return counts

    def revert_model(self, *, progress=None, cancel=None) -> str:
        """Back to the model that was active before the current one (else the bundled one)."""
        self._require_writable()
        history = [h for h in self._meta("model_history", "").split("\n") if h]
        bundled = ModelCard.load(bundled_model_dir() / "card.json").id
        target = bundled
        while history:
            candidate = history.pop()
            try:
                self.model_dir(candidate)
            except PhotosimError:
                continue  # deleted since
            if candidate != self.encoder_id:
                target = candidate
                break
        self.use_model(target, progress=progress, cancel=cancel)
        self._set_meta("model_history", "\n".join(history))
        return target

    def delete_model(self, model_id: str) -> None:
        """Forget a fine-tuned model (never the active or the bundled one), its vectors, and the
        cached features of its backbone when no model left uses that backbone (a thorough
        fine-tune's own: a few KB per photo)."""
        from .training.models_store import delete_model

        self._require_writable()
        if model_id == self.encoder_id:
            raise PhotosimError("the active model cannot be deleted; switch to another one first")
        backbone = ModelCard.load(self.model_dir(model_id) / "card.json").backbone_id
        delete_model(self.path / "models", model_id)
        in_use = {m.backbone_id for m in self.models()}
        with self._session() as s, s.begin():
            s.execute(delete(Vector).where(Vector.encoder_id == model_id))
            if backbone not in in_use:
                s.execute(delete(Feature).where(Feature.backbone_id == backbone))

    def import_albums(self, folder: str | os.PathLike, *, progress=None, cancel=None) -> list[AlbumInfo]:
        """Scan ``folder`` and make one album (source "folder") per sub-folder, named after it,
        holding the library's photos anywhere under that sub-folder."""
        self._require_writable()
        folder = Path(os.path.abspath(os.fspath(folder)))
        if not folder.is_dir():
            raise PhotosimError(f"not a folder: {folder}")
        report = self.scan([folder], progress=progress, cancel=cancel)
        if report.cancelled:
            raise Cancelled("album import cancelled")
        out = []
        photos = self.photos(folder=str(folder))
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            prefix = str(sub) + os.sep
            ids = [p.id for p in photos if p.path.startswith(prefix)]
            if ids:
                out.append(self.add_to_album(sub.name, ids, source="folder"))
        return out


def _as_cancel(cancel) -> Callable[[], bool] | None:
    if cancel is None:
        return None
    if hasattr(cancel, "is_set"):
        return cancel.is_set
    return cancel
