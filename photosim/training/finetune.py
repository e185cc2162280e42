"""Quick fine-tuning: a new projection head learnt on cached backbone features.

No Qt and no database here: :func:`train_head` takes feature arrays and labels
and returns a head state dict plus before/after validation metrics. Training a
head on cached features (instead of the whole CNN on pixels) is what makes a
fine-tune take seconds to minutes on a laptop CPU. Thorough mode (:mod:`.thorough`)
starts from the head this trains.

Loss: pytorch-metric-learning's ``TripletMarginLoss`` on semi-hard triplets
mined inside each batch by ``TripletMarginMiner`` (optionally MultiSimilarity
loss and miner), plus the same loss on explicit triplets made from the user's marks.
Batches hold ``m`` photos of each of several albums (``MPerClassSampler``) so that
every batch has positives to mine. The loop is :func:`photosim.training.loop.fit`:
seeds are fixed; the head of the epoch with the best validation MAP@R is kept
(epoch 0 = the start, so a fine-tune never returns something worse on validation
than what it started from).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..evaluation import retrieval_metrics
from ..errors import Cancelled, PhotosimError
from .loop import Diverged, FitResult, MPerClassBatches, TrainProgress, TripletBatches, cosine, fit, is_oom

MODES = ("quick", "standard", "thorough")


@dataclass
class TrainConfig:
    #: "quick": the head on cached features (train_head); "standard": that head first, then
    #: the backbone blocks at 1/32 of the side with it, from the taps or the photos; "thorough": the head,
    #: then the blocks from 1/32 of the side on (thorough.py). Read by runner.finetune.
    mode: str = "quick"
    #: None: the head 12 (more for few photos: enough for 400 steps, 16 epochs of 25 steps),
    #: standard mode's blocks 3, thorough mode's blocks 6
    epochs: int | None = None
    batch_size: int = 160
    per_album: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    margin: float = 0.1
    val_fraction: float = 0.2
    seed: int = 0
    device: str | None = None
    #: "triplet" (TripletMarginLoss on mined triplets) or "multisimilarity" (pairs)
    loss: str = "triplet"
    #: None: start from the parent's head; "mlp": a new MLP head (mlp_hidden → mlp_dim)
    new_head: str | None = None
    mlp_hidden: int = 1024
    mlp_dim: int = 256
    #: weight of the Proxy-Anchor loss added to the triplet loss (0: triplets only)
    proxy_weight: float = 0.0
    #: TripletMarginMiner's choice: "semihard", "hard" or "all" (every violating triplet)
    triplets: str = "semihard"
    #: an identity parent head starts as "subtract the mean feature" (see new_head_from)
    center_init: bool = True
    #: safety cap on optimisation steps per epoch (large libraries)
    max_steps_per_epoch: int = 200
    #: and at least this many: a few photos still get enough steps per epoch to learn
    min_steps_per_epoch: int = 25
    #: thorough mode keeps the activations of each labelled photo it reads in memory
    #: (~180 KB at 288 px), so it reads at most as many as fit here, sampled from every album
    thorough_memory_mb: int = 1600
    #: and never more than this many (tests lower it)
    max_thorough_photos: int = 20_000

    def resolved_epochs(self) -> int:
        """Epochs of the head (quick mode, and thorough mode's first stage) before the
        adjustment for few photos; thorough mode's blocks default to 6 (see thorough.py)."""
        if self.epochs is not None:
            if self.epochs < 1:
                raise PhotosimError("the number of epochs must be at least 1")
            return self.epochs
        return 12


@dataclass
class TrainOutcome:
    """A trained head (or network) and how its run went; nothing written anywhere yet."""

    #: ``head.*`` tensors
    head_state: dict
    head: str
    head_hidden: int
    dim: int
    #: validation metrics of the model fine-tuned from (its head, on the same held-out photos)
    before: dict
    fit: FitResult
    n_train: int = 0
    n_val: int = 0
    #: rows of the input held out for validation
    val_rows: list[int] = field(default_factory=list)

    @property
    def after(self) -> dict:
        return self.fit.best

    @property
    def best_epoch(self) -> int:
        return self.fit.best_epoch

    @property
    def history(self) -> list[dict]:
        return self.fit.history


CANCELLED = "fine-tuning cancelled; the active model is unchanged"
OOM_MESSAGE = "fine-tuning ran out of memory; try fewer albums or the quick mode. Nothing was changed."


@contextmanager
def user_errors():
    """Cancel, divergence and running out of memory as the sentences a fine-tune's user
    reads (both modes): whatever happened, the active model is unchanged."""
    try:
        yield
    except Cancelled:
        raise Cancelled(CANCELLED) from None
    except Diverged as exc:
        raise PhotosimError(f"fine-tuning stopped: {exc.reason}. The active model is unchanged.") from None
    except PhotosimError:
        raise
    except BaseException as exc:
        if is_oom(exc):
            raise PhotosimError(OOM_MESSAGE) from exc
        raise


def split_validation(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of held-out rows: ``fraction`` of each album, but only albums large
    enough to keep two photos on both sides; mark-only photos (-1) always train."""
    val = np.zeros(len(labels), dtype=bool)
    if fraction <= 0:
        return val
    for lab in np.unique(labels):
        if lab < 0:
            continue
        rows = np.flatnonzero(labels == lab)
        k = int(round(len(rows) * fraction))
        if len(rows) < 6 or k < 2:
            continue
        val[rng.permutation(rows)[:k]] = True
    return val


def new_head_from(parent_card, parent_head_state: dict, center: np.ndarray | None = None):
    """(card fields, torch module) of a trainable head initialised from the parent's:
    a linear/MLP head is copied; an identity head becomes an identity-initialised linear one,
    whose bias subtracts ``center`` (the mean feature) when given: pooled CNN features are
    all positive, and centring them alone makes cosine similarity far more telling."""
    import torch

    from ..model import ModelCard, build_head

    if parent_card.head == "identity":
        card = ModelCard(id="tmp", feature_dim=parent_card.feature_dim, head="linear",
                         dim=parent_card.feature_dim)
        head = build_head(card)
        with torch.no_grad():
            head.weight.copy_(torch.eye(card.feature_dim))
            head.bias.zero_()
            if center is not None:
                head.bias.copy_(-torch.from_numpy(np.asarray(center, np.float32)))
        return ("linear", parent_card.head_hidden, card.dim), head
    head = build_head(parent_card)
    head.load_state_dict({k[len("head."):]: v for k, v in parent_head_state.items()})
    return (parent_card.head, parent_card.head_hidden, parent_card.dim), head


def _embed(head, x, batch: int = 4096):
    import torch
    import torch.nn.functional as F

    was = head.training
    head.eval()
    outs = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            outs.append(F.normalize(head(x[s:s + batch]), dim=1))
    head.train(was)
    return torch.cat(outs).cpu().numpy()


@dataclass(frozen=True)
class HeadPlan:
    """How a head's training is laid out: epochs of ``steps`` batches, each of
    ``albums_per_batch`` albums × ``per`` photos (the time estimate reads it too)."""

    epochs: int
    steps: int
    per: int
    albums_per_batch: int
    #: albums that keep two photos for training: they make the batches
    album_ids: np.ndarray

    @property
    def batch(self) -> int:
        return self.per * self.albums_per_batch if len(self.album_ids) >= 2 else 0


def head_plan(train_labels: np.ndarray, n_mark_triplets: int, config: TrainConfig) -> HeadPlan:
    """The layout of a head's training on photos with album ``train_labels`` (-1: marks only)."""
    train_labels = np.asarray(train_labels)
    epochs = config.resolved_epochs()
    # Albums that keep two photos for training make the batches; the rest learn from marks.
    ids, counts = np.unique(train_labels[train_labels >= 0], return_counts=True)
    album_ids = ids[counts >= 2]
    n_album_rows = int(counts[counts >= 2].sum())
    # Fill the batch: few albums → many photos of each (more positives to mine).
    # (At most 16: the miner looks at every triplet of the batch, ~ per² × batch.)
    per = max(2, config.per_album, min(16, config.batch_size // max(2, len(album_ids))))
    albums_per_batch = max(2, min(len(album_ids), config.batch_size // per))
    if len(album_ids) >= 2:
        steps = math.ceil(n_album_rows / (albums_per_batch * per))
    else:
        steps = math.ceil(n_mark_triplets / 64)
    steps = max(1, min(config.max_steps_per_epoch, max(config.min_steps_per_epoch, steps)))
    if config.epochs is None:  # small label sets: enough steps to learn (an epoch is cheap then)
        epochs = int(np.clip(math.ceil(400 / steps), epochs, 60))
    return HeadPlan(epochs, steps, per, albums_per_batch, album_ids)


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    parent_card,
    parent_head_state: dict,
    config: TrainConfig,
    mark_triplets: np.ndarray | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    cancel=None,
) -> TrainOutcome:
    """Train a head on ``features`` (album index per row in ``labels``, -1: only in marks;
    ``mark_triplets``: (anchor, positive, negative) rows). ``cancel``: anything
    :func:`photosim.progress.as_token` takes. Raises :class:`Cancelled` or
    :class:`PhotosimError` (NaN loss, out of memory) without side effects: nothing is
    written anywhere by this function."""
    import torch

    # The head's matrices are small: one CPU thread beats two fighting for the cores
    # (measured 3-10x faster per step on a busy 2-core machine).
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with user_errors():
            return _train(features, labels, parent_card, parent_head_state, config, mark_triplets,
                          progress, cancel)
    finally:
        torch.set_num_threads(threads)


def _train(features, labels, parent_card, parent_head_state, config, mark_triplets, progress, cancel):
    import torch
    import torch.nn.functional as F
    from pytorch_metric_learning import losses, miners

    from ..encoder import pick_device
    from .input_scale import input_scale, scale_input_weights

    config.resolved_epochs()  # a bad number of epochs fails before any work
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    labels = np.asarray(labels, dtype=np.int64)
    feats = np.asarray(features, dtype=np.float16).astype(np.float32)  # exactly as cached
    if not np.isfinite(feats).all():
        raise PhotosimError("some cached features are damaged (not finite); re-scan the library. "
                            "Nothing was changed.")
    val_mask = split_validation(labels, config.val_fraction, rng)
    train_rows = np.flatnonzero(~val_mask)
    val_rows = np.flatnonzero(val_mask)
    mark_triplets = np.zeros((0, 3), np.int64) if mark_triplets is None else np.asarray(mark_triplets, np.int64)
    # Marks whose photos are held out would leak validation into training: drop them.
    if len(mark_triplets):
        mark_triplets = mark_triplets[~val_mask[mark_triplets].any(axis=1)]

    # Optimised on unit-scale inputs whatever the backbone (input_scale.py); folded back below.
    scale = input_scale(feats[train_rows])
    x = torch.from_numpy(feats / np.float32(scale)).to(device)
    center = feats[train_rows].mean(0) if config.center_init and len(train_rows) else None
    if config.new_head == "mlp":  # a fresh, wider non-linear head (not initialised from the parent)
        from ..model import ModelCard, build_head

        hidden, dim = config.mlp_hidden, config.mlp_dim
        head_kind, head_hidden = "mlp", hidden
        head = build_head(ModelCard(id="tmp", head="mlp", head_hidden=hidden,
                                    feature_dim=parent_card.feature_dim, dim=dim))
        has_bn = False  # its batch-norm statistics are learnt here
    else:
        (head_kind, head_hidden, dim), head = new_head_from(parent_card, parent_head_state, center)
        scale_input_weights(head, scale)  # the parent's function of the scaled inputs
        # A batch-norm (MLP) head keeps the parent's running statistics: train it in eval mode.
        has_bn = any(isinstance(m, torch.nn.BatchNorm1d) for m in head.modules())
    head = head.to(device)
    x_val = x[torch.from_numpy(val_rows).to(device)]

    def evaluate(h) -> dict:
        m = retrieval_metrics(_embed(h, x_val), labels[val_rows])
        return {k: float(v) for k, v in m.items()}

    def parent_project():
        """The parent's head, as a function of the scaled inputs ``x`` (its biases make
        head(x / s) another function than head(x))."""
        from ..model import build_head

        ph = build_head(parent_card)
        if parent_card.head != "identity":
            ph.load_state_dict({k[len("head."):]: v for k, v in parent_head_state.items()})
            scale_input_weights(ph, scale)
        return ph.to(device)

    before = evaluate(parent_project()) if len(val_rows) else {}

    if config.loss == "multisimilarity":
        miner = miners.MultiSimilarityMiner(epsilon=0.1)
        loss_fn = losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5)
    else:
        # Semi-hard: "hard" negatives collapsed the embedding in our CIFAR-10 runs (best epoch 1).
        miner = miners.TripletMarginMiner(margin=config.margin, type_of_triplets=config.triplets)
        loss_fn = losses.TripletMarginLoss(margin=config.margin)
    mark_loss_fn = losses.TripletMarginLoss(margin=config.margin)
    groups = [{"params": list(head.parameters())}]
    proxy_fn = None
    n_albums = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if config.proxy_weight > 0 and n_albums >= 2:
        # Proxy-Anchor (Kim et al., CVPR 2020): one learnt proxy per album pulls the whole
        # album together and pushes all others away: global structure that in-batch
        # triplets alone learn slowly. Triplets keep the fine, photo-to-photo ordering.
        proxy_fn = losses.ProxyAnchorLoss(num_classes=n_albums, embedding_size=dim).to(device)
        groups.append({"params": list(proxy_fn.parameters()), "lr": config.lr * 100, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)

    plan = head_plan(labels[train_rows], len(mark_triplets), config)
    epochs, steps, per, albums_per_batch = plan.epochs, plan.steps, plan.per, plan.albums_per_batch
    album_rows = train_rows[np.isin(labels[train_rows], plan.album_ids)]
    albums = iter(MPerClassBatches(album_rows, labels[album_rows], per, albums_per_batch, steps, rng)) \
        if len(plan.album_ids) >= 2 else None
    marks = TripletBatches(mark_triplets, 64, rng)

    def step():
        loss = torch.zeros((), device=device)
        if albums is not None:
            rows = next(albums)
            yb = torch.from_numpy(labels[rows]).to(device)
            emb = F.normalize(head(x[torch.from_numpy(rows).to(device)]), dim=1)
            loss = loss + loss_fn(emb, yb, miner(emb, yb))
            if proxy_fn is not None:
                loss = loss + config.proxy_weight * proxy_fn(emb, yb)
        if len(marks):
            rows, at = marks.draw()
            at = torch.from_numpy(at).to(device)
            emb_m = F.normalize(head(x[torch.from_numpy(rows).to(device)]), dim=1)
            loss = loss + mark_loss_fn(emb_m, None, (at[:, 0], at[:, 1], at[:, 2]))
        return loss

    run = fit(head, opt, step, epochs=epochs, steps=steps, schedule=cosine(opt, epochs * steps),
              evaluate=(lambda: evaluate(head)) if len(val_rows) else None,
              train_mode=not has_bn, progress=progress, cancel=cancel)
    scale_input_weights(head, 1.0 / scale)  # back to a head of the raw features
    state = {f"head.{k}": v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    return TrainOutcome(head_state=state, head=head_kind, head_hidden=head_hidden, dim=dim, before=before,
                        fit=run, n_train=int(len(train_rows)), n_val=int(len(val_rows)),
                        val_rows=val_rows.tolist())


def project_with(head_state: dict, card, features: np.ndarray) -> np.ndarray:
    """Unit vectors of ``features`` under ``card``'s head with ``head_state`` (for
    comparisons before accepting)."""
    import torch

    from ..model import build_head

    head = build_head(card)
    if card.head != "identity":
        head.load_state_dict({k[len("head."):]: v for k, v in head_state.items() if k.startswith("head.")})
    f = torch.from_numpy(np.asarray(features, np.float16).astype(np.float32))
    return _embed(head, f)
