"""The desktop app's command-line options, shared by ``photosim gui`` and ``photosim-gui``.

Plain argparse, no Qt: the CLI registers the command without loading the GUI toolkit.
"""

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
