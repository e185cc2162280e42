"""hnswlib's parameters on photo-like vectors: build time and recall@10 for M, ef_construction, ef.

    python benchmarks/bench_index_params.py [--n 50000] [--configs 12:100 16:100 16:200 24:100]

Vectors from ``bench_scale.photo_like_vectors`` (clusters on a decaying spectrum, 1% near-
duplicate pairs; random unit vectors are hnswlib's worst case). Recall@10 against exact
search for 300 queries that are library vectors (the query itself excluded, as ``similar``
does). Prints one line per (M, ef_construction): build seconds with every core, index MB,
then recall and p50 ms per ef. Not a test; note the machine's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import hnswlib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import photo_like_vectors  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--configs", nargs="+", default=["12:100", "16:100", "16:200", "24:100"])
    ap.add_argument("--efs", nargs="+", type=int, default=[32, 64, 100, 128, 200])
    a = ap.parse_args()
    vecs = photo_like_vectors(a.n, a.dim)
    rng = np.random.default_rng(1)
    q = rng.choice(a.n, 300, replace=False)
    scores = vecs[q] @ vecs.T
    scores[np.arange(len(q)), q] = -np.inf
    truth = np.argsort(-scores, axis=1)[:, :10]
    threads = len(os.sched_getaffinity(0))
    print(f"n={a.n} dim={a.dim} threads={threads} load={os.getloadavg()[0]:.1f}", flush=True)
    for cfg in a.configs:
        m, efc = map(int, cfg.split(":"))
        idx = hnswlib.Index(space="ip", dim=a.dim)
        idx.init_index(max_elements=a.n, M=m, ef_construction=efc)
        t = time.perf_counter()
        idx.add_items(vecs, np.arange(a.n), num_threads=threads)
        build = time.perf_counter() - t
        mb = (a.n * (a.dim * 4 + m * 2 * 4 + 8 + 4)) / 2**20
        parts = []
        for ef in a.efs:
            idx.set_ef(ef)
            hits, times = 0, []
            for qi, want in zip(q, truth):
                t = time.perf_counter()
                labels, _ = idx.knn_query(vecs[qi:qi + 1], k=11)
                times.append(time.perf_counter() - t)
                got = [x for x in labels[0] if x != qi][:10]
                hits += len(set(want) & set(got))
            parts.append(f"ef {ef}: {hits / (10 * len(q)):.3f} {1000 * np.median(times):.2f} ms")
        print(f"M={m} efc={efc}: build {build:.1f} s, ~{mb:.0f} MB | " + " | ".join(parts),
              f"(load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
