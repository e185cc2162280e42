"""Standard and thorough fine-tuning: backbone blocks and the head, from the photos.

A head trained on cached features cannot learn what the frozen backbone never
noticed (on CIFAR-10 every head we tried stopped near 0.91 triplet accuracy).
Here the blocks before a cut run once per labelled photo (:mod:`.trunk`); epochs
then run only the blocks after it. Two plans (:data:`PLANS`):

* **standard** cuts after the first block at 1/32 of the side and trains the blocks
  after it (EfficientNet-Lite2: five), the 1x1 head conv and the head, in bfloat16 on
  CPU with the depthwise convolutions' weights frozen, from the photo alone. Its input
  is what a scan that keeps taps computes anyway (:mod:`photosim.store.taps`: an album
  import keeps them), so photos with taps are not read again, and accepting the model
  re-embeds them from their taps (:func:`photosim.pipeline.switch.switch_model`).
* **thorough** cuts at 1/32 of the side and trains every block after it, from each
  photo and a mirrored copy of it: better, and many times slower.

The result is a complete model with a backbone of its own: accepting it re-embeds
the library (from taps where there are some, else decoding the photos again).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import PhotosimError
from ..evaluation import retrieval_metrics
from ..progress import as_token
from .finetune import TrainConfig, TrainOutcome, split_validation, user_errors
from .loop import TrainProgress
from .trunk import Activations, BlockTraining, cache_activations, train_blocks, upper_features

#: The second view of each photo: its mirror image with a colour or exposure change. Gentle on
#: purpose: crops, down-sizing and JPEG re-compression wreck small photos. (CIFAR-10, 32 px:
#: with edited views, semi-hard triplets and blocks at lr 1e-4, validation never beat the head
#: alone; with mirrored views and every violating triplet it did, by far: see BlockTraining.)
VIEW_EDITS = ("colour", "exposure")


def _views(paths: list, seed: int, bad: list[int], views: int = 2, rows=None):
    """Per photo (``rows`` of ``paths``, default all): the photo, and with ``views`` 2 its
    mirrored copy, edited."""
    from PIL import Image

    from .. import edits
    from ..imageio import PhotoError, open_image

    for i in range(len(paths)) if rows is None else rows:
        try:
            img = open_image(paths[i])
        except (PhotoError, OSError):
            bad.append(i)  # vanished or damaged since it was labelled: left out below
            img = Image.new("RGB", (32, 32))
        if views == 1:
            yield [img]
            continue
        rng = random.Random(f"{seed}:{i}")
        yield [img, edits.random_edit(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), rng, VIEW_EDITS)]


#: What the "preparing" stage says it does: reading photos, or loading their kept taps.
READING = "reading labelled photos"
FROM_TAPS = "loading the activations their scan kept"


def _activations(encoder, paths: list, plan: BlocksPlan, seed: int, bad: list[int], progress, cancel,
                 hashes: list | None, taps) -> Activations:
    """The activations before the plan's cut of every photo: for one-view plans from
    ``taps`` (a :class:`photosim.store.taps.TapStore`) where it holds the photo's content
    hash, else read and run, and then kept there for accepting the model."""
    n = len(paths)
    cut = plan.cut(encoder.card.architecture)
    if plan.views != 1 or taps is None or hashes is None:
        return cache_activations(encoder, _views(paths, seed, bad, plan.views), split=cut, n=n,
                                 progress=progress, cancel=cancel)
    if progress:
        progress(0, FROM_TAPS)
    found, up, ctx = taps.get(encoder.backbone_id, cut, [h or "" for h in hashes])
    missing = np.flatnonzero(~found)
    had = int(found.sum())
    if progress:
        progress(had, FROM_TAPS if had == n else READING)
    read = None
    if len(missing):
        read = cache_activations(encoder, _views(paths, seed, bad, 1, missing.tolist()), split=cut,
                                 n=len(missing), progress=(lambda i: progress(had + i)) if progress else None,
                                 cancel=cancel)
        unreadable = set(bad)
        ok = [j for j, i in enumerate(missing) if i not in unreadable and hashes[i]]
        taps.put(encoder.backbone_id, cut, [hashes[missing[j]] for j in ok], read.upright[ok, 0],
                 None if read.context is None else read.context[ok, 0])
    first = read if read is not None else Activations(cut, up[:, None], None if ctx is None else ctx[:, None])
    upright = np.zeros((n,) + first.upright.shape[1:], np.float16)
    context = None if first.context is None else np.zeros((n,) + first.context.shape[1:], np.float16)
    if had:
        upright[found, 0] = up
        if context is not None:
            context[found, 0] = ctx
    if read is not None:
        upright[missing] = read.upright
        if context is not None:
            context[missing] = read.context
    return Activations(cut, upright, context)


@dataclass(frozen=True)
class BlocksPlan:
    """What a mode trains after the head: from which block, on how many views of each
    photo, for how many epochs (unless the config says), at which learning rates (times
    ``TrainConfig.lr``), whether in bfloat16 on CPU, and whether the depthwise
    convolutions' weights learn too (see :attr:`.trunk.BlockTraining.train_depthwise`)."""

    cut: Callable[[str], int]
    views: int
    epochs: int
    lr_blocks: float
    lr_head: float
    bf16: bool
    depthwise: bool = True


