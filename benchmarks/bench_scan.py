"""Scan throughput, re-scan time and query latency (prints figures; not a test).

    python benchmarks/bench_scan.py --photos DIR [--count 192] [--work /tmp/photosim-bench]

DIR holds real photos; those of at least 2 megapixels are used (e.g. Debian's
wallpaper packages: ``apt-get download gnome-backgrounds
plasma-workspace-wallpapers`` and ``dpkg-deb -x`` them). They are re-saved as
``--count`` distinct JPEGs (one pixel changed per copy, so content hashes differ
and every copy is really decoded and embedded).

Prints: the encoder's own forward-pass throughput at the scan's batch size;
end-to-end scan images/s with time per stage (read, decode, encode, index, db)
and peak memory; the time to re-scan an unchanged 10,000-photo library; and the
latency of ``similar`` for a library photo on that library.
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


def bench_scan(work: Path, photos_dir: Path, batch: int, workers: int) -> None:
    from photosim import Library

    lib_dir = work / "lib-scan"
    shutil.rmtree(lib_dir, ignore_errors=True)
    with Library(lib_dir) as lib:
        enc = lib.encoder
        fwd = forward_throughput(enc, batch)
        print(f"encoder {enc.id} on {enc.device}: forward pass {fwd:.1f} images/s at batch {batch}")
        t = time.perf_counter()
        report = lib.scan([photos_dir], batch_size=batch, workers=workers)
        wall = time.perf_counter() - t
        n = report.added
        rate = n / wall
        print(f"scan ({workers} decode threads): {n} photos in {wall:.1f} s = {rate:.1f} images/s "
              f"({100 * rate / fwd:.0f}% of forward-pass throughput)")
        print("  stage seconds (read and decode run in worker threads beside the encoder):")
        for k, v in report.timings.items():
            print(f"    {k:<7} {v:7.2f}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak memory (process RSS): {peak:.0f} MiB")


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
    ap.add_argument("--count", type=int, default=192)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="decode threads beside the encoder")
    ap.add_argument("--work", type=Path, default=Path("/tmp/photosim-bench"))
    ap.add_argument("--skip-scan", action="store_true")
    ap.add_argument("--skip-rescan", action="store_true", help="only the scan of real photos")
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    if not args.skip_scan:
        if not args.photos:
            sys.exit("--photos DIR is required for the scan benchmark")
        prepare_photos(args.photos, args.work / "photos", args.count)
        bench_scan(args.work, args.work / "photos", args.batch, args.workers)
    if not args.skip_rescan:
        bench_rescan_and_query(args.work)


if __name__ == "__main__":
    main()
