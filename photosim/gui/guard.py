"""The GUI-thread guard: the engine is never called from the Qt GUI thread by GUI code.

Every :class:`photosim.Library` method and property can block for seconds (SQLite, the
encoder, the index), so widgets reach it only through :class:`LibraryService` jobs.
:func:`install` wraps the class's public methods and properties; from then on a call
made on the Qt GUI thread with code of ``photosim.gui`` on the stack raises
:class:`GuiThreadViolation` and is recorded in :data:`violations` (so a caller that
swallows exceptions still cannot hide it). Calls from worker threads, and from code
outside ``photosim.gui`` (a test body, a script), pass untouched.

The GUI tests switch it on (``tests/conftest.py``); ``PHOTOSIM_GUI_GUARD=1`` switches it
on for any run of the app (the service installs it when it opens a library).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading

from photosim.delegate import Part

ENV = "PHOTOSIM_GUI_GUARD"

#: one line per call caught, oldest first; the GUI tests fail when it is not empty
violations: list[str] = []

_installed: set[type] = set()


class GuiThreadViolation(AssertionError):
    """GUI code called the engine on the Qt GUI thread (a bug: use a LibraryService job)."""


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def installed(cls: type | None = None) -> bool:
    return (cls or _library_class()) in _installed


def install(cls: type | None = None) -> None:
    """Wrap the public methods and properties of ``cls`` (default :class:`photosim.Library`)."""
    cls = cls or _library_class()
    if cls in _installed:
        return
    for name, attr in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(attr, property) and attr.fget is not None:
            setattr(cls, name, property(_guarded(attr.fget, cls, name), attr.fset, attr.fdel, attr.__doc__))
        elif isinstance(attr, Part):  # a method or value of one of the library's parts
            setattr(cls, name, property(_guarded(attr.__get__, cls, name)))
        elif inspect.isfunction(attr):
            setattr(cls, name, _guarded(attr, cls, name))
    _installed.add(cls)


def _library_class() -> type:
    from photosim import Library

    return Library


def _guarded(fn, cls: type, name: str):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _on_gui_thread():
            caller = _gui_caller()
            if caller is not None:
                text = (f"{cls.__name__}.{name} was called on the Qt GUI thread from {caller}; "
                        "engine calls belong in a LibraryService job")
                violations.append(text)
                raise GuiThreadViolation(text)
        return fn(*args, **kwargs)

    wrapper.__photosim_guarded__ = True
    return wrapper


def _on_gui_thread() -> bool:
    if threading.current_thread() is not threading.main_thread():
        return False  # cheap first test: Qt's GUI thread is the main thread
    from PySide6.QtCore import QCoreApplication, QThread

    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() == app.thread()


def _gui_caller() -> str | None:
    """The innermost frame of ``photosim.gui`` code (other than this module) on the stack."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("photosim.gui") and module != __name__:
            return f"{module}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return None
