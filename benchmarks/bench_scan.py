"""Scan throughput, re-scan time and query latency (prints figures; not a test).

    python benchmarks/bench_scan.py --photos DIR [--count 384] [--workers 2] [--work /tmp/photosim-bench]

DIR holds real photos; those of at least 2 megapixels are used. We use the
photos of Debian's wallpaper packages (``apt-get download gnome-backgrounds
plasma-workspace-wallpapers mate-backgrounds ukui-wallpapers`` and ``dpkg-deb -x``
each; GNOME, KDE Plasma, MATE and UKUI artwork, each under its package's licence,
see /usr/share/doc/*/copyright inside the packages; never committed here). They
are re-saved as ``--count`` distinct JPEGs (one pixel changed per copy, so content
hashes differ and every copy is really decoded and embedded).

Prints, in one run: the forward-pass rate (features + head, batch ``--batch``) of
torch, ONNX Runtime fp32 and ONNX Runtime int8; the decode rate (read + decode +
preprocess, as a scan does it, with ``--workers`` threads and nothing else
running); the end-to-end scan rate under torch (before) and ONNX Runtime (after; fp32, and
int8 as the library setting ``photosim models precision int8`` makes it),
each in a fresh process (``PHOTOSIM_BACKEND``) with its peak memory; the time to
re-scan an unchanged 10,000-photo library; and ``similar`` latency on it.

``--alternate-with CHECKOUT`` compares with another version: its fp32 scans and this
one's take turns (``--rounds``), each at its own defaults, e.g. the last commit::

    git worktree add /tmp/photosim-before HEAD~1
    python benchmarks/bench_scan.py --photos DIR --count 256 --skip-rescan --alternate-with /tmp/photosim-before
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = None  # our own benchmark inputs


def prepare_photos(src: Path, out: Path, count: int, min_pixels: int = 2_000_000) -> list[Path]:
    big = []
    for p in sorted(src.rglob("*")):
        if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}:
            try:
                with Image.open(p) as im:
                    if im.width * im.height >= min_pixels:
                        big.append(p)
            except OSError:
                continue
    if not big:
        sys.exit(f"no photos of at least {min_pixels / 1e6:.0f} MP under {src}")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    paths = []
    for i in range(count):
        dst = out / f"photo_{i:05d}.jpg"
        paths.append(dst)
        if dst.exists():
            continue
        with Image.open(big[i % len(big)]) as im:
            im = im.convert("RGB")
            im.putpixel((rng.randrange(im.width), rng.randrange(im.height)), (i % 256, 0, 0))
            im.save(dst, quality=90)
    sizes = [Image.open(p).size for p in paths[: len(big)]]
    mp = np.mean([w * h for w, h in sizes]) / 1e6
    print(f"photos: {count} JPEGs from {len(big)} originals, mean {mp:.1f} MP")
    return paths


def forward_throughput(encoder, batch: int, reps: int = 4) -> float:
    x = np.random.default_rng(0).normal(size=(batch, 3, encoder.card.input_size, encoder.card.input_size)).astype(np.float32)
    encoder.project(encoder.features(x))  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        encoder.project(encoder.features(x))
    return batch * reps / (time.perf_counter() - t)


def bench_forward(batch: int, cache: Path) -> dict[str, float]:
    from photosim.encoder import Encoder

    rates = {}
    for label, kw in (("torch fp32", {"backend": "torch"}), ("onnxruntime fp32", {"backend": "onnx"}),
                      ("onnxruntime int8", {"backend": "onnx", "precision": "int8"})):
        t = time.perf_counter()
        enc = Encoder.load(cache_dir=cache, **kw)
        loaded = time.perf_counter() - t
        rates[label] = forward_throughput(enc, batch)
        note = f" ({enc.notice})" if enc.notice else ""
        print(f"forward {label:<17} {rates[label]:6.1f} images/s at batch {batch}  "
              f"[{enc.backend}, id {enc.id}, loaded in {loaded:.1f} s]{note}")
        if enc.runtime is not None:  # the rate on one thread: the forward bound when a decode thread has the other core
            enc.runtime.set_threads(1)
            rates[f"{label} 1 thread"] = r1 = forward_throughput(enc, batch)
            enc.runtime.set_threads(None)
            print(f"forward {label:<17} {r1:6.1f} images/s at batch {batch} on 1 thread")
    return rates


def bench_decode(photos: list[Path], workers: int) -> float:
    """Read + decode + preprocess every photo with ``workers`` threads, as the scan's pool does."""
    from concurrent.futures import ThreadPoolExecutor

    from photosim.encoder import Encoder
    from photosim.imageio import decode_bytes, read_file

    enc = Encoder.load(backend="torch")  # only its preprocess

    def work(p: Path) -> None:
        data, _ = read_file(p)
        image, _ = decode_bytes(data)
        enc.preprocess(image)

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, photos))
    rate = len(photos) / (time.perf_counter() - t)
    print(f"decode (read + decode + preprocess, {workers} threads): {rate:.1f} photos/s")
    return rate


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not getrusage: Linux's ru_maxrss keeps
    the parent's peak across fork + exec, VmHWM starts afresh with the program."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_scan(work: Path, photos_dir: Path, batch: int | None, workers: int) -> None:
    """One scan in this process (run as a child: its peak memory is the scan's alone)."""
    from photosim import Library

    lib_dir = work / f"lib-scan-{os.environ.get('PHOTOSIM_BACKEND', 'auto')}"
    shutil.rmtree(lib_dir, ignore_errors=True)
    with Library(lib_dir) as lib:
        if os.environ.get("BENCH_PRECISION") == "int8":  # the library setting, before any photo
            from photosim import precision as variants

            lib.use_model(variants.variant_id(lib.encoder_id, "int8"))
        enc = lib.encoder
        t = time.perf_counter()
        report = lib.scan([photos_dir], batch_size=batch, workers=workers)
        wall = time.perf_counter() - t
        n = report.added
        peak = peak_rss_mib()
        stages = " ".join(f"{k} {v:.1f}" for k, v in report.timings.items())
        print(f"scan {enc.backend:<11} {enc.precision}: {n} photos in {wall:.1f} s = {n / wall:5.1f} photos/s, "
              f"peak RSS {peak:.0f} MiB  (stage s: {stages})")
        print(f"SCAN-RATE {n / wall:.3f}")


