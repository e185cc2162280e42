"""One progress form and one cancel token for every long operation.

Every long operation of the engine (scan, re-embedding, model switch, duplicates,
evaluation, fine-tuning) takes ``progress: Callable[[Progress], None] | None`` and
``cancel: CancelToken | None`` (an Event or a callable returning True is accepted
too, through :func:`as_token`). A consumer that only wants a bar reads ``stage``,
``done`` and ``total``; operations with more to say subclass :class:`Progress`
(``ScanProgress``, ``TrainProgress``) and still are one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled


@dataclass
class Progress:
    #: what is being done now, a short word: "listing", "scanning", "re-embedding", ...
    stage: str
    done: int = 0
    total: int = 0
    #: a short text for the user (a file name, a loss value), may be empty
    detail: str = ""

    @property
    def fraction(self) -> float | None:
        """0..1, or None when the total is not known yet."""
        if self.total <= 0:
            return None
        return min(1.0, max(0.0, self.done / self.total))


ProgressFn = Callable[[Progress], None]


class CancelToken:
    """Set once from any thread; long operations look at it between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    set = cancel  # an Event's spelling, for callers that had one

    def is_set(self) -> bool:
        return self._event.is_set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __call__(self) -> bool:
        return self._event.is_set()

    def check(self, message: str = "cancelled") -> None:
        """Raise :class:`Cancelled` with ``message`` when the token is set."""
        if self._event.is_set():
            raise Cancelled(message)


class _Polling(CancelToken):
    """Wraps an Event or a callable (the older spellings of cancel)."""

    def __init__(self, poll: Callable[[], bool]) -> None:
        super().__init__()
        self._poll = poll

    def is_set(self) -> bool:
        if not self._event.is_set() and self._poll():
            self._event.set()
        return self._event.is_set()

    @property
    def cancelled(self) -> bool:
        return self.is_set()

    def __call__(self) -> bool:
        return self.is_set()

    def check(self, message: str = "cancelled") -> None:
        if self.is_set():
            raise Cancelled(message)


def as_token(cancel) -> CancelToken:
    """A :class:`CancelToken` for ``cancel``: None (never set), a token, a
    ``threading.Event`` or a callable returning True once cancelled."""
    if cancel is None:
        return CancelToken()
    if isinstance(cancel, CancelToken):
        return cancel
    if hasattr(cancel, "is_set"):
        return _Polling(cancel.is_set)
    if callable(cancel):
        return _Polling(cancel)
    raise TypeError(f"cancel must be a CancelToken, an Event or a callable, not {type(cancel).__name__}")


def emit(progress: ProgressFn | None, stage: str, done: int = 0, total: int = 0, detail: str = "") -> None:
    """Call ``progress`` (when given) with a plain :class:`Progress`."""
    if progress is not None:
        progress(Progress(stage, done, total, detail))
