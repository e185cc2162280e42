"""Training the last backbone blocks, not only the head, on cached activations.

A head trained on frozen pooled features cannot change what the backbone
notices; the last blocks can. Running the whole CNN per training step is far too
slow on a laptop CPU, so the blocks before the cut (about 70 % of the compute)
run once per photo and view (:func:`cache_activations`), and each step runs only
the blocks after the cut, the pooling and the head (:func:`train_blocks`, on the
shared loop :func:`photosim.training.loop.fit`). Losses, miners and the batch
sampler are pytorch-metric-learning's. Batch-norm statistics stay
frozen: batches of a few albums would skew them (letting them adapt lowered
CIFAR-10 triplet accuracy from 0.875 to 0.858).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..values import Cancelled
from .loop import FitResult, MPerClassBatches, TrainProgress, TripletBatches, cosine, fit, two_views

#: First MobileNetV2 block at 1/32 of the side (9x9 at 288 px); cutting here keeps the cache small.
DEFAULT_SPLIT = 14


@dataclass
class Activations:
    """Lower-trunk activations, float16, view 0 = the photo itself.

    ``upright``: (n, views, C, H, W); ``context``: (n, views, 4, C, h, w) (the four
    quarter turns of the small context copy) or None when the card has no context.
    """

    split: int
    upright: np.ndarray
    context: np.ndarray | None

    @property
    def n(self) -> int:
        return self.upright.shape[0]

    @property
    def views(self) -> int:
        return self.upright.shape[1]

    def take(self, rows: np.ndarray) -> Activations:
        return Activations(self.split, self.upright[rows], None if self.context is None else self.context[rows])


def cache_activations(
    encoder, photos: Iterable[Sequence], split: int = DEFAULT_SPLIT, n: int | None = None, batch: int = 48,
    progress: Callable[[int], None] | None = None, cancel: Callable[[], bool] | None = None,
) -> Activations:
    """Run the blocks before ``split`` once for every view of every photo.

    ``photos`` yields, per photo, a list of PIL views (same count for all; the
    first is the photo itself). ``encoder`` is a loaded :class:`photosim.Encoder`; its
    :meth:`~photosim.encoder.Encoder.lower` runs the blocks (ONNX Runtime on CPU).
    """
    photos = list(photos) if n is None else photos
    n = len(photos) if n is None else n
    up = ctx = None
    buf: list = []
    at: list[tuple[int, int]] = []

    def flush() -> None:
        nonlocal up, ctx
        if not buf:
            return
        u, c = encoder.lower(np.stack([encoder.preprocess(im) for im in buf]), split)
        u = u.astype(np.float16)
        if c is not None:
            c = c.astype(np.float16)
            c = c.reshape(4, len(buf), *c.shape[1:]).transpose(1, 0, 2, 3, 4)
        if up is None:
            up = np.zeros((n, views) + u.shape[1:], np.float16)
            ctx = None if c is None else np.zeros((n, views) + c.shape[1:], np.float16)
        for j, (i, v) in enumerate(at):
            up[i, v] = u[j]
            if ctx is not None:
                ctx[i, v] = c[j]
        buf.clear()
        at.clear()

    views = 0
    for i, photo_views in enumerate(photos):
        if cancel is not None and cancel():
            raise Cancelled()
        views = views or len(photo_views)
        if len(photo_views) != views:
            raise ValueError("every photo needs the same number of views")
        for v, im in enumerate(photo_views):
            buf.append(im)
            at.append((i, v))
        if len(buf) >= batch:
            flush()
        if progress is not None:
            progress(i + 1)
    flush()
    if up is None:
        raise ValueError("no photos to cache")
    return Activations(split, up, ctx)


def _batch_inputs(acts: Activations, idx: np.ndarray, view: np.ndarray, device: str):
    import torch

    u = torch.from_numpy(acts.upright[idx, view].astype(np.float32)).to(device)
    c = None
    if acts.context is not None:
        cc = acts.context[idx, view]  # (B, 4, C, h, w) → turns first, as EncoderNet.lower stacks them
        c = torch.from_numpy(np.ascontiguousarray(cc.transpose(1, 0, 2, 3, 4)).astype(np.float32))
        c = c.reshape(-1, *cc.shape[2:]).to(device)
    if device == "cpu":
        u = u.contiguous(memory_format=torch.channels_last)
        c = None if c is None else c.contiguous(memory_format=torch.channels_last)
    return u, c


def upper_features(net, acts: Activations, view: int = 0, batch: int = 128, device: str = "cpu") -> np.ndarray:
    """Pooled features (float32) of one view of every cached photo."""
    import torch

    out = []
    net.eval()
    with torch.inference_mode():
        for s in range(0, acts.n, batch):
            idx = np.arange(s, min(acts.n, s + batch))
            u, c = _batch_inputs(acts, idx, np.full(len(idx), view), device)
            out.append(net.upper(u, c, acts.split).float().cpu().numpy())
    return np.concatenate(out)


@dataclass
class BlockTraining:
    epochs: int = 6
    train_from: int | None = None  # first trained block (default: the cut)
    lr_blocks: float = 3e-5
    lr_head: float = 1e-4
    weight_decay: float = 1e-4
    batch_classes: int = 16
    batch_images: int = 4
    instance_weight: float = 1.0  # the views of one photo as their own group
    #: "multisimilarity" (pairs, as the bundled encoder) or "triplet" (triplets mined as ``triplets`` says)
    loss: str = "multisimilarity"
    margin: float = 0.1
    #: TripletMarginMiner's choice. "all" (every triplet that violates the margin) suits the
    #: blocks: semi-hard triplets at margin 0.1 are few once the head is trained, and the
    #: blocks barely moved (CIFAR-10, 4,000 photos: triplet accuracy 0.875 -> 0.890 in three
    #: epochs; "all" at margin 0.2: 0.875 -> 0.912 in four).
    triplets: str = "semihard"
    ms_alpha: float = 2.0
    ms_beta: float = 50.0
    ms_base: float = 0.5
    miner_epsilon: float = 0.1
    steps_per_epoch: int | None = None
    seed: int = 0
    #: the blocks in bfloat16 on CPU (autocast; the head and the loss stay float32): steps
    #: take half the time where the CPU has AVX-512 BF16
    bf16: bool = False
    #: also train the depthwise convolutions' weights. Under bfloat16 on CPU their weight
    #: gradient is most of a step (EfficientNet-Lite2 blocks 17-21: 5.3 of 6.2 s for 160
    #: photos; frozen: 1.9 s), and they hold about 4 % of those blocks' weights.
    train_depthwise: bool = True


def _trained(block, depthwise: bool) -> list:
    """``block``'s parameters to train: all, or all but its depthwise convolutions' weights."""
    import torch

    return [p for m in block.modules() for p in m.parameters(recurse=False)
            if depthwise or not (isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels)]


def _loss_and_miner(cfg: BlockTraining):
    from pytorch_metric_learning import losses, miners

    if cfg.loss == "triplet":
        return (losses.TripletMarginLoss(margin=cfg.margin),
                miners.TripletMarginMiner(margin=cfg.margin, type_of_triplets=cfg.triplets))
    return (losses.MultiSimilarityLoss(alpha=cfg.ms_alpha, beta=cfg.ms_beta, base=cfg.ms_base),
            miners.MultiSimilarityMiner(epsilon=cfg.miner_epsilon))


def train_blocks(
    net, acts: Activations, labels: np.ndarray, config: BlockTraining, device: str = "cpu",
    triplets: np.ndarray | None = None,
    valid: Callable[[object], dict] | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    cancel=None,
    start_metrics: dict | None = None,
) -> FitResult:
    """Train ``net``'s blocks from ``train_from`` on and its head, in place, with
    :func:`photosim.training.loop.fit` (``start_metrics``: the starting net's ``valid`` metrics, if known).

    The configured loss and miner on album labels (``MPerClassSampler`` batches; rows
    labelled -1 take part only through ``triplets``, explicit (anchor, positive, negative)
    rows) plus the same on photo identity (two views of each photo per batch). With
    ``valid`` (net → dict with "map_at_r"), the state of the best validated epoch is kept
    (epoch 0 = the starting net; without ``valid``, the last). ``cancel``: anything
    :func:`photosim.progress.as_token` takes.
    """
    import torch
    import torch.nn.functional as F
    from pytorch_metric_learning import losses

    cfg = config
    split = acts.split
    start = split if cfg.train_from is None else max(split, cfg.train_from)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    lab = np.asarray(labels)
    ids, counts = np.unique(lab[lab >= 0], return_counts=True)
    classes = ids[counts >= 2]
    rows = np.flatnonzero(np.isin(lab, classes))
    triplets = np.zeros((0, 3), np.int64) if triplets is None else np.asarray(triplets, np.int64).reshape(-1, 3)
    if len(classes) < 2 and not len(triplets):
        raise ValueError("training needs two albums with two photos each, or marked pairs")
    for p in net.parameters():
        p.requires_grad_(False)
    blocks = [p for blk in net.backbone[start:] for p in _trained(blk, cfg.train_depthwise)]
    head = list(net.head.parameters())
    for p in blocks + head:
        p.requires_grad_(True)
    groups = [g for g in ({"params": blocks, "lr": cfg.lr_blocks}, {"params": head, "lr": cfg.lr_head}) if g["params"]]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    steps = cfg.steps_per_epoch or max(1, acts.n // (cfg.batch_classes * cfg.batch_images))
    class_loss, class_miner = _loss_and_miner(cfg)
    inst_loss, inst_miner = _loss_and_miner(cfg)
    mark_loss = losses.TripletMarginLoss(margin=cfg.margin)
    albums = iter(MPerClassBatches(rows, lab[rows], cfg.batch_images, cfg.batch_classes, steps, rng)) \
        if len(classes) >= 2 else None
    marks = TripletBatches(triplets, 32, rng)
    n_views = acts.views

    low = bool(cfg.bf16 and device == "cpu")

    def embed(u, c):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            f = net.upper(u, c, split)
        return F.normalize(net.head(f.float()), dim=1)

    def step():
        loss = torch.zeros((), device=device)
        if albums is not None:
            idx = next(albums)
            if n_views > 1:  # two views of each photo
                v = two_views(rng, len(idx), n_views)
                idx, v = np.concatenate([idx, idx]), np.concatenate([v[:, 0], v[:, 1]])
            else:  # the photo alone (a second copy of it would only be a free positive)
                v = np.zeros(len(idx), dtype=np.int64)
            emb = embed(*_batch_inputs(acts, idx, v, device))
            y_class = torch.from_numpy(lab[idx]).to(emb.device)
            loss = loss + class_loss(emb, y_class, class_miner(emb, y_class))
            if cfg.instance_weight and n_views > 1:
                y_inst = torch.from_numpy(idx).to(emb.device)
                loss = loss + cfg.instance_weight * inst_loss(emb, y_inst, inst_miner(emb, y_inst))
        if len(marks):
            uniq, at = marks.draw()
            at = torch.from_numpy(at).to(device)
            emb_m = embed(*_batch_inputs(acts, uniq, np.zeros(len(uniq), dtype=np.int64), device))
            loss = loss + mark_loss(emb_m, None, (at[:, 0], at[:, 1], at[:, 2]))
        return loss

    try:
        # train_mode False: frozen batch-norm statistics; gradients still flow
        return fit(net, opt, step, epochs=cfg.epochs, steps=steps, schedule=cosine(opt, steps * cfg.epochs),
                   evaluate=(lambda: valid(net)) if valid is not None else None, train_mode=False,
                   progress=progress, cancel=cancel, start=start_metrics)
    finally:
        for p in net.parameters():
            p.requires_grad_(False)
        net.eval()
