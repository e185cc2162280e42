"""Build-time only: choose encoder v5's backbone, input and whitening on validation data.

Nothing here sees the photos that the card reports on:

* Caltech-101 development classes: the 25 classes ``train_encoder.py`` holds out (seed 0)
  are never read; of the other 55, ten (drawn with seed 1) are the validation classes and
  45 teach the whitening.
* Scenes: ``scene_set.py``'s ``val`` places are validation, its ``train`` places teach
  the whitening; its ``test`` places are never read.
* CIFAR-10 (optional): 100 photos per class of its *training* set, for small photos
  (never trained on; the figure reported elsewhere is on its test set).

For each backbone configuration (``ARCH:SIZE:POOLING``; ``A+B`` averages the normalised
features of two, e.g. two input sizes) it caches the upright pooled features once, then
measures each head fitted on the training part: none (the L2-normalised features), PCA
whitening (power 0.5 and 0.25), and the shrunk LDA of train_encoder.py (classes: the 45
Caltech classes plus one per training place, whose shots teach "another shot of the same
place"). Scenes are measured twice: among themselves, and with the 2,165 Caltech photos as
distractors (``scenes_val_map_distractors``). Prints one line each::

    python packaging/sweep_encoder.py --caltech ../shared/datasets/caltech101-dev \
        --scenes /tmp/v5/scenes --cifar /tmp/cifar/train --work /tmp/v5/sweep
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "packaging")):
    if p not in sys.path:
        sys.path.insert(0, p)

from photosim.evaluation import list_album, mean_average_precision, retrieval_metrics, triplet_accuracy  # noqa: E402

LITE_MEAN, LITE_STD = [0.498, 0.498, 0.498], [0.502, 0.502, 0.502]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def caltech_split(folder: Path, per_class: int) -> dict[str, list[tuple[Path, str]]]:
    from train_encoder import cap_per_class, split_classes

    items = list_album(folder)
    classes = sorted({c for _, c in items})
    train55, _held = split_classes(classes, 25, 0)  # the held-out 25 are never read here
    val = sorted(random.Random(1).sample(train55, 10))
    train = [c for c in train55 if c not in val]
    return {"train": cap_per_class([it for it in items if it[1] in train], per_class, 0),
            "val": cap_per_class([it for it in items if it[1] in val], per_class, 0)}


def cifar_val(folder: Path, per_class: int = 100) -> list[tuple[Path, str]]:
    out = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        out += [(p, d.name) for p in sorted(d.glob("*.jpg"))[:per_class]]
    return out


def card_for(arch: str, size: int, pooling: str, scales: tuple[float, ...] = (1.0,)):
    from photosim.model import ModelCard

    lite = arch.startswith("efficientnet_lite")
    return ModelCard(id="features", architecture=arch, pooling=pooling, input_size=size, context_size=0,
                     feature_dim=1280, head="identity", dim=1280,
                     mean=LITE_MEAN if lite else [0.485, 0.456, 0.406],
                     std=LITE_STD if lite else [0.229, 0.224, 0.225])


def features(arch: str, size: int, pooling: str, items, work: Path, tag: str) -> np.ndarray:
    import torch

    from photosim.imageio import PhotoError, open_image
    from pretrained import imagenet_backbone_state
    from train_encoder import make_encoder

    key = hashlib.blake2b(json.dumps([arch, size, pooling, [str(p) for p, _ in items]]).encode(),
                          digest_size=8).hexdigest()
    path = work / f"{arch}-{size}-{pooling}-{tag}-{key}.npy"
    if path.is_file():
        return np.load(path)
    enc = make_encoder(card_for(arch, size, pooling), imagenet_backbone_state(CACHE, arch))
    out = np.zeros((len(items), 1280), np.float32)
    t0 = time.time()
    batch, at = [], []

    def flush():
        if batch:
            x = torch.from_numpy(np.stack([enc.preprocess(im) for im in batch]))
            with torch.inference_mode():
                out[at] = enc.net.features(x.contiguous(memory_format=torch.channels_last)).numpy()
            batch.clear(), at.clear()

    for i, (p, _) in enumerate(items):
        try:
            batch.append(open_image(p))
            at.append(i)
        except PhotoError:
            continue
        if len(batch) == 32:
            flush()
    flush()
    work.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    log(f"{arch} {size} {pooling} {tag}: {len(items)} photos, {len(items) / (time.time() - t0):.1f}/s")
    return out


def scene_map_with_distractors(scenes: np.ndarray, labels: np.ndarray, distractors: np.ndarray) -> float:
    """mAP of the scene photos as queries, ranked among each other and ``distractors`` (no
    distractor is relevant to any query)."""
    v = np.concatenate([scenes, distractors])
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    lab = np.concatenate([labels.astype(str), [f"distractor:{i}" for i in range(len(distractors))]])
    aps = []
    for i in range(len(scenes)):
        sims = v @ v[i]
        sims[i] = -np.inf
        rel = lab[np.argsort(-sims, kind="stable")[:-1]] == lab[i]
        aps.append(float(np.mean(np.cumsum(rel)[rel] / (np.flatnonzero(rel) + 1))))
    return float(np.mean(aps))


CACHE = Path.home() / ".cache" / "photosim-build"


def main(argv=None) -> None:
    from train_encoder import pca_whitening, shrunk_lda

    ap = argparse.ArgumentParser()
    ap.add_argument("--caltech", type=Path, required=True)
    ap.add_argument("--scenes", type=Path, required=True, help="output of scene_set.py")
    ap.add_argument("--cifar", type=Path, default=None, help="CIFAR-10 *training* images, one folder per class")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--configs", default="mobilenet_v2:224:avg,mobilenet_v2:288:rmac,efficientnet_lite0:288:rmac,"
                                        "efficientnet_lite1:288:rmac,efficientnet_lite2:288:rmac")
    ap.add_argument("--dims", type=int, default=320)
    ap.add_argument("--shrinks", default="0.5,0.7,0.9")
    ap.add_argument("--v4", type=Path, default=None,
                    help="encoder v4's directory (its upright channel is measured on mobilenet_v2:288:rmac "
                         "features; it trained on the validation classes, so that row flatters it)")
    a = ap.parse_args(argv)

    cal = caltech_split(a.caltech, a.per_class)
    scenes = {s: [(p, p.parent.name) for p in sorted((a.scenes / s).rglob("*.jpg"))] for s in ("train", "val")}
    cif = cifar_val(a.cifar) if a.cifar else []
    log(f"caltech train {len(cal['train'])} val {len(cal['val'])}; scenes train {len(scenes['train'])} "
        f"val {len(scenes['val'])}; cifar {len(cif)}")
    lab = {k: np.array([c for _, c in v]) for k, v in
           (("ct", cal["train"]), ("cv", cal["val"]), ("st", scenes["train"]), ("sv", scenes["val"]), ("cf", cif))}
    rows = []
    sets = (("ct", cal["train"]), ("cv", cal["val"]), ("st", scenes["train"]), ("sv", scenes["val"]), ("cf", cif))
    for spec in a.configs.split(","):
        parts = []
        for one in spec.split("+"):
            arch, size, pooling = one.split(":")
            parts.append({k: features(arch, int(size), pooling, items, a.work, k) for k, items in sets})
        f = {k: sum(p[k] / np.maximum(np.linalg.norm(p[k], axis=1, keepdims=True), 1e-12) for p in parts)
             for k, _ in sets} if len(parts) > 1 else parts[0]
        train = np.concatenate([f["ct"], f["st"]]).astype(np.float64)
        train_lab = np.concatenate([lab["ct"], np.char.add("scene:", lab["st"])])
        heads = {"none": None, "pca-white": pca_whitening(train, a.dims, power=0.5),
                 "pca-white0.25": pca_whitening(train, a.dims, power=0.25)}
        for s in a.shrinks.split(","):
            heads[f"lda{s}"] = shrunk_lda(train, train_lab, a.dims, float(s))
            heads[f"lda{s}-caltech-only"] = shrunk_lda(f["ct"].astype(np.float64), lab["ct"], a.dims, float(s))
        if spec == "mobilenet_v2:288:rmac" and a.v4:
            from safetensors.numpy import load_file

            w = load_file(str(a.v4 / "encoder.safetensors"))
            heads["v4-upright"] = (w["head.upright.weight"], w["head.upright.bias"])
        for name, h in heads.items():
            def proj(x, h=h):
                return x if h is None else x @ h[0].T + h[1]
            r = {"config": spec, "head": name,
                 "caltech_val_map_at_r": round(retrieval_metrics(proj(f["cv"]), lab["cv"])["map_at_r"], 4),
                 "scenes_val_map": round(mean_average_precision(proj(f["sv"]), lab["sv"]), 4),
                 "scenes_val_map_distractors": round(scene_map_with_distractors(
                     proj(f["sv"]), lab["sv"], proj(np.concatenate([f["cv"], f["ct"]]))), 4)}
            if cif:
                r["cifar_val_triplet"] = round(triplet_accuracy(proj(f["cf"]), lab["cf"]), 4)
            rows.append(r)
            log(json.dumps(r))
    (a.work / "sweep.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