def _deep(architecture: str) -> int:
    from ..model import deep_cut

    return deep_cut(architecture)


def _late(architecture: str) -> int:
    from ..model import late_cut

    return late_cut(architecture)


#: standard: chosen on selection splits of CIFAR-10 albums (1,600 of the 8,000 album photos held
#: out) and of Caltech-101 half/half albums (20 % of the album halves held out); the benchmark's
#: test photos never used (README, Speed). CIFAR-10 selection triplet accuracy (one split, seed 1):
#: the last block alone (cut 21) five epochs at lr 1e-3 0.936; cut 19, three epochs 0.940;
#: cut 17 three epochs at lr 1e-3 0.952, at 3e-4 0.952 (two epochs: 0.947), and with the depthwise
#: weights frozen 0.951 in 254 s instead of 465 s. Earlier, for the last block: the head at 1e-4
#: (1e-3 lost to the head alone on Caltech; CIFAR the same), triplet margin 0.2 (0.3: worse), no
#: mirrored copies of the taps (worse); bfloat16 halves the step at the same accuracy.
PLANS = {
    "standard": BlocksPlan(_late, views=1, epochs=3, lr_blocks=0.3, lr_head=0.1, bf16=True, depthwise=False),
    "thorough": BlocksPlan(_deep, views=2, epochs=6, lr_blocks=0.1, lr_head=0.3, bf16=False),
}


def photo_bytes(encoder, split: int | None = None, views: int = 2) -> int:
    """Memory one labelled photo takes while the blocks train: the float16 activations
    of its ``views`` before ``split`` (the deep cut by default: about 225 KB at 288 px for
    EfficientNet-Lite2 with two views, 180 KB for MobileNetV2; the late cut with one
    view: 49 KB for EfficientNet-Lite2)."""
    import torch

    from ..model import deep_cut

    split = deep_cut(encoder.card.architecture) if split is None else split
    size = encoder.card.input_size
    with torch.inference_mode():
        u, c = encoder.net.lower(torch.zeros(1, 3, size, size, device=encoder.device), split)
    per_view = u.numel() + (0 if c is None else c.numel())
    return views * per_view * 2  # float16


