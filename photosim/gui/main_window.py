"""The main window: gallery on the left, similar photos on the right; drop or paste an
image anywhere to search with it. It renders models and forwards intent; the engine
work happens in :class:`LibraryService` jobs."""

from __future__ import annotations

import json
import os
import time

from PySide6.QtCore import QByteArray, QEvent, QModelIndex, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QSlider,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import about, settings, trash_dialog
from .bands import Bands
from .drop_query import has_usable_data, read_mime
from .duplicates_view import DuplicatesView
from .feature_cache_action import FeatureCacheAction
from .photo_model import SORTS, GalleryModel, PhotoRole, photo_date, tooltip
from .precision_action import PrecisionAction
from .preview import PreviewDialog
from .problems_panel import ProblemsPanel
from .query_history import Query, QueryHistory
from .reveal import Revealer
from .scan_bar import ScanBar
from .service import Kind, LibraryService, error_text
from .sidebar import ALL, Sidebar
from .similar_panel import COPIES_K, SimilarPanel
from .thumb_view import ThumbnailGrid
from .thumbnails import ThumbnailCache
from .undo_bar import UndoBar
from .watching import FolderWatch, describe
from .welcome import WelcomePage

GALLERY_REFRESH_S = 1.5  # while scanning, re-read the photo list at most this often
INDEX_AFTER_PAINT_MS = 250  # the model and the index are loaded this long after the gallery's first page arrives


