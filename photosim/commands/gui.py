"""``photosim gui``: the desktop app (Qt is imported only when the command runs)."""

from __future__ import annotations


def register(sub, common) -> None:
    from photosim.gui.app import add_arguments

    p = sub.add_parser("gui", parents=[common], help="open the desktop app")
    add_arguments(p)
    p.set_defaults(func=_run)


def _run(args) -> int:
    from photosim.gui.app import run

    return run(args)
