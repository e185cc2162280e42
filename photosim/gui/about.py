"""What Help → About says, and where Help → photosim Help points."""

from __future__ import annotations

import html
from pathlib import Path

from photosim import __version__

_ROOT = Path(__file__).resolve().parents[2]
#: the README's help, on the web (an installed wheel has no README file)
README_URL = "https://pypi.org/project/photosim/"

CREDITS = (
    ("torchvision's ImageNet MobileNetV2 weights", "the start of the bundled encoder (BSD-3-Clause)"),
    ("Caltech-101", "the photos the encoder is trained on (CC BY 4.0): L. Fei-Fei, R. Fergus, P. Perona, "
                    "CVPR 2004 Workshop on Generative-Model Based Vision"),
    ("Debian's wallpaper packages (plasma-workspace-wallpapers, gnome-backgrounds, mate-backgrounds, "
     "ukui-wallpapers)", "the photos in the README's screenshots, by their authors under the licences in "
                         "each package's copyright file"),
    ("Qt and PySide6", "the window (LGPL-3.0)"),
    ("hnswlib, SQLAlchemy, Pillow, PyTorch, pytorch-metric-learning, send2trash", "the engine"),
)


def help_url() -> str:
    """The README's app section: the checkout's own file when there is one, else the web page."""
    readme = _ROOT / "README.md"
    if readme.is_file() and (_ROOT / "photosim").is_dir():
        return readme.as_uri() + "#the-desktop-app"
    return README_URL


def about_html(encoder_id: str) -> str:
    e = html.escape
    rows = "".join(f"<li><b>{e(name)}</b> — {e(what)}</li>" for name, what in CREDITS)
    encoder = f"<p>Encoder: <code>{e(encoder_id)}</code></p>" if encoder_id else ""
    return (f"<h3>photosim {e(__version__)}</h3>"
            "<p>Find similar photos in your own photo library, on your own machine.</p>"
            f"{encoder}"
            "<p>Licence: GNU General Public License, version 3 or later.</p>"
            f"<p>Credits:</p><ul>{rows}</ul>"
            f'<p><a href="{e(help_url())}">How to use photosim</a></p>')


def icon_files() -> list[Path]:
    """The app icon's files (PNG sizes, then the SVG), from the wheel or the checkout."""
    here = Path(__file__).resolve().parents[1]
    for base in (here / "resources" / "desktop", _ROOT / "packaging" / "linux"):
        pngs = sorted(base.glob("icons/hicolor/*/apps/photosim.png"))
        if pngs:
            return pngs + [base / "photosim.svg"]
    return []
