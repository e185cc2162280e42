"""Memory and searches while a library's index is rebuilt in the background.

    python benchmarks/bench_index_build.py LIBRARY [--every 20]

Opens LIBRARY (for instance one ``bench_scale.py`` made at 10^6 photos), rebuilds its index
from the stored vectors (``IndexKeeper.rebuild``: what an upgrade, a model switch or a
first import does) and prints, every ``--every`` seconds, the rows inserted, the process's
memory and its high-water mark (VmHWM), and the median / max of five ``similar`` searches
meanwhile; then the build's time and peak. The build saves the index it makes over the
library's. Not a test; note the machine's load beside the figures.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def _status(key: str) -> float:
    line = next(x for x in open("/proc/self/status") if x.startswith(key))
    return int(line.split()[1]) / 2**20  # GB


def main() -> None:
    from photosim import Library

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("library", type=Path)
    ap.add_argument("--every", type=float, default=20.0, help="seconds between reports")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    with Library(args.library) as lib:
        ids = np.array(sorted(lib.store.vectors.photo_ids(lib.card.id)))
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        build = lib.rebuild_index()
        last = 0.0
        while not build.finished.wait(0.5):
            now = time.perf_counter() - t0
            if now - last < args.every:
                continue
            last = now
            lat = []
            for pid in rng.choice(ids, 5):
                t = time.perf_counter()
                lib.similar(int(pid), k=10)
                lat.append((time.perf_counter() - t) * 1000)
            p = build.progress
            print(f"{now:6.0f} s  {p.detail or 'inserting'} {p.done:,}/{p.total:,}  memory {_status('VmRSS'):.2f} GB "
                  f"(peak {_status('VmHWM'):.2f})  similar median {np.median(lat):.0f} ms, max {max(lat):.0f} ms",
                  flush=True)
        print(f"built in {time.perf_counter() - t0:.0f} s ({build.error or 'ok'}); memory {_status('VmRSS'):.2f} GB, "
              f"peak {_status('VmHWM'):.2f} GB (the library open before: {len(ids):,} vectors)", flush=True)


if __name__ == "__main__":
    main()
