"""List models of photos for the views: the gallery (sortable, filterable by folder)
and the similar-photos results (with scores and the user's marks)."""

from __future__ import annotations

import os
import re
from datetime import datetime

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt

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


_DIGITS = re.compile(r"(\d+)")


def natural(text: str) -> tuple:
    """A key that orders numbers by value: IMG_2 before IMG_10 (case-insensitive)."""
    parts = _DIGITS.split(text.casefold())
    return tuple((0, int(part), part) if i % 2 else (1, 0, part) for i, part in enumerate(parts) if part)


def _sort_key(kind: str):
    if kind == "name":
        return lambda p: (natural(p.name), natural(p.path))
    if kind == "folder":
        return lambda p: (natural(p.folder), natural(p.name))
    return lambda p: (photo_date(p), natural(p.path))


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def tooltip(p) -> str:
    dims = f"{p.width}×{p.height}" if p.width else "?"
    return f"{p.path}\n{dims} · {human_size(p.size)} · {photo_date(p).replace('T', ' ')}"


class PhotoListModel(QAbstractListModel):
    """Rows are PhotoInfo objects (optionally with scores); thumbnails are asked of the
    cache only for rows a view paints, which is what keeps 100,000 rows cheap."""

    def __init__(self, thumbs: ThumbnailCache | None, parent=None):
        super().__init__(parent)
        self.thumbs = thumbs
        self._all: list = []
        self._rows: list = []
        self._scores: list[float] | None = None
        self._row_of: dict[str, int] = {}
        self._sort = "date"
        self._descending = False
        self._rank: dict[str, int] = {}  # gallery order of the last full sort (paths)
        self._folder: str | None = None
        self.marks: dict[int, int] = {}  # result id -> +1/-1 for the current query
        self.bands = None  # results: photosim.gui.bands.Bands, the words for the scores
        if thumbs is not None:
            thumbs.ready.connect(self._thumb_ready)

    # -- Qt model API -------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        p = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return p.name
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbs.get(p.path, p.size, p.mtime_ns) if self.thumbs else None
        if role == PhotoRole:
            return p
        if role == ScoreRole:
            return self._scores[index.row()] if self._scores is not None else None
        if role == MarkRole:
            return self.marks.get(p.id)
        if role == ThumbFailedRole:
            return self.thumbs.failed(p.path, p.size, p.mtime_ns) if self.thumbs else False
        if role == Qt.ItemDataRole.ToolTipRole:
            if self._scores is None:
                return tooltip(p)
            score = self._scores[index.row()]
            band = self.bands.label(score) if self.bands is not None else None
            return f"{tooltip(p)}\n{band + ' · ' if band else ''}similarity {score:.2f}"
        return None

    def flags(self, index):
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def cell(self, row: int):
        """Everything a delegate paints for one row in a single call (photo, thumbnail or None,
        score or None, mark or None, thumbnail failed) — far cheaper than five data() calls."""
        p = self._rows[row]
        image = failed = None
        if self.thumbs is not None:
            image = self.thumbs.get(p.path, p.size, p.mtime_ns)
            failed = image is None and self.thumbs.failed(p.path, p.size, p.mtime_ns)
        score = self._scores[row] if self._scores is not None else None
        return p, image, score, self.marks.get(p.id), failed

    # -- content ----------------------------------------------------------------------
    def photo(self, row: int):
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def photos(self) -> list:
        return list(self._rows)

    def row_of(self, path: str) -> int | None:
        return self._row_of.get(path)

    def all_photos(self) -> list:
        return list(self._all)

    def folders(self) -> list[str]:
        return sorted({p.folder for p in self._all})

    def set_photos(self, photos: list, scores: list[float] | None = None, stable: bool = False) -> None:
        """Replace the rows (gallery: sorted and filtered; results: in the given order).
        ``stable`` (while a scan runs): photos already shown keep their places and new ones
        come after them, so nothing moves under the user's pointer."""
        self._all = list(photos)
        self._scores = list(scores) if scores is not None else None
        self._rebuild(stable)

    def remove_paths(self, paths: set[str]) -> None:
        keep = [i for i, p in enumerate(self._all) if p.path not in paths]
        if self._scores is not None:
            self._scores = [self._scores[i] for i in keep]
        self._all = [self._all[i] for i in keep]
        self._rebuild()

    def set_sort(self, kind: str, descending: bool | None = None) -> None:
        descending = self._descending if descending is None else descending
        if kind != self._sort or descending != self._descending:
            self._sort, self._descending = kind, descending
            self._rebuild()

    @property
    def descending(self) -> bool:
        return self._descending

    def set_folder(self, folder: str | None) -> None:
        if folder != self._folder:
            self._folder = folder
            self._rebuild()

    @property
    def sort(self) -> str:
        return self._sort

    @property
    def folder(self) -> str | None:
        return self._folder

    def _rebuild(self, stable: bool = False) -> None:
        rows = self._all
        if self._scores is None:  # the gallery
            if self._folder:
                prefix = self._folder.rstrip(os.sep) + os.sep
                rows = [p for p in rows if p.path.startswith(prefix)]
            rows = self._album_rows(rows)
            key, rank = _sort_key(self._sort), self._rank
            if stable and rank:
                known = sorted((p for p in rows if p.path in rank), key=lambda p: rank[p.path])
                new = sorted((p for p in rows if p.path not in rank), key=key, reverse=self._descending)
                rows = known + new
            else:
                rows = sorted(rows, key=key, reverse=self._descending)
            self._rank = {p.path: i for i, p in enumerate(rows)}
        self.beginResetModel()
        self._rows = rows
        self._row_of = {p.path: i for i, p in enumerate(rows)}
        self.endResetModel()

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


__all__ = ["PhotoListModel", "PhotoRole", "ScoreRole", "MarkRole", "SORTS"]
