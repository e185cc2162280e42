"""The front door: one :class:`Library` that the CLI, the GUI and the tests all use.

A library is a folder: ``library.db`` (SQLite, the truth), ``index.bin``/``index.json`` (hnswlib, a
cache rebuilt from stored vectors when missing, damaged or stale) and ``models/`` (fine-tunes).
``Library`` opens the pieces and delegates: ``store/`` (database), ``models/`` (registry, active
model), ``pipeline/`` (embedding, scan, model switch, duplicates, trash, problems, feature cache),
``search`` (queries), ``index`` (hnswlib).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import platformdirs

from .delegate import Part as _Part  # noqa: N814
from .errors import LibraryLocked, PhotosimError, ReadOnlyLibrary
from .index import IndexKeeper, VectorIndex
from .models.active import ActiveModel
from .models.registry import ModelRegistry
from .pipeline import albums, export, features, folders, problems, switch, trash
from .pipeline.duplicates import Duplicates
from .progress import as_token
from .search import Search
from .store import Store, TapStore
from .store.lock import LibraryLock
from .values import AlbumInfo, LibraryInfo, PhotoInfo, ScanReport

__all__ = ["Library", "LibraryLocked", "default_library_path"]


def default_library_path() -> Path:
    """``$PHOTOSIM_LIBRARY`` or the platform's user data dir (e.g. ~/.local/share/photosim/library)."""
    env = os.environ.get("PHOTOSIM_LIBRARY")
    return Path(env) if env else Path(platformdirs.user_data_dir("photosim", appauthor=False)) / "library"


