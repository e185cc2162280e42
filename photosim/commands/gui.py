"""``photosim gui``: the desktop app (Qt is imported only when the command runs).

The GUI never imports this module: the options live in :mod:`photosim.gui.options`.
"""

from __future__ import annotations

from photosim.gui.options import add_arguments


def register(sub, common) -> None:
    p = sub.add_parser("gui", parents=[common], help="open the desktop app")
    add_arguments(p)
    p.set_defaults(func=_run)


def _run(args) -> int:
    from photosim.gui.app import run

    return run(args)


__all__ = ["add_arguments", "register"]
