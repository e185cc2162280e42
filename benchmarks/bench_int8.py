"""What int8 costs: retrieval and near-duplicate quality of fp32 and int8 (prints figures).

    python benchmarks/bench_int8.py --caltech ../shared/datasets/caltech101-dev [--near-dup-sample 200]

Runs :func:`photosim.evaluation.evaluate_folder` (what ``photosim eval`` runs) on the
Caltech-101 classes the bundled encoder was NOT trained on (the card's
``training.heldout_classes``), once with ONNX Runtime fp32 and once with ONNX
Runtime int8 (and with torch fp32 with ``--torch``), and prints mAP@R, Recall@1,
Precision@10 and near-duplicate Recall@1 with the int8 - fp32 differences. int8
may be photosim's default only if it loses at most 0.003 mAP@R and no
near-duplicate recall.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def heldout_folder(caltech: Path, out: Path) -> Path:
    from photosim.encoder import bundled_model_dir

    card = json.loads((bundled_model_dir() / "card.json").read_text())
    classes = card["training"]["heldout_classes"]
    out.mkdir(parents=True, exist_ok=True)
    for c in classes:
        link = out / c
        if not link.exists():
            link.symlink_to((caltech / c).resolve(), target_is_directory=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--caltech", type=Path, required=True)
    ap.add_argument("--near-dup-sample", type=int, default=200)
    ap.add_argument("--torch", action="store_true", help="also torch fp32")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "photosim-bench-onnx")
    args = ap.parse_args()
    from photosim.encoder import Encoder
    from photosim.evaluation import evaluate_folder

    folder = heldout_folder(args.caltech, Path(tempfile.gettempdir()) / "photosim-heldout")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; held-out folder {folder}")
    runs = [("onnxruntime fp32", {"backend": "onnx"}), ("onnxruntime int8", {"backend": "onnx", "precision": "int8"})]
    if args.torch:
        runs.insert(0, ("torch fp32", {"backend": "torch"}))
    got = {}
    for label, kw in runs:
        enc = Encoder.load(cache_dir=args.cache, **kw)
        assert not enc.notice, enc.notice
        t = time.perf_counter()
        r = evaluate_folder(enc, folder, near_dup_sample=args.near_dup_sample, seed=0)
        nd = r.near_duplicates
        got[label] = m = {"map_at_r": r.retrieval["map_at_r"], "recall_at_1": r.retrieval["recall_at_1"],
                          "precision_at_10": r.retrieval["precision_at_10"], "near_dup_recall_at_1": nd["recall_at_1"],
                          "rotation_recall_at_1": nd.get("rotation_recall_at_1")}
        print(f"{label:<17} ({enc.id}; {r.n_photos} photos, {r.n_classes} classes, {time.perf_counter() - t:.0f} s): "
              + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if v is not None))
        for kind, v in nd["per_kind"].items():
            print(f"    near-dup {kind:<12} {v:.4f}")
    a, b = got["onnxruntime fp32"], got["onnxruntime int8"]
    print("int8 - fp32: " + ", ".join(f"{k} {b[k] - a[k]:+.4f}" for k in a if a[k] is not None))
    ok = a["map_at_r"] - b["map_at_r"] <= 0.003 and b["near_dup_recall_at_1"] >= a["near_dup_recall_at_1"]
    print(f"int8 may be the default (<= 0.003 mAP@R lost, no near-duplicate recall lost): {'yes' if ok else 'no'}")
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
