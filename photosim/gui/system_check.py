"""Before Qt starts: can it open a window here? One sentence for the user when not.

Qt's xcb platform plugin (X11, and XWayland) needs system libraries that pip cannot
install (``libxcb-cursor0``, ``libxcb-icccm4``, ...). Without them Qt prints its own
"could not load the Qt platform plugin" and aborts. This module loads the plugin the
way Qt will (``dlopen`` through :mod:`ctypes`), and names what is missing and the
command that installs it on this distribution. It imports no Qt module.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import re
import sys
from collections.abc import Callable
from pathlib import Path

#: sonames Qt's xcb plugin and QtGui load, and their packages: (Debian/Ubuntu, Fedora, Arch)
PACKAGES: dict[str, tuple[str, str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil", "xcb-util-renderutil"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb", "libx11"),
    "libX11.so.6": ("libx11-6", "libX11", "libx11"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon", "libxkbcommon"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl", "libglvnd"),
    "libGL.so.1": ("libgl1", "libglvnd-glx", "libglvnd"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl", "libglvnd"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype", "freetype2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs", "dbus"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2", "glib2"),
}
_FAMILIES = (("debian", "sudo apt install"), ("fedora", "sudo dnf install"), ("arch", "sudo pacman -S"))
_MISSING = re.compile(r"([\w.+-]+\.so(?:\.\d+)*): cannot open shared object file")


def missing_soname(error: BaseException) -> str | None:
    """The library a failed ``dlopen`` / extension import names, e.g. ``libEGL.so.1``."""
    m = _MISSING.search(str(error))
    return m.group(1) if m else None


def xcb_plugin() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        p = Path(base) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if p.exists():
            return p
    return None


def missing_xcb_libraries(load: Callable[[str], object] = ctypes.CDLL, plugin: Path | None = None) -> list[str]:
    """Sonames the xcb plugin needs that cannot be loaded, in the order found ([] when it loads).

    ``dlopen`` stops at the first missing library, so each known one is also tried alone."""
    plugin = plugin or xcb_plugin()
    if plugin is None:
        return []
    try:
        load(str(plugin))
        return []
    except OSError as exc:
        first = missing_soname(exc)
    missing = [first] if first else []
    for soname in _named_in(plugin, plugin.parents[2] / "lib" / "libQt6XcbQpa.so.6"):
        if soname in missing:
            continue
        try:
            load(soname)
        except OSError:
            missing.append(soname)
    return missing


def _named_in(*binaries: Path) -> list[str]:
    """The known sonames these ELF files name (their DT_NEEDED strings), in PACKAGES order."""
    blob = b"".join(p.read_bytes() for p in binaries if p.is_file())
    return [s for s in PACKAGES if s.encode() + b"\0" in blob]


def _family() -> int | None:
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return None
    ids = [release.get("ID", "")] + release.get("ID_LIKE", "").split()
    for i, (family, _cmd) in enumerate(_FAMILIES):
        if family in ids or (family == "fedora" and {"rhel", "centos"} & set(ids)):
            return i
    return None


def install_sentence(missing: list[str], family: int | None = None) -> str:
    """'photosim cannot open its window: ...; install ... with `sudo apt install ...`.'"""
    libs = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    are = "are" if len(missing) > 1 else "is"
    if family is None:
        family = _family()
    if family is not None:
        pkgs = list(dict.fromkeys(PACKAGES.get(s, (s,) * 3)[family] for s in missing))
        how = f"install {'them' if len(missing) > 1 else 'it'} with `{_FAMILIES[family][1]} {' '.join(pkgs)}`"
    else:
        pkgs = list(dict.fromkeys(PACKAGES.get(s, (s,) * 3)[0] for s in missing))
        how = f"install your distribution's package{'s' if len(pkgs) > 1 else ''} for it (on Debian and Ubuntu: {' '.join(pkgs)})"
    return f"photosim cannot open its window: the system librar{'ies' if len(missing) > 1 else 'y'} {libs} that Qt needs {are} missing; {how}."


def platform_problem(env: dict[str, str] | None = None, load: Callable[[str], object] = ctypes.CDLL) -> str | None:
    """Why Qt will not open a window here (one sentence), or None. Linux only; checks the
    xcb plugin when Qt will use it (QT_QPA_PLATFORM unset or xcb, and no Wayland session)."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    wayland = bool(env.get("WAYLAND_DISPLAY")) and chosen in ("", "wayland")
    if chosen not in ("", "xcb") or wayland:
        return None
    missing = missing_xcb_libraries(load)
    if missing:
        return install_sentence(missing)
    if not env.get("DISPLAY"):
        return ("photosim cannot open its window: there is no display here (DISPLAY is not set); "
                "start it from a desktop session, or with QT_QPA_PLATFORM=offscreen for screenshots.")
    return None
