"""``photosim gui``: the desktop app (Qt is imported only when the command runs)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--screenshot", metavar="OUT.png", default=None,
                   help="open, wait until the gallery is painted, save a PNG of the window and exit")
    p.add_argument("--select", metavar="PATH", default=None,
                   help="with --screenshot: select this photo and wait for its similar photos")
    p.add_argument("--view", choices=["main", "duplicates"], default="main",
                   help="with --screenshot: which window to save (default main)")
    p.add_argument("--size", metavar="WxH", default=None, help="window size, e.g. 1280x800")


def register(sub, common) -> None:
    p = sub.add_parser("gui", parents=[common], help="open the desktop app")
    add_arguments(p)
    p.set_defaults(func=_run)


def _run(args) -> int:
    from photosim.gui.app import run

    return run(args)
