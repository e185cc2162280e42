"""GUI benchmark: time to a visible window and to the first painted gallery with a
10,000-photo library, scroll frame time through 100,000 entries, drop-to-results time.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui.py [--photos 10000] [--scroll 100000]
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui.py --gallery 10000 100000 [1000000]

``--gallery N...``: the paged gallery at each size, each in a fresh process: window visible,
gallery painted (its visible thumbnails too), memory after painting, rows read from the
database, a jump to the middle and the end painted, and a photo in the middle selected (its
row found in SQL). Those libraries are rows only (sort keys included, as the writer makes
them): the first 2,000 point at real files, the others at none (they paint "can't show").

The 10,000-photo library is synthetic: small generated JPEG files whose rows and random
unit vectors are inserted straight into the library database (encoding 10,000 photos
on a CPU takes ~7 minutes and is what bench_scan measures, not the GUI). Queries,
the index (hnswlib, built from those vectors) and the encoder for dropped images are real.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent


# -- building the synthetic library ---------------------------------------------------
def make_files(folder: Path, n: int, side: int = 96) -> list[Path]:
    from PIL import Image, ImageDraw

    paths = []
    for i in range(n):
        sub = folder / f"folder_{i // 1000:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"IMG_{i:06d}.jpg"
        if not p.exists():
            im = Image.new("RGB", (side, side * 3 // 4), ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256))
            d = ImageDraw.Draw(im)
            d.ellipse([(i * 7) % side, (i * 5) % 40, (i * 7) % side + 30, (i * 5) % 40 + 30],
                      fill=((i * 53) % 256, 200, (i * 29) % 256))
            im.save(p, quality=80)
        paths.append(p)
    return paths


def make_library(lib_dir: Path, photos: list[Path]) -> None:
    """Rows and random unit vectors straight into the database through the library's
    store (one transaction; it bumps the generation itself), then the index is built."""
    import numpy as np
    from sqlalchemy import insert

    from photosim import Library
    from photosim.store.schema import Photo, Vector, vector_to_blob

    with Library(lib_dir) as lib:
        if lib.info().indexed >= len(photos):
            return
    shutil.rmtree(lib_dir, ignore_errors=True)  # made with another encoder: start again
    with Library(lib_dir) as lib:
        rng = np.random.default_rng(0)
        vecs = rng.standard_normal((len(photos), lib.card.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        now = time.time()
        with lib.store.write() as s:  # bumps the generation itself
            rows = []
            for i, p in enumerate(photos):
                st = p.stat()
                rows.append(dict(id=i + 1, path=str(p), size=st.st_size, mtime_ns=st.st_mtime_ns,
                                 content_hash=f"{i:032x}", width=96, height=72,
                                 taken_at=f"20{10 + i % 15:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00",
                                 camera=None, orientation=1, status="ok", error=None, scanned_at=now))
            s.execute(insert(Photo), rows)
            s.execute(insert(Vector), [dict(photo_id=i + 1, encoder_id=lib.encoder_id, data=vector_to_blob(v))
                                       for i, v in enumerate(vecs)])
        lib.store.roots.add([str(photos[0].parent.parent)])
        lib.info()  # builds and saves the index


# -- startup, measured in a fresh process ------------------------------------------------------
def child_startup(lib: str, query: str) -> None:
    t0 = float(os.environ["BENCH_T0"])
    marks = {}

    def mark(name):
        marks.setdefault(name, time.time() - t0)

    from PySide6.QtCore import QEvent, QMimeData, QObject, QUrl

    mark("qt_imported")
    from photosim.gui.app import make_app

    app = make_app()
    from photosim.gui.main_window import MainWindow

    mark("photosim_imported")
    marks["torch_imported_on_gui_thread"] = "torch" in sys.modules

    class Watch(QObject):
        def eventFilter(self, obj, ev):
            if ev.type() == QEvent.Type.Paint and window.model.rowCount() > 0:
                mark("gallery_painted")
            return False

    window = MainWindow(lib)
    window.resize(1280, 800)
    watch = Watch()
    window.grid.viewport().installEventFilter(watch)
    window.show()
    while not window.windowHandle() or not window.windowHandle().isExposed():
        app.processEvents()
    app.processEvents()
    mark("window_visible")
    deadline = time.time() + 120
    while time.time() < deadline:
        app.processEvents()
        if "gallery_painted" in marks and window.thumbs.pending == 0:
            window.grid.viewport().repaint()
            app.processEvents()
            if window.thumbs.pending == 0:
                mark("visible_thumbnails_painted")
                break
        time.sleep(0.002)
    # drop to results: first drop (model may still be loading), then warm ones
    while window.device is None and time.time() < deadline:
        app.processEvents()
        time.sleep(0.005)
    mark("encoder_ready")
    drops = []
    for _ in range(6):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(query)])
        done = []
        window.resultsShown.connect(lambda: done.append(time.perf_counter()))
        t = time.perf_counter()
        window.query_mime(mime)
        while not done:
            app.processEvents()
        window.panel.results.viewport().repaint()
        drops.append(time.perf_counter() - t)
        window.resultsShown.disconnect()
    marks["drop_to_results_s"] = drops
    marks["results"] = window.panel.model.rowCount()
    window.close()
    print("BENCH " + json.dumps(marks))


def run_startup(lib: Path, query: Path, env: dict) -> dict:
    env = dict(env, BENCH_T0=repr(time.time()))
    out = subprocess.run([sys.executable, __file__, "--child", str(lib), str(query)], env=env,
                         capture_output=True, text=True, check=True).stdout
    line = next(li for li in out.splitlines() if li.startswith("BENCH "))
    return json.loads(line[6:])


# -- the paged gallery at 10^4 .. 10^6 rows ----------------------------------------------------
def make_rows_library(lib_dir: Path, photos: list[Path], n: int) -> None:
    """``n`` photo rows (no vectors): the first ``len(photos)`` real files, dated in row order."""
    from photosim import Library
    from photosim.store.gallery import sort_keys

    if (lib_dir / "library.db").exists():
        with Library(lib_dir) as lib:
            if lib.count() == n:
                return
    shutil.rmtree(lib_dir, ignore_errors=True)
    cols = ("path", "size", "mtime_ns", "taken_at", "width", "height", "status", "scanned_at",
            "name_key", "folder_key", "date_key")
    with Library(lib_dir) as lib:
        for start in range(0, n, 50_000):
            rows = []
            for i in range(start, min(n, start + 50_000)):
                path = str(photos[i]) if i < len(photos) else f"{photos[0].parent.parent}/gone_{i // 1000:04d}/IMG_{i:07d}.jpg"
                taken = f"{2000 + i * 20 // n:04d}-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00"
                keys = sort_keys(path, taken, 0)
                rows.append((os.fsencode(path), 2000, 0, taken, 96, 72, "ok", 0.0,
                             keys["name_key"], keys["folder_key"], keys["date_key"]))
            with lib.store.write() as s:
                s.connection().exec_driver_sql(
                    f"INSERT INTO photos ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(li.split()[1]) for li in f if li.startswith("VmRSS")) / 1024


def child_gallery(lib: str) -> None:
    t0 = float(os.environ["BENCH_T0"])
    marks = {}

    def mark(name, value=None):
        marks.setdefault(name, round(time.time() - t0 if value is None else value, 3))

    from PySide6.QtCore import QEvent, QObject

    from photosim.gui.app import make_app

    app = make_app()
    from photosim.gui.main_window import MainWindow

    class Watch(QObject):
        def eventFilter(self, obj, ev):
            if ev.type() == QEvent.Type.Paint and window.model.rowCount() > 0:
                mark("gallery_painted_s")
            return False

    window = MainWindow(lib)
    window.resize(1280, 800)
    watch = Watch()
    window.grid.viewport().installEventFilter(watch)
    window.show()
    while not window.windowHandle() or not window.windowHandle().isExposed():
        app.processEvents()
    app.processEvents()
    mark("window_visible_s")

    def spin(cond, seconds=300):
        end = time.time() + seconds
        while not cond() and time.time() < end:
            app.processEvents()
            time.sleep(0.002)

    spin(lambda: "gallery_painted_s" in marks and window.model.settled and window.thumbs.pending == 0)
    window.grid.viewport().repaint()
    spin(lambda: window.thumbs.pending == 0)
    mark("thumbnails_painted_s")
    mark("rss_after_paint_mib", _rss_mib())
    model, bar = window.model, window.grid.verticalScrollBar()
    n = model.rowCount()
    mark("rows", n)
    mark("rows_read_to_paint", model.rows_read)
    # Qt's QListView lays the grid out in batches of 2,000 cells after the first paint (its
    # scroll bar covers the whole list once done): O(rows), in the event loop, not in SQL
    spin(lambda: not window.grid.visualRect(model.index(n - 1)).isEmpty())
    mark("grid_layout_complete_s")

    def painted(value):
        t = time.perf_counter()
        bar.setValue(value)
        window.grid.viewport().repaint()
        spin(lambda: model.settled)
        window.grid.viewport().repaint()
        return time.perf_counter() - t

    mark("jump_to_middle_painted_s", painted(bar.maximum() // 2))
    mark("jump_to_end_painted_s", painted(bar.maximum()))
    middle = []
    model.locate(n // 2, lambda row, p: middle.append(p))  # the photo of id n/2 (rows were inserted in order)
    spin(lambda: middle)
    t = time.perf_counter()
    window.select_photo(middle[0].path)
    spin(lambda: window.grid.currentIndex().isValid() and model.settled)
    mark("select_in_the_middle_s", time.perf_counter() - t)
    mark("rows_read_total", model.rows_read)
    mark("rss_end_mib", _rss_mib())
    import resource

    mark("peak_rss_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    window.close()
    print("BENCH " + json.dumps(marks))


def run_gallery(sizes: list[int], work: Path, env: dict) -> dict:
    photos = make_files(work / "photos", 2000)
    out = {}
    for n in sizes:
        t = time.perf_counter()
        lib = work / f"rows{n}"
        make_rows_library(lib, photos, n)
        print(f"library of {n:,} rows ready in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        settings = Path(env["PHOTOSIM_SETTINGS"])
        settings.unlink(missing_ok=True)  # no last view to restore: every run starts alike
        child_env = dict(env, BENCH_T0=repr(time.time()))
        res = subprocess.run([sys.executable, __file__, "--child-gallery", str(lib)], env=child_env,
                             capture_output=True, text=True)
        line = next((li for li in res.stdout.splitlines() if li.startswith("BENCH ")), None)
        out[n] = json.loads(line[6:]) if line else {"error": res.stderr[-2000:]}
        print(f"{n:,}: {out[n]}", file=sys.stderr)
    return out


# -- scrolling -----------------------------------------------------------------------------
def bench_scroll(photos: list[Path], entries: int, env_cache: Path) -> dict:
    from photosim.gui.app import make_app
    from photosim.gui.photo_model import PhotoListModel
    from photosim.gui.thumb_view import ThumbnailGrid
    from photosim.gui.thumbnails import ThumbnailCache
    from photosim.values import PhotoInfo

    app = make_app()
    infos = []
    for i in range(entries):
        p = photos[i % len(photos)]
        infos.append(PhotoInfo(i + 1, f"{p}" if i < len(photos) else f"{p}#{i}", 2000, 1, 96, 72,
                               f"2020-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}", None, 1, "ok", None, None))
    # rows beyond the real files point at the real file of the same index (distinct keys, same pixels)
    thumbs = ThumbnailCache(env_cache)
    real = {f"{p}#{i}": str(p) for i, p in ((i, photos[i % len(photos)]) for i in range(len(photos), entries))}
    orig_request = thumbs.request

    def request(path, key):
        orig_request(real.get(path, path), key)
    thumbs.request = request
    model = PhotoListModel(thumbs)  # the grid and its delegate over an in-memory list (--gallery: SQL pages)
    t = time.perf_counter()
    model.set_photos(infos)
    set_s = time.perf_counter() - t
    view = ThumbnailGrid(thumb_size=160)
    view.setModel(model)
    view.resize(1000, 760)
    view.show()
    t = time.perf_counter()
    app.processEvents()
    view.viewport().repaint()
    first_layout_s = time.perf_counter() - t
    sb = view.verticalScrollBar()

    def frames(values):
        times = []
        for v in values:
            t = time.perf_counter()
            sb.setValue(v)
            view.viewport().repaint()
            app.processEvents()
            times.append((time.perf_counter() - t) * 1000)
        return times

    smooth = frames(range(0, min(sb.maximum(), 120 * 600), 120))           # wheel: 600 steps of 120 px
    jumps = frames([sb.maximum() * k // 300 for k in range(301)])          # drag the scroll bar end to end
    thumbs.shutdown()

    def stats(ms):
        ms = sorted(ms)
        return {"frames": len(ms), "median_ms": round(statistics.median(ms), 2),
                "p95_ms": round(ms[int(len(ms) * 0.95) - 1], 2), "max_ms": round(ms[-1], 2)}

    return {"entries": entries, "set_photos_s": round(set_s, 3), "first_layout_s": round(first_layout_s, 3),
            "wheel_scroll": stats(smooth), "scrollbar_drag": stats(jumps)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_startup(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-gallery":
        child_gallery(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=10_000)
    ap.add_argument("--scroll", type=int, default=100_000)
    ap.add_argument("--only", choices=["startup", "scroll"], default=None)
    ap.add_argument("--gallery", type=int, nargs="+", metavar="N",
                    help="the paged gallery at these library sizes (rows only), nothing else")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "photosim-bench-gui")
    args = ap.parse_args()
    work = args.work
    if args.gallery:
        env = dict(os.environ, PHOTOSIM_SETTINGS=str(work / "settings-gallery.ini"),
                   PHOTOSIM_CACHE_DIR=str(work / "cache"))
        print(json.dumps(run_gallery(args.gallery, work, env), indent=1))
        return
    t = time.perf_counter()
    photos = make_files(work / "photos", args.photos)
    make_library(work / f"lib{args.photos}", photos)
    sys.path.insert(0, str(HERE.parent / "tests"))
    from conftest import draw_scene

    query = work / "query.jpg"
    draw_scene(1234).save(query, quality=90)
    print(f"prepared {args.photos} photos in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    env = dict(os.environ, PHOTOSIM_SETTINGS=str(work / "settings.ini"))
    results = {}
    env["PHOTOSIM_CACHE_DIR"] = str(work / "cache")
    if args.only in (None, "startup"):
        shutil.rmtree(work / "cache", ignore_errors=True)
        results["startup_cold_thumbnail_cache"] = run_startup(work / f"lib{args.photos}", query, env)
        results["startup_warm"] = run_startup(work / f"lib{args.photos}", query, env)
    if args.only in (None, "scroll"):
        shutil.rmtree(work / "scroll-cache", ignore_errors=True)  # every thumbnail made while scrolling
        results["scroll"] = bench_scroll(photos, args.scroll, work / "scroll-cache")
    print(json.dumps(results, indent=1, default=lambda v: round(v, 3)))


if __name__ == "__main__":
    main()
