"""Remembered between runs: recent libraries, window geometry, view choices.

``$PHOTOSIM_SETTINGS`` (an .ini path) overrides the platform store, for tests.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings

ORGANIZATION = "photosim"
APPLICATION = "photosim-gui"
MAX_RECENT = 8


def settings() -> QSettings:
    path = os.environ.get("PHOTOSIM_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def recent_libraries() -> list[str]:
    value = settings().value("recent_libraries", [])
    if isinstance(value, str):
        value = [value]
    return [v for v in (value or []) if v]


def remember_library(path: str) -> None:
    path = os.path.abspath(path)
    items = [path] + [p for p in recent_libraries() if p != path]
    settings().setValue("recent_libraries", items[:MAX_RECENT])


def value(key: str, default=None, type_=None):
    s = settings()
    if type_ is not None:
        return s.value(key, default, type=type_)
    return s.value(key, default)


def set_value(key: str, v) -> None:
    settings().setValue(key, v)
