"""Finding duplicates in a real 10,000-photo library, timed on this machine.

The library: every photo of the Caltech-101 development set (5,478 real photos, many of
them other shots of one kind of thing: faces, leopards, motorbikes), two edited copies of
2,000 of them (kinds in turn as in ``bench_duplicates``: half size + re-encode, crop to
70-88%, 90° turn without EXIF, tone change, mirror, a border with text) and "another shot"
(an overlapping crop seen through a perspective warp with a patch of another photo) of
522 more: 10,000 photos, 60% of them in a group of copies, a heavy case.

Built and scanned once into ``--work`` (the scan is slow on 2 cores: ~20 min under load),
then reused. Prints the time of ``Library.duplicates()`` (wall and CPU), the pairs
verified and photos decoded, the share of photos with a candidate neighbour, per-pair
and per-photo costs, pair precision / recall, other shots called duplicates, and where
an edited copy's nearest neighbour is its original.

    PYTHONPATH=. python benchmarks/bench_duplicates_10k.py [--work /tmp/dup10k] [--workers N]
"""

from __future__ import annotations

import argparse
import glob
import itertools
import os
import pickle
import random
import resource
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_duplicates as B

from photosim import Library


def build(caltech: str, work: Path) -> dict:
    photos = work / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    src = sorted(glob.glob(os.path.join(caltech, "**", "*.jpg"), recursive=True))
    rng.shuffle(src)
    truth = {}
    for i, f in enumerate(src):
        im = Image.open(f).convert("RGB")
        names = {"original": f"c{i:05d}_original.jpg"}
        im.save(photos / names["original"], quality=92)
        if i < 2000:
            for j in range(2):
                kind = B.KINDS[(i * 2 + j) % len(B.KINDS)]
                names[kind] = f"c{i:05d}_copy_{kind}.jpg"
                B.edit(im, kind, rng).save(photos / names[kind], quality=rng.randint(60, 85))
        elif i < 2522:
            w, h = im.size
            dx, dy = rng.uniform(0.15, 0.25) * w, rng.uniform(0.1, 0.2) * h
            box = (int(dx), int(dy), int(dx + w * 0.75), int(dy + h * 0.75))
            patch = Image.open(src[(i + 1) % len(src)]).convert("RGB")
            names["other"] = f"c{i:05d}_other.jpg"
            B.other_shot(im, box, patch, rng).save(photos / names["other"], quality=92)
        truth[i] = names
    return truth


def score(truth, pairs) -> dict:
    copies, others = set(), set()
    for t in truth.values():
        same = [v for k, v in t.items() if k != "other"]
        copies |= {tuple(sorted(p)) for p in itertools.combinations(same, 2)}
        if "other" in t:
            others |= {(t["other"], v) if t["other"] < v else (v, t["other"]) for v in same}
    tp = len(pairs & copies)
    across = pairs - copies - others
    if across:
        print(f"  {len(across)} pairs grouped across sources (Caltech holds a few copies itself?): "
              + ", ".join(f"{a}~{b}" for a, b in sorted(across)[:8]))
    return {"precision": tp / len(pairs) if pairs else 1.0, "recall": tp / len(copies),
            "other_called_dup": len(pairs & others) / len(others), "pairs": len(pairs), "true": len(copies)}


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/dup10k")
    ap.add_argument("--caltech", default="/work/shared/datasets/caltech101-dev")
    ap.add_argument("--workers", type=int, default=None, help="verification threads (default: one per core)")
    ap.add_argument("--nn", action="store_true", help="also measure each edited copy's nearest neighbour")
    args = ap.parse_args()
    work = Path(args.work)
    if not (work / "truth.pkl").exists():
        t = time.perf_counter()
        truth = build(args.caltech, work)
        print(f"built {sum(len(v) for v in truth.values())} photos in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        with Library(work / "lib") as lib:
            lib.scan([work / "photos"])
        print(f"scan: {time.perf_counter() - t:.0f} s (load {os.getloadavg()[0]:.1f})")
        (work / "truth.pkl").write_bytes(pickle.dumps(truth))
    truth = pickle.loads((work / "truth.pkl").read_bytes())

    import photosim.pipeline.duplicates as D
    D.VERIFY_WORKERS = args.workers
    counted = {"pairs": 0}
    real_verify = D.verify

    def counting_verify(a, b):
        counted["pairs"] += 1  # the GIL keeps this count exact enough (+= on a dict item)
        return real_verify(a, b)

    D.verify = counting_verify
    made = []
    real_looks = D.Looks

    def looks(paths):
        made.append(real_looks(paths))
        return made[-1]

    D.Looks = looks
    with Library(work / "lib") as lib:
        n_photos = len(lib.photos())
        load0 = os.getloadavg()[0]
        t, c = time.perf_counter(), cpu()
        groups = lib.duplicates()
        elapsed, cpu_s = time.perf_counter() - t, cpu() - c
        D.verify, D.Looks = real_verify, real_looks
        decoded = made[-1].decoded if made else 0
        print(f"find duplicates in {n_photos} photos: {elapsed:.1f} s wall, {cpu_s:.1f} s CPU, "
              f"{D._workers()} verification threads (load {load0:.1f} before, {os.getloadavg()[0]:.1f} after)")
        print(f"  {decoded} photos decoded for verification ({decoded / n_photos:.0%} of the library), "
              f"{counted['pairs']} pairs verified; CPU per pair (decodes included): "
              f"{cpu_s / max(1, counted['pairs']) * 1000:.0f} ms")
        pairs = B.group_pairs(groups)
        s = score(truth, pairs)
        copies = [i for i in truth if len(truth[i]) > 2]
        print(f"pair precision {s['precision']:.3f}, pair recall {s['recall']:.3f}, other-shot pairs called "
              f"duplicates {s['other_called_dup']:.1%} ({s['pairs']} pairs in groups, {s['true']} true); "
              f"{len(groups)} groups, largest {max((len(g.photos) for g in groups), default=0)}")
        if args.nn:
            by_name = {p.name: p for p in lib.photos()}
            hits = same = n = 0
            for i in copies:
                names = truth[i]
                for k, name in names.items():
                    if k in ("original", "other"):
                        continue
                    best = lib.similar(by_name[name], k=1)[0].photo.name
                    hits += best == names["original"]
                    same += best in set(names.values()) - {names.get("other")}
                    n += 1
            print(f"an edited copy's nearest neighbour is its original: {hits / n:.1%}; "
                  f"the original or its other copy: {same / n:.1%} ({n} copies)")


if __name__ == "__main__":
    main()
