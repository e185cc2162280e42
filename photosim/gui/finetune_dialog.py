"""The fine-tune dialog: teach photosim what "similar" means to this user.

Pick albums (and see how many similar / not similar marks exist), choose a mode
(Automatic by default: standard where it takes little longer than quick, see
photosim.training.choose; or quick, standard, thorough), start; a live loss curve and validation metrics follow the training,
which runs as an exclusive :class:`LibraryService` job with the engine's progress
and cancel token. At the end the dialog compares the active model and the new one
(metrics and a few held-out example queries side by side) and the user accepts
(re-embed, switch) or discards (the new model is deleted). Until Accept nothing the
user relies on changes. Works inside the app (``FineTuneDialog(service, parent)``)
or alone (``python -m photosim.gui.finetune_dialog [LIBRARY]``).
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from photosim.card import MAX_NAME
from photosim.errors import Cancelled, PhotosimError

from .common import read_image, show_progress
from .service import Kind, error_text

THUMB = 64
# In words first; the usual names in each row's tooltip.
METRICS = (("recall_at_1", "First match from the same album"), ("map_at_r", "Album photos ranked first"),
           ("precision_at_10", "Same-album photos in the top 10"))
METRIC_TIPS = {"recall_at_1": "Recall@1: how often a photo's most similar photo is from its own album",
               "map_at_r": "MAP@R: how well a photo's album-mates come before every other photo",
               "precision_at_10": "Precision@10: the share of the 10 most similar photos from the same album"}
MIN_ALBUMS, MIN_PHOTOS = 3, 4  # what makes a comparison on held-out photos possible
# A fine-tune from marks alone is judged on held-out marks instead.
MARK_METRICS = (("mark_auc", "Held-out marks ranked right"), ("mark_accuracy", "Held-out marks judged right"))
METRIC_TIPS.update({
    "mark_auc": "AUC: how often a pair you marked similar scores above a pair you marked not similar, "
                "on marks held out from training",
    "mark_accuracy": "The share of held-out marks on the right side of the cut that fits your other marks best"})


class LossCurve(QWidget):
    """Training loss per step (blue) and validation MAP@R per epoch (green, 0-1 scale). The
    best validated epoch is the one a fine-tune keeps, so it is the one drawn large and named;
    a thorough run's second stage starts at a dashed line."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.losses: list[float] = []
        self.val: list[tuple[int, float]] = []  # (step, map@r)
        self.stages: list[tuple[int, str]] = []  # (first step, name)
        self.setMinimumSize(360, 120)

    def clear(self) -> None:
        self.losses, self.val, self.stages = [], [], []
        self.update()

    def mark_stage(self, name: str) -> None:
        if self.losses and not any(step == len(self.losses) for step, _ in self.stages):
            self.stages.append((len(self.losses), name))
            self.update()

    def add_loss(self, value: float) -> None:
        self.losses.append(value)
        self.update()

    def add_val(self, value: float) -> None:
        self.val.append((len(self.losses), value))
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(420, 140)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        r = QRectF(self.rect()).adjusted(56, 10, -40, -22)
        p.setPen(QPen(pal.mid().color(), 1))
        p.drawRect(r)
        text = pal.text().color()
        p.setPen(text)
        p.drawText(QRectF(0, r.bottom() + 4, self.width(), 16), Qt.AlignmentFlag.AlignCenter,
                   "steps" if self.losses else "the loss curve appears here while training")
        if not self.losses:
            return
        n = max(2, len(self.losses))
        hi = max(self.losses) or 1.0
        # Smoothed loss (running mean over a few steps) keeps the curve readable.
        w = max(1, len(self.losses) // 60)
        smooth = [sum(self.losses[max(0, i - w):i + 1]) / (i + 1 - max(0, i - w)) for i in range(len(self.losses))]
        path = QPainterPath()
        for i, v in enumerate(smooth):
            pt = QPointF(r.left() + r.width() * i / (n - 1), r.bottom() - r.height() * min(v / hi, 1.0))
            path.moveTo(pt) if i == 0 else path.lineTo(pt)
        p.setPen(QPen(QColor(40, 110, 220), 2))
        p.drawPath(path)
        p.drawText(QRectF(0, r.top() - 4, 52, 16), Qt.AlignmentFlag.AlignRight, f"{hi:.3g}")
        p.drawText(QRectF(0, r.bottom() - 12, 52, 16), Qt.AlignmentFlag.AlignRight, "0")
        p.drawText(QRectF(r.left(), r.bottom() + 4, 120, 16), Qt.AlignmentFlag.AlignLeft, "— loss")
        for step, name in self.stages:
            x = r.left() + r.width() * step / (n - 1)
            p.setPen(QPen(pal.mid().color(), 1, Qt.PenStyle.DashLine))
            p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
            p.setPen(text)
            p.drawText(QRectF(x + 4, r.top() + 2, 160, 16), Qt.AlignmentFlag.AlignLeft, name)
        if self.val:
            p.setPen(QPen(QColor(30, 150, 70), 2))
            pts = [QPointF(r.left() + r.width() * max(0, s - 1) / (n - 1), r.bottom() - r.height() * v) for s, v in self.val]
            for a, b in zip(pts, pts[1:]):
                p.drawLine(a, b)
            best = max(range(len(self.val)), key=lambda i: self.val[i][1])
            for pt in pts:
                p.drawEllipse(pt, 3, 3)
            p.setBrush(QColor(30, 150, 70))
            p.drawEllipse(pts[best], 5, 5)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QColor(30, 150, 70))
            p.drawText(QRectF(r.right() + 4, r.top() - 4, 36, 16), Qt.AlignmentFlag.AlignLeft, "1.0")
            p.drawText(QRectF(r.right() + 4, r.bottom() - 12, 36, 16), Qt.AlignmentFlag.AlignLeft, "0")
            p.drawText(QRectF(r.right() - 260, r.bottom() + 4, 260, 16), Qt.AlignmentFlag.AlignRight,
                       f"● best validation MAP@R {self.val[best][1]:.3f}")


