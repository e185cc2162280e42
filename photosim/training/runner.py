"""Fine-tuning a library's active model: the steps behind :meth:`Library.finetune`, and
the before/after examples the fine-tune dialog shows (:func:`example_queries`).

The rule that makes this safe: nothing the user relies on changes here. Training
writes only a new, inactive model folder (atomically), whose card holds the
fine-tune's :class:`~.record.FineTuneRecord`; cancelling or failing at any point
writes nothing. Switching to the new model is :meth:`Library.use_model`'s job.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import numpy as np

from .. import precision as variants
from ..card import ModelCard
from ..errors import PhotosimError
from ..progress import as_token
from .finetune import CANCELLED, MODES, TrainConfig, TrainProgress, project_with, train_head
from .models_store import new_model_id, write_model
from .record import FineTuneRecord
from .triplets import LabelledSet, collect_labels, existing, mark_triplets


@dataclass
class FineTuneResult:
    """A fine-tune just written (inactive): its id, its record (the one in its card) and
    what only the run itself knows (its time, the labelled and held-out photos)."""

    model_id: str
    record: FineTuneRecord
    seconds: float
    #: the labelled photos and their album index (-1: marks only), and the held-out ones
    photo_ids: list[int] = field(default_factory=list, repr=False)
    labels: list[int] = field(default_factory=list, repr=False)
    val_photo_ids: list[int] = field(default_factory=list, repr=False)
    #: the estimate told before the run (:class:`~.estimate.Estimate`), None when skipped
    estimate: object = field(default=None, repr=False)
    #: its display name (made from how it was made, unique in the library; the user may rename it)
    name: str = ""

    @property
    def based_on(self) -> str:
        return self.record.based_on or ""

    @property
    def albums(self) -> list[str]:
        return self.record.albums

    @property
    def n_marks(self) -> int:
        return self.record.marks

    @property
    def before(self) -> dict:
        return self.record.before

    @property
    def after(self) -> dict:
        return self.record.after

    @property
    def history(self) -> list[dict]:
        return self.record.history

    @property
    def warnings(self) -> list[str]:
        return self.record.warnings

    @property
    def n_train(self) -> int:
        return self.record.n_train

    @property
    def n_val(self) -> int:
        return self.record.n_val

    @property
    def best_epoch(self) -> int:
        return self.record.best_epoch

    @property
    def improved(self) -> bool:
        key = self.record.score
        return self.after.get(key, 0.0) > self.before.get(key, 0.0)

    @property
    def marks_only(self) -> bool:
        return self.record.objective == "marks"

    @property
    def refusal(self) -> str:
        """Why this fine-tune from marks alone may not be accepted ("" when it may): nothing
        could be held out to judge it, or it orders the held-out marks worse than the
        active model. (Album fine-tunes: the fine-tune dialog words its own.)"""
        if not self.marks_only:
            return ""
        from .pairs import HOLD_FROM, USEFUL_EACH

        if not self.n_val:
            return (f"Nothing could be held out to check the new model, so it cannot be accepted: mark at least "
                    f"{HOLD_FROM} results similar and {HOLD_FROM} not similar ({USEFUL_EACH} of each for a "
                    f"useful result).")
        b, a = self.before.get("mark_auc"), self.after.get("mark_auc")
        if a is not None and b is not None and a < b - 0.0005:
            return (f"The new model orders your held-out marks worse than the active one (AUC {a:.2f} against "
                    f"{b:.2f}), so it cannot be accepted; discard it.")
        return ""

    def to_dict(self) -> dict:
        """The JSON of ``photosim finetune --json``."""
        return {"model_id": self.model_id, "based_on": self.based_on, "albums": self.albums,
                "n_marks": self.n_marks, "before": self.before, "after": self.after, "history": self.history,
                "warnings": self.warnings, "seconds": self.seconds, "n_train": self.n_train,
                "n_val": self.n_val, "best_epoch": self.best_epoch, "objective": self.record.objective,
                "estimated_s": self.record.estimated_s, "estimate": self.record.estimate}


def _parent_head_state(model_dir, card: ModelCard) -> dict:
    from safetensors.torch import load_file

    state = load_file(str(model_dir / card.weights))
    return {k: v for k, v in state.items() if k.startswith("head.")}


def _labelled(lib, albums: Sequence[str] | None, use_marks: bool):
    """(photo ids per album, marks, "not duplicates" pairs, labelled photos present, gone)."""
    known = {a.name for a in lib.albums()}
    names = sorted(known) if albums is None else list(dict.fromkeys(albums))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PhotosimError(f"no album named {', '.join(repr(n) for n in unknown)}")
    album_ids = {n: [p.id for p in lib.album_photos(n)] for n in names}
    marks = [(m.query_id, m.result_id, m.label) for m in lib.marks()] if use_marks else []
    # "not duplicates" verdicts of the duplicates view: negative pairs for marks-only fine-tunes
    verdicts = [pair for pair, v in lib.verdicts().items() if v == "not duplicates"] if use_marks else []
    wanted = {pid for ids in album_ids.values() for pid in ids} | {p for m in marks for p in m[:2]} \
        | {p for pair in verdicts for p in pair}
    infos = lib.photos_by_id(wanted)
    present, gone = existing({pid: p.path for pid, p in infos.items() if p.status == "ok"})
    gone |= wanted - set(infos)
    return album_ids, marks, verdicts, present, gone


def lacking_features(lib, data: LabelledSet) -> list[int]:
    """The photos of ``data`` (``gather_labels(…, unread=True)``) whose features the cache
    does not hold: a library that keeps the features of labelled photos only, where a photo
    joined an album or was marked after it was scanned, or photos imported with their
    vectors. The fine-tune reads them first."""
    return sorted(set(data.photo_ids) - lib.store.features.photo_ids(lib.backbone_id))


def read_lacking_features(lib, ids: Sequence[int], progress=None, cancel=None) -> int:
    """Read photos ``ids`` and keep their features (and the same vectors); returns how many."""
    from ..pipeline.embed import embed_photos

    def told(p):
        if progress is not None:
            progress(TrainProgress("preparing", p.done, p.total, "reading labelled photos the cache lacks"))

    return embed_photos(lib.store, lib.encoder, list(ids), told, cancel, keep_features=True)


def gather_labels(lib, albums: Sequence[str] | None, use_marks: bool, *, unread: bool = False) -> LabelledSet:
    """Labels of the library cleaned for training (no features read: the estimate uses
    this too; ``unread``: counting the photos whose features are still to be read); raises
    :class:`PhotosimError` saying why when there is too little to learn."""
    album_ids, marks, verdicts, present, gone = _labelled(lib, albums, use_marks)
    usable = present if unread else present & lib.store.features.photo_ids(lib.backbone_id)
    return collect_labels(album_ids, marks, usable, gone, verdicts)


def gather(lib, albums: Sequence[str] | None, use_marks: bool) -> tuple[LabelledSet, np.ndarray]:
    """Labels of the library cleaned for training, and their cached features (rows aligned)."""
    data = gather_labels(lib, albums, use_marks)
    ids, feats = lib.cached_features(data.photo_ids)
    row = {pid: i for i, pid in enumerate(ids)}
    return data, feats[[row[pid] for pid in data.photo_ids]]


def _other_features(lib, labelled: Sequence[int], n: int, seed: int) -> np.ndarray:
    """Cached features of up to ``n`` library photos outside ``labelled``, at random."""
    pool = sorted(lib.store.features.photo_ids(lib.backbone_id) - set(labelled))
    if len(pool) > n:
        pool = sorted(np.random.default_rng(seed).choice(pool, size=n, replace=False).tolist())
    return lib.cached_features(pool)[1] if pool else np.zeros((0, lib.card.feature_dim), np.float32)


def finetune(lib, albums: Sequence[str] | None = None, *, use_marks: bool = True, mode: str = "quick",
             epochs: int | None = None, seed: int = 0,
             progress: Callable[[TrainProgress], None] | None = None,
             cancel=None, config: TrainConfig | None = None, estimate=None) -> FineTuneResult:
    """``estimate``: the :class:`~.estimate.Estimate` told the user before (made here when
    None, skipped when False); it is kept in the record beside the real time. ``mode``: one
    of :data:`~.finetune.MODES`, or "auto" (what the CLI and the dialog default to: standard
    where it costs little more than quick, see :mod:`.choose`)."""
    if mode not in MODES and mode != "auto":
        raise PhotosimError(f"unknown fine-tuning mode {mode!r} (auto, quick, standard or thorough)")
    if variants.split(lib.card.id)[1] != "fp32":
        raise PhotosimError("fine-tuning needs the model at full precision: turn off the faster, less "
                            "precise int8 setting first (photosim models precision fp32). Nothing was changed.")
    auto_note = None
    if mode == "auto":
        from .choose import choose_mode

        choice = choose_mode(lib, albums, use_marks=use_marks, epochs=epochs, config=config)
        mode, auto_note = choice.mode, f"automatic mode chose {choice.mode}: {choice.reason}"
        if estimate is None:
            estimate = choice.estimate
    t0 = time.perf_counter()
    cancel = as_token(cancel)
    cfg = config or TrainConfig()
    cfg.mode, cfg.seed = mode, seed
    if epochs is not None:
        cfg.epochs = epochs
    if cfg.device is None:
        cfg.device = lib.device
    if estimate is None:
        from .estimate import estimate_finetune

        estimate = estimate_finetune(lib, albums, mode=mode, use_marks=use_marks, config=replace(cfg))
        t0 = time.perf_counter()  # the estimate is not part of what it estimates
    stage_s: dict[str, float] = {}
    lacking = lacking_features(lib, gather_labels(lib, albums, use_marks, unread=True))
    if lacking:
        read_lacking_features(lib, lacking, progress, cancel)
        stage_s["scan"] = time.perf_counter() - t0
    data, feats = gather(lib, albums, use_marks)
    if auto_note:
        data.warnings.insert(0, auto_note)
    active = lib.card
    parent_dir = lib.model_dir(active.id)
    head_state = _parent_head_state(parent_dir, active)
    stage_s["prepare"] = time.perf_counter() - t0
    labels = np.asarray(data.labels)
    rows = data.row_of()
    if data.marks_only:
        from .pairs import KEEP_PHOTOS, train_pairs

        if mode != "quick":
            data.warnings.append(f"marks alone retrain the head only ({mode} mode needs albums)")
            mode = cfg.mode = "quick"
        pairs = np.asarray([(rows[a], rows[b]) for a, b in data.positives + data.negatives], np.int64).reshape(-1, 2)
        y = np.asarray([1] * len(data.positives) + [-1] * len(data.negatives), np.int64)
        verdicts = np.asarray([(rows[a], rows[b]) for a, b in data.not_duplicates], np.int64).reshape(-1, 2)
        t = time.perf_counter()
        others = _other_features(lib, data.photo_ids, KEEP_PHOTOS, seed)
        stage_s["prepare"] += time.perf_counter() - t
        t = time.perf_counter()
        outcome = train_pairs(feats, pairs, y, active, head_state, cfg, verdicts=verdicts, others=others,
                              progress=progress, cancel=cancel)
        stage_s["train"] = time.perf_counter() - t
        triplets = np.zeros((0, 3), np.int64)
    else:
        triplets = np.asarray([(rows[a], rows[p], rows[n]) for a, p, n in mark_triplets(data, random.Random(seed))],
                              dtype=np.int64).reshape(-1, 3)
        # Quick mode, and stage 1 of the others (seconds): the head on cached features.
        head_cfg = cfg if mode == "quick" else TrainConfig(**{**asdict(cfg), "epochs": None})
        t = time.perf_counter()
        outcome = train_head(feats, labels, active, head_state, head_cfg, triplets, progress, cancel)
        stage_s["train"] = time.perf_counter() - t
    state = outcome.head_state
    blocks_kept = False
    if mode != "quick":
        from .thorough import pick_photos, thorough_limit, train_thorough

        # Stage 2 (minutes): the last blocks with that head, from the photos.
        first = outcome
        rows_used = pick_photos(labels, triplets, thorough_limit(lib.encoder, cfg, mode), seed)
        if len(rows_used) < len(data.photo_ids):
            data.warnings.append(f"the network blocks learnt from {len(rows_used):,} of the "
                                 f"{len(data.photo_ids):,} labelled photos, sampled from every album, "
                                 f"to stay within memory")
        remap = np.full(len(data.photo_ids), -1)
        remap[rows_used] = np.arange(len(rows_used))
        used_ids = [data.photo_ids[r] for r in rows_used]
        infos = lib.photos_by_id(used_ids)
        t = time.perf_counter()
        read_until = [t]

        def timed(p):  # the end of reading the photos is the last "preparing" report
            if p.stage == "preparing":
                read_until[0] = time.perf_counter()
            if progress is not None:
                progress(p)

        outcome, full = train_thorough(lib.encoder, [infos[pid].path for pid in used_ids], labels[rows_used],
                                       cfg, remap[triplets].reshape(-1, 3), timed, cancel,
                                       head=(replace(active, head=first.head, head_hidden=first.head_hidden,
                                                     dim=first.dim), first.head_state),
                                       mode=mode, hashes=[infos[pid].content_hash for pid in used_ids],
                                       taps=lib.taps,
                                       head_metrics=(remap[np.asarray(first.val_rows, np.int64)].tolist(),
                                                     first.after))
        stage_s["read"] = read_until[0] - t
        stage_s["blocks"] = time.perf_counter() - read_until[0]
        outcome.val_rows = [int(rows_used[r]) for r in outcome.val_rows]  # rows of data again
        outcome.before = first.before  # the active model's, on the same held-out photos
        blocks_kept = outcome.best_epoch > 0
        if blocks_kept:
            state = full
        else:  # the blocks did not beat the head alone on held-out photos
            data.warnings.append("the retrained last network blocks did not beat the retrained head on "
                                 "held-out photos, so only the head was kept (accepting it needs no "
                                 "re-reading of photos)")
            state = outcome.head_state
    cancel.check(CANCELLED)
    if estimate:
        from .estimate import learn

        if mode != "quick":  # what accepting it will run: the blocks' vectors, or the head's
            estimate.counts["blocks_kept"] = int(blocks_kept)
        learn(estimate, stage_s)

    model_id = new_model_id()
    card = ModelCard(**{k: v for k, v in asdict(active).items() if k != "extra"})
    card.id = model_id
    card.head, card.head_hidden, card.dim = outcome.head, outcome.head_hidden, outcome.dim
    card.weights = "encoder.safetensors"
    card.same_weights_as = []  # the parent's history, not this model's (its weights are its parent's or its own)
    if blocks_kept:
        # a backbone of its own: complete weights, a new backbone id
        from ..model import make_backbone_id

        card.parent, card.head_only = active.id, False
        card.backbone_id = make_backbone_id(card, {k: v for k, v in state.items() if k.startswith("backbone.")})
        if mode == "standard":  # only blocks from the cut on changed: the parent's taps embed photos
            from .thorough import PLANS

            card.extra["taps"] = {"backbone_id": lib.encoder.backbone_id,
                                  "cut": PLANS[mode].cut(active.architecture)}
        what = "the last backbone blocks and the head"
    else:
        card.parent = active.parent if active.head_only else active.id  # owner of the backbone weights
        card.head_only = True
        what = "the head"
    source = (f"{len(data.positives) + len(data.negatives)} marks" if data.marks_only
              else f"{len(data.album_names)} albums")
    card.description = f"Fine-tuned by the user from {active.id} on {source} ({what} retrained)."
    record = FineTuneRecord(
        based_on=active.id,
        # microseconds: two fine-tunes in one second must still list in order
        created=datetime.now().astimezone().isoformat(timespec="microseconds"),
        albums=data.album_names, marks=len(data.positives) + len(data.negatives), mode=mode, seed=seed,
        epochs=len(outcome.history), best_epoch=outcome.best_epoch, n_train=outcome.n_train,
        n_val=outcome.n_val, before=outcome.before, after=outcome.after, history=outcome.history,
        warnings=data.warnings, objective="marks" if data.marks_only else "albums",
        estimated_s=round(estimate.finetune_s, 2) if estimate else None,
        seconds=round(time.perf_counter() - t0, 2),
        estimate={k: round(v, 2) for k, v in estimate.stages.items()} if estimate else {},
        stage_seconds={k: round(v, 2) for k, v in stage_s.items()})
    record.write_into(card)
    card.name = ""  # not the parent's name: named after how it was made until the user names it
    card.name = lib.registry.free_name(card.display_name)
    write_model(lib.path / "models", card, state)
    return FineTuneResult(
        model_id=model_id, name=card.name, record=record, seconds=time.perf_counter() - t0,
        estimate=estimate or None,
        photo_ids=data.photo_ids, labels=data.labels,
        val_photo_ids=[data.photo_ids[r] for r in outcome.val_rows])


def example_queries(lib, result: FineTuneResult, n: int = 3, k: int = 4, seed: int = 0) -> list[dict]:
    """A few held-out photos with their top-k labelled neighbours under the active model
    (before) and the new one (after): ``{"query", "before": [(id, same_album)], "after": …}``."""
    from safetensors.torch import load_file

    active = lib.card
    card = ModelCard.load(lib.model_dir(result.model_id) / "card.json")
    same_backbone = card.backbone_id == active.backbone_id
    # A new backbone (thorough mode) has no cached features: embed a few hundred photos afresh.
    pool = result.photo_ids if same_backbone else (result.val_photo_ids or result.photo_ids)[:300]
    ids, feats = lib.cached_features(pool)
    if not ids:
        return []
    label_of = dict(zip(result.photo_ids, result.labels))
    before = project_with(_parent_head_state(lib.model_dir(active.id), active), active, feats)
    if same_backbone:
        after = project_with(load_file(str(lib.model_dir(result.model_id) / card.weights)), card, feats)
    else:
        from ..encoder import Encoder
        from ..imageio import PhotoError, open_image

        new = Encoder.load(lib.model_dir(result.model_id), device=lib.device, resolve_parent=lib.model_dir)
        infos = lib.photos_by_id(ids)
        images, kept = [], []
        for i, pid in enumerate(ids):
            try:
                images.append(open_image(infos[pid].path))
                kept.append(i)
            except (PhotoError, OSError, KeyError):
                continue
        ids, before = [ids[i] for i in kept], before[kept]
        after = np.concatenate([new.embed(images[s:s + 32]) for s in range(0, len(images), 32)]) \
            if images else np.zeros((0, card.dim), np.float32)
    row = {pid: i for i, pid in enumerate(ids)}
    queries = [q for q in (result.val_photo_ids or ids) if q in row and label_of.get(q, -1) >= 0]
    rng = random.Random(seed)
    rng.shuffle(queries)
    # Prefer queries where the two models disagree: that is what the user wants to see.
    def top(vecs, q):
        sims = vecs @ vecs[row[q]]
        sims[row[q]] = -np.inf
        return [ids[i] for i in np.argsort(-sims)[:k] if i != row[q]]

    scored = []
    for q in queries[:200]:
        b, a = top(before, q), top(after, q)
        hits = lambda lst: sum(label_of.get(p) == label_of[q] for p in lst)  # noqa: E731
        scored.append((hits(a) - hits(b), q, b, a))
    scored.sort(key=lambda t: -t[0])
    out = []
    for _, q, b, a in scored[:n]:
        out.append({"query": q,
                    "before": [(p, label_of.get(p) == label_of[q]) for p in b],
                    "after": [(p, label_of.get(p) == label_of[q]) for p in a]})
    return out
