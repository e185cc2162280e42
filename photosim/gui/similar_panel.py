"""The similar-photos panel: the query, how many results and how similar, the results."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..values import CopyMatch
from .bands import Bands
from .common import fitted_pixmap, read_image
from .photo_model import PhotoListModel, PhotoRole
from .query_history import Query
from .thumb_view import ThumbnailGrid

HEADER_SIDE = 96
COPIES_K = 10  # "what is this a copy of?" verifies this many of the nearest photos


class SimilarPanel(QWidget):
    resultClicked = Signal(object)        # PhotoInfo: make it the new query
    backRequested = Signal()
    paramsChanged = Signal()
    copiesRequested = Signal()            # find what the query photo is a copy of
    contextMenuRequested = Signal(object, object)  # PhotoInfo, global QPoint

    def __init__(self, thumbs, parent=None):
        super().__init__(parent)
        self.thumbs = thumbs
        self._query: Query | None = None
        self.bands = Bands.for_threshold(0.95)
        self.setMinimumWidth(300)

        self.back = QToolButton(text="← Back")
        self.back.setToolTip("Back to the previous query (Alt+Left)")
        self.back.setEnabled(False)
        self.back.clicked.connect(self.backRequested)
        self.copies = QToolButton(text="Find what this is a copy of")
        self.copies.setToolTip(f"Compare this photo with its {COPIES_K} nearest, pixel by pixel, and list its "
                               "verified copies: the one it was most likely copied from first")
        self.copies.setEnabled(False)
        self.copies.clicked.connect(self.copiesRequested)
        self.query_image = QLabel()
        self.query_image.setFixedSize(HEADER_SIDE, HEADER_SIDE)
        self.query_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel("Similar photos")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle = QLabel("Select a photo, or drop one onto the window.")
        self.subtitle.setWordWrap(True)
        self.subtitle.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        text = QVBoxLayout()
        text.addWidget(self.back, 0, Qt.AlignmentFlag.AlignLeft)
        text.addWidget(self.title)
        text.addWidget(self.subtitle)
        text.addWidget(self.copies, 0, Qt.AlignmentFlag.AlignLeft)
        text.addStretch(1)
        header = QHBoxLayout()
        header.addWidget(self.query_image)
        header.addLayout(text, 1)

        self.count = QSpinBox()
        self.count.setRange(1, 200)
        self.count.setValue(24)
        self.count.setToolTip("How many similar photos to show")
        self.count.setAccessibleName("Number of results")
        self.min_score = QSlider(Qt.Orientation.Horizontal)
        self.min_score.setRange(0, 100)
        self.min_score.setValue(0)
        self.min_score.setToolTip("Hide results below this similarity; each new query starts at the "
                                  "model's own cut-off for related photos")
        self.min_score.setAccessibleName("Minimum similarity")
        self.min_label = QLabel()
        self.min_label.setMinimumWidth(self.min_label.fontMetrics().horizontalAdvance("≥ 0.00 very similar"))
        self._update_min_label()
        self.min_score.setMinimumWidth(90)
        controls = QVBoxLayout()  # two rows: the band's name beside the slider fits a narrow panel
        row = QHBoxLayout()
        row.addWidget(QLabel("Show up to"))
        row.addWidget(self.count)
        row.addWidget(QLabel("photos"))
        row.addStretch(1)
        controls.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Similarity at least"))
        row.addWidget(self.min_score, 1)
        row.addWidget(self.min_label)
        controls.addLayout(row)
        self.count.valueChanged.connect(self.paramsChanged)
        self.min_score.valueChanged.connect(self._update_min_label)
        self.min_score.sliderReleased.connect(self.paramsChanged)
        self.min_score.valueChanged.connect(lambda _v: None if self.min_score.isSliderDown() else self.paramsChanged.emit())

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setToolTip("Click a photo to search from it; right-click to mark it similar or not. "
                               "Move the similarity slider left to see the photos below the cut-off.")
        self.show_below = QToolButton()
        self.show_below.setAutoRaise(True)
        self.show_below.setToolTip("Lower the cut-off to 0 for this query")
        self.show_below.clicked.connect(lambda: self.min_score.setValue(0))
        self.show_below.hide()
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.show_below, 0, Qt.AlignmentFlag.AlignTop)
        self.model = PhotoListModel(thumbs, self)
        self.model.bands = self.bands
        self.results = ThumbnailGrid(self, thumb_size=112)
        self.results.setSelectionMode(ThumbnailGrid.SelectionMode.SingleSelection)
        self.results.setModel(self.model)
        self.results.clicked.connect(self._clicked)
        self.results.activated.connect(self._clicked)
        self.results.customContextMenuRequested.connect(self._context)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(header)
        layout.addLayout(controls)
        layout.addLayout(status_row)
        self.hint = QLabel("Select a photo to see the photos most like it.\n\n"
                           "Or drop an image — from your file manager or a web browser — anywhere on this "
                           "window, or paste one with Ctrl+V. It is only searched with, never added.")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setEnabled(False)
        self.hint.setMargin(24)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.results)
        layout.addWidget(self.stack, 1)

    # -- parameters -----------------------------------------------------------------------
    def k(self) -> int:
        return self.count.value()

    def min_similarity(self) -> float | None:
        v = self.min_score.value()
        return v / 100 if v > 0 else None

    def set_bands(self, bands: Bands) -> None:
        """The open model's bands (each encoder has its own scale); the cut-off starts there."""
        self.bands = bands
        self.model.bands = bands
        self.reset_cutoff()
        self.results.viewport().update()

    def reset_cutoff(self) -> None:
        """Every query starts at the model's cut-off, never at the last query's slider."""
        self.min_score.blockSignals(True)
        self.min_score.setValue(round(self.bands.cutoff * 100))
        self.min_score.blockSignals(False)
        self._update_min_label()

    def _update_min_label(self) -> None:
        v = self.min_score.value() / 100
        band = self.bands.label(v) if v > 0 else None
        self.min_label.setText(f"≥ {v:.2f} {band}" if band else f"≥ {v:.2f}")

    # -- showing --------------------------------------------------------------------------
    def show_query(self, q: Query | None, can_go_back: bool) -> None:
        self._query = q
        self.back.setEnabled(can_go_back)
        self.copies.setEnabled(q is not None and q.is_photo and not q.copies)
        for control in (self.count, self.min_score):  # a copies list has neither a count nor a cut-off
            control.setEnabled(q is None or not q.copies)
        self.model.marks, self.model.notes = {}, {}
        self.show_below.hide()
        if q is None:
            self.title.setText("Similar photos")
            self.subtitle.setText("Select a photo, or drop one onto the window.")
            self.query_image.clear()
            self.model.set_photos([], [])
            self.status.clear()
            self.stack.setCurrentWidget(self.hint)
            return
        self.stack.setCurrentWidget(self.results)
        self.title.setText(q.title())
        self.title.setToolTip(q.photo.path if q.is_photo else "")
        self.subtitle.setText(q.photo.folder if q.is_photo else "from outside the library (not added)")
        self._set_query_image()
        self.status.setText(f"Comparing it with its {COPIES_K} nearest photos…" if q.copies else "Searching…")

    def _set_query_image(self) -> None:
        q = self._query
        image = None
        if q is not None and q.is_photo:
            image = self.thumbs.get(q.photo.path, q.photo.size, q.photo.mtime_ns)
        elif q is not None and q.images:
            image, _error = read_image(q.images[0], HEADER_SIDE * 2)  # sharp at 2x
        if image is None or image.isNull():
            self.query_image.clear()
            return
        self.query_image.setPixmap(fitted_pixmap(image, QSize(HEADER_SIDE, HEADER_SIDE), self.devicePixelRatioF()))

    def thumbnail_arrived(self, path: str) -> None:
        q = self._query
        if q is not None and q.is_photo and q.photo.path == path:
            self._set_query_image()

    def show_results(self, matches, marks: dict[int, int] | None = None) -> None:
        """``matches``: the k nearest, best first; those under the cut-off are counted, not shown."""
        cut = self.min_similarity()
        shown = [m for m in matches if cut is None or m.score >= cut]
        below = len(matches) - len(shown)
        # verified copies come first (Library.similar(copies_first=True)): a badge, and how
        # each holds the query in its tooltip
        copies = {m.photo.id: "Verified copy: " + "; ".join(m.reasons) for m in shown if isinstance(m, CopyMatch)}
        self.model.marks, self.model.notes = dict(marks or {}), copies
        self.model.set_photos([m.photo for m in shown], [m.score for m in shown])
        self.results.scrollToTop()
        more = f" · {below} more below the cut-off" if below else ""
        self.show_below.setText(f"Show {below} more")
        self.show_below.setVisible(below > 0)
        if shown:
            counts = {}
            for m in shown:
                band = self.bands.label(m.score) or "less similar"
                counts[band] = counts.get(band, 0) + 1
            first = f"{len(copies)} verified cop{'y' if len(copies) == 1 else 'ies'} first · " if copies else ""
            self.status.setText(first + " · ".join(f"{n} {band}" for band, n in counts.items()) + more)
        elif matches:
            self.status.setText(f"No photos at or above similarity {cut:.2f}: the closest scores "
                                f"{matches[0].score:.2f}{more}.")
        elif cut is not None and self._query is not None:
            self.status.setText(f"No photos at or above similarity {cut:.2f}.")
        else:
            self.status.setText("No similar photos yet: the library is empty or still indexing.")

    def show_copies(self, matches, k: int = COPIES_K) -> None:
        """``matches``: the query's verified copies (``CopyMatch``), what it is most likely a
        copy of first; the header says which, and each result's tooltip how it holds the query."""
        self.model.marks = {}
        self.model.notes = {m.photo.id: "\n".join(m.reasons) for m in matches}
        self.model.set_photos([m.photo for m in matches], [m.score for m in matches])
        self.results.scrollToTop()
        self.show_below.hide()
        if not matches:
            self.status.setText(f"No verified copies among the {k} nearest.")
            return
        first, n = matches[0], len(matches)
        if first.source:
            how = first.reasons[0] if first.reasons else "holds all of this photo"
            others = f" · {n - 1} other verified cop{'y' if n == 2 else 'ies'}" if n > 1 else ""
            self.status.setText(f"Copy of: {first.photo.name} ({how}){others}")
        else:
            self.status.setText(f"Probably the original: {n} verified cop{'y' if n == 1 else 'ies'}, none holds "
                                "all of it at its resolution.")

    def show_error(self, message: str) -> None:
        self.model.set_photos([], [])
        self.show_below.hide()
        self.status.setText(f"⚠ {message}")

    def _clicked(self, index: QModelIndex) -> None:
        photo = index.data(PhotoRole)
        if photo is not None:
            self.resultClicked.emit(photo)

    def _context(self, pos) -> None:
        index = self.results.indexAt(pos)
        if index.isValid():
            self.contextMenuRequested.emit(index.data(PhotoRole), self.results.viewport().mapToGlobal(pos))
