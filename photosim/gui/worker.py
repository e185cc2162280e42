"""One long engine job (fine-tuning, switching models) on its own QThread.

The job is ``fn(progress, cancel)``: the engine's own callbacks, so the GUI adds
nothing but signals. Engine errors carry a sentence for the user; anything else
is reported too, with ``what`` naming the job, never swallowed.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QThread, Signal


class TaskWorker(QThread):
    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str, bool)  # message, cancelled

    def __init__(self, fn, parent=None, what: str = "the job"):
        super().__init__(parent)
        self._fn = fn
        self._what = what
        self.cancel_event = threading.Event()

    def run(self) -> None:
        from photosim.values import Cancelled, PhotosimError

        try:
            self.succeeded.emit(self._fn(self.progressed.emit, self.cancel_event.is_set))
        except Cancelled as exc:
            self.failed.emit(str(exc), True)
        except PhotosimError as exc:
            self.failed.emit(str(exc), False)
        except Exception as exc:  # noqa: BLE001 - the user must hear about any failure
            self.failed.emit(f"{self._what} failed ({type(exc).__name__}: {exc}); "
                             f"the active model is unchanged", False)
