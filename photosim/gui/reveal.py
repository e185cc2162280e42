"""Showing files in the platform's file manager, selected where the platform allows.

Linux has no one way: the freedesktop ``FileManager1.ShowItems`` D-Bus call selects the
files in Nautilus, Dolphin, Nemo, Caja, Thunar…; without such a file manager, ``xdg-open``
opens the folder. Each attempt runs as a :class:`QProcess` (never blocking the window) and
the next is tried when one fails; when none works the caller gets one sentence to show.
"""

from __future__ import annotations

import os
import shutil
import sys

from PySide6.QtCore import QObject, QProcess, QUrl, Signal


def _uri(path: str) -> str:
    # dbus-send splits array items at commas: a comma in a name is percent-encoded (valid in a URI)
    return QUrl.fromLocalFile(os.path.abspath(path)).toString(QUrl.ComponentFormattingOption.FullyEncoded).replace(
        ",", "%2C")


def reveal_commands(paths: list[str], platform: str | None = None) -> list[list[str]]:
    """The commands to try in turn to show ``paths`` (only those whose program exists)."""
    platform = platform or sys.platform
    paths = [os.path.abspath(p) for p in paths]
    first = paths[0]
    if platform == "darwin":
        attempts = [["open", "-R", *paths]]
    elif platform.startswith("win"):
        attempts = [["explorer", f"/select,{os.path.normpath(first)}"]]
    else:
        attempts = [["dbus-send", "--session", "--print-reply", "--reply-timeout=5000",
                     "--dest=org.freedesktop.FileManager1", "--type=method_call", "/org/freedesktop/FileManager1",
                     "org.freedesktop.FileManager1.ShowItems", "array:string:" + ",".join(map(_uri, paths)),
                     "string:"],
                    ["xdg-open", os.path.dirname(first)]]
    return [a for a in attempts if shutil.which(a[0])]


class Revealer(QObject):
    """``reveal(paths)`` tries each command; ``failed(message)`` when none could show them,
    ``shown(program)`` when one did."""

    failed = Signal(str)
    shown = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._queue: list[list[str]] = []
        self._proc: QProcess | None = None
        self._paths: list[str] = []

    def reveal(self, paths: list[str]) -> None:
        if not paths:
            return
        self._paths = list(paths)
        self._queue = reveal_commands(self._paths)
        self._next()

    def _next(self) -> None:
        if not self._queue:
            folder = os.path.dirname(os.path.abspath(self._paths[0]))
            self.failed.emit(f"Nothing on this system could show the file: no file manager answered and "
                             f"xdg-open is missing or failed. It is in {folder}")
            return
        program, *args = self._queue.pop(0)
        if self._proc is not None and self._proc.state() == QProcess.ProcessState.NotRunning:
            self._proc.deleteLater()  # the last attempt is over: its object can go (never mid-signal)
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.finished.connect(lambda code, status, p=proc, prog=program: self._done(p, prog, code, status))
        proc.errorOccurred.connect(lambda err, p=proc: self._error(p, err))
        self._proc = proc
        proc.start(program, args)

    def _done(self, proc: QProcess, program: str, code: int, status) -> None:
        # explorer /select returns 1 even when it worked
        if status == QProcess.ExitStatus.NormalExit and (code == 0 or program == "explorer"):
            self.shown.emit(program)
        else:
            self._next()

    def _error(self, proc: QProcess, err) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self._next()

    def wait(self, ms: int = 10_000) -> None:
        """For tests: until the attempts are over."""
        from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop

        timer = QElapsedTimer()
        timer.start()
        while (self._queue or (self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning)) \
                and timer.elapsed() < ms:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        QCoreApplication.processEvents()
