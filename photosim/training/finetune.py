"""The training engine: a new projection head learnt on cached backbone features.

No Qt and no database here: :func:`train_head` takes feature arrays and labels
and returns a head state dict plus before/after validation metrics. Training a
head on cached features (instead of the whole CNN on pixels) is what makes a
fine-tune take seconds to minutes on a laptop CPU.

Loss: pytorch-metric-learning's ``TripletMarginLoss`` on semi-hard triplets
mined inside each batch by ``TripletMarginMiner`` (optionally MultiSimilarity
loss and miner), plus the same loss on explicit triplets made from the user's marks.
Batches hold ``m`` photos of each of several albums so that every batch has
positives to mine. Seeds are fixed; the head of the epoch with the best
validation MAP@R is kept (epoch 0 = the parent's head, so a fine-tune never
returns something worse on validation than what it started from).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from ..evaluation import retrieval_metrics
from ..errors import Cancelled, PhotosimError
from ..progress import Progress

MODES = ("quick", "thorough")


@dataclass
class TrainConfig:
    mode: str = "quick"  # "quick": the head on cached features; "thorough": last blocks too (thorough.py)
    epochs: int | None = None  # default: 12 quick (more, up to 60, for few photos), 6 thorough
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
    #: thorough mode keeps the activations of each labelled photo it reads in memory
    #: (~180 KB at 288 px), so it reads at most as many as fit here, sampled from every album
    thorough_memory_mb: int = 1600
    #: and never more than this many (tests lower it)
    max_thorough_photos: int = 20_000

    def resolved_epochs(self) -> int:
        if self.epochs is not None:
            if self.epochs < 1:
                raise PhotosimError("the number of epochs must be at least 1")
            return self.epochs
        return 12 if self.mode == "quick" else 40


@dataclass
class TrainProgress(Progress):
    """``stage`` "preparing" (thorough: reading photos) | "training" | "validating" | "done";
    ``done``/``total`` are the steps of the current epoch."""

    epoch: int = 0
    epochs: int = 0
    loss: float | None = None
    elapsed: float = 0.0
    eta: float | None = None
    val: dict | None = None

    @classmethod
    def of(cls, stage: str, epoch: int, epochs: int, step: int, steps: int, loss: float | None,
           elapsed: float, eta: float | None, val: dict | None = None) -> TrainProgress:
        return cls(stage, step, steps, "", epoch, epochs, loss, elapsed, eta, val)

    @property
    def step(self) -> int:
        return self.done

    @property
    def steps(self) -> int:
        return self.total


@dataclass
class TrainOutcome:
    head_state: dict
    head: str
    dim: int
    before: dict
    after: dict
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    head_hidden: int = 0
    n_train: int = 0
    n_val: int = 0
    n_mark_triplets: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    #: rows of the input held out for validation
    val_rows: list[int] = field(default_factory=list)

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("head_state")
        d.pop("val_rows")
        return d


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


OOM_MESSAGE = "fine-tuning ran out of memory; try fewer albums or the quick mode. Nothing was changed."


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, MemoryError | torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    parent_card,
    parent_head_state: dict,
    config: TrainConfig,
    mark_triplets: np.ndarray | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> TrainOutcome:
    """Train a head; raises :class:`Cancelled` or :class:`PhotosimError` (NaN loss, out of
    memory) without side effects: nothing is written anywhere by this function."""
    import torch

    # The head's matrices are small: one CPU thread beats two fighting for the cores
    # (measured 3-10x faster per step on a busy 2-core machine).
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        return _train(features, labels, parent_card, parent_head_state, config, mark_triplets,
                      progress, cancel)
    except (Cancelled, PhotosimError):
        raise
    except BaseException as exc:
        if _is_oom(exc):
            raise PhotosimError(OOM_MESSAGE) from exc
        raise
    finally:
        torch.set_num_threads(threads)


def _train(features, labels, parent_card, parent_head_state, config, mark_triplets, progress, cancel):
    import torch
    from pytorch_metric_learning import losses, miners

    from ..encoder import pick_device

    if config.mode not in MODES:
        raise PhotosimError(f"unknown fine-tuning mode {config.mode!r} (quick or thorough)")
    t0 = time.perf_counter()
    cancel = cancel or (lambda: False)
    epochs = config.resolved_epochs()
    device = pick_device(config.device)
    random.seed(config.seed)
    np.random.seed(config.seed)
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

    x = torch.from_numpy(feats).to(device)
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
        # A batch-norm (MLP) head keeps the parent's running statistics: train it in eval mode.
        has_bn = any(isinstance(m, torch.nn.BatchNorm1d) for m in head.modules())
    head = head.to(device)

    def evaluate(h) -> dict:
        if len(val_rows) == 0:
            return {}
        m = retrieval_metrics(_embed(h, x[torch.from_numpy(val_rows).to(device)]), labels[val_rows])
        return {k: float(v) for k, v in m.items()}

    def parent_project():
        from ..model import build_head

        ph = build_head(parent_card)
        if parent_card.head != "identity":
            ph.load_state_dict({k[len("head."):]: v for k, v in parent_head_state.items()})
        return ph.to(device)

    before = evaluate(parent_project())
    start = evaluate(head) if center is not None and config.new_head is None else before
    best = (start.get("map_at_r", -1.0), 0, copy.deepcopy(head.state_dict()))
    history: list[dict] = []

    if config.loss == "multisimilarity":
        miner = miners.MultiSimilarityMiner(epsilon=0.1)
        loss_fn = losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5)
    else:
        # Semi-hard in both modes: "hard" negatives collapsed the embedding in our CIFAR-10
        # runs (best epoch 1); thorough trains longer at a lower rate instead.
        miner = miners.TripletMarginMiner(margin=config.margin, type_of_triplets=config.triplets)
        loss_fn = losses.TripletMarginLoss(margin=config.margin)
    mark_loss_fn = losses.TripletMarginLoss(margin=config.margin)
    lr = config.lr if config.mode == "quick" else config.lr * 0.3
    groups = [{"params": list(head.parameters())}]
    proxy_fn = None
    n_albums = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if config.proxy_weight > 0 and n_albums >= 2:
        # Proxy-Anchor (Kim et al., CVPR 2020): one learnt proxy per album pulls the whole
        # album together and pushes all others away: global structure that in-batch
        # triplets alone learn slowly. Triplets keep the fine, photo-to-photo ordering.
        proxy_fn = losses.ProxyAnchorLoss(num_classes=n_albums, embedding_size=dim).to(device)
        groups.append({"params": list(proxy_fn.parameters()), "lr": lr * 100, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=config.weight_decay)

    by_album: dict[int, np.ndarray] = {}
    for lab in np.unique(labels[train_rows]):
        if lab >= 0:
            rows = train_rows[labels[train_rows] == lab]
            if len(rows) >= 2:
                by_album[int(lab)] = rows
    album_ids = np.asarray(sorted(by_album))
    n_labelled = sum(len(r) for r in by_album.values())
    # Fill the batch: few albums → many photos of each (more positives to mine).
    # (At most 16: the miner looks at every triplet of the batch, ~ per² × batch.)
    per = max(2, config.per_album, min(16, config.batch_size // max(2, len(album_ids))))
    albums_per_batch = max(2, min(len(album_ids), config.batch_size // per))
    if len(album_ids) >= 2:
        steps = max(1, min(config.max_steps_per_epoch, math.ceil(n_labelled / (albums_per_batch * per))))
    else:
        steps = max(1, min(config.max_steps_per_epoch, math.ceil(len(mark_triplets) / 64)))
    if config.epochs is None:  # small label sets: enough steps to learn (an epoch is cheap then)
        epochs = int(np.clip(math.ceil((400 if config.mode == "quick" else 1200) / steps), epochs, 60))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    total_steps = epochs * steps
    done_steps = 0
    head.train(not has_bn)
    for epoch in range(1, epochs + 1):
        losses_epoch = []
        for step in range(steps):
            if cancel():
                raise Cancelled("fine-tuning cancelled; the active model is unchanged")
            loss = torch.zeros((), device=device)
            if len(album_ids) >= 2:
                chosen = rng.choice(album_ids, size=albums_per_batch, replace=False)
                rows = np.concatenate([
                    rng.choice(by_album[a], size=per, replace=len(by_album[a]) < per) for a in chosen])
                xb = x[torch.from_numpy(rows).to(device)]
                yb = torch.from_numpy(labels[rows]).to(device)
                emb = torch.nn.functional.normalize(head(xb), dim=1)
                loss = loss + loss_fn(emb, yb, miner(emb, yb))
                if proxy_fn is not None:
                    loss = loss + config.proxy_weight * proxy_fn(emb, yb)
            if len(mark_triplets):
                pick = mark_triplets[rng.choice(len(mark_triplets), size=min(64, len(mark_triplets)),
                                                replace=False)]
                uniq, inv = np.unique(pick, return_inverse=True)
                inv = torch.from_numpy(inv.reshape(-1, 3)).to(device)
                emb_m = torch.nn.functional.normalize(head(x[torch.from_numpy(uniq).to(device)]), dim=1)
                loss = loss + mark_loss_fn(emb_m, None, (inv[:, 0], inv[:, 1], inv[:, 2]))
            if not torch.isfinite(loss):
                raise PhotosimError("fine-tuning stopped: the loss became NaN (not a number), the "
                                    "training diverged. The active model is unchanged.")
            if loss.requires_grad:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sched.step()
            done_steps += 1
            value = float(loss.detach())
            losses_epoch.append(value)
            if progress:
                elapsed = time.perf_counter() - t0
                eta = elapsed / done_steps * (total_steps - done_steps)
                progress(TrainProgress.of("training", epoch, epochs, step + 1, steps, value, elapsed, eta))
        for p in head.parameters():
            if not torch.isfinite(p).all():
                raise PhotosimError("fine-tuning stopped: the weights became NaN, the training "
                                    "diverged. The active model is unchanged.")
        val = evaluate(head)
        mean_loss = float(np.mean(losses_epoch)) if losses_epoch else 0.0
        history.append({"epoch": epoch, "loss": mean_loss, **val})
        score = val.get("map_at_r", -1.0) if val else -1.0
        if not val or score > best[0]:
            best = (score, epoch, copy.deepcopy(head.state_dict()))
        if progress:
            elapsed = time.perf_counter() - t0
            eta = elapsed / done_steps * (total_steps - done_steps)
            progress(TrainProgress.of("validating", epoch, epochs, steps, steps, mean_loss, elapsed, eta, val))

    head.load_state_dict(best[2])
    after = evaluate(head)
    state = {f"head.{k}": v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    outcome = TrainOutcome(
        head_state=state, head=head_kind, head_hidden=head_hidden, dim=dim, before=before, after=after, best_epoch=best[1],
        history=history, n_train=int(len(train_rows)), n_val=int(len(val_rows)),
        n_mark_triplets=int(len(mark_triplets)), seconds=time.perf_counter() - t0, device=device,
        val_rows=val_rows.tolist())
    if progress:
        progress(TrainProgress.of("done", epochs, epochs, steps, steps, history[-1]["loss"] if history else None,
                               outcome.seconds, 0.0, after))
    return outcome


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
