"""A virtualised grid of thumbnails: one QListView (icon mode, uniform item sizes) and a
delegate that paints each visible cell; no widget per photo."""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPalette, QPixmap, QPixmapCache
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate


QPixmapCache.setCacheLimit(192 * 1024)  # KB

_BAND_COLOURS = {"same photo": QColor(30, 120, 50, 225), "very similar": QColor(30, 90, 170, 225),
                 "related": QColor(70, 70, 70, 200)}


class ThumbnailDelegate(QStyledItemDelegate):
    def __init__(self, view: ThumbnailGrid):
        super().__init__(view)
        self.view = view

    def sizeHint(self, option, index) -> QSize:
        return self.view.gridSize()

    def paint(self, painter: QPainter, option, index) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = option.palette
        cell = QRect(option.rect).adjusted(3, 3, -3, -3)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hover = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected or hover:
            colour = QColor(pal.color(QPalette.ColorRole.Highlight))
            colour.setAlpha(255 if selected else 60)
            path = QPainterPath()
            path.addRoundedRect(QRectF(cell), 6, 6)
            painter.fillPath(path, colour)
        side = self.view.thumb_size
        fm = option.fontMetrics
        box = QRect(cell.x() + (cell.width() - side) // 2, cell.y() + 5, side, side)
        photo, image, score, mark, failed = index.model().cell(index.row())
        if image is not None and not image.isNull():
            pix = self._scaled(photo, image, box.size(), painter.device().devicePixelRatioF())
            w, h = pix.width() / pix.devicePixelRatio(), pix.height() / pix.devicePixelRatio()
            target = QRectF(box.x() + (side - w) / 2, box.y() + side - h, w, h)  # caption hugs the photo
            painter.drawPixmap(target.topLeft(), pix)
            img_rect = target.toAlignedRect()
        else:
            placeholder = QColor(pal.color(QPalette.ColorRole.Mid))
            placeholder.setAlpha(70)
            inner = box.adjusted(side // 10, side // 6, -side // 10, -side // 6)
            painter.fillRect(inner, placeholder)
            if failed:
                painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(inner, Qt.AlignmentFlag.AlignCenter, "can't\nshow")
            img_rect = inner
        if score is not None:
            bands = getattr(index.model(), "bands", None)
            band = bands.label(score) if bands is not None else None
            self._badge(painter, img_rect, band or f"{score:.2f}",
                        Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignRight,
                        _BAND_COLOURS.get(band, QColor(0, 0, 0, 170)), QColor("white"))
        if photo is not None and photo.id in getattr(index.model(), "notes", {}):  # a verified copy of the query
            self._badge(painter, img_rect, "copy", Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft,
                        QColor(40, 90, 170, 220), QColor("white"))
        if mark:
            good = mark > 0
            self._badge(painter, img_rect, "✓ similar" if good else "✗ not similar",
                        Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight,
                        QColor(30, 140, 60, 220) if good else QColor(190, 50, 40, 220), QColor("white"))
        text_rect = QRect(cell.x() + 4, box.bottom() + 4, cell.width() - 8, fm.height())
        painter.setPen(pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(photo.name if photo is not None else "", Qt.TextElideMode.ElideMiddle,
                                       text_rect.width()))
        painter.restore()

    def _badge(self, painter, rect, text, align, bg, fg) -> None:
        painter.save()
        font = QFont(painter.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        font.setBold(True)
        painter.setFont(font)
        fm = painter.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 10, fm.height() + 2
        x = rect.right() - w - 3 if align & Qt.AlignmentFlag.AlignRight else rect.left() + 3
        y = rect.bottom() - h - 3 if align & Qt.AlignmentFlag.AlignBottom else rect.top() + 3
        badge = QRect(x, y, w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(bg)
        painter.drawRoundedRect(badge, 4, 4)
        painter.setPen(fg)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    @staticmethod
    def _scaled(photo, image, size: QSize, dpr: float) -> QPixmap:
        """The thumbnail at exactly the device pixels it covers (sharp on HiDPI), cached."""
        key = f"{photo.path}|{photo.mtime_ns}|{size.width()}|{dpr:.2f}"
        pix = QPixmapCache.find(key)
        if pix is None or pix.isNull():
            scaled = image.scaled(QSize(int(size.width() * dpr), int(size.height() * dpr)),
                                  Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            pix = QPixmap.fromImage(scaled)
            pix.setDevicePixelRatio(dpr)
            QPixmapCache.insert(key, pix)
        return pix


class ThumbnailGrid(QListView):
    """Thumbnail grid; Space asks for a preview, Enter activates, Delete asks to trash."""

    previewRequested = Signal()
    deleteRequested = Signal()  # the Delete key: move the selection to the trash (after asking)

    def __init__(self, parent=None, thumb_size: int = 160):
        super().__init__(parent)
        self.thumb_size = thumb_size
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setWrapping(True)
        self.setSpacing(0)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        # The scroll bar is always there, so the viewport's width (and so the column count)
        # never changes when the list grows past one screen: no 3 <-> 4 column flip that
        # moves photos from under the pointer.
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(False)
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)
        self.setMouseTracking(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setItemDelegate(ThumbnailDelegate(self))
        self.set_thumb_size(thumb_size)

    def set_thumb_size(self, side: int) -> None:
        self.thumb_size = side
        self.verticalScrollBar().setSingleStep(max(20, side // 4))
        self._fit_grid()

    def _fit_grid(self) -> None:
        """Cells share the row's spare width, so the grid fills the view edge to edge."""
        side = self.thumb_size
        base = side + 18
        avail = max(base, self.viewport().width() - 2)
        columns = max(1, avail // base)
        size = QSize(avail // columns, side + self.fontMetrics().height() + 18)
        if size != self.gridSize():
            self.setGridSize(size)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_grid()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.modifiers():
            self.previewRequested.emit()
            return
        if event.key() == Qt.Key.Key_Delete and not event.modifiers():
            self.deleteRequested.emit()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.activated.emit(self.currentIndex())
            return
        super().keyPressEvent(event)