def thorough_limit(encoder, cfg: TrainConfig, mode: str = "thorough") -> int:
    """How many labelled photos the blocks learn from: what fits in ``cfg.thorough_memory_mb``."""
    plan = PLANS[mode]
    per = photo_bytes(encoder, plan.cut(encoder.card.architecture), plan.views)
    return max(1, min(cfg.max_thorough_photos, cfg.thorough_memory_mb * 2**20 // per))


def pick_photos(labels: np.ndarray, triplets: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Rows to train the blocks on: all of them when there are at most ``limit``; else every
    photo in a mark, and an equal share of each album (small albums whole); ``limit`` bounds
    the memory (see :func:`thorough_limit`)."""
    labels = np.asarray(labels)
    if len(labels) <= limit:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(labels), dtype=bool)
    keep[np.asarray(triplets, np.int64).reshape(-1)] = True
    albums = [np.flatnonzero((labels == a) & ~keep) for a in np.unique(labels[labels >= 0])]
    room = max(0, limit - int(keep.sum()))
    # the largest equal share that fits: small albums stay whole, large ones give way
    sizes = np.sort([len(r) for r in albums])
    share, left = 0, room
    for i, size in enumerate(sizes):
        fair = left // (len(sizes) - i)
        if size > fair:
            share = fair
            break
        left -= size
    else:
        share = int(sizes[-1]) if len(sizes) else 0
    for rows in albums:
        keep[rng.permutation(rows)[:share]] = True
    return np.flatnonzero(keep)


def block_training(plan: BlocksPlan, config: TrainConfig, epochs: int, train_labels: np.ndarray) -> BlockTraining:
    """How ``plan`` trains the blocks on photos labelled ``train_labels`` (album per photo)."""
    n_albums = max(2, min(16, len(np.unique(train_labels[train_labels >= 0]))))
    # a batch of config.batch_size rows: each photo's views count
    per = max(2, min(16 // plan.views, config.batch_size // (plan.views * n_albums)))
    return BlockTraining(
        epochs=epochs, loss="triplet" if config.loss == "triplet" else "multisimilarity",
        # Every violating triplet at a wider margin, and the mirrored view labelled with its
        # album only (as its own identity group it would push same-album photos apart).
        margin=max(config.margin, 0.2), triplets="all", instance_weight=0.0,
        lr_blocks=config.lr * plan.lr_blocks, lr_head=config.lr * plan.lr_head, bf16=plan.bf16,
        train_depthwise=plan.depthwise,
        weight_decay=config.weight_decay, seed=config.seed,
        batch_classes=n_albums, batch_images=per,
        # an epoch sees every photo once; few photos still get enough steps to learn
        steps_per_epoch=int(np.clip(len(train_labels) // (n_albums * per), 25, config.max_steps_per_epoch)),
    )


def time_blocks(encoder, mode: str = "standard", albums: int = 5, steps: int = 4) -> tuple[float, float]:
    """This machine's speed at ``mode``'s blocks, on synthetic activations of the encoder's
    shapes at the plan's cut (nothing is kept): seconds per view of a training step (``albums``
    × 16 views a step, batched as :func:`block_training` does; the fastest of the steps after
    the first, which sets the kernels up: the one least disturbed, as the estimate's probe
    measures the load of the moment apart), and per photo of a validation pass (48 photos
    through the blocks in float32, as validation runs them; the second of two passes).
    On the 2-core CPU: 0.0065-0.0099 s a view (a CIFAR-10 fine-tune's 120 steps of 160 views
    ran at 0.0074), 3-5 s in all; once, in a benchmark's process, the median of the steps
    gave 0.0144 (and the estimate +45 %)."""
    import copy

    import torch

    plan = PLANS[mode]
    cut = plan.cut(encoder.card.architecture)
    size = encoder.card.input_size
    with torch.inference_mode():
        u, c = encoder.net.lower(torch.zeros(1, 3, size, size, device=encoder.device), cut)
    labels = np.repeat(np.arange(albums), 16 // plan.views)
    rng = np.random.default_rng(0)

    def fake(n, shape):
        return np.abs(rng.standard_normal((n, plan.views) + tuple(shape), dtype=np.float32)).astype(np.float16)

    acts = Activations(cut, fake(len(labels), u.shape[1:]), None if c is None else fake(len(labels), c.shape))
    net = copy.deepcopy(encoder.net).float().to(encoder.device)
    cfg = block_training(plan, TrainConfig(), 1, labels)
    cfg.steps_per_epoch = max(2, steps)
    marks: list[float] = []
    train_blocks(net, acts, labels, cfg, device=encoder.device,
                 progress=lambda p: marks.append(time.perf_counter()) if p.stage == "training" else None)
    per_view = float(np.min(np.diff(marks))) / (len(labels) * plan.views)
    val = Activations(cut, fake(48, u.shape[1:])[:, :1], None if c is None else fake(48, c.shape)[:, :1])
    upper_features(net, val, device=encoder.device)
    t = time.perf_counter()
    upper_features(net, val, device=encoder.device)
    return per_view, (time.perf_counter() - t) / 48


def train_thorough(*args, **kw) -> tuple[TrainOutcome, dict]:
    """Train a copy of the encoder's network (see :func:`_train`); cancel, a diverging loss,
    too few labels or running out of memory raise with a sentence for the user, having
    written nothing and changed nothing."""
    with user_errors():
        return _train(*args, **kw)


def _train(
    encoder, paths: list, labels: np.ndarray, config: TrainConfig,
    mark_triplets: np.ndarray | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    cancel=None,
    head: tuple | None = None,
    mode: str = "thorough",
    hashes: list | None = None,
    taps=None,
    head_metrics: tuple | None = None,
) -> tuple[TrainOutcome, dict]:
    """Train a copy of ``encoder``'s network on the photos at ``paths`` (album index per photo,
    -1 = only in marks) as ``mode``'s plan says, starting from ``head`` = (card, ``head.*``
    tensors) when given: a head already fitted on cached features lets the blocks learn from
    a good start. ``hashes`` (content hash per photo) and ``taps`` (a TapStore): where the
    standard plan finds its input. ``head_metrics``: (held-out rows, metrics) of that head
    from its own training; when the rows are the ones held out here they stand for the
    starting net's validation (the same head on the same photos: a pass of the blocks
    saved, about 11 s for 1,600 photos on 2 cores). Returns the outcome and the complete state dict."""
    import copy

    import torch

    t0 = time.perf_counter()
    cancel = as_token(cancel)
    plan = PLANS[mode]
    epochs = config.epochs if config.epochs is not None else plan.epochs
    if epochs < 1:
        raise PhotosimError("the number of epochs must be at least 1")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(config.seed)
    val_mask = split_validation(labels, config.val_fraction, rng)

    # (time, photos done) when reading photos began, for the time left: photos loaded from
    # their taps first (seconds for thousands) say nothing of how long reading the rest takes
    reading_since: list = []
    loaded: list = []

    def preparing(i: int, what: str = READING) -> None:
        if progress:
            now = time.perf_counter()
            if what == FROM_TAPS:
                loaded.append(i)
            elif not reading_since:
                reading_since.append((now, i) if loaded else (t0, 0))
            eta = None
            if what == READING and i > reading_since[0][1]:
                since, done = reading_since[0]
                eta = (now - since) / (i - done) * (n - i)
            progress(TrainProgress.of("preparing", 0, epochs, i, n, None, now - t0, eta, detail=what))

    bad: list[int] = []
    n = len(paths)
    acts = _activations(encoder, paths, plan, config.seed, bad, preparing, cancel, hashes, taps)
    keep = np.ones(n, dtype=bool)
    keep[bad] = False
    val_rows = np.flatnonzero(val_mask & keep)
    train_rows = np.flatnonzero(~val_mask & keep)
    # Marks whose photos are held out (or unreadable) would leak or mislead: drop them.
    triplets = np.zeros((0, 3), np.int64) if mark_triplets is None else np.asarray(mark_triplets, np.int64)
    if len(triplets):
        triplets = triplets[(~val_mask[triplets] & keep[triplets]).all(axis=1)]
        remap = np.full(n, -1)
        remap[train_rows] = np.arange(len(train_rows))
        triplets = remap[triplets]

    device = encoder.device
    net = copy.deepcopy(encoder.net).float().to(device)
    card = encoder.card
    if head is not None:
        from ..model import build_head

        card, head_state = head
        net.head = build_head(card).to(device)
        net.card = card
        net.head.load_state_dict({k[len("head."):]: v for k, v in head_state.items()})
    val_acts = acts.take(val_rows)

    def valid(model) -> dict:
        f = upper_features(model, val_acts, device=device)
        with torch.inference_mode():
            x = torch.from_numpy(f.astype(np.float16).astype(np.float32)).to(device)  # as cached
            emb = torch.nn.functional.normalize(model.head(x), dim=1).cpu().numpy()
        return {k: float(v) for k, v in retrieval_metrics(emb, labels[val_rows]).items()}

    train_labels = labels[train_rows]
    bt = block_training(plan, config, epochs, train_labels)
    try:
        known = None
        if head_metrics is not None and head_metrics[1] and list(head_metrics[0]) == val_rows.tolist():
            known = dict(head_metrics[1])
        run = train_blocks(net, acts.take(train_rows), train_labels, bt, device=device, triplets=triplets,
                           valid=valid if len(val_rows) else None, progress=progress, cancel=cancel,
                           start_metrics=known)
    except ValueError as exc:  # too few labels left to learn from
        raise PhotosimError(f"{exc}. Nothing was changed.") from None
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    outcome = TrainOutcome(
        head_state={k: v for k, v in state.items() if k.startswith("head.")},
        head=card.head, head_hidden=card.head_hidden, dim=card.dim, before=run.start, fit=run,
        n_train=int(len(train_rows)), n_val=int(len(val_rows)), val_rows=val_rows.tolist())
    return outcome, state
