"""Tools → "Faster scans (int8, slightly less precise)": the library's precision setting.

Checking it switches the active model to its int8 variant (``photosim.precision``),
unchecking it back to fp32: a model switch in one exclusive service job, every photo
read again for int8 (the cached fp32 features make the way back quick). The action
shows what the library uses whichever dialog or command changed it.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QProgressDialog

from .. import precision
from .service import error_text

LABEL = "Faster scans (int8, slightly less precise)"


class PrecisionAction:
    def __init__(self, window, menu):
        self.window, self.service = window, window.service
        self.action = menu.addAction(LABEL)
        self.action.setCheckable(True)
        self.action.setToolTip(f"int8: {precision.INT8_COST}. Every photo is read once more when it changes.")
        self.action.triggered.connect(self._toggled)
        self._dialog: QProgressDialog | None = None
        self.service.modelChanged.connect(self.sync)
        window.libraryOpened.connect(self.sync)
        self.sync()

    def _current(self) -> tuple[str, str] | None:
        state = self.service.state if self.service.is_open else None
        return precision.split(state.encoder_id) if state is not None else None

    def sync(self, *_args) -> None:
        now = self._current()
        self.action.setEnabled(now is not None and not self.service.readonly)
        self.action.setChecked(now is not None and now[1] == "int8")

    def _toggled(self, checked: bool) -> None:
        now = self._current()
        if now is None:
            return
        base, current = now
        wanted = "int8" if checked else "fp32"
        if wanted == current:
            return
        name = self.service.state.model_name or base  # the name the user knows it by
        what = (f"Use int8 for the model “{name}”? {precision.INT8_COST[0].upper()}{precision.INT8_COST[1:]}. "
                "Every photo of the library is read once more now; your photos are not changed."
                if wanted == "int8" else
                f"Go back to full precision (fp32) for the model “{name}”? The library's vectors are re-made "
                "from what photosim kept of the fp32 reading, which is quick.")
        if QMessageBox.question(self.window, "photosim", what) != QMessageBox.StandardButton.Yes:
            self.sync()
            return
        self._dialog = QProgressDialog("Re-making the library's vectors…", "Cancel", 0, 0, self.window)
        self._dialog.setWindowTitle("photosim")
        self._dialog.setMinimumDuration(500)
        job = self.service.switch_model(precision.variant_id(base, wanted), self._done, progress=self._progress,
                                        owner=self.window)
        if job is None:  # something else that changes the library is running
            self._dialog.close()
            self.sync()
            self.window.show_message("Wait for the running scan or model change to finish first.")
            return
        self._dialog.canceled.connect(job.cancel)

    def _progress(self, p) -> None:
        if self._dialog is not None and p.total:
            self._dialog.setMaximum(p.total)
            self._dialog.setValue(min(p.done, p.total))

    def _done(self, result=None, error=None) -> None:
        if self._dialog is not None:
            self._dialog.close()
            self._dialog = None
        self.sync()
        if error is not None:
            self.window.show_message(error_text(error, "Changing the precision"))
