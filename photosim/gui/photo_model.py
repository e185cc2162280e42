"""List models of photos for the views: the gallery (:class:`GalleryModel`: paged through
the database, sorted and filtered in SQL) and the similar-photos results
(:class:`PhotoListModel`, with scores and the user's marks)."""

from __future__ import annotations

import sys
from collections import OrderedDict
from datetime import datetime

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt, Signal

from .service import Kind, error_text
from .thumbnails import ThumbnailCache

PhotoRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
MarkRole = Qt.ItemDataRole.UserRole + 3
ThumbFailedRole = Qt.ItemDataRole.UserRole + 4

SORTS = {"date": "Date taken", "name": "Name", "folder": "Folder"}


def photo_date(p) -> str:
    """ISO date the photo was taken, else the file's modification time."""
    if p.taken_at:
        return p.taken_at
    return datetime.fromtimestamp(p.mtime_ns / 1e9).isoformat(timespec="seconds")


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def tooltip(p) -> str:
    dims = f"{p.width}×{p.height}" if p.width else "?"
    return f"{p.path}\n{dims} · {human_size(p.size)} · {photo_date(p).replace('T', ' ')}"


def _data(model, p, score, role):
    """data() of one row of either model; ``p`` None: a gallery row not read yet."""
    if p is None:
        return "" if role == Qt.ItemDataRole.DisplayRole else None
    if role == Qt.ItemDataRole.DisplayRole:
        return p.name
    if role == Qt.ItemDataRole.DecorationRole:
        return model.thumbs.get(p.path, p.size, p.mtime_ns) if model.thumbs else None
    if role == PhotoRole:
        return p
    if role == ScoreRole:
        return score
    if role == MarkRole:
        return model.marks.get(p.id)
    if role == ThumbFailedRole:
        return model.thumbs.failed(p.path, p.size, p.mtime_ns) if model.thumbs else False
    if role == Qt.ItemDataRole.ToolTipRole:
        if score is None:
            return tooltip(p)
        band = model.bands.label(score) if model.bands is not None else None
        note = getattr(model, "notes", {}).get(p.id)  # a verified copy: how it holds the query
        return f"{tooltip(p)}\n{band + ' · ' if band else ''}similarity {score:.2f}" + (f"\n{note}" if note else "")
    return None


def _cell(model, p, score):
    if p is None:
        return None, None, None, None, False
    image = failed = None
    if model.thumbs is not None:
        image = model.thumbs.get(p.path, p.size, p.mtime_ns)
        failed = image is None and model.thumbs.failed(p.path, p.size, p.mtime_ns)
    return p, image, score, model.marks.get(p.id), failed


class PhotoListModel(QAbstractListModel):
    """Rows are PhotoInfo objects in the given order, with scores (the similar-photos
    results); thumbnails are asked of the cache only for rows a view paints."""

    def __init__(self, thumbs: ThumbnailCache | None, parent=None):
        super().__init__(parent)
        self.thumbs = thumbs
        self._rows: list = []
        self._scores: list[float] | None = None
        self._row_of: dict[str, int] = {}
        self.marks: dict[int, int] = {}  # result id -> +1/-1 for the current query
        self.notes: dict[int, str] = {}  # result id -> more words for its tooltip (a verified copy's reasons)
        self.bands = None  # results: photosim.gui.bands.Bands, the words for the scores
        if thumbs is not None:
            thumbs.ready.connect(self._thumb_ready)

    # -- Qt model API -------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        score = self._scores[index.row()] if self._scores is not None else None
        return _data(self, self._rows[index.row()], score, role)

    def flags(self, index):
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def cell(self, row: int):
        """Everything a delegate paints for one row in a single call (photo, thumbnail or None,
        score or None, mark or None, thumbnail failed) — far cheaper than five data() calls."""
        score = self._scores[row] if self._scores is not None else None
        return _cell(self, self._rows[row], score)

    # -- content ----------------------------------------------------------------------
    def photo(self, row: int):
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def photos(self) -> list:
        return list(self._rows)

    def row_of(self, path: str) -> int | None:
        return self._row_of.get(path)

    def set_photos(self, photos: list, scores: list[float] | None = None) -> None:
        """Replace the rows (in the given order)."""
        self.beginResetModel()
        self._rows = list(photos)
        self._scores = list(scores) if scores is not None else None
        self._row_of = {p.path: i for i, p in enumerate(self._rows)}
        self.endResetModel()

    def remove_paths(self, paths: set[str]) -> None:
        keep = [i for i, p in enumerate(self._rows) if p.path not in paths]
        self.set_photos([self._rows[i] for i in keep],
                        [self._scores[i] for i in keep] if self._scores is not None else None)

    # -- the album filter (the sidebar's albums), kept apart from the folder filter ----------
    _album: str | None = None
    _album_ids: frozenset = frozenset()

    def set_album(self, name: str | None, photo_ids=()) -> None:
        """Show only the photos of the album ``name`` (its members' ids), or every photo (None)."""
        if name is None and self._album is None:
            return
        self._album, self._album_ids = name, frozenset(photo_ids)
        self._rebuild()

    @property
    def album(self) -> str | None:
        return self._album

    def _album_rows(self, rows: list) -> list:
        return rows if self._album is None else [p for p in rows if p.id in self._album_ids]

    def set_mark(self, photo_id: int, label: int) -> None:
        self.marks[photo_id] = label
        for i, p in enumerate(self._rows):
            if p.id == photo_id:
                ix = self.index(i)
                self.dataChanged.emit(ix, ix, [MarkRole])

    def _thumb_ready(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None:
            ix = self.index(row)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])


