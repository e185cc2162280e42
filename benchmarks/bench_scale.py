"""photosim at 10^4, 10^5 (and 10^6) photos, built through ``photosim import-vectors``.

    python benchmarks/bench_scale.py [--sizes 10000 100000] [--work /tmp/photosim-scale]

For each size: tiny real JPEG files (a few hundred bytes each, distinct bytes), vectors
that behave like photo embeddings (clusters of similar photos on an anisotropic
spectrum, 2% near-duplicate pairs: random unit vectors are hnswlib's worst case and
have no duplicates), written as an ``export-vectors`` .npz and imported with the CLI.
Prints: import wall time (rows + index), index build from stored vectors (what a
first open without index.bin costs; it runs in the background: the time until searches
answer exactly from the vectors read so far, and their p50 / p99 meanwhile), ``photosim info`` wall time, ``similar`` p50 / p99
and recall@10 against exact search at the chosen ef (and at other ef values),
unchanged re-scan time (its parallel listing, and a serial listing), ``Library.duplicates()`` time and groups, the sizes of
library.db and index.bin, and the app on the library (offscreen, a child process): its window
visible and gallery painted from the process's start, memory after paint, the first similar
results (model and index loaded for them) and memory with the index in. Not a test; note the
machine's load beside the figures.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def tiny_jpegs(kinds: int = 64) -> list[bytes]:
    from PIL import Image

    out = []
    for i in range(kinds):
        im = Image.new("RGB", (16, 12), ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=70)
        out.append(buf.getvalue())
    return out


def make_files(root: Path, n: int) -> list[str]:
    """n real JPEG files, 1,000 a folder; bytes after the end marker make each distinct."""
    kinds = tiny_jpegs()
    paths = []
    for i in range(n):
        d = root / f"f{i // 1000:04d}"
        if i % 1000 == 0:
            d.mkdir(parents=True, exist_ok=True)
        p = d / f"IMG_{i:07d}.jpg"
        if not p.exists():
            p.write_bytes(kinds[i % len(kinds)] + i.to_bytes(8, "little"))
        paths.append(str(p))
    return paths


def photo_like_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit vectors with the structure of photo embeddings: a decaying spectrum (a few
    directions carry most variance), clusters of ~20 similar photos, 2% near-duplicates."""
    rng = np.random.default_rng(seed)
    scale = (1.0 / np.sqrt(np.arange(1, dim + 1))).astype(np.float32)
    centres = rng.standard_normal((max(1, n // 20), dim)).astype(np.float32) * scale
    vecs = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        m = min(n, start + 100_000) - start
        c = centres[rng.integers(0, len(centres), m)]
        vecs[start:start + m] = c + 0.6 * rng.standard_normal((m, dim)).astype(np.float32) * scale
    dups = rng.choice(n, size=(n // 100, 2), replace=False)
    vecs[dups[:, 1]] = vecs[dups[:, 0]] + 0.02 * rng.standard_normal((len(dups), dim)).astype(np.float32) * scale
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs


def cli(*argv) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "photosim.cli", *map(str, argv)], env=env, check=False,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"photosim {' '.join(map(str, argv))} failed: {proc.stderr}")
    return wall, proc.stdout


def exact_top(vecs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vecs.T  # one block: 200 queries
    return np.argsort(-scores, axis=1)[:, :k]


def first_screen(lib_dir: Path) -> None:
    """(Run in a child process, offscreen.) The app on ``lib_dir``: wall-clock stamps of the
    window shown, the gallery's first page and the library's info read (``gallery_ready``),
    the first similar results of a selected photo (the model and the saved index loaded
    for it) and those of a photo half-way down; memory after each. One JSON line."""
    import json

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from photosim.gui.main_window import MainWindow

    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def spin(cond, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end and not cond():
            app.processEvents()
            time.sleep(0.005)
        return cond()

    out = {}
    w = MainWindow(str(lib_dir))
    w.resize(1200, 760)
    w.show()
    app.processEvents()
    out["window"] = time.time()
    spin(lambda: w.gallery_ready, 120)
    out["gallery"], out["rows"], out["rss after paint MiB"] = time.time(), w.model.rowCount(), rss()
    shown = []
    w.resultsShown.connect(lambda *a: shown.append(time.time()))
    for key, row in (("first similar", 5), ("similar half-way", w.model.rowCount() // 2)):
        spin(lambda: False, 0.5)  # the warm-up after the first paint under way
        shown.clear()
        t = time.time()
        w.grid.setCurrentIndex(w.model.index(row, 0))
        spin(lambda: shown, 300)
        out[f"{key} s"] = (shown[0] - t) if shown else float("nan")
        out[f"rss after {key} MiB"] = rss()
    # the process's own high-water mark (VmHWM): ru_maxrss would hold the parent's, counted
    # into the child when it was forked
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    out["peak RSS MiB"] = int(hwm.split()[1]) / 1024
    print(json.dumps(out), flush=True)
    os._exit(0)  # no teardown of a million rows' model in the figures


def app_figures(lib_dir: Path) -> dict:
    """The app's first screen on ``lib_dir``, from the process's start (warm disk cache)."""
    import json

    started = time.time()
    proc = subprocess.run([sys.executable, __file__, "--first-screen", str(lib_dir)], capture_output=True,
                          text=True, timeout=900, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = next((x for x in reversed(proc.stdout.splitlines()) if x.startswith("{")), None)
    if line is None:
        return {"app": f"failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}"}
    got = json.loads(line)
    return {"app: window visible s": got["window"] - started, "app: gallery painted s": got["gallery"] - started,
            "app: memory after paint MiB": got["rss after paint MiB"],
            "app: first similar (model + index loaded) s": got["first similar s"],
            "app: similar half-way down s": got["similar half-way s"],
            "app: memory with the index in MiB": got["rss after similar half-way MiB"],
            "app: peak memory MiB": got["peak RSS MiB"]}


def bench(n: int, work: Path, skip_duplicates: bool = False) -> dict:
    from photosim import Library
    from photosim.index import ef_for
    from photosim.pipeline.export import write_npz

    files_root, lib_dir, npz = work / f"files-{n}", work / f"lib-{n}", work / f"vectors-{n}.npz"
    shutil.rmtree(lib_dir, ignore_errors=True)
    r: dict = {"n": n}
    t = time.perf_counter()
    paths = make_files(files_root, n)
    r["make files s"] = time.perf_counter() - t
    with Library(work / "probe") as probe:
        enc, dim = probe.encoder_id, probe.card.dim
    vecs = photo_like_vectors(n, dim)
    write_npz(npz, paths, vecs, enc)

    r["import-vectors s"], _ = cli("import-vectors", npz, "--library", lib_dir)
    r["info s"], _ = cli("info", "--library", lib_dir)
    for name in ("index.bin", "index.json"):
        (lib_dir / name).unlink()
    with Library(lib_dir) as lib:
        t = time.perf_counter()
        lib.info()  # never waits for (nor starts) a build
        r["open + info, index missing s"] = time.perf_counter() - t
        pids = [p.id for p in lib.photos()[:50]]
        t = time.perf_counter()
        lib.similar(pids[0], k=24)  # the first search starts the background build
        r["first similar, index missing ms"] = (time.perf_counter() - t) * 1000
        while (status := lib.index_status()) is not None and status.detail.startswith("reading"):
            time.sleep(0.02)
        r["vectors read (exact search ready) s"] = time.perf_counter() - t
        times = []
        for pid in pids:
            q = time.perf_counter()
            lib.similar(pid, k=24)
            times.append(time.perf_counter() - q)
        if lib.index_status() is not None:
            ms = np.array(times) * 1000
            r["similar during the build (exact) p50 / p99 ms"] = (np.median(ms), np.percentile(ms, 99))
        len(lib.index)  # waits for the build (every core), which saves it
        r["index build s"] = time.perf_counter() - t
    r["info (saved index) s"], _ = cli("info", "--library", lib_dir)
    r["library.db MB"] = (lib_dir / "library.db").stat().st_size / 2**20
    r["index.bin MB"] = (lib_dir / "index.bin").stat().st_size / 2**20
    r.update(app_figures(lib_dir))

    with Library(lib_dir) as lib:
        idx = lib.index
        rng = np.random.default_rng(1)
        pids = sorted(idx.ids())
        sample = rng.choice(len(pids), size=min(200, len(pids)), replace=False)
        truth = exact_top(vecs, vecs[sample], 11)
        r["ef"] = ef_for(len(idx))
        for ef in sorted({64, 128, 200, r["ef"]}):
            idx._ef = ef
            hits, times = 0, []
            for qi, row in zip(sample, truth):
                t = time.perf_counter()
                res = lib.similar(pids[qi], k=10)
                times.append(time.perf_counter() - t)
                want = {pids[j] for j in row if j != qi}
                hits += len(want & {m.photo.id for m in res[:10]}) / 10
            ms = np.array(times) * 1000
            r[f"ef {ef}: recall@10 / p50 / p99 ms"] = (hits / len(sample), np.median(ms), np.percentile(ms, 99))
        idx._ef = r["ef"]
        t = time.perf_counter()
        report = lib.scan([files_root])
        r["unchanged re-scan s"] = time.perf_counter() - t
        r["re-scan unchanged / added"] = (report.unchanged, report.added + report.updated)
        r["re-scan listing s"] = report.timings["list"]
        from photosim.pipeline import scan as scanner

        t = time.perf_counter()
        scanner.list_photos([files_root], threads=1)
        r["serial listing s"] = time.perf_counter() - t
        if skip_duplicates:
            r["peak RSS MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            return r
        t = time.perf_counter()
        # the stand-ins' clusters are tighter than real photos' at the model's own cut-off
        # (too many neighbours: refused), so candidates from 0.9 (the 1% duplicate pairs)
        groups = lib.duplicates(threshold=0.9)
        r["duplicates (threshold 0.9) s"] = time.perf_counter() - t
        r["duplicate groups"] = len(groups)
    r["peak RSS MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/photosim-scale"))
    ap.add_argument("--no-duplicates", action="store_true", help="skip the duplicate search (minutes at 10^5)")
    ap.add_argument("--first-screen", type=Path, help=argparse.SUPPRESS)  # the app's probe (a child process)
    args = ap.parse_args()
    if args.first_screen:
        first_screen(args.first_screen)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    for n in args.sizes:
        r = bench(n, args.work, args.no_duplicates)
        print(f"\n== {n:,} photos (load average {os.getloadavg()[0]:.1f})")
        for k, v in r.items():
            if isinstance(v, tuple):
                v = " / ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in v)
            elif isinstance(v, float):
                v = f"{v:.2f}"
            print(f"  {k:32s} {v}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
