"""Starting the desktop app: ``photosim gui`` and the ``photosim-gui`` entry point.

The window is shown before the library (and torch) load; those happen in a worker.
``--screenshot OUT.png`` waits until the gallery (and with ``--select`` the similar
panel) is painted, saves the window and exits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .options import add_arguments

SCREENSHOT_TIMEOUT_S = 120


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="photosim-gui", description="photosim desktop app")
    add_arguments(ap)
    ap.add_argument("--library", metavar="LIB", type=Path, default=None, help="library folder")
    ap.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda")
    return ap


def make_app(argv: list[str] | None = None):
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from . import settings

    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        QCoreApplication.setOrganizationName(settings.ORGANIZATION)
        QCoreApplication.setApplicationName(settings.APPLICATION)
        app = QApplication(argv or [sys.argv[0]])
        app.setApplicationDisplayName("photosim")
        app.setDesktopFileName("photosim")
        from PySide6.QtGui import QIcon

        from .about import icon_files

        icon = QIcon()
        for f in icon_files():
            icon.addFile(str(f))
        app.setWindowIcon(icon)
    return app


def startup_problem() -> str | None:
    """Why Qt cannot start or open a window here, in one sentence (None when it can)."""
    if "PySide6.QtWidgets" in sys.modules and sys.modules["PySide6.QtWidgets"].QApplication.instance():
        return None  # inside a running Qt program (a test): it has a platform already
    from .system_check import install_sentence, missing_soname, platform_problem

    try:
        import PySide6.QtWidgets  # noqa: F401 - loads QtGui's system libraries (EGL, fontconfig, ...)
    except ImportError as exc:
        soname = missing_soname(exc)
        return install_sentence([soname]) if soname else f"photosim cannot start Qt: {exc}."
    return platform_problem()


def run(args) -> int:
    problem = startup_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from PySide6.QtCore import QEventLoop, Qt
    from PySide6.QtWidgets import QApplication

    t0 = time.perf_counter()
    owns_app = QApplication.instance() is None
    app = make_app()
    from .main_window import MainWindow

    lib = os.fspath(args.library) if getattr(args, "library", None) else None
    if lib is None and not getattr(args, "screenshot", None):
        from . import settings

        recent = settings.recent_libraries()
        lib = recent[0] if recent and os.path.isdir(recent[0]) else None
    window = MainWindow(lib, device=getattr(args, "device", None))
    size = getattr(args, "size", None) or ("1280x800" if getattr(args, "screenshot", None) else None)
    if size:
        w, h = (int(v) for v in size.lower().split("x"))
        window.resize(w, h)
        window.splitter.setSizes([w * 3 // 5, w * 2 // 5])
    window.show()
    if os.environ.get("PHOTOSIM_GUI_TIMING"):
        print(f"window shown after {time.perf_counter() - t0:.3f} s", file=sys.stderr)
    # Inside another Qt program (or a test) run a local loop: app.exec() and app.quit()
    # would end that program's event processing for good.
    loop = app if owns_app else QEventLoop()
    if getattr(args, "screenshot", None):
        shooter = Screenshotter(window, args.screenshot, args.select, getattr(args, "view", "main"))
        shooter.quit = loop.quit
        shooter.start()
        code = loop.exec()
        return code or (0 if shooter.saved else 1)
    if not owns_app:
        window.destroyed.connect(loop.quit)
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return loop.exec()


class Screenshotter:
    """Polls until the window shows what was asked, then grabs it."""

    def __init__(self, window, out: str, select: str | None, view: str = "main"):
        from PySide6.QtCore import QTimer

        self.window = window
        self.out = out
        self.select = select
        self.view = view
        self.target = window
        self.saved = False
        self.stage = "gallery"
        self.started = time.monotonic()
        self.settle = 0
        self.timer = QTimer(window, interval=100, timeout=self._tick)
        self.quit = None
        self._results = False
        window.resultsShown.connect(self._on_results)

    def start(self) -> None:
        self.timer.start()

    def _on_results(self) -> None:
        self._results = True

    def _visible_thumbs_loaded(self) -> bool:
        w = self.window
        return w.thumbs.pending == 0

    def _tick(self) -> None:
        w = self.window
        if time.monotonic() - self.started > SCREENSHOT_TIMEOUT_S:
            print("photosim: screenshot timed out; saving what is shown", file=sys.stderr)
            self._save()
            return
        if self.stage == "gallery":
            if not w.gallery_ready:
                return
            if self.select:
                def selected():  # its row is found in SQL: done now, one way or the other
                    if w.history.current is None:
                        print(f"photosim: {self.select} is not in the library", file=sys.stderr)
                        self._results = True

                if not w.select_photo(self.select, then=selected):
                    self._results = True
                self.stage = "results"
                return
            self.stage = "thumbs"
            if self.view == "duplicates":
                self.target = w.show_duplicates()
                self.target.resize(w.width(), w.height() * 4 // 5)
                self.stage = "duplicates"
                return
        if self.stage == "duplicates":
            if not self.target.find.isEnabled():
                return
            if self.target.groups:
                self.target._pick_copies()
            self.stage = "thumbs"
        if self.stage == "results":
            if not self._results:
                return
            self.stage = "thumbs"
        if self.stage == "thumbs":
            w.grid.viewport().repaint()
            w.panel.results.viewport().repaint()
            if not self._visible_thumbs_loaded() or w.service.busy:
                self.settle = 0
                return
            self.settle += 1
            if self.settle >= 3:
                self._save()

    def _save(self) -> None:
        from PySide6.QtWidgets import QApplication

        self.timer.stop()
        Path(self.out).parent.mkdir(parents=True, exist_ok=True)
        self.saved = self.target.grab().save(self.out)
        print(f"saved {self.out}" if self.saved else f"photosim: could not write {self.out}", file=sys.stderr)
        self.window.close()
        (self.quit or QApplication.instance().quit)()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
