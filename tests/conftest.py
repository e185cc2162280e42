"""Shared fixtures: photos drawn in the test, never files from ../shared."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFilter

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PHOTOSIM_GUI_GUARD", "1")  # every LibraryService a test makes installs the guard

#: test modules of the desktop app: the GUI-thread guard is on in each of their tests
GUI_TEST_MODULES = ("test_gui_", "test_finetune_dialog")


def draw_scene(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A distinct 'photo': sky/ground gradient, sun, hills, objects, texture; seed-determined."""
    rng = random.Random(seed)
    w, h = size
    im = Image.new("RGB", size)
    d = ImageDraw.Draw(im)
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    horizon = rng.randrange(h // 3, 2 * h // 3)
    for y in range(h):
        t = y / h
        c = tuple(int(a * (1 - t) + b * t) for a, b in zip(top, bottom))
        d.line([(0, y), (w, y)], fill=c)
    ground = tuple(rng.randrange(256) for _ in range(3))
    pts = [(0, h)] + [(x, horizon + rng.randrange(-h // 6, h // 6)) for x in range(0, w + 80, 80)] + [(w, h)]
    d.polygon(pts, fill=ground)
    for _ in range(rng.randrange(4, 9)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(30, w // 2), y0 + rng.randrange(30, h // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.choice(["ellipse", "rectangle", "polygon"])
        if shape == "ellipse":
            d.ellipse([x0, y0, x1, y1], fill=colour)
        elif shape == "rectangle":
            d.rectangle([x0, y0, x1, y1], fill=colour, outline=(0, 0, 0), width=3)
        else:
            d.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
    for _ in range(40):
        x, y = rng.randrange(w), rng.randrange(h)
        d.line([(x, y), (x + rng.randrange(-40, 40), y + rng.randrange(-40, 40))],
               fill=tuple(rng.randrange(256) for _ in range(3)), width=2)
    return im.filter(ImageFilter.GaussianBlur(0.6))


def write_scenes(folder: Path, seeds, size=(640, 480), fmt="JPEG", suffix=".jpg") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        p = folder / f"scene_{seed:03d}{suffix}"
        draw_scene(seed, size).save(p, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        paths.append(p)
    return paths


def write_copy_set(folder: Path, others) -> None:
    """An original (800x600), a half-size re-encoded copy of it (small.jpg), an 80 % crop of it
    (crop80.jpg), and one unrelated photo per seed in ``others`` (otherN.jpg)."""
    folder.mkdir(parents=True, exist_ok=True)
    original = draw_scene(3, (1280, 960)).crop((100, 80, 1100, 830)).resize((800, 600))
    original.save(folder / "original.jpg", quality=95)
    original.resize((400, 300)).save(folder / "small.jpg", quality=70)
    original.crop((80, 60, 720, 540)).save(folder / "crop80.jpg", quality=85)
    for seed in others:
        draw_scene(seed, (800, 600)).save(folder / f"other{seed}.jpg", quality=90)


def older_library(folder: Path, version: int, photos=(), meta=None) -> Path:
    """A library folder as the photosim of schema ``version`` wrote it: its migrations only,
    ``photos`` ((path, status) pairs) and ``meta`` (key: value) rows. Returns the folder."""
    from sqlalchemy import text

    from photosim.store.migrations import MIGRATIONS
    from photosim.store.schema import make_engine

    folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine(folder / "library.db")
    with engine.begin() as conn:
        for step in MIGRATIONS[:version]:
            step(conn)
        for k, v in {"schema_version": str(version), **(meta or {})}.items():
            conn.execute(text("INSERT INTO meta VALUES (:k, :v)"), {"k": k, "v": v})
        for path, status in photos:
            conn.execute(text("INSERT INTO photos (path, size, mtime_ns, status, scanned_at) "
                              "VALUES (:p, 1, 0, :s, 0)"), {"p": os.fsencode(path), "s": status})
    engine.dispose()
    return folder


@contextmanager
def scoped_env(**values: str):
    """Environment variables set for a block (fixtures wider than one test, where
    monkeypatch cannot go), restored afterwards."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def spin_until(cond, seconds: float) -> bool:
    """Process Qt events until ``cond()`` holds (True) or ``seconds`` pass (``cond()``)."""
    import time

    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@contextmanager
def scanned_app_env(root: Path, photos: Path, **extra):
    """``photos`` scanned into ``root``/lib, with the app's settings and cache under ``root``
    for the block; yields {"root", "photos", "lib", **extra}."""
    from photosim import Library

    with scoped_env(PHOTOSIM_SETTINGS=str(root / "settings.ini"), PHOTOSIM_CACHE_DIR=str(root / "cache")):
        with Library(root / "lib") as lib:
            lib.scan([photos])
        yield {"root": root, "photos": photos, "lib": root / "lib", **extra}


def open_window(lib, size=(1024, 700), ready=None, message: str = "gallery never loaded"):
    """The main window on ``lib``, shown, once ``ready(window)`` holds (default: the gallery
    is loaded)."""
    from photosim.gui.main_window import MainWindow

    w = MainWindow(str(lib))
    w.resize(*size)
    w.show()
    ready = ready or (lambda win: win.gallery_ready)
    assert spin_until(lambda: ready(w), 60), message
    return w


def settle_gallery(window, seconds: float = 30) -> None:
    """The gallery reads its rows in a worker: wait until what was asked for is shown."""
    assert spin_until(lambda: window.model.settled, seconds), "the gallery never settled"


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory) -> Path:
    """ONNX graphs go to one folder per test session (never the user's cache): made
    once on first use, then loaded by every later test (and CLI subprocess)."""
    folder = tmp_path_factory.mktemp("onnx-cache")
    with scoped_env(PHOTOSIM_CACHE_DIR=str(folder)):
        yield folder


@pytest.fixture(scope="session", autouse=True)
def no_folder_watching():
    """The app watches its library's folders unless told otherwise; a test that writes photos
    while a window is open would race its batches for the exclusive worker. The watching
    tests (tests/test_watch.py) turn it on."""
    with scoped_env(PHOTOSIM_WATCH="0"):
        yield


@pytest.fixture
def gui_dirs(tmp_path, monkeypatch):
    """Settings and thumbnail cache of the app's own, in the test's folder."""
    monkeypatch.setenv("PHOTOSIM_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("PHOTOSIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    """Eight distinct generated photos in two sub-folders."""
    root = tmp_path / "photos"
    write_scenes(root / "trip", range(0, 4))
    write_scenes(root / "home", range(4, 8))
    return root


@pytest.fixture
def library(tmp_path):
    from photosim import Library

    lib = Library(tmp_path / "lib")
    yield lib
    lib.close()


@pytest.fixture(scope="session")
def encoder():
    from photosim.encoder import Encoder

    return Encoder.load()


@pytest.fixture(autouse=True)
def gui_thread_guard(request):
    """In the GUI tests the engine may not be called on the Qt GUI thread by code of
    ``photosim.gui`` (photosim/gui/guard.py): such a call raises, and the test fails even
    when the GUI code swallowed the exception."""
    if not request.node.module.__name__.startswith(GUI_TEST_MODULES):
        yield
        return
    pytest.importorskip("PySide6")
    from photosim.gui import guard

    guard.install()
    del guard.violations[:]
    yield
    caught, guard.violations[:] = list(guard.violations), []
    assert not caught, "engine called on the GUI thread:\n" + "\n".join(caught)