PAGE_ROWS = 256
CACHED_PAGES = 64  # 16,384 rows at most held; the rest stays in the database
REFRESH_PAGES = 6  # the most recently painted pages, read again by a reload (what the user sees)
SKIP_AFTER = 12  # a page whose turn comes after this many newer asks is no longer on screen: skipped


class GalleryModel(QAbstractListModel):
    """The gallery, paged through the database: ``rowCount`` is an SQL count and rows are
    read PAGE_ROWS at a time in the service's READ worker (never behind the encoder), the
    CACHED_PAGES most recently painted kept. A row not read yet paints as a placeholder
    while its page is asked for, then ``dataChanged``. Order and filters (sort, descending,
    folder, album) are SQL's (:mod:`photosim.store.gallery`); changing them reads the count
    and the pages about to be seen *before* the model resets, so the view never shows an
    empty gallery in between. A reload during a scan (``stable``) keeps the rows shown in
    their places, puts the scan's new photos after them (rows inserted at the end) and
    updates the rows on screen in place; nothing is reset and nothing moves."""

    reloaded = Signal()  # a reload was applied (the count, and the pages about to be seen)

    def __init__(self, thumbs: ThumbnailCache | None, service, parent=None):
        super().__init__(parent)
        self.thumbs, self.service = thumbs, service
        self.marks: dict[int, int] = {}  # the gallery marks nothing (shared painting code)
        self.bands = None
        self._want = {"sort": "date", "descending": False, "folder": None, "album": None}
        self._view: dict = {**self._want, "upto": None}  # what the rows shown were read with
        self._last_max = 0  # the largest photo id when the last full (not stable) view was read
        self._count = 0
        self.total = 0  # readable photos in the library, whatever the filter
        self._pages: OrderedDict[int, list] = OrderedDict()
        self._row_of_path: dict[str, int] = {}
        self._asked: set[int] = set()
        self._waiting: dict[int, list] = {}  # page -> callbacks waiting for it
        self._latest = self._applied = 0  # reload serials: asked for, shown
        self.reloads_pending = 0
        self.last_reset = False  # whether the last reload reset the model (else: rows appended/updated)
        self._locating = 0
        self._asks = 0  # pages asked for so far (a page asked long ago is skipped, see SKIP_AFTER)
        self.rows_read = 0  # rows received from the database (tests, benchmarks)
        if thumbs is not None:
            thumbs.ready.connect(self._thumb_ready)

    # -- Qt model API ---------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self._count

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= self._count:
            return None
        return _data(self, self._get(index.row()), None, role)

    def flags(self, index):
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def cell(self, row: int):
        return _cell(self, self._get(row), None)

    # -- reading --------------------------------------------------------------------------
    def _get(self, row: int):
        page = row // PAGE_ROWS
        rows = self._pages.get(page)
        if rows is None:
            self._ask(page)
            return None
        self._pages.move_to_end(page)
        i = row - page * PAGE_ROWS
        return rows[i] if i < len(rows) else None

    def photo(self, row: int):
        """The photo at ``row`` if its page is read (else None, and the page is asked for)."""
        return self._get(row) if 0 <= row < self._count else None

    def row_of(self, path: str) -> int | None:
        """The row of ``path`` among the rows read (see :meth:`locate` for any photo)."""
        return self._row_of_path.get(path)

    def loaded_rows(self) -> int:
        return sum(len(rows) for rows in self._pages.values())

    @property
    def settled(self) -> bool:
        """No reload and no page on its way (tests)."""
        return not self.reloads_pending and not self._asked and not self._locating

    def _ask(self, page: int) -> None:
        if page in self._asked or not self.service.is_open:
            return
        self._asked.add(page)
        view, serial = dict(self._view), self._applied
        self._asks += 1
        mine = self._asks

        def job(lib):
            if self._asks - mine >= SKIP_AFTER and page not in self._waiting:
                return None  # scrolled past meanwhile (a drag of the scroll bar): not read
            return lib.gallery.page(page * PAGE_ROWS, PAGE_ROWS, **view)

        def done(result=None, error=None):
            if serial != self._applied:
                return  # another view is shown now
            self._asked.discard(page)
            if error is None and result is None:  # skipped: asked again if it is still on screen
                last = min(self._count, (page + 1) * PAGE_ROWS) - 1
                if last >= page * PAGE_ROWS:
                    self.dataChanged.emit(self.index(page * PAGE_ROWS), self.index(last))
                return
            if error is not None:
                self._asked.add(page)  # not asked again until the next reload
                print(f"photosim: reading the gallery: {error}", file=sys.stderr)
                return
            self._store(page, result)
            if result:
                self.dataChanged.emit(self.index(page * PAGE_ROWS), self.index(page * PAGE_ROWS + len(result) - 1))
            for fn in self._waiting.pop(page, []):
                fn()

        self.service.call(job, done, kind=Kind.READ, name="reading the gallery", owner=self)

    def _store(self, page: int, rows: list) -> None:
        self.rows_read += len(rows)
        self._drop(page)
        self._pages[page] = rows
        for i, p in enumerate(rows):
            self._row_of_path[p.path] = page * PAGE_ROWS + i
        while len(self._pages) > CACHED_PAGES:
            self._drop(next(iter(self._pages)))

    def _drop(self, page: int) -> None:
        for i, p in enumerate(self._pages.pop(page, ())):
            if self._row_of_path.get(p.path) == page * PAGE_ROWS + i:
                del self._row_of_path[p.path]

    def fetch_row(self, row: int, callback) -> None:
        """``callback(photo)`` once the photo at ``row`` is read (at once when it is)."""
        if not 0 <= row < self._count:
            return
        p = self._get(row)
        if p is not None:
            callback(p)
        else:
            self._waiting.setdefault(row // PAGE_ROWS, []).append(lambda: callback(self.photo(row)))

    def fetch_rows(self, rows: list[int], callback) -> None:
        """``callback(photos)``: the photos at ``rows`` (a selection of any size), read in
        one job for the pages not held; nothing is added to the cache."""
        rows = sorted(r for r in set(rows) if 0 <= r < self._count)
        have = {r: self._get(r) for r in rows if (r // PAGE_ROWS) in self._pages}
        missing = sorted({r // PAGE_ROWS for r in rows if have.get(r) is None})
        if not missing:
            callback([have[r] for r in rows if have[r] is not None])
            return
        view, serial = dict(self._view), self._applied

        def job(lib):
            return {n: lib.gallery.page(n * PAGE_ROWS, PAGE_ROWS, **view) for n in missing}

        def done(result=None, error=None):
            if error is not None or serial != self._applied:
                callback([p for p in have.values() if p is not None])
                return
            out = []
            for r in rows:
                p = have.get(r)
                if p is None:
                    page = result.get(r // PAGE_ROWS, [])
                    i = r - (r // PAGE_ROWS) * PAGE_ROWS
                    p = page[i] if i < len(page) else None
                if p is not None:
                    out.append(p)
            callback(out)

        self.service.call(job, done, kind=Kind.READ, name="reading the selection", owner=self)

    def locate(self, photo, callback) -> None:
        """``callback(row, photo)``: where a photo (a PhotoInfo, an id or a path) is in the
        view shown, found in SQL (row None: not in it, photo None: not in the library)."""
        view, serial = dict(self._view), self._applied
        self._locating += 1

        def job(lib):
            p = photo if hasattr(photo, "id") else lib.photo(photo)
            return (None if p is None else lib.gallery.row_of(p.id, **view)), p

        def done(result=None, error=None):
            self._locating -= 1
            if serial != self._applied:  # the view changed meanwhile: look again in the new one
                self.locate(photo, callback)
                return
            callback(*(result if error is None else (None, None)))

        self.service.call(job, done, kind=Kind.READ, name="finding a photo", owner=self)

    # -- the view -------------------------------------------------------------------------
    @property
    def sort(self) -> str:
        return self._want["sort"]

    @property
    def descending(self) -> bool:
        return self._want["descending"]

    @property
    def folder(self) -> str | None:
        return self._want["folder"]

    @property
    def album(self) -> int | None:
        return self._want["album"]

    def set_sort(self, kind: str, descending: bool | None = None, **reload) -> None:
        descending = self.descending if descending is None else descending
        self._set(reload, sort=kind, descending=bool(descending))

    def set_folder(self, folder: str | None, read: bool = True, **reload) -> None:
        """Show only the photos in (and under) ``folder``; ``read`` False: at the next reload."""
        if not read:
            self._want["folder"] = folder or None
            return
        self._set(reload, folder=folder or None)

    def set_album(self, album_id: int | None, **reload) -> None:
        """Show only the photos of one album (None: every photo); ``reload``: see :meth:`reload`."""
        self._set(reload, album=album_id)

    def set_filter(self, folder: str | None = None, album: int | None = None, **reload) -> None:
        """The sidebar's choice in one reload: a folder, an album, or neither."""
        self._set(reload, folder=folder or None, album=album)

    def _set(self, reload: dict, **changes) -> None:
        if any(self._want[k] != v for k, v in changes.items()):
            self._want.update(changes)
            if self.service.is_open:
                self.reload(**reload)

    def clear(self) -> None:
        self._latest += 1
        self.beginResetModel()
        self._applied = self._latest
        self._count, self.total, self._last_max = 0, 0, 0
        self._view = {**self._want, "upto": None}
        self._pages.clear()
        self._row_of_path.clear()
        self._asked.clear()
        self._waiting.clear()
        self.endResetModel()

    def reload(self, stable: bool = False, keep=None, then=None) -> None:
        """Read the count and the pages about to be seen again, then show them; ``stable``
        (a scan is adding photos): the rows shown keep their places, see the class.
        ``keep``: a photo (PhotoInfo or id) whose row ``then(row)`` gets once applied."""
        self._latest += 1
        serial = self._latest
        upto = (self._view["upto"] or self._last_max) if stable else None
        view = {**self._want, "upto": upto}
        delta = stable and {**view, "upto": None} == {**self._view, "upto": None} and self._applied
        recent = list(self._pages)[-REFRESH_PAGES:] or [0]
        keep_id = getattr(keep, "id", keep)
        filtered = bool(view["folder"] or view["album"] is not None)
        self.reloads_pending += 1

        def job(lib):
            g = lib.gallery
            count = g.count(**view)
            row = g.row_of(keep_id, **view) if keep_id is not None else None
            wanted = set(recent) | ({row // PAGE_ROWS} if row is not None else set())
            pages = {n: g.page(n * PAGE_ROWS, PAGE_ROWS, **view) for n in sorted(wanted) if n * PAGE_ROWS < count}
            total = g.count() if filtered else count
            return count, total, (g.max_id() if not stable else None), row, pages

        def done(result=None, error=None):
            self.reloads_pending -= 1
            if serial != self._latest:
                return  # a newer reload follows
            if error is not None:
                print(f"photosim: reading the gallery: {error_text(error)}", file=sys.stderr)
                self.reloaded.emit()
                return
            count, self.total, max_id, row, pages = result
            self.last_reset = not (delta and count >= self._count)
            if not self.last_reset:
                self._apply_delta(serial, view, count, pages)
            else:
                self.beginResetModel()
                self._applied, self._view, self._count = serial, view, count
                self._pages.clear()
                self._row_of_path.clear()
                self._asked.clear()
                self._waiting.clear()
                for n, rows in pages.items():
                    self._store(n, rows)
                self.endResetModel()
            if max_id is not None:
                self._last_max = max_id
            if then is not None:
                then(row)
            self.reloaded.emit()

        self.service.call(job, done, kind=Kind.READ, name="reading the gallery", owner=self)

    def _apply_delta(self, serial: int, view: dict, count: int, pages: dict) -> None:
        """Rows appended at the end, the rows on screen updated in place; the pages not
        read again are dropped (asked for again when painted)."""
        self._applied, self._view = serial, view
        self._asked.clear()
        for n in [n for n in self._pages if n not in pages]:
            self._drop(n)
        if count > self._count:
            self.beginInsertRows(QModelIndex(), self._count, count - 1)
            self._count = count
            self.endInsertRows()
        for n, rows in pages.items():
            old = self._pages.get(n)
            self._store(n, rows)
            if rows and old != rows:
                self.dataChanged.emit(self.index(n * PAGE_ROWS), self.index(n * PAGE_ROWS + len(rows) - 1))
        for n in list(self._waiting):
            if n in self._pages:
                for fn in self._waiting.pop(n):
                    fn()

    def _thumb_ready(self, path: str) -> None:
        row = self._row_of_path.get(path)
        if row is not None:
            ix = self.index(row)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])


__all__ = ["GalleryModel", "PhotoListModel", "PhotoRole", "ScoreRole", "MarkRole", "SORTS"]