class Library:
    """A photo library: scan folders, query by example, find duplicates, fine-tune, export.

    Use it as a context manager. ``readonly=True`` takes no writer lock and never writes,
    so queries work while another process scans (and on a read-only disk)."""

    def __init__(self, path: str | os.PathLike | None = None, *, readonly: bool = False, device: str | None = None):
        self.path = Path(path) if path else default_library_path()
        self.readonly, self.device = readonly, device
        self._lock = LibraryLock(self.path / "lock")
        if not readonly:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PhotosimError(f"cannot create the library folder {self.path}: {exc.strerror}") from exc
            self._lock.acquire()
        try:
            self.store = Store(self.path / "library.db", readonly=readonly)
        except BaseException:
            self._lock.release()
            raise
        self.schema_from, self.schema_version = self.store.schema_from, self.store.schema_version
        self.registry = ModelRegistry(self.path / "models", device=device, readonly=readonly)
        self.taps = TapStore(self.path / "taps", readonly=readonly)  # standard fine-tuning's inputs
        self._active = ActiveModel(self.store, self.registry)
        self._index = IndexKeeper(self.path, lambda: (self.card.id, self.card.dim), self.store.vectors.chunks,
                                  self.store.vectors.count, lambda: self.store.generation, readonly=readonly)
        self._dups, self._bin = Duplicates(self.store, self._index, self._active), trash.TrashBin(self.store)
        self._search, self._folders = Search(self.store, self._index, self._active, self._dups), folders.Folders(self.store, self._index)
        self._exchange = export.Exchange(self.store, self._index, self._active, self._writable)
        self._features = features.FeatureCache(self.store, self._active, self._writable, self.taps, self.registry)
        self.problems = problems.Problems(self.store, lambda paths, **kw: self.scan([], files=paths, **kw))

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._index.close()  # stops a background build; saves the index if it changed
        self.store.close()
        self._lock.release()

    def _writable(self) -> None:
        if self.readonly:
            raise ReadOnlyLibrary("this library was opened read-only")

    # -- models -------------------------------------------------------------
    card = _Part("_active")  # the active model's ModelCard
    encoder_id, backbone_id = _Part("_active"), _Part("_active")
    notice = _Part("_active")  # why the library is not on the model it last switched to, or ""
    encoder, encoder_loaded = _Part("_active"), _Part("_active")  # the active encoder, loaded on first use (~1-2 s)

    model_dir = _Part("registry")  # model_dir(id): the folder of a model of this library
    rename_model = _Part("registry")  # rename_model(id, name): its display name (the id stays)

    def models(self) -> list:
        """The bundled model and every fine-tune of this library (``ModelInfo``), oldest first."""
        return self.registry.list(self.encoder_id)

    def finetune(self, albums: Sequence[str] | None = None, **kw):
        """Train a new *inactive* model on albums (default: all) and marks (mode "quick", or "auto" as the
        CLI and dialog do); see :func:`photosim.training.runner.finetune`. Accept it with :meth:`use_model`."""
        from .training.runner import finetune

        self._writable()
        return finetune(self, albums, **{**kw, "cancel": as_token(kw.get("cancel"))})

    def reembed(self, model_id: str | None = None, *, progress=None, cancel=None) -> tuple[int, int]:
        """Vectors of every photo under a model (default: the active one) from cached features."""
        self._writable()
        counts = switch.reembed(self.store, self.registry.load(model_id or self.encoder_id), progress, cancel)
        if (model_id or self.encoder_id) == self.encoder_id:
            switch.rebuild_index(self._index, progress)
        return counts

    def use_model(self, model_id: str, *, progress=None, cancel=None) -> tuple[int, int]:
        """Make a model active once all its vectors are stored (cancellable: the old one stays
        meanwhile); photos that could not be read go to a re-scan. Returns (made, unread)."""
        self._writable()
        counts = switch.switch_model(self.store, self.registry, self._active, self._index, model_id,
                                     progress, cancel, self.taps)
        if counts[1] and self.roots():
            self.rescan(cancel=cancel)
        return counts

    def revert_model(self, *, progress=None, cancel=None) -> str:
        """Back to the model that was active before the current one (else the bundled one)."""
        self._writable()
        target, history = switch.previous_model(self.store, self.registry, self.encoder_id)
        self.use_model(target, progress=progress, cancel=cancel)
        self.store.meta.set("model_history", history)
        return target

    def delete_model(self, model_id: str) -> None:
        """Forget a fine-tune (never the active or the bundled one), its vectors, and its
        backbone's cached features when no model left uses that backbone."""
        self._writable()
        switch.delete_model(self.store, self.registry, model_id, self.encoder_id)

    # -- scanning -----------------------------------------------------------
    def scan(self, roots: Sequence[str | os.PathLike], *, progress=None, cancel=None, batch_size: int | None = None,
             workers: int | None = None, paths=None, files=None, keep_taps: bool = False) -> ScanReport:
        """Add or refresh the photos under ``roots``, only reading them (``progress(ScanProgress)`` ~10 times a
        second; a set ``cancel`` stops after the batch, what was committed stays). ``paths``: only those files and
        folders (a watcher's batch); ``files``: read these again; ``keep_taps``: for fine-tuning (store/taps.py)."""
        from .pipeline.scan import Scan

        self._writable()
        roots = [os.path.abspath(os.fspath(r)) for r in roots]
        self.store.roots.add(roots)  # at the start: a cancelled first scan still knows its folder
        return Scan(self.store, self._index, lambda: self.encoder, self.card, roots, progress, cancel, batch_size=batch_size,
                    workers=workers, skip=[str(self.path), *self.store.roots.excluded()], paths=paths, files=files,
                    taps=self.taps if keep_taps else None).run()

    def roots(self) -> list[str]:  # folders that have been scanned into this library
        return self.store.roots.all()

    remove_root = _Part("_folders")  # forget a scanned folder and its photos (the files stay)
    exclude_folder = _Part("_folders")  # scans skip it; its photos are forgotten (count(folder=) says how many)
    include_folder = _Part("_folders")  # undo exclude_folder: the next scan reads it again
    folder_tree = _Part("_folders")  # [FolderInfo]: scanned folders, sub-folders with photo counts (SQL)

    def rescan(self, **kw) -> ScanReport:
        return self.scan(self.roots(), **kw)

    def import_albums(self, folder: str | os.PathLike, *, progress=None, cancel=None) -> list[AlbumInfo]:
        self._writable()  # the scan keeps the albums' taps: a standard fine-tune follows
        return albums.import_albums(self, folder, progress, cancel)

    # -- photos and vectors ---------------------------------------------------
    count = _Part("store.photos")  # count(status=None|"ok"|"error", folder=None): photos, counted in SQL
    photo = _Part("store.photos")  # photo(id or path): PhotoInfo or None
    photos_by_id = _Part("store.photos")  # {id: PhotoInfo} of the ids still in the library
    gallery = _Part("store")  # the gallery's windows in SQL: count, page, row_of, folders (store/gallery.py)

    def photos(self, *, status: str | None = "ok", folder: str | None = None) -> list[PhotoInfo]:
        return self.store.photos.list(status=status, folder=folder)

    def errors(self) -> list[PhotoInfo]:
        return self.store.photos.list(status="error")

    def vector(self, photo_id: int) -> np.ndarray | None:
        return self.store.vectors.get(photo_id, self.encoder_id)

    def cached_features(self, ids: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """Cached backbone features (float32) of the active backbone."""
        return self.store.features.load(self.backbone_id, self.card.feature_dim, ids)

    @property
    def index(self) -> VectorIndex:  # waits for a build in progress (see wait_index)
        return self._index.wait()

    index_status, wait_index, rebuild_index = _Part("_index"), _Part("_index"), _Part("_index")  # a build's Progress|None

    def forget(self, photo_ids: Iterable[int]) -> None:
        """Remove photos from the library (vectors, labels, index); the files are not touched."""
        self._writable()
        trash.forget(self.store, self._index, photo_ids)

    def move_to_trash(self, photo_ids: Iterable[int], *, merge_into=None, sidecar: bool = False):
        """Send photos' files to the system trash and forget them; returns (path, reason) of failures
        (``.merged``: what ``merge_into``, a keeper id or {copy: keeper}, inherited; see pipeline.merge)."""
        self._writable()
        return trash.move_to_trash(self.store, self._index, photo_ids, merge_into=merge_into, sidecar=sidecar)

    # -- queries (photosim.search) and labels (photosim.store.labels) -------------
    similar = _Part("_search")  # photos most like a library photo (itself excluded), best first (copies_first=True: verified ones first)
    embed_image = _Part("_search")  # the vector of any image; nothing is stored
    similar_to_image = _Part("_search")  # photos most like an image from anywhere, never added
    similar_to_images = _Part("_search")  # most like any of several images, each its best score
    query = _Part("_search")  # many queries; one that cannot be read gets its error

    # Duplicates in tiers (exact, near: verified copies; similar: stacks), and verdicts on pairs.
    duplicates = _Part("_dups")  # groups, keeper first, with tier, scores and reasons
    copies_of = _Part("_dups")  # one photo's verified copies, what it is most likely a copy of first
    candidate_bound = _Part("_dups")  # the similarity from which duplicates() checks neighbours by default
    duplicate_calibration = _Part("_dups")  # the library's duplicate threshold, calibrated by the verdicts
    set_verdict = _Part("_dups")  # "not duplicates" / "keep both" for a pair or group, by photo id
    clear_verdict = _Part("_dups")
    verdicts = _Part("_dups")
    trash_log = _Part("_bin")  # what photosim sent to the trash, newest first
    restore_from_trash = _Part("_bin")  # back from the freedesktop trash; (restored, failed)

    # Albums and marks, the labels fine-tuning learns from; a read-only library refuses changes.
    albums = _Part("store.labels")
    add_to_album = _Part("store.labels")
    remove_from_album = _Part("store.labels")
    delete_album = _Part("store.labels")  # the album only: its photos stay
    rename_album = _Part("store.labels")
    album_photos = _Part("store.labels")
    mark = _Part("store.labels")  # the user's judgement of a result; a later one replaces it
    unmark = _Part("store.labels")
    marks = _Part("store.labels")

    vectors = _Part("_exchange")  # every indexed photo and its vector (same order)
    export_vectors = _Part("_exchange")  # paths, vectors and encoder_id to an .npz file (atomically)
    import_vectors = _Part("_exchange")  # photos and vectors from such a file; an ImportReport
    feature_cache, set_feature_cache, drop_taps = _Part("_features"), _Part("_features"), _Part("_features")  # "all"|"labelled"; taps

    def info(self) -> LibraryInfo:
        enc = self.encoder if self.encoder_loaded else None
        return LibraryInfo(
            path=str(self.path), schema_version=self.schema_version, photos=self.store.photos.count(),
            indexed=self.store.vectors.count(self.encoder_id), errors=self.store.photos.count(status="error"),
            encoder_id=self.encoder_id, encoder_dim=self.card.dim, index_size=self._index.size(),
            index_building=self._index.building(), roots=self.roots(), excluded=self.store.roots.excluded(),
            device=enc and enc.device, backend=enc and enc.backend, model_name=self.card.display_name,
            notice="; ".join(n for n in (self.notice, enc and enc.notice) if n))
