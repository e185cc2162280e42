"""Fine-tuning from marks alone: pairs the user judged similar / not similar, no albums.

A few dozen marks cannot make batches of albums, but they are pairs, and a pair loss
learns from pairs directly: pytorch-metric-learning's ``ContrastiveLoss`` (cosine
similarity) on exactly the marked pairs (``indices_tuple`` = (a1, p, a2, n)), pulling
"similar" pairs up to just under the duplicates cut-off of the model's card (t − 0.05,
``duplicate_threshold`` t: the loss never pulls a marked pair into the duplicates) and pushing
"not similar" ones below t − 0.45, under the lowest band the app names (*related*, t − 0.30).
The duplicates view's "not duplicates" verdicts are negatives of their own:
they say "not the same photo", not "unalike", so they are only pushed below the
duplicates cut-off itself. A few hundred other photos of the library keep their
similarities to each other (a distillation term against the head fine-tuned from), so
that a few dozen marks bend the model where they say and leave the rest of it alone.

A stratified share of the marks (:func:`split_marks`) is held out and never trained on:
before and after are the AUC of those held-out marks (how often a similar pair scores
above a not-similar one) and the pair accuracy at the threshold that fits the training
marks best. The last epoch is kept (no selection on the held-out marks: with ten of
them it would only select noise); a result that scores worse is for the caller to refuse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import PhotosimError
from .finetune import TrainConfig, TrainOutcome, new_head_from, project_with, user_errors
from .loop import TrainProgress, cosine, fit

#: margins below the card's duplicate threshold t: "similar" pairs up to t − SIMILAR_BELOW, "not
#: similar" ones under t − NOT_SIMILAR_BELOW. On the generated marks of tests/test_training_marks.py
#: (25 + 25 marks, two seeds) held-out AUC 0.84 → 1.00 and 0.64 → 0.96, pairs of never-marked
#: photos 0.68 → 0.92; with the app's bands as margins (t − 0.16, t − 0.30) 1.00 / 0.80 and 0.83 /
#: 0.86: the loss reached zero on the training marks too early to generalise.
SIMILAR_BELOW, NOT_SIMILAR_BELOW = 0.05, 0.45
#: marks of each kind a marks-only fine-tune needs at all, and from how many of a kind a
#: share is held out (at least HELD_MIN of them, HOLD_OUT of the kind)
MIN_EACH, HOLD_FROM, HELD_MIN, HOLD_OUT = 3, 6, 2, 0.2
#: what the dialog recommends
USEFUL_EACH = 20
#: pairs per step (all of them when fewer), steps per epoch, epochs by default
PAIRS_PER_STEP, STEPS, EPOCHS = 256, 25, 8
#: weight of keeping the other photos' similarities, and how many of them
KEEP_WEIGHT, KEEP_PHOTOS, KEEP_PER_STEP = 1.0, 600, 64


@dataclass(frozen=True)
class MarkSplit:
    """Row pairs (into the features) for training and held out, with +1 / -1 labels."""

    train: np.ndarray
    train_y: np.ndarray
    held: np.ndarray
    held_y: np.ndarray


def split_marks(pairs: np.ndarray, y: np.ndarray, seed: int = 0, fraction: float = HOLD_OUT) -> MarkSplit:
    """Hold out ``fraction`` of each kind (at least :data:`HELD_MIN`), but only when every kind
    has :data:`HOLD_FROM` marks or more: else nothing is held out (and nothing can be judged)."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    y = np.asarray(y, np.int64)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(y), dtype=bool)
    kinds = [np.flatnonzero(y == k) for k in (1, -1)]
    if fraction > 0 and all(len(rows) >= HOLD_FROM for rows in kinds):
        for rows in kinds:
            k = max(HELD_MIN, int(round(len(rows) * fraction)))
            held[rng.permutation(rows)[:k]] = True
    return MarkSplit(pairs[~held], y[~held], pairs[held], y[held])


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Probability that a similar pair (y = 1) scores above a not-similar one (ties: half)."""
    pos, neg = scores[y > 0], scores[y < 0]
    if not len(pos) or not len(neg):
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def best_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    """The cut between similar and not similar that classifies these pairs best (midpoints)."""
    s = np.sort(np.unique(scores))
    cuts = np.concatenate([[s[0] - 1e-3], (s[1:] + s[:-1]) / 2, [s[-1] + 1e-3]]) if len(s) else np.array([0.0])
    acc = [((scores >= c) == (y > 0)).mean() for c in cuts]
    return float(cuts[int(np.argmax(acc))])


def pair_metrics(vecs: np.ndarray, split: MarkSplit) -> dict:
    """``mark_auc`` and ``mark_accuracy`` of the held-out marks under unit vectors ``vecs``."""
    if not len(split.held_y):
        return {}

    def sims(pairs):
        return np.einsum("ij,ij->i", vecs[pairs[:, 0]], vecs[pairs[:, 1]])

    cut = best_threshold(sims(split.train), split.train_y) if len(split.train_y) else 0.5
    held = sims(split.held)
    return {"mark_auc": auc(held, split.held_y), "mark_accuracy": float(((held >= cut) == (split.held_y > 0)).mean()),
            "threshold": cut}


def marks_plan(n_train_pairs: int, config: TrainConfig) -> tuple[int, int]:
    """(epochs, steps per epoch) of a marks-only fine-tune."""
    epochs = config.epochs if config.epochs is not None else EPOCHS
    if epochs < 1:
        raise PhotosimError("the number of epochs must be at least 1")
    return epochs, max(STEPS, math.ceil(n_train_pairs / PAIRS_PER_STEP))


def train_pairs(features: np.ndarray, pairs: np.ndarray, y: np.ndarray, parent_card, parent_head_state: dict,
                config: TrainConfig, *, verdicts: np.ndarray | None = None, others: np.ndarray | None = None,
                progress: Callable[[TrainProgress], None] | None = None, cancel=None) -> TrainOutcome:
    """A head learnt from marked pairs (rows of ``features``; ``y`` +1 similar / -1 not),
    ``verdicts`` (row pairs judged "not duplicates") and ``others`` (features of other photos,
    whose similarities to each other are kept). Nothing is written anywhere; raises
    :class:`~photosim.errors.Cancelled` or :class:`PhotosimError` (NaN, out of memory)."""
    import torch

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # small matrices: one thread beats two fighting (see finetune.py)
        with user_errors():
            return _train(features, pairs, y, parent_card, parent_head_state, config, verdicts, others,
                          progress, cancel)
    finally:
        torch.set_num_threads(threads)


def _train(features, pairs, y, parent_card, parent_head_state, config, verdicts, others, progress, cancel):
    import torch
    import torch.nn.functional as F
    from pytorch_metric_learning import distances, losses

    from ..encoder import pick_device
    from .input_scale import input_scale, scale_input_weights

    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    feats = np.asarray(features, dtype=np.float16).astype(np.float32)  # exactly as cached
    if not np.isfinite(feats).all():
        raise PhotosimError("some cached features are damaged (not finite); re-scan the library. "
                            "Nothing was changed.")
    split = split_marks(pairs, y, config.seed, config.val_fraction)
    # Held out are marks, not photos: a held-out pair may share a photo with a trained one
    # (marks come as one query against many results); its own judgement is never seen.
    train, train_y = split.train, split.train_y
    if not (train_y > 0).any() or not (train_y < 0).any():
        raise PhotosimError("too few marks are left to learn from once some are held out to check the "
                            "result; mark more results similar and not similar. Nothing was changed.")
    verdicts = np.zeros((0, 2), np.int64) if verdicts is None else np.asarray(verdicts, np.int64).reshape(-1, 2)

    scale = input_scale(feats)  # optimised on unit-scale inputs (input_scale.py), folded back below
    x = torch.from_numpy(feats / np.float32(scale)).to(device)
    (head_kind, head_hidden, dim), head = new_head_from(parent_card, parent_head_state,
                                                        feats.mean(0) if config.center_init else None)
    scale_input_weights(head, scale)
    has_bn = any(isinstance(m, torch.nn.BatchNorm1d) for m in head.modules())
    head = head.to(device)

    def vectors(h=None) -> np.ndarray:
        if h is None:
            return project_with(parent_head_state, parent_card, feats)
        from .finetune import _embed

        return _embed(h, x)

    before = pair_metrics(vectors(), split)
    t = float(parent_card.duplicate_threshold)
    cos = distances.CosineSimilarity()
    mark_loss = losses.ContrastiveLoss(pos_margin=t - SIMILAR_BELOW, neg_margin=t - NOT_SIMILAR_BELOW,
                                       distance=cos)
    verdict_loss = losses.ContrastiveLoss(pos_margin=1.0, neg_margin=t - 0.05, distance=cos)
    kept = None
    if others is not None and len(others) >= 2 and KEEP_WEIGHT > 0:
        o = np.asarray(others, np.float16).astype(np.float32)
        o = o[rng.permutation(len(o))[:KEEP_PHOTOS]]
        kept = torch.from_numpy(o / np.float32(scale)).to(device)
        with torch.no_grad():
            # the parent's vectors of those photos: what the new head should keep
            kept_ref = torch.from_numpy(project_with(parent_head_state, parent_card, o)).to(device)
    epochs, steps = marks_plan(len(train), config)
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    pos_rows, neg_rows = train[train_y > 0], train[train_y < 0]

    def draw(rows, n):
        return rows if len(rows) <= n else rows[rng.choice(len(rows), size=n, replace=False)]

    def step():
        p, n = draw(pos_rows, PAIRS_PER_STEP // 2), draw(neg_rows, PAIRS_PER_STEP // 2)
        v = draw(verdicts, PAIRS_PER_STEP // 4) if len(verdicts) else verdicts
        rows, inv = np.unique(np.concatenate([p, n, v]).reshape(-1), return_inverse=True)
        inv = torch.from_numpy(inv.reshape(-1, 2)).to(device)
        emb = F.normalize(head(x[torch.from_numpy(rows).to(device)]), dim=1)
        ip, ineg, iv = inv[:len(p)], inv[len(p):len(p) + len(n)], inv[len(p) + len(n):]
        loss = mark_loss(emb, None, (ip[:, 0], ip[:, 1], ineg[:, 0], ineg[:, 1]))
        if len(iv):
            none = iv[:0, 0]
            loss = loss + verdict_loss(emb, None, (none, none, iv[:, 0], iv[:, 1]))
        if kept is not None:
            pick = torch.from_numpy(rng.choice(len(kept), size=min(KEEP_PER_STEP, len(kept)),
                                               replace=False)).to(device)
            e, r = F.normalize(head(kept[pick]), dim=1), kept_ref[pick]
            loss = loss + KEEP_WEIGHT * F.mse_loss(e @ e.T, r @ r.T)
        return loss

    run = fit(head, opt, step, epochs=epochs, steps=steps, schedule=cosine(opt, epochs * steps),
              train_mode=not has_bn, progress=progress, cancel=cancel)
    after = pair_metrics(vectors(head), split)  # the scaled head on the scaled inputs
    scale_input_weights(head, 1.0 / scale)  # back to a head of the raw features
    run.best = after
    state = {f"head.{k}": v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    return TrainOutcome(head_state=state, head=head_kind, head_hidden=head_hidden, dim=dim, before=before,
                        fit=run, n_train=int(len(train)), n_val=int(len(split.held_y)))