def _thumb(path: str) -> QPixmap:
    image, _error = read_image(path, THUMB)
    if image.isNull():
        pm = QPixmap(THUMB, THUMB)
        pm.fill(QColor(200, 200, 200))
        return pm
    return QPixmap.fromImage(image)


def _thumb_label(path: str, good: bool | None) -> QLabel:
    label = QLabel()
    label.setPixmap(_thumb(path))
    label.setFixedSize(THUMB + 8, THUMB + 8)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    colour = "#888" if good is None else ("#1e9646" if good else "#d03030")
    label.setStyleSheet(f"border: 3px solid {colour}; background: palette(base);")
    label.setToolTip(path + ("" if good is None else ("\nsame album" if good else "\nanother album")))
    return label


class FineTuneDialog(QDialog):
    """Fine-tune the library's model on its albums and marks; Accept switches to the result."""

    model_accepted = Signal(str)
    albumsMade = Signal(int)

    def __init__(self, service, parent=None):
        super().__init__(parent)
        self.service = service
        self.result = None
        self._job = None
        self._n_marks = 0
        self._estimate = None  # (settings, Estimate) of the last estimate
        self._estimate_gen = 0
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(250)
        self._estimate_timer.timeout.connect(self._estimate_now)
        self.setWindowTitle("Teach photosim what similar means to you")
        self.resize(780, 820)

        root = QVBoxLayout(self)
        intro = QLabel("photosim learns from your albums: photos of one album should come out similar, "
                       "photos of different albums not. Your similar / not similar marks count too. "
                       "Nothing changes until you accept the result.")
        intro.setWordWrap(True)
        root.addWidget(intro)

        top = QHBoxLayout()
        albums_box = QGroupBox("Albums to learn from")
        ab = QVBoxLayout(albums_box)
        self.album_list = QListWidget()
        self.album_list.setMinimumHeight(72)
        ab.addWidget(self.album_list)
        self.albums_hint = QLabel()  # a full-width row under the boxes (see below)
        self.albums_hint.setWordWrap(True)
        self.albums_hint.setObjectName("albumsHint")
        self.albums_hint.setStyleSheet("#albumsHint { background: palette(tool-tip-base); color: palette(tool-tip-text);"
                                       " border: 1px solid palette(mid); border-radius: 4px; padding: 6px; }")
        self.from_folders_btn = QPushButton("Make albums from folders…")
        self.from_folders_btn.setToolTip("Pick a folder: each of its sub-folders becomes an album (the photos "
                                         "are scanned into the library; nothing is moved or copied)")
        self.from_folders_btn.clicked.connect(self.albums_from_folders)
        ab.addWidget(self.from_folders_btn, 0, Qt.AlignmentFlag.AlignLeft)
        self.marks_check = QCheckBox()
        ab.addWidget(self.marks_check)
        self.marks_hint = QLabel()  # how many marks there are and what more would help
        self.marks_hint.setWordWrap(True)
        self.marks_hint.setObjectName("marksHint")
        ab.addWidget(self.marks_hint)
        top.addWidget(albums_box, 3)

        mode_box = QGroupBox("Training")
        mb = QVBoxLayout(mode_box)
        self.auto = QRadioButton("Automatic: Standard where it takes little longer, else Quick")
        self.auto.setToolTip("Standard learns much more; it is chosen when the estimate says it takes at most "
                             "10 minutes longer than Quick (accepting it re-embeds the whole library)")
        self.quick = QRadioButton("Quick: adjusts only the final step (seconds)")
        self.quick.setToolTip("Retrains the projection head on features already computed")
        self.standard = QRadioButton("Standard: also relearns how photos are seen, a little (minutes)")
        self.standard.setToolTip("Also retrains the network's last blocks, from what making albums from folders "
                                 "kept of each photo; accepting it reads again the photos outside those albums")
        self.thorough = QRadioButton("Thorough: relearns more of how photos are seen (up to half an hour)")
        self.thorough.setToolTip("Also retrains the network's last blocks, reading every labelled photo again; "
                                 "accepting it reads every photo of the library again")
        self.auto.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.auto)
        group.addButton(self.quick)
        group.addButton(self.standard)
        group.addButton(self.thorough)
        mb.addWidget(self.auto)
        mb.addWidget(self.quick)
        mb.addWidget(self.standard)
        mb.addWidget(self.thorough)
        row = QHBoxLayout()
        row.addWidget(QLabel("Training rounds:"))
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 500)
        self.epochs.setSpecialValueText("auto")  # 0: the engine decides from the number of photos
        self.epochs.setToolTip("Epochs: how many times training goes through your photos; auto picks a "
                               "number from how many there are")
        self.epochs.setValue(0)
        row.addWidget(self.epochs)
        row.addStretch(1)
        mb.addLayout(row)
        buttons = QHBoxLayout()
        self.start_btn = QPushButton("Start")
        self.start_btn.setDefault(True)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        buttons.addWidget(self.start_btn)
        buttons.addWidget(self.cancel_btn)
        mb.addLayout(buttons)
        mb.addStretch(1)
        top.addWidget(mode_box, 2)
        root.addLayout(top)
        self.estimate_label = QLabel()  # the duration, told before Start (a row of its own: a sentence)
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setObjectName("estimate")
        root.addWidget(self.estimate_label)
        root.addWidget(self.albums_hint)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        root.addWidget(self.progress)
        self.status = QLabel("Choose albums and press Start.")
        self.status.setWordWrap(True)
        root.addWidget(self.status)
        self.curve = LossCurve()
        root.addWidget(self.curve, 1)
        self.curve.setMaximumHeight(200)

        self.metrics_box = QGroupBox("Before / after (held-out photos of your albums)")
        self.metrics_grid = QGridLayout(self.metrics_box)
        root.addWidget(self.metrics_box)
        self.examples_area = QScrollArea()
        self.examples_area.setWidgetResizable(True)
        self.examples_area.setMinimumHeight(THUMB + 14 + 24)  # one row at least; scrolls to the others
        self.examples_area.setFrameShape(QFrame.Shape.NoFrame)
        root.addWidget(self.examples_area, 2)

        # The verdict and its notes get a full-width row of their own: they can run to a few lines.
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setMinimumHeight(2 * self.message.fontMetrics().lineSpacing() + 4)
        root.addWidget(self.message)
        end = QHBoxLayout()
        self.name_label = QLabel("Name the new model:")
        self.name_edit = QLineEdit()  # filled with a name made from the albums and the date
        self.name_edit.setPlaceholderText("e.g. Family albums")
        self.name_edit.setToolTip("What the Models list and the status bar call it (you can rename it later)")
        self.name_edit.setMinimumWidth(240)
        self.name_edit.setMaxLength(MAX_NAME)
        self.name_label.setBuddy(self.name_edit)
        for w in (self.name_label, self.name_edit):
            w.setEnabled(False)
            end.addWidget(w)
        end.addStretch(1)
        self.discard_btn = QPushButton("Discard")
        self.accept_btn = QPushButton("Accept")
        self.close_btn = QPushButton("Close")
        for b in (self.discard_btn, self.accept_btn):
            b.setEnabled(False)
        end.addWidget(self.discard_btn)
        end.addWidget(self.accept_btn)
        end.addWidget(self.close_btn)
        root.addLayout(end)

        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.accept_btn.clicked.connect(self.accept_model)
        self.discard_btn.clicked.connect(self.discard_model)
        self.close_btn.clicked.connect(self.reject)
        # Any change of what would be trained tells the duration again.
        self.album_list.itemChanged.connect(lambda _item: self.update_estimate())
        group.buttonToggled.connect(lambda _b, on: on and self.update_estimate())
        self.marks_check.toggled.connect(lambda _on: self.update_estimate())
        self.epochs.valueChanged.connect(lambda _v: self.update_estimate())
        self._fill_metrics(None)
        self.refresh_labels()

    # -- labels ------------------------------------------------------------
    def refresh_labels(self) -> None:
        """Re-read the albums and marks (in a job) and list them."""
        def read(lib):
            verdicts = sum(1 for v in lib.verdicts().values() if v == "not duplicates")
            return lib.albums(), lib.marks(), verdicts

        self.service.call(read, self._labels_read, name="reading albums", owner=self)

    def _labels_read(self, result=None, error=None) -> None:
        if error is not None:
            self._set_message(f"Could not read the albums: {error_text(error, 'Reading the albums')}", ok=False)
            return
        albums, marks, verdicts = result
        self.album_list.blockSignals(True)  # one estimate for the whole list, below
        self.album_list.clear()
        for a in albums:
            item = QListWidgetItem(f"{a.name}   ({a.count} photo{'s' if a.count != 1 else ''}"
                                   f"{', from a folder' if a.source == 'folder' else ''})")
            item.setData(Qt.ItemDataRole.UserRole, a.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if a.count >= 2 else Qt.CheckState.Unchecked)
            if a.count < 2:
                item.setToolTip("an album needs at least two photos")
            self.album_list.addItem(item)
        self.album_list.blockSignals(False)
        usable = [a for a in albums if a.count >= MIN_PHOTOS]
        alone = sum(a.count >= 2 for a in albums) < 2  # no two albums: a fine-tune learns from marks alone
        if len(usable) < MIN_ALBUMS:
            have = (f"You have {len(usable)} album{'s' if len(usable) != 1 else ''} with {MIN_PHOTOS} or more photos. "
                    if albums else "You have no albums yet. ")
            self.albums_hint.setText(
                f"{have}Put at least {MIN_PHOTOS} photos into each of {MIN_ALBUMS} or more albums, so that some can "
                "be held back to check the new model: right-click photos in the gallery → Add to album, or make "
                "albums from folders (one album per sub-folder)."
                + (" Until then photosim learns from your marks alone." if alone and (marks or verdicts) else ""))
            self.albums_hint.show()
        else:
            self.albums_hint.hide()
        self._n_marks = len(marks) + verdicts
        pos = sum(1 for m in marks if m.label > 0)
        self.marks_check.setText("Use my similar / not similar marks")
        self.marks_check.setChecked(bool(self._n_marks))
        self.marks_check.setEnabled(bool(self._n_marks) and not self.busy)
        self.marks_hint.setText(self.marks_words(pos, len(marks) - pos, verdicts, alone))
        self.update_estimate()

    @staticmethod
    def marks_words(similar: int, not_similar: int, verdicts: int = 0, alone: bool = False) -> str:
        """"12 similar and 3 not-similar marks; mark at least 20 of each for a useful result"."""
        from photosim.training import USEFUL_EACH, marks_in_words

        if not similar and not not_similar and not verdicts:
            return ("No marks yet: in the similar-photos panel, mark results similar or not similar "
                    "(right-click); photosim can learn from those alone too.")
        text = marks_in_words(similar, not_similar)
        if verdicts:
            text += f" and {verdicts} 'not duplicates' verdict{'s' if verdicts != 1 else ''}"
        if min(similar, not_similar) < USEFUL_EACH:
            text += f"; mark at least {USEFUL_EACH} of each for a useful result"
        if alone:
            text += ". Without two albums photosim learns from the marks alone and checks the result on a "\
                    "fifth of them, held back"
        return text + "."

    def mode(self) -> str:
        """The chosen mode: "auto", "quick", "standard" or "thorough"."""
        if self.auto.isChecked():
            return "auto"
        return "standard" if self.standard.isChecked() else "thorough" if self.thorough.isChecked() else "quick"

    # -- the duration, told before Start -------------------------------------
    def _settings(self) -> tuple:
        mode = self.mode()
        return tuple(self.selected_albums()), mode, self.marks_check.isChecked(), self.epochs.value() or None

    def update_estimate(self) -> None:
        """Tell the duration again for the current choices (soon: a burst of changes asks once)."""
        if not self.busy:
            self.estimate_label.setText("Estimating how long it will take…")
            self._estimate_timer.start()

    def _estimate_now(self) -> None:
        settings = self._settings()
        albums, mode, use_marks, epochs = settings
        self._estimate_gen += 1
        gen = self._estimate_gen

        def estimate(lib):
            from photosim.training import choose_mode, estimate_finetune

            if mode == "auto":
                return choose_mode(lib, list(albums), use_marks=use_marks, epochs=epochs)
            return estimate_finetune(lib, list(albums), mode=mode, use_marks=use_marks, epochs=epochs)

        def done(result=None, error=None):
            if gen != self._estimate_gen:
                return  # the choices changed meanwhile: a newer estimate follows
            if error is not None:
                self._estimate = None
                self.estimate_label.setText(error_text(error, "Estimating"))
                return
            chose = ""
            if mode == "auto":  # a ModeChoice
                chose = f"Automatic picks {result.mode.capitalize()}: {result.reason}. "
                result = result.estimate
            self._estimate = (settings, result)
            accept = result.stages.get("accept", 0.0)
            self.estimate_label.setText(
                f"{chose}This will take {result.words([k for k in result.stages if k != 'accept'])} "
                f"{result.device_words}; accepting the result then takes {self._duration(accept)}.")

        self.service.call(estimate, done, name="estimating the duration", owner=self)

    @staticmethod
    def _duration(seconds: float, about: bool = True) -> str:
        from photosim.training import duration

        return duration(seconds, about)

    def selected_albums(self) -> list[str]:
        out = []
        for i in range(self.album_list.count()):
            item = self.album_list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(Qt.ItemDataRole.UserRole))
        return out

    def albums_from_folders(self, folder: str | None = None) -> None:
        """Each sub-folder of a folder the user picks becomes an album (scanned in a job)."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "A folder whose sub-folders become albums")
        if not folder:
            return
        self.from_folders_btn.setEnabled(False)
        self.status.setText(f"Making albums from the sub-folders of {folder}…")

        def done(result=None, error=None):
            self.from_folders_btn.setEnabled(True)
            if error is not None:
                self._set_message(f"No albums were made: {error_text(error, 'Making albums')}", ok=False)
                return
            self.status.setText(f"Made {len(result)} album{'s' if len(result) != 1 else ''} from {folder}.")
            self.albumsMade.emit(len(result))
            self.refresh_labels()

        self.service.start("making albums", lambda lib, job: lib.import_albums(folder, progress=job.report,
                                                                             cancel=job.token),
                           done, owner=self)

    # -- training ------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._job is not None and not self._job.finished

    def _busy(self, busy: bool) -> None:
        self.start_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        self.album_list.setEnabled(not busy)
        for w in (self.auto, self.quick, self.standard, self.thorough, self.epochs, self.close_btn):
            w.setEnabled(not busy)
        self.marks_check.setEnabled(not busy and self._n_marks > 0)

    def start(self) -> None:
        self._estimate_timer.stop()
        kept, self.result = self.result, None
        previous = kept.model_id if kept is not None else None
        self.accept_btn.setEnabled(False)
        self.discard_btn.setEnabled(False)
        albums = self.selected_albums()
        mode = self.mode()
        epochs = self.epochs.value() or None
        use_marks = self.marks_check.isChecked()
        told = self._estimate[1] if self._estimate and self._estimate[0] == self._settings() else None
        if mode == "auto" and told is not None:
            mode = told.mode  # what the estimate shown chose
        self.curve.clear()
        self._fill_metrics(None)
        self._set_examples([])
        self._set_message("")
        self.progress.setRange(0, 0)
        self.status.setText("Preparing: reading cached features of your albums…")

        def job(lib, job):
            from photosim.training import example_queries

            if previous is not None:  # the result of the last run, never accepted
                lib.delete_model(previous)
            # mode "auto" only when started before its estimate came: the fine-tune chooses then
            result = lib.finetune(albums, use_marks=use_marks, mode=mode, epochs=epochs,
                                  progress=job.report, cancel=job.token, estimate=told)
            try:
                examples = example_queries(lib, result)
                ids = {e["query"] for e in examples}
                for e in examples:
                    ids.update(p for p, _ in e["before"] + e["after"])
                paths = {pid: p.path for pid, p in lib.photos_by_id(ids).items()}
            except Exception:  # noqa: BLE001 - examples are a nicety, never a failure
                examples, paths = [], {}
            return result, examples, paths

        self._run(self.service.start("fine-tuning", job, self._trained, progress=self._on_progress, owner=self))
        if self._job is None:  # refused (the reason follows): the last result stays
            self.result = kept

    def _run(self, job) -> None:
        self._job = job
        self._busy(job is not None)

    def cancel(self) -> None:
        if self.busy:
            self._job.cancel()
            self.status.setText("Cancelling…")

    def _on_progress(self, p) -> None:
        from photosim.training import TrainProgress  # loaded already: the job imported it

        if not isinstance(p, TrainProgress):  # re-embedding for the switch
            show_progress(self.progress, self.status, p)
            return
        if p.stage == "preparing":  # standard and thorough modes read (or load) every labelled photo first
            self.curve.mark_stage("last blocks")
            self.progress.setRange(0, max(1, p.steps))
            self.progress.setValue(p.step)
            eta = f" · about {p.eta:.0f} s left" if p.eta is not None else ""
            what = p.detail or "reading labelled photos"  # or loading the taps their scan kept
            self.status.setText(f"{what[:1].upper()}{what[1:]}: {p.step} / {p.steps}{eta}")
            return
        total = p.epochs * p.steps
        self.progress.setRange(0, max(1, total))
        self.progress.setValue((p.epoch - 1) * p.steps + p.step)
        if p.stage == "training" and p.loss is not None:
            self.curve.add_loss(p.loss)
        if p.stage == "validating" and p.val:
            self.curve.add_val(p.val.get("map_at_r", 0.0))
        eta = f" · about {p.eta:.0f} s left" if p.eta is not None else ""
        loss = f" · loss {p.loss:.4f}" if p.loss is not None else ""
        val = f" · validation MAP@R {p.val['map_at_r']:.3f}" if p.val and "map_at_r" in p.val else ""
        self.status.setText(f"Epoch {p.epoch} of {p.epochs}{loss}{val}{eta}")

    def _trained(self, result=None, error=None) -> None:
        self._busy(False)
        if error is not None:
            self._failed(error, "Fine-tuning")
            return
        self.result, examples, paths = result
        r = self.result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        told = f" (estimated {self._duration(r.record.estimated_s)})" if r.record.estimated_s is not None else ""
        took = self._duration(r.seconds, about=False)
        if r.marks_only:
            self.status.setText(f"Trained in {took}{told} on {r.n_marks} marks alone; {r.n_val} of them held out "
                                f"to check the result.")
        else:
            marks = f" and {r.n_marks} mark" + ("s" if r.n_marks != 1 else "") if r.n_marks else ""
            self.status.setText(f"Trained in {took}{told} on {r.n_train} photos from {len(r.albums)} albums"
                                f"{marks}; {r.n_val} held out for the comparison (best epoch {r.best_epoch}).")
        self._fill_metrics(r)
        self._set_examples(examples, paths)
        refusal = self.refusal(r)
        if refusal:
            verdict = refusal
        elif r.improved:
            what = "orders your held-out marks better" if r.marks_only else "finds your albums better"
            verdict = f"The new model {what}: " + self._better_in_words(r)
        else:
            what = "held-out marks" if r.marks_only else "held-out photos"
            verdict = f"The new model is about as good as the active one on {what}; you may want to discard it."
        self._set_message(" ".join([verdict] + [f"Note: {w}." for w in r.warnings]), ok=r.improved and not refusal)
        self.accept_btn.setEnabled(not refusal)
        self.accept_btn.setToolTip(refusal)
        self.discard_btn.setEnabled(True)
        self.name_edit.setText(r.name)
        for w in (self.name_label, self.name_edit):
            w.setEnabled(not refusal)

    @staticmethod
    def refusal(r) -> str:
        """Why Accept is refused for result ``r`` ("" when it is not)."""
        if getattr(r, "marks_only", False):
            return r.refusal  # the engine's: nothing held out, or worse on the held-out marks
        if not r.n_val:
            return (f"Nothing could be held out to check the new model, so it cannot be accepted: put at least "
                    f"{MIN_PHOTOS} photos into each of {MIN_ALBUMS} or more albums.")
        b, a = r.before.get("map_at_r"), r.after.get("map_at_r")
        if a is not None and b is not None and a < b - 0.0005:
            return (f"The new model ranks album photos worse than the active one ({a:.2f} against {b:.2f} on "
                    "held-out photos), so it cannot be accepted; discard it.")
        return ""

    @staticmethod
    def _better_in_words(r) -> str:
        parts = []
        for key, name in (MARK_METRICS if getattr(r, "marks_only", False) else METRICS):
            b, a = r.before.get(key), r.after.get(key)
            if a is not None and b is not None and abs(a - b) > 0.0005:
                parts.append(f"{name.lower()} {b:.0%} → {a:.0%}")
        return (", ".join(parts) + ".") if parts else "slightly."

    def _failed(self, error: BaseException, what: str) -> None:
        cancelled = isinstance(error, Cancelled)
        message = error_text(error, what)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText("Cancelled." if cancelled else "Stopped.")
        if cancelled and what == "Fine-tuning" and "re-embedding" not in message:
            message = "Fine-tuning cancelled; your active model and library are unchanged."
        elif not isinstance(error, PhotosimError):
            message += "; the active model is unchanged"
        self._set_message(message, ok=None if cancelled else False)
        if self.result is not None:
            self.accept_btn.setEnabled(not self.refusal(self.result))
            self.discard_btn.setEnabled(True)
            for w in (self.name_label, self.name_edit):
                w.setEnabled(self.accept_btn.isEnabled())

    # -- the comparison --------------------------------------------------------
    def _fill_metrics(self, r) -> None:
        marks = bool(r is not None and r.marks_only)
        self.metrics_box.setTitle("Before / after (marks held out from training)" if marks
                                  else "Before / after (held-out photos of your albums)")
        if not self.metrics_grid.count():  # built once; later calls only change the texts
            for c, h in enumerate(["", "active model", "new model", "change"]):
                self.metrics_grid.addWidget(QLabel(f"<b>{h}</b>"), 0, c)
            self._metric_labels = {}
            for row, (key, name) in enumerate(METRICS + MARK_METRICS, 1):
                label = QLabel(name)
                label.setToolTip(METRIC_TIPS[key])
                self.metrics_grid.addWidget(label, row, 0)
                cells = [QLabel("–") for _ in range(3)]
                for c, lab in enumerate(cells, 1):
                    self.metrics_grid.addWidget(lab, row, c)
                self._metric_labels[key] = [label, *cells]
        shown = {k for k, _ in (MARK_METRICS if marks else METRICS)}
        for key, _name in METRICS + MARK_METRICS:
            b = r.before.get(key) if r else None
            a = r.after.get(key) if r else None
            name, cb, ca, cd = self._metric_labels[key]
            for w in (name, cb, ca, cd):
                w.setVisible(key in shown)
            cb.setText("–" if b is None else f"{b:.3f}")
            ca.setText("–" if a is None else f"{a:.3f}")
            if a is not None and b is not None:
                d = a - b
                colour = "#1e9646" if d > 0.0005 else ("#d03030" if d < -0.0005 else "palette(text)")
                cd.setText(f"<span style='color:{colour}'>{d:+.3f}</span>")
            else:
                cd.setText("–")

    def _set_examples(self, examples: list[dict], paths: dict[int, str] | None = None) -> None:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setHorizontalSpacing(4)
        if not examples:
            grid.addWidget(QLabel("Example queries (held-out photos, their nearest photos before and after) "
                                  "appear here after training."), 0, 0)
        else:
            grid.addWidget(QLabel("<b>query</b>"), 0, 0)
            grid.addWidget(QLabel("<b>active model</b> (green: same album)"), 0, 1, 1, 4)
            grid.addWidget(QLabel("<b>new model</b>"), 0, 6, 1, 4)
            for row, e in enumerate(examples, 1):
                grid.addWidget(_thumb_label(paths[e["query"]], None), row, 0)
                for col, (pid, good) in enumerate(e["before"], 1):
                    grid.addWidget(_thumb_label(paths[pid], good), row, col)
                sep = QFrame()
                sep.setFrameShape(QFrame.Shape.VLine)
                grid.addWidget(sep, row, 5)
                for col, (pid, good) in enumerate(e["after"], 6):
                    grid.addWidget(_thumb_label(paths[pid], good), row, col)
            grid.setColumnStretch(10, 1)
        self.examples_area.setWidget(box)

    def _set_message(self, text: str, ok: bool | None = None) -> None:
        colour = {True: "#1e9646", False: "#d03030", None: "palette(text)"}[ok]
        self.message.setStyleSheet(f"color: {colour};")
        self.message.setText(text)

    # -- accept / discard --------------------------------------------------------
    def accept_model(self) -> None:
        """Name the new model (when the user changed the suggested name), then switch to it."""
        if self.result is None or self.busy:
            return
        name = self.name_edit.text()
        self.accept_btn.setEnabled(False)
        self.discard_btn.setEnabled(False)
        if " ".join(name.split()) == self.result.name:
            self._switch_to_result()
            return
        model_id = self.result.model_id

        def named(result=None, error=None):
            if error is not None:  # empty, taken, too long: say why, let the user fix it
                self._set_message(f"Choose another name: {error_text(error, 'Naming the model')}", ok=False)
                self.accept_btn.setEnabled(True)
                self.discard_btn.setEnabled(True)
                self.name_edit.setFocus()
                self.name_edit.selectAll()
                return
            if self.result is not None and self.result.model_id == model_id:
                self.result.name = result
                self.name_edit.setText(result)
                self._switch_to_result()

        self.service.call(lambda lib: lib.rename_model(model_id, name), named, name="naming the model", owner=self)

    def _switch_to_result(self) -> None:
        for w in (self.name_label, self.name_edit):
            w.setEnabled(False)
        self.status.setText(f"Reading your library with “{self.result.name}”…")
        self._run(self.service.switch_model(self.result.model_id, self._accepted, progress=self._on_progress,
                                            owner=self))

    def _accepted(self, result=None, error=None) -> None:
        self._busy(False)
        if error is not None:
            self._failed(error, "Switching to the new model")
            return
        name = self.result.name if self.result is not None else result
        self.result = None
        self._set_message(f"The new model “{name}” is now in use.", ok=True)
        self.model_accepted.emit(result)
        self.accept()

    def _discard_result(self) -> None:
        """Delete the model of the last run (in a job: it writes the library)."""
        if self.result is None:
            return
        model_id, self.result = self.result.model_id, None

        def done(result=None, error=None):  # the dialog may be gone: say it where it can be read
            if error is not None:
                print(f"photosim: the discarded model {model_id} is still there (Tools → Models can "
                      f"delete it): {error_text(error)}", file=sys.stderr)

        self.service.call(lambda lib: lib.delete_model(model_id), done, kind=Kind.EXCLUSIVE,
                          name="deleting the discarded model")

    def discard_model(self) -> None:
        self._discard_result()
        self.accept_btn.setEnabled(False)
        self.discard_btn.setEnabled(False)
        for w in (self.name_label, self.name_edit):
            w.setEnabled(False)
        self._set_message("Discarded; the active model is unchanged.")

    def wait_idle(self, ms: int = 600_000) -> bool:
        """Until the service's jobs (this dialog's included) have finished and called back."""
        return self.service.wait_idle(ms)

    def _stop(self) -> None:
        """Cancel a running job and wait for it, so no result arrives for a closed dialog."""
        if self.busy:
            self.cancel()
            self.service.wait(self._job)

    def reject(self) -> None:
        self._stop()
        self._discard_result()  # a result never accepted is not kept
        super().reject()

    def closeEvent(self, event) -> None:
        self._stop()
        super().closeEvent(event)


def main(argv: list[str] | None = None) -> int:
    """Standalone: ``python -m photosim.gui.finetune_dialog [LIBRARY]``."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    from .service import LibraryService

    argv = sys.argv[1:] if argv is None else argv
    app = QApplication.instance() or QApplication(sys.argv[:1])
    service = LibraryService()
    holder = {}

    def opened(_state):
        holder["dialog"] = dialog = FineTuneDialog(service)
        dialog.finished.connect(app.quit)
        dialog.show()

    def failed(error):
        QMessageBox.critical(None, "photosim", f"Could not open the library: {error_text(error)}")
        app.quit()

    service.opened.connect(opened)
    service.openFailed.connect(failed)
    service.open(argv[0] if argv else None)
    try:
        return app.exec()
    finally:
        service.close()


if __name__ == "__main__":
    raise SystemExit(main())
