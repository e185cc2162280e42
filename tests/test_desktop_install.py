"""First launch and desktop integration: the missing-Qt-library sentence, install-desktop,
the packaging files (no Qt window needed here)."""

from __future__ import annotations

import configparser
import ctypes
import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from photosim.gui import system_check

ROOT = Path(__file__).resolve().parents[1]
LINUX = ROOT / "packaging" / "linux"


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's xcb plugin is Linux's")
def test_gui_names_the_missing_system_library_in_one_sentence(tmp_path):
    """`photosim gui` on X11: this machine's real xcb plugin is loaded as Qt would load it.
    Where it lacks system libraries (CI containers lack libxcb-icccm4 ...) the one sentence
    names each and the install command; where it has them, there is no display here, and
    that is said instead. Never Qt's own abort."""
    plugin = system_check.xcb_plugin()
    if plugin is None:
        pytest.skip("this PySide6 has no xcb plugin")
    try:
        ctypes.CDLL(str(plugin))
        really_missing = []
    except OSError as exc:
        really_missing = [system_check.missing_soname(exc)]
    proc = subprocess.run([sys.executable, "-m", "photosim.cli", "gui", "--library", str(tmp_path / "lib")],
                          env=_env(QT_QPA_PLATFORM="xcb"), capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    sentence = lines[0]
    assert sentence.startswith("photosim cannot open its window: ") and sentence.endswith(".")
    assert "could not load the Qt platform plugin" not in proc.stderr
    if really_missing:
        for soname in really_missing:
            assert soname in sentence
            assert any(pkg in sentence for pkg in system_check.PACKAGES[soname])
        assert "install" in sentence
    else:
        assert "no display" in sentence
    assert not (tmp_path / "lib").exists()  # it stopped before opening anything


def test_missing_libraries_are_all_named_with_their_packages(tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"\x7fELF...libxcb-cursor.so.0\0libxcb-icccm.so.4\0libxcb.so.1\0libQt6Gui.so.6\0")
    absent = {"libxcb-cursor.so.0", "libxcb-icccm.so.4"}

    def load(name):
        if name == str(plugin):
            raise OSError("libxcb-icccm.so.4: cannot open shared object file: No such file or directory")
        if name in absent:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    missing = system_check.missing_xcb_libraries(load, plugin)
    assert missing == ["libxcb-icccm.so.4", "libxcb-cursor.so.0"]  # dlopen's first, then the others it names
    debian = system_check.install_sentence(missing, family=0)
    assert "libxcb-icccm.so.4 and libxcb-cursor.so.0" in debian
    assert "`sudo apt install libxcb-icccm4 libxcb-cursor0`" in debian
    assert "`sudo dnf install xcb-util-wm xcb-util-cursor`" in system_check.install_sentence(missing, family=1)
    assert "`sudo pacman -S xcb-util-wm xcb-util-cursor`" in system_check.install_sentence(missing, family=2)
    one = system_check.install_sentence(["libEGL.so.1"], family=0)
    assert "library libEGL.so.1 that Qt needs is missing; install it with `sudo apt install libegl1`" in one
    unknown = system_check.install_sentence(["libfoo.so.3"], family=0)
    assert "libfoo.so.3" in unknown


def test_platform_problem_is_quiet_where_qt_does_not_use_xcb():
    def broken(_name):
        raise OSError("libxcb-cursor.so.0: cannot open shared object file")

    assert system_check.platform_problem({"QT_QPA_PLATFORM": "offscreen"}, broken) is None
    assert system_check.platform_problem({"WAYLAND_DISPLAY": "wayland-0"}, broken) is None
    if sys.platform.startswith("linux") and system_check.xcb_plugin() is not None:
        assert "libxcb-cursor.so.0" in system_check.platform_problem({"DISPLAY": ":0"}, broken)
        assert "no display" in system_check.platform_problem({}, lambda _n: None)
        assert system_check.platform_problem({"DISPLAY": ":0"}, lambda _n: None) is None


def test_missing_soname_reads_dlopen_and_import_errors():
    err = ImportError("libEGL.so.1: cannot open shared object file: No such file or directory")
    assert system_check.missing_soname(err) == "libEGL.so.1"
    assert system_check.missing_soname(ImportError("No module named 'PySide6'")) is None


def test_install_desktop_puts_entry_icons_and_metainfo_in_xdg_data_home(tmp_path):
    data = tmp_path / "xdg"
    env = _env(XDG_DATA_HOME=str(data))
    proc = subprocess.run([sys.executable, "-m", "photosim.cli", "install-desktop"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    entry = data / "applications" / "photosim.desktop"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(entry)
    desk = parser["Desktop Entry"]
    assert desk["Type"] == "Application" and desk["Icon"] == "photosim" and desk["Name"] == "photosim"
    exec_ = desk["Exec"]
    assert exec_.endswith(" %F")
    program = shlex.split(exec_)[0]
    assert os.path.isabs(program) and os.path.exists(program), exec_  # this installation, not PATH's
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "photosim.svg").read_bytes() == \
        (LINUX / "photosim.svg").read_bytes()
    for n in (16, 32, 48, 128, 256):
        assert (data / "icons" / "hicolor" / f"{n}x{n}" / "apps" / "photosim.png").is_file()
    assert (data / "metainfo" / "photosim.metainfo.xml").is_file()
    assert str(data) in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "photosim.cli", "install-desktop", "--uninstall"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not entry.exists() and not any(p.is_file() for p in data.rglob("photosim*"))


def test_icon_pngs_are_the_svg_rendered_at_their_sizes():
    from PIL import Image

    pngs = sorted(LINUX.glob("icons/hicolor/*/apps/photosim.png"))
    assert len(pngs) >= 6
    for png in pngs:
        n = int(png.parts[-3].split("x")[0])
        with Image.open(png) as im:
            assert im.size == (n, n) and im.mode == "RGBA"
            assert im.getpixel((0, 0))[3] == 0 and im.getpixel((n // 2, n // 2))[3] == 255  # rounded corners


def test_metainfo_and_desktop_entry_agree():
    root = ET.parse(LINUX / "photosim.metainfo.xml").getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("launchable") == "photosim.desktop"
    assert root.findtext("project_license") == "GPL-3.0-or-later"
    from photosim import __version__

    assert root.find("releases/release").get("version") == __version__
    if shutil.which("appstreamcli"):
        out = subprocess.run(["appstreamcli", "validate", "--no-net", str(LINUX / "photosim.metainfo.xml")],
                             capture_output=True, text=True)
        errors = [ln for ln in out.stdout.splitlines() if ln.startswith("E:")]
        assert not errors, out.stdout
    if shutil.which("desktop-file-validate"):
        out = subprocess.run(["desktop-file-validate", str(LINUX / "photosim.desktop")], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
