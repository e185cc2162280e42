"""Tools → "Feature cache…": what the cache of backbone features keeps, its size, and the
choice (``Library.set_feature_cache``).

Every photo's features (the default) let quick fine-tunes, fp32 / int8 switches and models
sharing a backbone re-make the vectors without reading a photo; they cost 5 KB a photo with
encoder v5 (5 GB per million photos). Keeping only those of the photos fine-tuning learns
from (albums, marks, verdicts) frees that space, and accepting a quick fine-tune then reads
every other photo again. The taps album imports keep for standard fine-tuning (about 49 KB
a photo) are told there too, with a button that deletes them (``Library.drop_taps``).
Reading and changing it run as service jobs, off the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from .service import error_text

LABEL = "Feature cache…"


def size_text(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


def describe(cache, total: int, taps: int = 0) -> str:
    """The dialog's text for a :class:`photosim.values.FeatureCacheInfo`, the library's photos
    and the bytes of its taps."""
    kept = "every photo's features" if cache.policy == "all" else "the features of photos in albums or marked"
    text = (f"photosim keeps {kept}: {cache.photos:,} of {total:,} photos, about {size_text(cache.bytes)} "
            f"({cache.per_photo / 1024:.1f} KB a photo).\n\n"
            "With every photo's, quick fine-tunes, switching between full precision and int8, and models "
            "that share a backbone re-make the library's vectors without reading a photo.")
    if cache.policy == "labelled" and total > cache.photos:
        text += f"\n\nNow, accepting a quick fine-tune reads the other {total - cache.photos:,} photos again."
    if taps:
        text += (f"\n\nAlbum imports also kept about {size_text(taps)} of taps (the network's activations "
                 "part way through) so that a standard fine-tune learns from them without reading the photos "
                 "again. Deleting them changes no model: a standard fine-tune then reads its photos.")
    return text


class FeatureCacheAction:
    def __init__(self, window, menu):
        self.window, self.service = window, window.service
        self.action = menu.addAction(LABEL)
        self.action.setToolTip("What photosim keeps to re-make vectors without reading your photos, and its size")
        self.action.triggered.connect(self.show)
        self.box: QMessageBox | None = None  # the open dialog (tests press its buttons)
        window.libraryOpened.connect(self.sync)
        self.sync()

    def sync(self, *_args) -> None:
        self.action.setEnabled(self.service.is_open)

    def show(self) -> None:
        self.service.call(lambda lib: (lib.feature_cache(), lib.count(status="ok"), lib.taps.bytes()), self._ask,
                          name="reading the feature cache", owner=self.window)

    def _ask(self, result=None, error=None) -> None:
        if error is not None:
            self.window.show_message(error_text(error, "Reading the feature cache"))
            return
        cache, total, taps = result
        box = QMessageBox(QMessageBox.Icon.Information, "photosim — feature cache", describe(cache, total, taps),
                          parent=self.window)
        every = box.addButton("Keep every photo's", QMessageBox.ButtonRole.AcceptRole)
        freed = (cache.photos - cache.labelled) * cache.per_photo
        labelled = box.addButton(f"Only labelled photos (frees about {size_text(freed)})" if cache.policy == "all"
                                 else "Only labelled photos", QMessageBox.ButtonRole.AcceptRole)
        drop = None
        if taps:
            drop = box.addButton(f"Delete the taps ({size_text(taps)})", QMessageBox.ButtonRole.DestructiveRole)
            drop.setEnabled(not self.service.readonly)
        box.addButton(QMessageBox.StandardButton.Cancel)
        every.setEnabled(cache.policy != "all" and not self.service.readonly)  # not the current choice
        labelled.setEnabled(cache.policy != "labelled" and not self.service.readonly)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def clicked(button):
            self.box = None
            if button is every:
                self._set("all")
            elif button is labelled:
                self._set("labelled")
            elif drop is not None and button is drop:
                self._drop_taps()

        box.buttonClicked.connect(clicked)
        self.box = box
        box.open()  # window-modal, without a nested event loop

    def _set(self, policy: str) -> None:
        def job(lib, job):
            return lib.set_feature_cache(policy, cancel=job.token), lib.feature_cache().per_photo

        def done(result=None, error=None):
            if error is not None:
                self.window.show_message(error_text(error, "Changing the feature cache"))
            elif policy == "labelled":
                dropped, per_photo = result
                self.window.show_message(f"Dropped the cached features of {dropped:,} photos "
                                         f"({size_text(dropped * per_photo)}); library.db reuses that space.")
            else:
                self.window.show_message("From now on every photo read keeps its features.")

        if self.service.start("changing the feature cache", job, done, owner=self.window) is None:
            self.window.show_message(self.service.refusal())
        elif policy == "labelled":  # a minute or so at 10^6 photos
            self.window.show_message("Dropping the cached features of photos in no album…", timeout=0)

    def _drop_taps(self) -> None:
        def done(result=None, error=None):
            if error is not None:
                self.window.show_message(error_text(error, "Deleting the taps"))
            else:
                self.window.show_message(f"Deleted the taps of standard fine-tuning ({size_text(result)}).")

        if self.service.start("deleting the taps", lambda lib, job: lib.drop_taps(), done, owner=self.window) is None:
            self.window.show_message(self.service.refusal())
