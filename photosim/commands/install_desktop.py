"""``photosim install-desktop``: put photosim in the desktop's application menu (Linux/BSD).

Copies the desktop entry, the icon (SVG and PNG sizes) and the AppStream metainfo from
``packaging/linux`` (``photosim/resources/desktop`` in a wheel) into the user's XDG data
folder (``$XDG_DATA_HOME``, by default ``~/.local/share``), with ``Exec=`` pointing at this
installation's ``photosim-gui``. ``--uninstall`` removes exactly those files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

APP_ID = "photosim"
_HERE = Path(__file__).resolve().parents[1]


def source_dir() -> Path:
    for candidate in (_HERE / "resources" / "desktop", _HERE.parent / "packaging" / "linux"):
        if (candidate / f"{APP_ID}.desktop").is_file():
            return candidate
    raise FileNotFoundError("photosim's desktop files are missing from this installation")


def data_home() -> Path:
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def gui_command() -> str:
    """The ``Exec=`` command: this installation's photosim-gui, else ``python -m photosim.gui.app``."""
    script = "photosim-gui.exe" if sys.platform.startswith("win") else "photosim-gui"
    beside = Path(sys.executable).parent / script
    found = str(beside) if beside.is_file() else shutil.which(script)
    argv = [found] if found else [sys.executable, "-m", "photosim.gui.app"]
    return " ".join(f'"{a}"' if any(c in a for c in ' \t"\'\\$`') else a for a in argv)


def targets(src: Path, data: Path) -> list[tuple[Path, Path]]:
    """(source, destination) pairs, the desktop entry last."""
    pairs = [(src / f"{APP_ID}.svg", data / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"),
             (src / f"{APP_ID}.metainfo.xml", data / "metainfo" / f"{APP_ID}.metainfo.xml")]
    for png in sorted((src / "icons" / "hicolor").glob(f"*/apps/{APP_ID}.png")):
        pairs.append((png, data / png.relative_to(src)))
    pairs.append((src / f"{APP_ID}.desktop", data / "applications" / f"{APP_ID}.desktop"))
    return pairs


def desktop_entry(text: str, command: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("Exec="):
            line = f"Exec={command} %F"
        elif line.startswith("TryExec="):
            continue  # Exec is an absolute command now
        lines.append(line)
    return "\n".join(lines) + "\n"


def install(data: Path | None = None) -> list[Path]:
    data = data or data_home()
    written = []
    for src, dest in targets(source_dir(), data):
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.suffix == ".desktop":
            dest.write_text(desktop_entry(src.read_text(encoding="utf-8"), gui_command()), encoding="utf-8")
        else:
            shutil.copyfile(src, dest)
        written.append(dest)
    _refresh(data)
    return written


def uninstall(data: Path | None = None) -> list[Path]:
    data = data or data_home()
    removed = []
    for _src, dest in targets(source_dir(), data):
        if dest.is_file():
            dest.unlink()
            removed.append(dest)
    _refresh(data)
    return removed


def _refresh(data: Path) -> None:
    """Tell the menu and the icon cache, where their tools exist (failures do not matter)."""
    for argv in (["update-desktop-database", "-q", str(data / "applications")],
                 ["gtk-update-icon-cache", "-q", "-t", str(data / "icons" / "hicolor")]):
        if shutil.which(argv[0]) and Path(argv[-1]).is_dir():
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def register(sub, common) -> None:
    p = sub.add_parser("install-desktop", parents=[common],
                       help="add photosim to your desktop's application menu (Linux)")
    p.add_argument("--uninstall", action="store_true", help="remove what install-desktop put in place")
    p.set_defaults(func=run)


def run(args) -> int:
    if sys.platform in ("darwin", "win32"):
        print("install-desktop is for Linux desktops; on this system start photosim with `photosim gui`.",
              file=sys.stderr)
        return 1
    try:
        paths = uninstall() if args.uninstall else install()
    except OSError as exc:
        print(f"photosim: could not {'remove' if args.uninstall else 'install'} the desktop files: {exc}",
              file=sys.stderr)
        return 1
    if args.uninstall:
        print(f"Removed {len(paths)} files; photosim is no longer in the application menu.")
    else:
        print(f"photosim is now in your application menu ({len(paths)} files under {data_home()}):")
        for p in paths:
            print(f"  {p}")
    return 0