def scan_in_child(backend: str, args, ort_threads: int = 0, workers: int = 2, precision: str = "fp32",
                  tree: Path | None = None) -> float:
    """One scan in a fresh process; ``tree``: with another checkout of photosim (its own
    benchmark and package, at its own defaults), for ``--alternate-with``."""
    import subprocess

    env = {**os.environ, "PHOTOSIM_BACKEND": backend, "PHOTOSIM_CACHE_DIR": str(args.work / "onnx-cache"),
           "PHOTOSIM_ORT_THREADS": str(ort_threads), "BENCH_PRECISION": precision}
    script = Path(__file__).resolve()
    if tree is not None:
        script = tree / "benchmarks" / "bench_scan.py"
        env["PYTHONPATH"] = str(tree)
    cmd = [sys.executable, str(script), "--scan-child", "--work", str(args.work), "--workers", str(workers)]
    if tree is None:
        cmd += ["--scan-batch", str(args.scan_batch)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    sys.stdout.write("".join(line + "\n" for line in out.splitlines() if not line.startswith("SCAN-RATE")))
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("SCAN-RATE")))


def bench_rescan_and_query(work: Path, n: int = 10_000) -> None:
    """A 10,000-photo library made through the public bulk import (tiny files + random unit
    vectors in an .npz, as ``photosim import-vectors`` reads): a re-scan of unchanged files
    must only stat them."""
    from photosim import Library
    from photosim.pipeline.export import write_npz

    root = work / "tiny"
    lib_dir = work / "lib-10k"
    shutil.rmtree(lib_dir, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        d = root / f"d{i // 500:02d}"
        d.mkdir(exist_ok=True)
        p = d / f"p{i:05d}.jpg"
        if not p.exists():
            p.write_bytes(i.to_bytes(4, "little"))
        paths.append(str(p))
    with Library(lib_dir) as lib:
        rng = np.random.default_rng(0)
        vecs = rng.normal(size=(n, lib.card.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        write_npz(work / "vectors-10k.npz", paths, vecs, lib.encoder_id)
        t = time.perf_counter()
        lib.import_vectors(work / "vectors-10k.npz")
        print(f"10k library: imported and indexed in {time.perf_counter() - t:.2f} s")
    with Library(lib_dir) as lib:
        t = time.perf_counter()
        report = lib.scan([root])
        print(f"re-scan of {report.unchanged} unchanged photos: {time.perf_counter() - t:.2f} s "
              f"(includes opening the saved index)")
        photos = lib.photos()
        lib.similar(photos[0], k=10)
        times = []
        for p in random.Random(1).sample(photos, 300):
            t = time.perf_counter()
            lib.similar(p, k=10)
            times.append(time.perf_counter() - t)
        times = np.array(times) * 1000
        print(f"similar(k=10) for a library photo: median {np.median(times):.2f} ms, "
              f"p95 {np.percentile(times, 95):.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, help="folder of real photos (>= 2 MP used)")
    ap.add_argument("--count", type=int, default=384)
    ap.add_argument("--batch", type=int, default=32, help="rows of the forward-pass measurements")
    ap.add_argument("--scan-batch", type=int, default=0, help="the scan's batch (0: the library's default)")
    ap.add_argument("--workers", type=lambda v: [int(x) for x in v.split(",")], default=[2],
                    help="decode threads beside the encoder (the ONNX scan runs once per value, e.g. 2,1)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/photosim-bench"))
    ap.add_argument("--skip-scan", action="store_true")
    ap.add_argument("--skip-rescan", action="store_true", help="only the scan of real photos")
    ap.add_argument("--ort-threads", type=lambda v: [int(x) for x in v.split(",")], default=[0],
                    help="scan under ONNX Runtime once per thread count (lanes), e.g. 2,1 (0: default)")
    ap.add_argument("--alternate-with", type=Path, default=None, metavar="CHECKOUT",
                    help="also scan with another checkout of photosim (e.g. a git worktree of the last "
                         "release), alternating with this one, and print both medians: this machine's "
                         "speed drifts, runs far apart do not compare")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of --alternate-with")
    ap.add_argument("--scan-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scan_child:
        bench_scan(args.work, args.work / "photos", args.scan_batch or None, args.workers[0])
        return
    import onnxruntime
    import torch

    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}, "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.skip_scan:
        if not args.photos:
            sys.exit("--photos DIR is required for the scan benchmark")
        photos = prepare_photos(args.photos, args.work / "photos", args.count)
        fwd = bench_forward(args.batch, args.work / "onnx-cache")
        decode = bench_decode(photos, args.workers[0])
        decode1 = decode if args.workers[0] == 1 else bench_decode(photos, 1)
        cores = os.cpu_count() or 1
        decode_all = decode if args.workers[0] == cores else bench_decode(photos, cores)
        runs = [("torch", "torch fp32", 0, args.workers[0])] + [
            ("onnx", "onnxruntime fp32", n, w) for w in args.workers for n in args.ort_threads] + [
            ("onnx", "onnxruntime int8", args.ort_threads[0], args.workers[0])]
        for backend, label, threads, workers in runs:
            print(f"({workers} decode threads" + (f", ONNX Runtime on {threads} threads)" if threads else ")"))
            rate = scan_in_child(backend, args, threads, workers, label.split()[-1])
            f = fwd[label]
            # both stages on every core, one after the other: what the cores allow when each
            # photo's decoding and forward pass add up (the scan overlaps them)
            shared = 1 / (1 / decode_all + 1 / f)
            print(f"  = {100 * rate / min(decode_all, f):.0f}% of the slower of decode ({decode_all:.1f} on "
                  f"{cores} threads) and forward ({f:.1f}); {100 * rate / shared:.0f}% of {shared:.1f}, their "
                  "rate when they share the cores")
            if f"{label} 1 thread" in fwd and decode1:  # each stage on the core the split gives it
                split = min(decode1, fwd[f"{label} 1 thread"])
                print(f"  = {100 * rate / split:.0f}% of the slower of decode on 1 thread ({decode1:.1f}) and "
                      f"forward on 1 thread ({fwd[f'{label} 1 thread']:.1f}), the bound of a 1 + 1 split")
        if args.alternate_with:
            other = args.alternate_with.resolve()
            rates: dict[str, list[float]] = {"this checkout": [], str(other): []}
            for _ in range(args.rounds):
                # workers 0: each version's own number of decode threads
                rates["this checkout"].append(scan_in_child("onnx", args, 0, 0))
                rates[str(other)].append(scan_in_child("onnx", args, 0, 0, tree=other))
            for name, got in rates.items():
                print(f"alternating, ONNX Runtime fp32 at its defaults, {name}: median {np.median(got):.1f} "
                      f"photos/s ({', '.join(f'{r:.1f}' for r in got)})")
    if not args.skip_rescan:
        bench_rescan_and_query(args.work)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
