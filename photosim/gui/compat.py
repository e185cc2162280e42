"""Work-arounds for the Qt bindings.

PySide6 6.12's abi3 wheels, run on Python 3.11, drop a reference to ``None`` (and to
``True``) on many calls back into Python: every ``QRunnable.run``, delegate ``paint``,
event filter, ``QModelIndex.data`` returning None, ``setEnabled(True)``... Python 3.12+
makes these singletons immortal, so nothing happens there; on 3.11 the count reaches
zero after a few minutes of scrolling and the interpreter aborts with "Fatal Python
error: none_dealloc". We give the singletons a reference count no session can use up
(what 3.12 does by design). See benchmarks/bench_gui.py, which crashed without it.
"""

from __future__ import annotations

import ctypes
import sys

_HUGE = 1 << 48


def immortalize_singletons() -> bool:
    """On Python < 3.12, make None/True/False/Ellipsis/NotImplemented practically immortal."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    for obj in (None, True, False, Ellipsis, NotImplemented):
        ref = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is the first field
        if ref.value < _HUGE:
            ref.value += _HUGE
    return True
