"""Tools → Models: every encoder this library has, and switching between them.

A fine-tune that turned out worse in daily use must be easy to leave: the user
picks any earlier model or the bundled one and switches, with progress and
cancel (switching computes every vector first, so cancelling changes nothing).
Each model is listed in plain words: its name (the user's, or one made from how it was
made; *Rename…* changes it), when it was made, from what (albums, marks), what got better
on held-out photos, and whether it is in use or bundled; the id is in the tooltip and the
detail line. Only :meth:`Library.models`, :meth:`Library.use_model`,
:meth:`Library.rename_model` and :meth:`Library.delete_model` are used (the same front
door as ``photosim models``), each in a :class:`LibraryService` job.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from photosim.errors import Cancelled

from .common import confirm, show_progress
from .service import JobRefused, Kind, error_text

COLUMNS = ("Model", "", "Made", "Learnt from", "What got better on held-out photos")
COL_NAME, COL_STATUS, COL_MADE, COL_FROM, COL_BETTER = range(len(COLUMNS))
ModelRole = Qt.ItemDataRole.UserRole


def _made(created: str | None) -> str:
    """"1 Dec 2026, 08:02" (the date a fine-tune was made, in the user's words)."""
    try:
        when = datetime.fromisoformat(created) if created else None
    except ValueError:
        return created or ""
    return f"{when.day} {when.strftime('%b %Y, %H:%M')}" if when else ""


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def learnt_from(m) -> str:
    """"3 albums and 12 marks" (what a fine-tune learnt from)."""
    if m.bundled:
        return "public photos (ImageNet, Caltech-101)"
    ft = m.finetune
    marks = ft.marks if ft is not None else 0
    parts = [_count(len(m.albums), "album")] if m.albums else []
    if marks:
        parts.append(_count(marks, "mark"))
    return " and ".join(parts)


def better_in_words(m) -> str:
    """What changed on held-out photos of the albums, in words: "finds the right album for
    81% of held-out photos, was 64%" (Recall@1: the most similar photo is from the album)."""
    if m.bundled:
        return "the starting point"
    b, a = m.before.get("recall_at_1"), m.after.get("recall_at_1")
    if a is None or b is None:
        b, a = m.before.get("map_at_r"), m.after.get("map_at_r")
        if a is None or b is None:
            return "not measured (nothing could be held out)"
        return f"ranks album photos first {a:.0%} of the way, was {b:.0%}"
    return f"finds the right album for {a:.0%} of photos, was {b:.0%}"


def status_words(m) -> str:
    if m.problem:
        return "cannot be used"
    return " · ".join(w for w, on in (("in use", m.active), ("bundled", m.bundled)) if on)


class ModelsDialog(QDialog):
    model_changed = Signal(str)
    modelRenamed = Signal(str, str)  # model id, its new name

    def __init__(self, service, parent=None):
        super().__init__(parent)
        self.service = service
        self._job = None
        self.setWindowTitle("Models — photosim")
        self.resize(1000, 400)
        root = QVBoxLayout(self)
        intro = QLabel("A model decides which photos count as similar. Switch to any model below; "
                       "searches keep using the one in use until the new one has read every photo. "
                       "Nothing here touches your photos.")
        intro.setWordWrap(True)
        root.addWidget(intro)
        self.tree = QTreeWidget()
        self.tree.setRootIsDecorated(False)
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemSelectionChanged.connect(self._explain_selection)
        self.tree.itemDoubleClicked.connect(lambda *_: self.use_selected())
        root.addWidget(self.tree, 1)
        self.detail = QLabel()  # the selected model: its id and how it was made
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setObjectName("modelDetail")
        self.detail.setStyleSheet("#modelDetail { color: palette(placeholder-text); }")
        root.addWidget(self.detail)
        self.progress = QProgressBar()
        self.progress.hide()
        root.addWidget(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        root.addWidget(self.status)
        row = QHBoxLayout()
        self.use_btn = QPushButton("Use this model")
        self.rename_btn = QPushButton("Rename…")
        self.delete_btn = QPushButton("Delete…")
        self.cancel_btn = QPushButton("Cancel")
        self.close_btn = QPushButton("Close")
        self.use_btn.clicked.connect(self.use_selected)
        self.rename_btn.clicked.connect(self.rename_selected)
        self.delete_btn.clicked.connect(self.delete_selected)
        self.cancel_btn.clicked.connect(self.cancel)
        self.close_btn.clicked.connect(self.reject)
        row.addWidget(self.rename_btn)
        row.addWidget(self.delete_btn)
        row.addStretch(1)
        for b in (self.use_btn, self.cancel_btn, self.close_btn):
            row.addWidget(b)
        root.addLayout(row)
        self._active_name, self._names = "", {}
        self.refresh()

    def _active_text(self) -> str:
        return f"In use: {self._active_name}" if self._active_name else ""

    @property
    def busy(self) -> bool:
        return self._job is not None and not self._job.finished

    def refresh(self) -> None:
        """Re-read the models (in a job) and list them."""
        self.service.call(lambda lib: lib.models(), self._listed, name="listing models", owner=self)

    def _listed(self, result=None, error=None) -> None:
        if error is not None:
            self.status.setText(f"⚠ {error_text(error, 'Listing the models')}")
            return
        keep = self.selected()
        self._names = {m.id: m.name for m in result}
        grey = self.palette().color(self.palette().ColorGroup.Disabled, self.palette().ColorRole.Text)
        self.tree.clear()
        for m in result:
            made = "ships with photosim" if m.bundled else _made(m.created)
            item = QTreeWidgetItem([m.name or m.id, status_words(m), made, learnt_from(m), better_in_words(m)])
            item.setData(0, ModelRole, m)
            tip = f"{m.name}\nid: {m.id}"
            if m.description:
                tip += f"\n{m.description}"
            if m.albums:
                tip += "\nalbums: " + ", ".join(m.albums)
            if m.problem:
                tip += f"\n\nCannot be used: {m.problem}"
            for c in range(len(COLUMNS)):
                item.setToolTip(c, tip)
                if m.problem:
                    item.setForeground(c, grey)
            if m.active:
                font = item.font(0)
                font.setBold(True)
                for c in range(len(COLUMNS)):
                    item.setFont(c, font)
                self._active_name = m.name or m.id
            self.tree.addTopLevelItem(item)
            if keep is not None and m.id == keep.id:
                self.tree.setCurrentItem(item)
        if not self.busy and (not self.status.text() or self.status.text().startswith("In use: ")):
            self.status.setText(self._active_text())
        self._update_buttons()
        self._explain_selection()

    def row_of(self, model_id: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, ModelRole).id == model_id:
                return item
        return None

    def selected(self):
        items = self.tree.selectedItems()
        return items[0].data(0, ModelRole) if items else None

    def _update_buttons(self) -> None:
        m = self.selected()
        busy = self.busy
        writable = not self.service.readonly
        self.use_btn.setEnabled(not busy and m is not None and not m.active and not m.problem)
        self.rename_btn.setEnabled(not busy and writable and m is not None and not m.bundled)
        self.rename_btn.setToolTip("The bundled encoder keeps its name" if m is not None and m.bundled else
                                   "Give the selected model a name of your own")
        self.delete_btn.setEnabled(not busy and m is not None and not m.active and not m.bundled)
        self.cancel_btn.setEnabled(busy)
        self.close_btn.setEnabled(not busy)
        self.tree.setEnabled(not busy)

    def _explain_selection(self) -> None:
        """Say why a model cannot be used rather than leave a greyed button unexplained."""
        m = self.selected()
        if m is None:
            self.detail.setText("")
        else:
            how = {"quick": "quick fine-tune (the final step retrained)",
                   "standard": "standard fine-tune (the last network block and the final step retrained)",
                   "thorough": "thorough fine-tune (the last network blocks and the final step retrained)"}
            what = "photosim's own encoder" if m.bundled else how.get(m.mode or "", "fine-tune")
            based = f" of “{self._names.get(m.based_on, m.based_on)}”" if m.based_on else ""
            ft = m.finetune
            sizes = f" · trained on {ft.n_train} photos, {ft.n_val} held out to check it" if ft and ft.n_train else ""
            self.detail.setText(f"id {m.id} · {what}{based}{sizes}")
        if self.busy:
            return
        if m is not None and m.problem:
            self.status.setText(f"Cannot use {m.name}: it was made for an earlier photosim encoder. "
                                "Fine-tune again from the same albums.")
        elif self.status.text().startswith("Cannot use "):
            self.status.setText(self._active_text())

    def use_selected(self) -> None:
        m = self.selected()
        if m is None or m.active or m.problem or self.busy:
            return
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText(f"Switching to “{m.name}”: reading your photos with it…")
        self._job = self.service.switch_model(m.id, self._switched, progress=self._on_progress, owner=self)
        self._update_buttons()

    def _on_progress(self, p) -> None:
        show_progress(self.progress, self.status, p)

    def _switched(self, result=None, error=None) -> None:
        self.progress.hide()
        self._job = None
        if error is not None:
            if isinstance(error, Cancelled):
                self.status.setText("Cancelled: " + error_text(error))
            elif isinstance(error, JobRefused):
                self.status.setText("⚠ " + error_text(error))
            else:
                self.status.setText("⚠ " + error_text(error, "Switching models").rstrip(".")
                                    + "; the active model is unchanged.")
        else:
            state = self.service.state
            self.status.setText(f"Now searching with “{state.model_name if state else result}”.")
            self.model_changed.emit(result)
        self._update_buttons()
        self.refresh()

    def cancel(self) -> None:
        if self.busy:
            self._job.cancel()
            self.status.setText("Cancelling…")

    def delete_selected(self) -> None:
        m = self.selected()
        if m is None or m.active or m.bundled or self.busy:
            return
        if not confirm(self, "Delete model", f"Delete the model “{m.name}” ({m.id})? Your photos are not touched."):
            return

        def done(result=None, error=None):
            if error is not None:
                self.status.setText(f"⚠ Could not delete “{m.name}”: {error_text(error, 'Deleting the model')}")
            else:
                self.status.setText(f"Deleted “{m.name}”.")
            self.refresh()

        self.service.call(lambda lib: lib.delete_model(m.id), done, kind=Kind.EXCLUSIVE,
                          name="deleting a model", owner=self)

    def rename_selected(self, name: str | None = None) -> None:
        """Ask for a new name (``name``: given, for tests), then store it in a job; an empty,
        taken or too long name gets the engine's one sentence and changes nothing."""
        m = self.selected()
        if m is None or m.bundled or self.busy:
            return
        if name is None:
            name, ok = ask_name(self, "Rename model", "Name:", m.name)
            if not ok:
                return

        def done(result=None, error=None):
            if error is not None:
                self.status.setText(f"⚠ Not renamed: {error_text(error, 'Renaming the model')}")
                return
            self.status.setText(f"Renamed “{m.name}” to “{result}”.")
            self.modelRenamed.emit(m.id, result)
            self.refresh()

        self.service.call(lambda lib: lib.rename_model(m.id, name), done, name="renaming a model", owner=self)

    def wait_idle(self, ms: int = 120_000) -> bool:
        return self.service.wait_idle(ms)

    def reject(self) -> None:
        if self.busy:
            self.cancel()
            return
        super().reject()


def ask_name(parent, title: str, label: str, text: str) -> tuple[str, bool]:
    """Ask for a model name (tests replace this)."""
    return QInputDialog.getText(parent, title, label, text=text)