class MainWindow(QMainWindow):
    libraryOpened = Signal()
    galleryLoaded = Signal()
    resultsShown = Signal()
    messageShown = Signal(str)
    trashDone = Signal(list)      # paths moved to the trash from the gallery or the similar panel
    trashUndone = Signal(list)    # paths restored from the trash and read back (Undo)
    folderRemoved = Signal(str)

    def __init__(self, library_path: str | None = None, device: str | None = None, thumbs_dir=None):
        super().__init__()
        self.setWindowTitle("photosim")
        if QApplication.windowIcon().isNull():  # make_app sets it; a test's QApplication does not
            icon = QIcon()
            for f in about.icon_files():
                icon.addFile(str(f))
            self.setWindowIcon(icon)
        self.setAcceptDrops(True)
        self.t_created = time.perf_counter()
        self.library_path = library_path
        self.service = LibraryService(device, self)
        self.revealer = Revealer(self)  # the file manager, else xdg-open, else a sentence (gui/reveal.py)
        self.revealer.failed.connect(self.show_message)
        self.thumbs = ThumbnailCache(thumbs_dir, parent=self)
        self.watch = FolderWatch(self.service, self, skip=[self.thumbs.dir])  # photosim/gui/watching.py
        self.history = QueryHistory()
        self.info = None
        self.device = None
        self._query_serial = 0
        self._photos_serial = 0
        self._select_serial = 0  # the latest look-up of a photo's row in the gallery
        self._last_refresh = 0.0
        self._refresh_pending = False
        self._refresh_interval = GALLERY_REFRESH_S
        self._dup_view: DuplicatesView | None = None
        self._preview: PreviewDialog | None = None
        self._finetune = None
        self._models = None
        self.gallery_ready = False

        self._build_widgets()
        self._build_actions()
        self._restore_settings()

        self.service.opened.connect(self._on_opened)
        self.service.openFailed.connect(self._on_open_failed)
        self.service.encoderReady.connect(self._on_encoder_ready)
        self.service.encoderNotice.connect(lambda text: self.show_message(f"Note: {text}.", timeout=0))
        self.service.scanProgress.connect(self._on_scan_progress)
        self.service.scanFinished.connect(self._on_scan_finished)
        self.service.scanFailed.connect(self._on_scan_failed)
        self.service.modelChanged.connect(self._on_model_changed)
        self.service.stateChanged.connect(self._set_bands)  # verdicts calibrated the threshold
        self.service.indexProgress.connect(  # searches answer meanwhile (exact, over what is read)
            lambda p: self.index_label.setText(p and f"Building index {int(100 * (p.fraction or 0))}%" or ""))
        self.thumbs.ready.connect(self.panel.thumbnail_arrived)
        self.watch.applied.connect(self._on_watch_applied)
        self.watch.problem.connect(lambda text: self.show_message(text, timeout=0))

        self.open_library(library_path)

    # -- building -------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.model = GalleryModel(self.thumbs, self.service, self)
        self.model.reloaded.connect(self._on_gallery_reloaded)
        self.grid = ThumbnailGrid(self, thumb_size=160)
        self.grid.setModel(self.model)
        self.grid.setAccessibleName("Gallery")
        self.grid.selectionModel().currentChanged.connect(self._on_current_changed)
        self.grid.doubleClicked.connect(lambda _ix: self.show_preview())
        self.grid.previewRequested.connect(self.show_preview)
        self.grid.customContextMenuRequested.connect(self._gallery_context)

        self.sort_combo = QComboBox()
        for key, label in SORTS.items():
            self.sort_combo.addItem(label, key)
        self.sort_combo.currentIndexChanged.connect(lambda _i: self._set_sort(self.sort_combo.currentData()))
        self.sort_order = QToolButton()
        self.sort_order.setCheckable(True)
        self.sort_order.setAutoRaise(True)
        self.sort_order.setAccessibleName("Descending order")
        self.sort_order.toggled.connect(self._on_order_toggled)
        self._on_order_toggled(False)
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(64, 320)
        self.size_slider.setValue(160)
        self.size_slider.setFixedWidth(120)
        self.size_slider.setToolTip("Thumbnail size")
        self.size_slider.valueChanged.connect(self.grid.set_thumb_size)
        self.count_label = QLabel()
        # its text ("24 of 27 photos") must never widen the pane: that moved the splitter and
        # so changed the gallery's column count under the pointer
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.count_label.setMinimumWidth(self.count_label.fontMetrics().horizontalAdvance("0,000,000 photos"))
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 6, 8, 2)
        bar.addWidget(QLabel("Sort by"))
        bar.addWidget(self.sort_combo)
        bar.addWidget(self.sort_order)
        bar.addWidget(self.count_label, 1)
        bar.addSpacing(10)
        bar.addWidget(QLabel("Size"))
        bar.addWidget(self.size_slider)

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setObjectName("banner")
        self.banner.setStyleSheet("#banner { background: palette(tool-tip-base); color: palette(tool-tip-text);"
                                  " border: 1px solid palette(mid); border-radius: 4px; padding: 6px 10px; }")
        self.banner.hide()
        self._banner_timer = QTimer(self, singleShot=True, interval=7000, timeout=self.banner.hide)

        self.scan_bar = ScanBar()
        self.scan_bar.cancelRequested.connect(self.service.cancel_scan)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(2)
        ll.addLayout(bar)
        ll.addWidget(self.grid, 1)

        self.panel = SimilarPanel(self.thumbs)
        self.panel.resultClicked.connect(lambda p: self.set_query(Query(photo=p)))
        self.panel.backRequested.connect(self.go_back)
        self.panel.paramsChanged.connect(self.run_query)
        self.panel.copiesRequested.connect(
            lambda: (q := self.history.current) is not None and q.is_photo and self.find_copies(q.photo))
        self.panel.contextMenuRequested.connect(lambda p, pos: self._photo_menu([p], pos, from_results=True))

        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.panel)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([760, 500])

        # the sidebar (All photos, folders, albums) filters the gallery: photosim/gui/sidebar.py
        self.sidebar = Sidebar(self.service)
        self.sidebar.filterChanged.connect(self._apply_filter)
        self.sidebar.libraryChanged.connect(self._on_folders_changed)
        self.sidebar.removeFolderRequested.connect(self.remove_folder)
        self.sidebar.rescanRequested.connect(lambda: self.start_scan(None))
        self.sidebar.messageRequested.connect(self.show_message)
        self.side_splitter = QSplitter()
        self.side_splitter.addWidget(self.sidebar)
        self.side_splitter.addWidget(self.splitter)
        self.side_splitter.setStretchFactor(0, 0)
        self.side_splitter.setStretchFactor(1, 1)
        self.side_splitter.setCollapsible(1, False)
        self.side_splitter.setSizes([190, 1090])

        browser = QWidget()
        bl = QVBoxLayout(browser)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.setSpacing(0)
        bl.addWidget(self.side_splitter, 1)

        self.welcome = WelcomePage()
        self.welcome.chooseFolder.connect(self.add_folder)
        self.welcome.openRecent.connect(self.open_library)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.welcome)
        self.pages.addWidget(browser)
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(6, 6, 6, 0)
        cl.setSpacing(4)
        cl.addWidget(self.banner)
        self.undo_bar = UndoBar()  # "Moved N photos to the trash · Undo"
        self.undo_bar.undoRequested.connect(self.undo_trash)
        cl.addWidget(self.undo_bar)
        cl.addWidget(self.pages, 1)
        cl.addWidget(self.scan_bar)
        self.setCentralWidget(central)

        self.drop_hint = QLabel("Drop to find similar photos\n(it is not added to the library)", self)
        self.drop_hint.setObjectName("dropHint")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        font = self.drop_hint.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.drop_hint.setFont(font)
        self.drop_hint.setStyleSheet("#dropHint { background: rgba(40, 110, 220, 60); color: palette(text);"
                                     " border: 3px dashed palette(highlight); border-radius: 12px; }")
        self.drop_hint.hide()

        self.problems = ProblemsPanel(self.service)
        self.problems.changed.connect(lambda _fixed: self.refresh_photos())
        self.problems.messageShown.connect(self.show_message)
        self.problems_dock = QDockWidget("Files that could not be read", self)
        self.problems_dock.setObjectName("problems")
        self.problems_dock.setWidget(self.problems)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.problems_dock)
        self.problems_dock.hide()

        self.library_label = QLabel()
        self.encoder_label = QLabel()
        self.index_label = QLabel()
        self.problems_button = QToolButton()
        self.problems_button.setAutoRaise(True)
        self.problems_button.clicked.connect(lambda: self.problems_dock.setVisible(not self.problems_dock.isVisible()))
        self.problems_button.hide()
        sb = self.statusBar()
        sb.addPermanentWidget(self.problems_button)
        sb.addPermanentWidget(self.index_label)
        sb.addPermanentWidget(self.library_label)
        sb.addPermanentWidget(self.encoder_label)

    def _build_actions(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&Library")
        self.act_add = m.addAction("&Add folder…", self.add_folder, QKeySequence("Ctrl+O"))
        self.act_rescan = m.addAction("&Re-scan folders", lambda: self.start_scan(None), QKeySequence("F5"))
        self.act_remove_folder = m.addAction("Re&move a folder from the library…", self.choose_folder_to_remove)
        self.act_watch = m.addAction("&Watch folders for changes")
        self.act_watch.setCheckable(True)
        self.act_watch.setChecked(self.watch.enabled)
        self.act_watch.setToolTip("Pick up photos added, changed, moved or deleted in the library's folders")
        self.act_watch.toggled.connect(self.watch.set_enabled)
        m.addSeparator()
        m.addAction("Open &library…", self.choose_library)
        self.recent_menu = m.addMenu("Recent libraries")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addSeparator()
        m.addAction("&Quit", self.close, QKeySequence.StandardKey.Quit)

        m = mb.addMenu("&Edit")
        self.act_paste = m.addAction("&Paste image to search", self.paste, QKeySequence.StandardKey.Paste)
        self.act_copy = m.addAction("&Copy path", lambda: self.with_selection(self.copy_paths),
                                    QKeySequence.StandardKey.Copy)
        self.act_album = m.addAction("Add to a&lbum…", lambda: self.with_selection(self.add_to_album))
        m.addSeparator()
        self.act_trash = m.addAction("Move to &trash…", self.trash_selected, QKeySequence.StandardKey.Delete)
        # the key itself is the views' (deleteRequested): the gallery's selection, or the result
        self.act_trash.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.grid.deleteRequested.connect(self.trash_selected)
        self.panel.results.deleteRequested.connect(
            lambda: self.trash_photos([p for p in [self.panel.results.currentIndex().data(PhotoRole)] if p is not None]))

        m = mb.addMenu("&View")
        self.act_back = m.addAction("&Back", self.go_back, QKeySequence("Alt+Left"))
        self.act_preview = m.addAction("&Preview", self.show_preview)
        m.addAction(self.problems_dock.toggleViewAction())
        for step, key in ((24, "Ctrl++"), (-24, "Ctrl+-")):
            m.addAction("Larger thumbnails" if step > 0 else "Smaller thumbnails",
                        lambda s=step: self.size_slider.setValue(self.size_slider.value() + s), QKeySequence(key))

        m = mb.addMenu("&Tools")
        self.act_dups = m.addAction("Find &near-duplicates…", self.show_duplicates, QKeySequence("Ctrl+D"))
        self.act_finetune = m.addAction("&Fine-tune…", self.show_finetune)
        self.act_models = m.addAction("&Models…", self.show_models)
        self.precision_action = PrecisionAction(self, m)
        self.feature_cache_action = FeatureCacheAction(self, m)
        if not _finetune_available():
            self.act_finetune.setEnabled(False)
            self.act_finetune.setToolTip("Fine-tuning is not part of this installation")

        m = mb.addMenu("&Help")
        self.act_help = m.addAction("photosim &Help", self.show_help, QKeySequence.StandardKey.HelpContents)
        self.act_about = m.addAction("&About photosim", self.show_about)
        self.act_about.setMenuRole(self.act_about.MenuRole.AboutRole)
        m.addAction("About &Qt", QApplication.aboutQt)

        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addAction(self.act_add)
        tb.addAction(self.act_rescan)
        tb.addSeparator()
        tb.addAction(self.act_dups)
        tb.addAction(self.act_paste)
        self._set_library_actions(False)

    def _set_library_actions(self, on: bool) -> None:
        writable = on and not self.service.readonly
        for act in (self.act_add, self.act_rescan, self.act_album, self.act_models, self.act_trash,
                    self.act_remove_folder):
            act.setEnabled(writable)
        for act in (self.act_dups, self.act_paste):
            act.setEnabled(on)
        self.act_finetune.setEnabled(writable and _finetune_available())

    def _restore_settings(self) -> None:
        geometry = settings.value("geometry")
        if isinstance(geometry, QByteArray | bytes) and not self.restoreGeometry(geometry):
            geometry = None
        if not geometry:
            self.resize(1280, 800)
        state = settings.value("window_state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)
        self.problems_dock.hide()
        splitter = settings.value("splitter")
        if isinstance(splitter, QByteArray | bytes):
            self.splitter.restoreState(splitter)
        side = settings.value("side_splitter")
        if isinstance(side, QByteArray | bytes):
            self.side_splitter.restoreState(side)
        size = settings.value("thumb_size", 160, int)
        self.size_slider.setValue(int(size))
        sort = settings.value("sort", "date")
        i = self.sort_combo.findData(sort)
        if i >= 0:
            self.sort_combo.setCurrentIndex(i)
        self.sort_order.setChecked(settings.value("sort_descending", False, bool) in (True, "true"))

    def save_settings(self) -> None:
        settings.set_value("geometry", self.saveGeometry())
        settings.set_value("window_state", self.saveState())
        settings.set_value("splitter", self.splitter.saveState())
        settings.set_value("side_splitter", self.side_splitter.saveState())
        settings.set_value("thumb_size", self.size_slider.value())
        settings.set_value("sort", self.model.sort)
        settings.set_value("sort_descending", self.model.descending)
        if self.gallery_ready and self.library_path:
            q = self.history.current
            settings.set_value("last_view", json.dumps({
                "library": os.path.abspath(self.library_path), "filter": list(self.sidebar.selection()),
                "query": q.photo.path if q is not None and q.is_photo else None,
                "scroll": self.grid.verticalScrollBar().value()}))

    def _last_view(self) -> dict | None:
        """What was shown when the app last closed on this library, or None."""
        try:
            view = json.loads(settings.value("last_view", "") or "{}")
        except (TypeError, ValueError):
            return None
        if not isinstance(view, dict) or view.get("library") != os.path.abspath(self.library_path or ""):
            return None
        return view

    @staticmethod
    def _remembered_filter(view: dict | None) -> tuple[str, object]:
        """("folder", path), ("album", name) or ALL from the last view (older settings kept
        only a "folder")."""
        remembered = (view or {}).get("filter")
        if not isinstance(remembered, list) or len(remembered) != 2:
            remembered = ("folder", view["folder"]) if view and isinstance(view.get("folder"), str) else ALL
        kind, key = remembered
        return (kind, key) if kind in ("folder", "album") and isinstance(key, str) else ALL

    def _restore_view(self) -> None:
        """Relaunched on the same library: the query and the scroll position (the folder
        filter was set before the gallery's first read)."""
        view = self._last_view()
        if view is None:
            return
        scroll = view.get("scroll")

        def scroll_back():
            if isinstance(scroll, int):
                self.grid.doItemsLayout()
                self.grid.verticalScrollBar().setValue(scroll)

        if not (view.get("query") and self.select_photo(view["query"], then=scroll_back)):
            scroll_back()

    # -- library -------------------------------------------------------------------------
    def open_library(self, path: str | None) -> None:
        self.watch.stop()
        self.service.close()
        self.undo_bar.dismiss()
        self.gallery_ready = False
        self.info = None
        self.history.clear()
        self.panel.show_query(None, False)
        self.model.clear()
        self.sidebar.select(*ALL)
        self._set_library_actions(False)
        self.welcome.set_loading("Opening the library…")
        self.pages.setCurrentWidget(self.welcome)
        self.library_label.setText("opening library…")
        self.encoder_label.setText("")
        self.library_path = path
        self.service.open(path, index_now=False, warm_now=False)  # both after the first paint (_maybe_ready)

    def choose_library(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open or create a photosim library")
        if path:
            self.open_library(path)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p in settings.recent_libraries():
            self.recent_menu.addAction(p, lambda p=p: self.open_library(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _set_bands(self, state) -> None:
        """The similar panel's bands from the library's duplicate threshold (each encoder
        has its own scale; the duplicates view's verdicts calibrate it)."""
        self.panel.set_bands(Bands.for_threshold(state.duplicate_threshold))

    def _on_opened(self, state) -> None:
        self._set_bands(state)
        settings.remember_library(state.path)
        self.library_path = state.path
        self.setWindowTitle(f"photosim — {state.path}")
        self._set_library_actions(True)
        if self.service.readonly:
            self.show_message("Another photosim is using this library, so it is open read-only: "
                              "you can browse and search, but not scan.", timeout=0)
        self.libraryOpened.emit()
        kind, key = self._remembered_filter(self._last_view())  # the sidebar's choice of last time
        self.sidebar.select(kind, key, emit=False)
        if kind == "folder":  # before the first read
            self.model.set_folder(key, read=False)
        self.refresh_photos()
        if kind == "album":
            self._apply_filter(kind, key)
        if not self.service.readonly:
            self.service.call(lambda lib: lib.info(), self._reindex_if_needed, name="reading the library")

    def _reindex_if_needed(self, result=None, error=None) -> None:
        """A library made with another encoder (photosim upgraded) has photos without
        vectors of the active one: re-scan at once rather than show empty results."""
        if error is not None:
            self.show_message(f"Could not read the library: {error_text(error, 'Reading the library')}")
            return
        info = result
        notice = f" Note: {info.notice}." if info.notice else ""
        if info.unindexed and info.roots and self.start_scan(None):
            self.show_message(f"photosim's encoder changed: indexing {info.unindexed} photos again "
                              f"(your photos and albums are kept).{notice}", timeout=0)
        elif notice:
            self.show_message(notice.strip(), timeout=0)

    def _on_open_failed(self, error: BaseException) -> None:
        self.welcome.set_loading(None)
        self.welcome.set_recent(settings.recent_libraries(), None)
        self.pages.setCurrentWidget(self.welcome)
        self.library_label.setText("no library")
        self.show_message(f"Could not open the library: {error_text(error, 'Opening the library')}", timeout=0)

    def _on_encoder_ready(self, device: str) -> None:
        self.device = device
        self._update_status()

    def refresh_photos(self) -> None:
        """Read the gallery again (its count and the rows on screen, in SQL; while a scan
        runs, new photos come after the ones shown and nothing moves) and, in another worker,
        the folders, the problems and the library info."""
        self._photos_serial += 1
        serial = self._photos_serial
        self._refresh_pending = True
        self._last_refresh = time.monotonic()
        scroll = self.grid.verticalScrollBar().value()
        self.model.reload(stable=self.service.scanning, keep=self.grid.currentIndex().data(PhotoRole),
                          then=lambda row: self._keep_current(row, scroll))

        def load(lib):
            t = time.perf_counter()
            shown, ignored = ([(p.path, p.error or "") for p in ps]
                              for ps in (lib.problems.list(), lib.problems.ignored()))
            out = shown, lib.info(), ignored
            return out, time.perf_counter() - t

        def done(result=None, error=None):
            self._refresh_pending = False
            if error is not None:
                self.show_message(f"Could not read the library: {error_text(error, 'Reading the library')}")
                return
            value, seconds = result
            # while scanning, refresh no more often than 5x what a refresh costs (big libraries)
            self._refresh_interval = max(GALLERY_REFRESH_S, 5 * seconds)
            if serial == self._photos_serial:
                self._set_info(*value)

        self.service.call(load, done, name="reading the photos")

    def _keep_current(self, row: int | None, scroll: int | None = None) -> None:
        """After the gallery was read again: the photo that was current is current again (no
        new query), and the view is where it was (``scroll``) or shows it."""
        if row is not None and self.grid.currentIndex().row() != row:
            sel = self.grid.selectionModel()
            sel.blockSignals(True)
            sel.setCurrentIndex(self.model.index(row), sel.SelectionFlag.ClearAndSelect)
            sel.blockSignals(False)
            self.grid.viewport().update()
        if self.model.last_reset:
            self.grid.doItemsLayout()
            if scroll is not None:
                self.grid.verticalScrollBar().setValue(scroll)
            elif row is not None:
                self.grid.scrollTo(self.model.index(row))

    def _on_gallery_reloaded(self) -> None:
        self._update_count()
        self._maybe_ready()

    def _set_info(self, problems, info, ignored=()) -> None:
        self.info = info
        self.sidebar.refresh()
        self._set_problems(problems, ignored)
        self._update_status()
        self._maybe_ready()

    def _maybe_ready(self) -> None:
        """The gallery page once there are photos (or a scan); the welcome page for a library
        without folders; ``galleryLoaded`` once the gallery and the library info are read."""
        if self.model.total or self.service.scanning:
            self.pages.setCurrentIndex(1)
        if self.info is None or self.model.reloads_pending:
            return
        if not self.model.total and not self.info.roots and not self.service.scanning:
            self.welcome.set_loading(None)
            self.welcome.set_recent(settings.recent_libraries(), self.library_path)
            self.pages.setCurrentWidget(self.welcome)
        else:
            self.pages.setCurrentIndex(1)
        if not self.gallery_ready:
            self.gallery_ready = True
            if self.model.total:
                self._restore_view()
            self.galleryLoaded.emit()
            # the model and the index next (the index loaded, or built in the background):
            # importing torch from a cold disk and reading a saved index hold the GIL for
            # seconds at 10^6 photos, so not before the first screen is painted
            QTimer.singleShot(INDEX_AFTER_PAINT_MS, self._after_first_paint)

    def _after_first_paint(self) -> None:
        if self.service.is_open:
            self.service.warm_up()
            self.service.watch_index()

    def _apply_filter(self, kind: str, key) -> None:
        """The sidebar's choice: all photos, a folder's (with its sub-folders) or an album's
        (its id looked up in a job); the current photo stays current where it is shown."""
        keep = self.grid.currentIndex().data(PhotoRole)
        if kind != "album":
            self.model.set_filter(folder=key if kind == "folder" else None, album=None, keep=keep,
                                  then=self._keep_current)
            return

        def done(result=None, error=None):
            if error is not None:
                self.show_message(f"Could not read the album: {error_text(error, 'Reading the album')}")
            elif self.sidebar.selection() == ("album", key):  # not another choice meanwhile
                if result is None:
                    self.show_message(f"The album “{key}” no longer exists.")
                    self.sidebar.select(*ALL)
                    return
                self.model.set_filter(folder=None, album=result, keep=keep, then=self._keep_current)

        self.service.call(lambda lib: next((a.id for a in lib.albums() if a.name == key), None), done,
                          name="reading an album")

    def _on_folders_changed(self) -> None:
        """Photos left the library (a folder was excluded) or will come back: read them again."""
        self.history.clear()
        self.panel.show_query(None, False)
        self.refresh_photos()

    def _on_order_toggled(self, descending: bool) -> None:
        self.sort_order.setText("↓" if descending else "↑")
        self.sort_order.setToolTip("Descending (newest, Z to A first): click for ascending" if descending
                                   else "Ascending (oldest, A to Z first): click for descending")
        self._set_sort(self.sort_combo.currentData(), descending)

    def _set_sort(self, key: str, descending: bool | None = None) -> None:
        """Sorted in SQL; the current photo stays current and in view (found by id)."""
        self.model.set_sort(key, descending, keep=self.grid.currentIndex().data(PhotoRole), then=self._keep_current)

    def _set_problems(self, problems, ignored=()) -> None:
        self.problems.set_problems(problems, ignored)  # the ignored ones are listed only on request
        n = len(problems)
        self.problems_button.setText(f"⚠ {n} file{'s' if n != 1 else ''} could not be read")
        self.problems_button.setVisible(n > 0)

    def _update_count(self) -> None:
        shown, total = self.model.rowCount(), self.model.total
        self.count_label.setText(f"{shown:,} photos" if shown == total else f"{shown:,} of {total:,} photos")
        self.count_label.setToolTip(self.count_label.text())  # the whole of it, should the pane be narrow

    def _update_status(self) -> None:
        self._update_count()
        if self.info is not None:
            self.library_label.setText(f"{self.info.photos - self.info.errors:,} photos in library")
            device = self.device or "loading model…"
            self.encoder_label.setText(f"model: {self.info.model_name or self.info.encoder_id} · {device}")
            self.encoder_label.setToolTip(f"The model searches use (Tools → Models): id {self.info.encoder_id}")

    # -- scanning -------------------------------------------------------------------------
    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of photos")
        if folder:
            self.start_scan([folder])

    def start_scan(self, roots: list[str] | None) -> bool:
        if not self.service.is_open:
            return False
        if self.service.readonly:
            self.show_message("This library is open read-only (another photosim is using it), so it cannot scan.")
            return False
        if self.service.scanning:
            self.show_message("A scan is already running.")
            return False
        if self.service.exclusive:  # a model switch, a fine-tune, a trash: never beside a scan
            self.show_message(self.service.refusal())
            return False
        if roots is None and self.info is not None and not self.info.roots:
            self.add_folder()
            return False
        if not self.service.scan(roots):
            return False
        self.pages.setCurrentIndex(1)
        self.scan_bar.start("Looking for photos…")
        self.act_add.setEnabled(False)
        self.act_rescan.setEnabled(False)
        return True

    def _on_scan_progress(self, p) -> None:
        self.scan_bar.update_progress(p)
        due = time.monotonic() - self._last_refresh > self._refresh_interval
        if p.stage == "scanning" and p.done > 0 and not self._refresh_pending and due:
            self.refresh_photos()

    def _on_scan_finished(self, report) -> None:
        self.scan_bar.hide()
        self._set_library_actions(True)
        parts = [f"added {report.added:,}", f"updated {report.updated:,}", f"moved {report.moved:,}",
                 f"removed {report.removed:,}"]
        if report.failed:
            parts.append(f"{len(report.failed)} could not be read")
        head = "Scan cancelled — what was indexed is kept" if report.cancelled else "Scan finished"
        self.show_message(f"{head}: " + ", ".join(parts) + f" ({report.seconds:.1f} s).")
        self.refresh_photos()
        if self._dup_view is not None and self._dup_view.isVisible():
            self._dup_view.refresh()

    def _on_watch_applied(self, report) -> None:
        if describe(report):  # a batch that changed nothing (a file touched) costs no refresh
            self.show_message(describe(report))
            self.refresh_photos()

    def _on_scan_failed(self, error: BaseException) -> None:
        self.scan_bar.hide()
        self._set_library_actions(True)
        self.show_message(f"The scan stopped: {error_text(error, 'The scan')}", timeout=0)
        self.refresh_photos()

    # -- querying -------------------------------------------------------------------------
    def _on_current_changed(self, current: QModelIndex, _previous) -> None:
        if not current.isValid():
            return
        photo = current.data(PhotoRole)
        if photo is not None:
            self.set_query(Query(photo=photo))
            return
        row = current.row()  # a row whose page is on its way: ask once it is read
        self.model.fetch_row(row, lambda p: p is not None and self.grid.currentIndex().row() == row
                             and self.set_query(Query(photo=p)))

    def select_photo(self, path, then=None, or_query: bool = False) -> bool:
        """Select a photo (a path or a PhotoInfo) in the gallery and show its similar photos;
        its row is found in SQL. ``or_query``: a photo the gallery's filter hides is shown in
        the similar panel anyway. ``then()`` runs once it is done. False: no library is open."""
        if not self.service.is_open:
            return False
        self._select_serial += 1
        serial = self._select_serial

        def found(row, photo):
            if serial != self._select_serial:
                return
            if photo is None:
                self.show_message(f"{path} is not in the library.")
            elif row is not None:
                ix = self.model.index(row)
                sel = self.grid.selectionModel()
                sel.blockSignals(True)
                sel.setCurrentIndex(ix, sel.SelectionFlag.ClearAndSelect)
                sel.blockSignals(False)
                self.grid.scrollTo(ix)
                self.grid.viewport().update()
                self.set_query(Query(photo=photo))
            elif or_query:
                self.set_query(Query(photo=photo))
            if then is not None:
                then()

        self.model.locate(path if hasattr(path, "id") else os.path.abspath(path), found)
        return True

    def _highlight_query(self, q: Query | None) -> None:
        """The gallery highlights the photo the similar panel shows (after Back, after a
        click on a result; its row found in SQL); nothing when the query is a dropped image."""
        if q is None:
            return
        sel = self.grid.selectionModel()
        current = self.grid.currentIndex()
        shown = current.data(PhotoRole) if current.isValid() else None
        if q.is_photo and shown is not None and shown.id == q.photo.id and sel.isRowSelected(current.row()):
            return
        self._select_serial += 1
        serial = self._select_serial

        def found(row, _photo=None):
            if serial != self._select_serial or self.history.current is not q:
                return
            sel.blockSignals(True)
            if row is None:  # a dropped image, or a photo this folder's view does not show
                sel.clearSelection()
                sel.clearCurrentIndex()
            else:
                sel.setCurrentIndex(self.model.index(row), sel.SelectionFlag.ClearAndSelect)
            sel.blockSignals(False)
            if row is not None:
                self.grid.scrollTo(self.model.index(row))
            self.grid.viewport().update()

        if q.is_photo:
            self.model.locate(q.photo, found)
        else:
            found(None)

    def set_query(self, q: Query) -> None:
        self.history.push(q)
        self.panel.reset_cutoff()
        self.run_query()

    def go_back(self) -> None:
        if self.history.can_go_back():
            self.history.back()
            self.panel.reset_cutoff()
            self.run_query()

    def run_query(self) -> None:
        q = self.history.current
        self.act_back.setEnabled(self.history.can_go_back())
        self.panel.show_query(q, self.history.can_go_back())
        self._highlight_query(q)
        if q is None or not self.service.is_open:
            return
        self._query_serial += 1
        serial = self._query_serial
        k = self.panel.k()  # the k nearest; the panel shows those above its cut-off and counts the rest
        t0 = time.perf_counter()

        def job(lib):
            if q.copies:  # its 10 nearest, verified: what it is most likely a copy of first
                return lib.copies_of(q.photo.id, k=COPIES_K)
            if q.is_photo:
                matches = lib.similar(q.photo.id, k, copies_first=True)  # an edited copy is the most similar
                marks = {m.result_id: m.label for m in lib.marks() if m.query_id == q.photo.id}
                return matches, marks
            return lib.similar_to_images(q.images, k, copies_first=True), {}

        def done(result=None, error=None):
            if serial != self._query_serial:
                return  # a newer query was asked meanwhile
            if error is not None:
                self.panel.show_error(error_text(error, "Finding copies" if q.copies else "The search"))
            else:
                self.last_query_seconds = time.perf_counter() - t0
                if q.copies:
                    self.panel.show_copies(result, COPIES_K)
                else:
                    self.panel.show_results(*result)
            self.resultsShown.emit()

        self.service.call(job, done, name="finding copies" if q.copies else "searching")

    # -- drop & paste ----------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if has_usable_data(event.mimeData()):
            event.acceptProposedAction()
            self.statusBar().showMessage("Drop to find similar photos (the image is not added to the library)")
            self.drop_hint.setGeometry(self.centralWidget().geometry().adjusted(12, 12, -12, -12))
            self.drop_hint.show()
            self.drop_hint.raise_()

    def dragMoveEvent(self, event) -> None:
        if has_usable_data(event.mimeData()):
            event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self.statusBar().clearMessage()
        self.drop_hint.hide()

    def dropEvent(self, event) -> None:
        event.acceptProposedAction()
        self.statusBar().clearMessage()
        self.drop_hint.hide()
        self.query_mime(event.mimeData())

    def paste(self) -> None:
        self.query_mime(QGuiApplication.clipboard().mimeData(), pasted=True)

    def query_mime(self, mime, pasted: bool = False) -> bool:
        """Search with dropped/pasted images; anything else gets a non-blocking message."""
        content = read_mime(mime)
        if content.rejected:
            what = "Pasted" if pasted else "Dropped"
            prefix = "Not used: " if content.images else f"{what} item not searched: "
            self.show_message(prefix + content.message())
        if not content.images:
            return False
        if not self.service.is_open:
            self.show_message("Open a library first.")
            return False
        label = ""
        if len(content.images) == 1:
            first = content.images[0]
            label = os.path.basename(first) if isinstance(first, str) else ("Pasted image" if pasted else "Dropped image")
        self.set_query(Query(images=content.images, label=label))
        self.grid.clearSelection()
        return True

    # -- messages ------------------------------------------------------------------------------
    def show_message(self, text: str, timeout: int = 7000) -> None:
        self.banner.setText(text)
        self.banner.show()
        self._banner_timer.stop()
        if timeout:
            self._banner_timer.start(timeout)
        self.statusBar().showMessage(text, timeout or 0)
        self.messageShown.emit(text)

    # -- context menus & everyday comforts ----------------------------------------------
    def with_selection(self, fn) -> None:
        """``fn(photos)`` with the gallery's selection (else its current photo), of any size:
        rows whose page is not read yet are read first (at once when every one is)."""
        rows = [ix.row() for ix in self.grid.selectionModel().selectedIndexes()]
        if not rows and self.grid.currentIndex().isValid():
            rows = [self.grid.currentIndex().row()]
        self.model.fetch_rows(rows, fn)

    def selected_photos(self) -> list:
        """The selected photos among the rows read (see :meth:`with_selection` for all)."""
        rows = sorted(ix.row() for ix in self.grid.selectionModel().selectedIndexes())
        photos = [self.model.photo(r) for r in rows]
        if not photos and (p := self.grid.currentIndex().data(PhotoRole)) is not None:
            photos = [p]
        return [p for p in photos if p is not None]

    def _gallery_context(self, pos: QPoint) -> None:
        index = self.grid.indexAt(pos)
        if not index.isValid():
            return
        if not self.grid.selectionModel().isSelected(index):
            self.grid.setCurrentIndex(index)
        where = self.grid.viewport().mapToGlobal(pos)
        self.with_selection(lambda photos: self._photo_menu(photos, where))

    def _photo_menu(self, photos: list, global_pos, from_results: bool = False) -> None:
        if not photos:
            return
        menu = self.build_photo_menu(photos, from_results)
        menu.exec(global_pos)

    def build_photo_menu(self, photos: list, from_results: bool = False) -> QMenu:
        p = photos[0]
        menu = QMenu(self)
        menu.addAction("Open", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(p.path)))
        menu.addAction("Show in file manager", lambda: self.revealer.reveal([p.path]))
        menu.addAction("Copy path" + ("s" if len(photos) > 1 else ""), lambda: self.copy_paths(photos))
        menu.addSeparator()
        menu.addAction("Find similar", lambda: self._find_similar(p))
        menu.addAction("Find what this is a copy of", lambda: self.find_copies(p))
        menu.addAction("Preview", lambda: self.show_preview(p))
        album = menu.addAction("Add to album…", lambda: self.add_to_album(photos))
        album.setEnabled(not self.service.readonly)
        n = len(photos)
        trash = menu.addAction(f"Move {n} to trash…" if n > 1 else "Move to trash…", lambda: self.trash_photos(photos))
        trash.setEnabled(not self.service.readonly)
        q = self.history.current
        if from_results and q is not None and q.is_photo:
            menu.addSeparator()
            good = menu.addAction("Mark as similar", lambda: self.mark(q.photo, p, True))
            bad = menu.addAction("Mark as not similar", lambda: self.mark(q.photo, p, False))
            good.setEnabled(not self.service.readonly)
            bad.setEnabled(not self.service.readonly)
        return menu

    def _find_similar(self, photo) -> None:
        self.select_photo(photo, or_query=True)

    def find_copies(self, photo) -> None:
        """Show what ``photo`` (a library photo) is a copy of: its verified copies, in a
        background job (``Library.copies_of``); Back returns to the previous query."""
        self.set_query(Query(photo=photo, copies=True))

    def copy_paths(self, photos: list) -> None:
        if photos:
            QGuiApplication.clipboard().setText("\n".join(p.path for p in photos))
            self.statusBar().showMessage(f"Copied {len(photos)} path{'s' if len(photos) > 1 else ''}", 3000)

    def mark(self, query_photo, result_photo, similar: bool) -> None:
        def done(result=None, error=None):
            if error is not None:
                self.show_message(f"Could not save the mark: {error_text(error, 'Saving the mark')}")
                return
            label = 1 if similar else -1
            cur = self.history.current
            if cur is not None and cur.is_photo and cur.photo.id == query_photo.id:
                self.panel.model.set_mark(result_photo.id, label)
            self.statusBar().showMessage(
                f"Marked {result_photo.name} as {'similar' if similar else 'not similar'} to {query_photo.name}", 4000)

        self.service.call(lambda lib: lib.mark(query_photo.id, result_photo.id, similar=similar), done,
                          name="saving a mark")

    def add_to_album(self, photos: list) -> None:
        if not photos or not self.service.is_open:
            return
        ids = [p.id for p in photos]

        def added(result=None, error=None):
            if error is not None:
                self.show_message(f"Could not add to the album: {error_text(error, 'Adding to the album')}")
            else:
                self.statusBar().showMessage(f"Album “{result.name}” now has {result.count} photos", 4000)
                self.sidebar.refresh()
                if self.sidebar.selection() == ("album", result.name):  # the album shown grew
                    self.model.reload(keep=self.grid.currentIndex().data(PhotoRole), then=self._keep_current)

        def ask(result=None, error=None):
            if error is not None:
                self.show_message(f"Could not read the albums: {error_text(error, 'Reading the albums')}")
                return
            name, ok = QInputDialog.getItem(
                self, "Add to album", f"Add {len(ids)} photo{'s' if len(ids) > 1 else ''} to the album "
                "(pick one or type a new name):", result, 0, True)
            if ok and name.strip():
                self.service.call(lambda lib: lib.add_to_album(name.strip(), ids), added, name="adding to an album")

        self.service.call(lambda lib: [a.name for a in lib.albums()], ask, name="reading the albums")

    def show_preview(self, photo=None) -> None:
        photo = photo or self.grid.currentIndex().data(PhotoRole)
        if photo is None:
            return
        if self._preview is None:
            self._preview = PreviewDialog(self)
            self._preview.stepRequested.connect(self._preview_step)
        self._preview.show_photo(photo, tooltip(photo).replace("\n", "  ·  "),
                                 self.thumbs.get(photo.path, photo.size, photo.mtime_ns))
        self._preview.show()
        self._preview.raise_()

    def _preview_step(self, step: int) -> None:
        row = self.grid.currentIndex().row() + step
        if 0 <= row < self.model.rowCount():
            self.grid.setCurrentIndex(self.model.index(row))
            self.model.fetch_row(row, self.show_preview)

    def show_duplicates(self) -> DuplicatesView:
        if self._dup_view is None:
            self._dup_view = DuplicatesView(self.service, self.thumbs, self)
            self._dup_view.trashed.connect(self._on_trashed)
            self.service.stateChanged.connect(self._dup_view.bound_changed)
        self._dup_view.show()
        self._dup_view.raise_()
        self._dup_view.refresh()
        return self._dup_view

    def _on_trashed(self, paths: list) -> None:
        self.undo_bar.offer(paths)  # from the gallery, the similar panel or the duplicates view
        gone = set(paths)
        self.panel.model.remove_paths(gone)  # the gallery is read again below
        q = self.history.current
        if q is not None and q.is_photo and q.photo.path in gone:
            self.history.clear()
            self.run_query()  # the panel goes back to its hint
        self._update_count()
        self.refresh_photos()  # the status bar's count and the toolbar's come from one fresh read

    # -- trash and folders ---------------------------------------------------------------------
    def trash_selected(self) -> None:
        self.with_selection(self.trash_photos)

    def trash_photos(self, photos: list) -> bool:
        """Ask (count, size, the list), then move them to the system trash in a job."""
        if not photos or not self.service.is_open or self.service.readonly:
            return False
        if self.service.exclusive:
            self.show_message(self.service.refusal())
            return False
        if not trash_dialog.confirm_trash(self, photos):
            return False

        def done(result=None, error=None):
            if error is not None:
                self.show_message(f"Nothing was moved: {error_text(error, 'Moving to the trash')}", timeout=0)
                return
            moved, failed = result
            if moved:
                self._on_trashed(moved)  # the undo bar says how many moved
            if failed:
                text = f"Moved {len(moved)} photo{'s' if len(moved) != 1 else ''} to the trash."
                self.show_message(text + f" {len(failed)} could not be moved: {failed[0][0]}: {failed[0][1]}",
                                  timeout=0)
            self.trashDone.emit(moved)

        self.service.call(lambda lib: trash_dialog.move_to_trash(lib, photos), done, kind=Kind.EXCLUSIVE,
                          name="moving photos to the trash")
        return True

    def undo_trash(self, paths: list) -> bool:
        """Put photos the app moved to the trash back (freedesktop trash) and read them into
        the library again; elsewhere the engine's sentence says where to restore them."""
        if not paths or not self.service.is_open or self.service.readonly:
            return False
        if self.service.exclusive:
            self.show_message(self.service.refusal())
            self.undo_bar.offer(paths)  # still on offer
            return False

        def job(lib):
            restored, failed = lib.restore_from_trash(paths)
            if restored:
                lib.scan([], files=restored)  # just those files, not a re-scan of every folder
            return restored, failed

        def done(result=None, error=None):
            if error is not None:
                self.show_message(f"Could not undo: {error_text(error, 'Restoring from the trash')}", timeout=0)
                return
            restored, failed = result
            n = len(restored)
            text = f"Restored {n:,} photo{'s' if n != 1 else ''} from the trash." if n else "Nothing was restored."
            if failed:
                text += f" {len(failed)} could not be restored: {failed[0][0]}: {failed[0][1]}."
            self.show_message(text, timeout=0 if failed else 7000)
            self.refresh_photos()  # the gallery, the status bar and the toolbar's count from one read
            if self._dup_view is not None and self._dup_view.isVisible():
                self._dup_view.refresh()
            self.trashUndone.emit(restored)

        self.service.call(job, done, kind=Kind.EXCLUSIVE, name="restoring photos from the trash")
        return True

    def choose_folder_to_remove(self) -> None:
        roots = self.info.roots if self.info is not None else []
        if not roots:
            self.show_message("This library has no folders yet.")
            return
        folder, ok = QInputDialog.getItem(self, "Remove a folder from the library",
                                          "Forget this folder and its photos (the files stay where they are):",
                                          roots, 0, False)
        if ok and folder:
            self.remove_folder(folder)

    def remove_folder(self, folder: str) -> bool:
        if self.service.exclusive:  # a scan, a model switch, a trash: never beside one
            self.show_message(self.service.refusal())
            return False

        def done(result=None, error=None):
            if error is not None:
                self.show_message(f"The folder stays: {error_text(error, 'Removing the folder')}", timeout=0)
                return
            self.show_message(f"Removed {folder} from the library ({result:,} photos forgotten; "
                              "the files were not touched).")
            self.history.clear()
            self.panel.show_query(None, False)
            self.refresh_photos()
            self.folderRemoved.emit(folder)

        self.service.call(lambda lib: lib.remove_root(folder), done, kind=Kind.EXCLUSIVE,
                          name="removing a folder")
        return True

    def show_finetune(self) -> None:
        try:
            from .finetune_dialog import FineTuneDialog
        except ImportError:
            self.show_message("Fine-tuning is not part of this installation.")
            return
        if not self.service.is_open:
            return
        if self._finetune is None or not self._finetune.isVisible():
            self._finetune = FineTuneDialog(self.service, self)
        self._finetune.show()
        self._finetune.raise_()

    def show_models(self):
        """Tools → Models: list this library's encoders and switch between them."""
        from .models_dialog import ModelsDialog

        if not self.service.is_open:
            return None
        if self._models is None or not self._models.isVisible():
            self._models = ModelsDialog(self.service, self)
            self._models.modelRenamed.connect(lambda *_: self.refresh_photos())  # the status bar names it
        self._models.show()
        self._models.raise_()
        return self._models

    def _on_model_changed(self, state) -> None:
        """The library now uses another encoder (whichever dialog switched): new vectors,
        so new results, and its own duplicate threshold."""
        self.device = None
        self._set_bands(state)
        self.show_message(f"Now searching with the model “{state.model_name or state.encoder_id}”.")
        self.refresh_photos()
        self.run_query()
        if self._dup_view is not None:
            self._dup_view.model_changed(state)
        self.service.warm_up()  # encoderReady follows

    # -- help -------------------------------------------------------------------------------------
    def show_help(self) -> None:
        QDesktopServices.openUrl(QUrl(about.help_url()))

    def show_about(self) -> QMessageBox:
        encoder = self.info.encoder_id if self.info is not None else (
            self.service.state.encoder_id if self.service.state else "")
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About photosim", about.about_html(encoder),
                          QMessageBox.StandardButton.Close, self)
        box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        box.setObjectName("about")
        box.setModal(False)
        box.show()
        return box

    # -- closing --------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.save_settings()
        if self.service.scanning:
            self.scan_bar.label.setText("Stopping the scan…")
            QApplication.processEvents()
        self.thumbs.shutdown()
        self.watch.stop()
        self.service.close()
        super().closeEvent(event)

    def event(self, e) -> bool:
        if e.type() == QEvent.Type.PaletteChange:
            self.grid.viewport().update()
        return super().event(e)


def _finetune_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("photosim.gui.finetune_dialog") is not None
    except (ImportError, ValueError):
        return False


__all__ = ["MainWindow", "photo_date"]
