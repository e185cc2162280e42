"""Folder watching at scale: what one watch batch costs in a big library, against a full
re-scan, and how long a new photo takes to reach the library with the default intervals.

    python benchmarks/bench_watch.py [--photos 20000] [--new 1,50] [--dir /tmp/bench-watch]

The library is synthetic: tiny files with random unit vectors made through
``import-vectors`` (as bench_scale.py does); the new photos are real JPEGs drawn by the
tests' scene generator, so they are decoded and embedded.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import draw_scene  # noqa: E402

from photosim import Library, Watcher, WatchBatch, apply_batch  # noqa: E402
from photosim.pipeline.export import write_npz  # noqa: E402


def make_library(base: Path, n: int) -> tuple[Library, Path]:
    root = base / "photos"
    paths = []
    buf = io.BytesIO()
    draw_scene(0, (160, 120)).resize((32, 24)).save(buf, "JPEG", quality=50)
    tiny = buf.getvalue()
    for i in range(n):
        folder = root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"p{i:07d}.jpg"
        p.write_bytes(tiny)
        paths.append(str(p))
    lib = Library(base / "lib")
    lib.store.roots.add([str(root)])
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n, lib.card.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    write_npz(base / "v.npz", paths, vecs, lib.encoder_id)
    lib.import_vectors(base / "v.npz")
    return lib, root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=20_000)
    ap.add_argument("--new", default="1,50")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench-watch-"))
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    print(f"load: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    t = time.perf_counter()
    lib, root = make_library(base, args.photos)
    print(f"library of {lib.count():,} photos made in {time.perf_counter() - t:.1f} s")
    lib.embed_image(draw_scene(1, (160, 120)))  # the encoder loads once, outside the timings

    t = time.perf_counter()
    report = lib.rescan()
    print(f"full re-scan (unchanged): {time.perf_counter() - t:.2f} s ({report.unchanged:,} unchanged)")

    for count in [int(c) for c in args.new.split(",")]:
        new = root / f"new-{count}"
        new.mkdir()
        paths = []
        for i in range(count):
            p = new / f"n{i:03d}.jpg"
            draw_scene(1000 + count * 10 + i, (640, 480)).save(p, "JPEG", quality=90)
            paths.append(str(p))
        t = time.perf_counter()
        report = apply_batch(lib, WatchBatch(tuple(paths)))
        took = time.perf_counter() - t
        print(f"watch batch of {count} new photos: {took:.2f} s (added {report.added}; "
              f"stages {report.timings})")
    # a move and a delete (of imported photos: no content hash, the move is found by size and mtime)
    some = sorted((root / "d000").iterdir())[:2]
    t = time.perf_counter()
    dest = root / "moved.jpg"
    os.rename(some[0], dest)
    os.remove(some[1])
    report = apply_batch(lib, WatchBatch((str(some[0]), str(dest), str(some[1]))))
    print(f"watch batch of a move and a delete: {time.perf_counter() - t:.2f} s "
          f"(moved {report.moved}, removed {report.removed})")

    # end to end with the default intervals (settle 2 s, debounce 1 s)
    done = threading.Event()
    seen = {}

    def callback(batch, result=None, error=None):
        if batch is not None:
            seen["t"], seen["report"], seen["error"] = time.perf_counter(), result, error
            done.set()

    w = Watcher(lib.roots(), callback, skip=[lib.path], apply=lambda b: apply_batch(lib, b))
    t = time.perf_counter()
    w.start().wait_ready()
    print(f"watcher set up on {args.photos // 1000 + 1} folders in {time.perf_counter() - t:.2f} s "
          f"({w.modes()[str(root)]})")
    p = root / "e2e.jpg"
    t = time.perf_counter()
    draw_scene(7, (640, 480)).save(p, "JPEG", quality=90)
    done.wait(120)
    w.stop()
    print(f"new photo to library row (settle 2 s + debounce 1 s + batch): {seen['t'] - t:.2f} s "
          f"(added {seen['report'].added}, error {seen['error']})")
    lib.close()
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
