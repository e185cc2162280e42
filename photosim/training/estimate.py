"""How long a fine-tune takes, told before it starts.

A fine-tune's time is a few stages, each a count times a rate: photos to read and embed
(``photosim finetune --albums`` scans them first), labelled photos whose cached features
are loaded, optimisation steps of the head (their number is exactly what
:func:`~.finetune.head_plan` will lay out) and its validations, in thorough mode the
labelled photos read again and the steps of the last blocks, and accepting: the library's
vectors remade from cached features (quick) or from the photos (thorough).

The rates are this machine's, measured, not assumed. Constants per device class exist
(:func:`default_rates`; a 2-core CPU's were measured, the others scaled from it) but only
for a device never measured; at first use on a device a short calibration runs
(:func:`calibrate`, 2-5 s: decoding and embedding 16 of the photos, a dozen real steps of
the head on synthetic features, marks steps, one validation) and its rates are kept in the cache folder
(``$PHOTOSIM_CACHE_DIR`` or the user cache, ``finetune-rates.json``, per device class).
After each fine-tune the stages' real durations correct the cached rates (:func:`learn`),
so the next estimate is closer still. Why measure rather than keep constants: the same
2-core class runs 2-3 times slower or faster from one laptop to the next, and a CPU shared
with other work slows down as much again; a constant cannot be within 30 % of both.
For that last reason every estimate also times eight head steps (a fraction of a second)
and scales the CPU-bound stages by how much slower they ran than when the rates were
measured (``load``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

#: format of the cache file; other versions are ignored
VERSION = 2  # 2: standard mode's validation passes are rates of their own (late_val_photo)
#: the stages, in the order they run, and what each is called in words
STAGES = {"scan": "reading new photos", "prepare": "loading features", "train": "training",
          "read": "reading the labelled photos", "blocks": "training the last blocks", "accept": "accepting"}
#: the stages that :func:`~.runner.finetune` itself runs (not scanning, not accepting)
FINETUNE_STAGES = ("prepare", "train", "read", "blocks")
#: a block step processes ~ this share of a photo's lower-block reading time per view, forward
#: and backward (from the thorough CIFAR-10 run of the README: 1.79 s per step of 160 views
#: against 0.041 s per view read)
BLOCKS_PER_VIEW = 0.27


@dataclass
class Rates:
    """Seconds per unit of each stage on one device class."""

    key: str
    #: scanning: decode + embed, per photo
    embed_photo: float
    #: loading cached features, per labelled photo
    gather_photo: float
    #: one head step at a batch of 160 photos (scaled by the real batch)
    head_step: float
    #: one step of a marks-only fine-tune
    pair_step: float
    #: a validation, per held-out photo squared (retrieval metrics are pairwise)
    eval_pair: float
    #: accepting a head-only model: per library photo (features → vector → store → index)
    accept_photo: float
    #: thorough mode: one labelled photo (two views) through the lower blocks
    read_photo: float
    #: thorough mode: one view in one step of the last blocks
    block_view: float
    #: fixed seconds of a fine-tune (loading the parent's head, writing the model)
    overhead: float
    #: standard mode: one view in one step of the blocks at 1/32 of the side (bfloat16 on CPU)
    late_block_view: float = 0.0115
    #: accepting a standard fine-tune: per photo embedded from its taps
    tap_photo: float = 0.004
    #: standard mode: one held-out photo through the blocks in float32, each epoch's validation
    late_val_photo: float = 0.007
    #: seconds of the load probe (a head step, see probe) when these rates were measured
    probe: float | None = None
    #: "default" (constants), "calibrated" (measured here) or "learnt" (corrected by real runs)
    source: str = "default"


#: measured on the 2-core CPU this project is developed on (bundled encoder, ONNX Runtime,
#: load ~2): the scale every other class is derived from
_CPU2 = dict(embed_photo=0.045, gather_photo=0.0004, head_step=0.03, pair_step=0.012, eval_pair=4e-8,
             accept_photo=0.001, read_photo=0.09, block_view=0.011, overhead=0.3,
             # encoder v5, CIFAR-10 albums, the five blocks from cut 17: 1.7-2.2 s a step of 160
             # views on an hour whose embed_photo measured 0.051 (scaled here to this table's
             # 0.045); 39 s to accept 10,000 photos from their taps (ONNX Runtime's upper graph)
             # on an hour whose embed_photo measured 0.035
             late_block_view=0.0115, tap_photo=0.004,
             # 1,600 held-out CIFAR-10 photos validated in 11-14 s an epoch (2026-12-02)
             late_val_photo=0.007)


def default_rates(key: str) -> Rates:
    """Constants for a device class (``cpu:N`` or ``cuda:NAME``), before anything is measured."""
    kind, _, rest = key.partition(":")
    if kind == "cuda":
        cores = os.cpu_count() or 2
        decode = 0.02 * 2 / cores  # decoding stays on the CPU
        return Rates(key, embed_photo=decode + 0.002, gather_photo=0.0004, head_step=0.004, pair_step=0.003,
                     eval_pair=2e-9, accept_photo=0.0002, read_photo=decode + 0.004, block_view=0.0004,
                     overhead=3.0, late_block_view=0.0001, tap_photo=0.0002, late_val_photo=0.00005)
    try:
        cores = int(rest.split("|")[0])
    except ValueError:
        cores = 2
    scale = (2 / max(1, cores)) ** 0.8  # more cores help, less than linearly
    return Rates(key, **{k: v * (scale if k != "overhead" else 1.0) for k, v in _CPU2.items()})


def device_key(device: str | None) -> str:
    """The device class rates are kept for: ``cuda:<name>`` or ``cpu:<cores>``."""
    from ..encoder import pick_device

    device = pick_device(device)
    if device.startswith("cuda"):
        import torch

        return f"cuda:{torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu:{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}"


def rates_key(lib) -> str:
    """The key a library's rates are kept under: its device class and its encoder's backbone
    (another backbone embeds at another speed: rates of encoder v4 would mislead v5's)."""
    return f"{device_key(lib.device)}|{lib.card.backbone_id}"


def cache_file() -> Path:
    env = os.environ.get("PHOTOSIM_CACHE_DIR")
    if env:
        return Path(env) / "finetune-rates.json"
    import platformdirs

    return Path(platformdirs.user_cache_dir("photosim")) / "finetune-rates.json"


def _read_cache() -> dict:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data.get("rates", {}) if isinstance(data, dict) and data.get("version") == VERSION else {}


def load_rates(key: str) -> Rates | None:
    """The cached rates of ``key``; None when there are none (or they are damaged)."""
    raw = _read_cache().get(key)
    if not isinstance(raw, dict):
        return None
    names = {f.name for f in fields(Rates)}
    try:
        rates = Rates(**{k: v for k, v in raw.items() if k in names})
    except TypeError:
        return None
    numbers = [getattr(rates, f.name) for f in fields(Rates) if f.name not in ("key", "probe", "source")]
    if not all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in numbers):
        return None
    return rates


def save_rates(rates: Rates) -> None:
    """Keep ``rates`` in the cache file (atomically; a cache that cannot be written is skipped)."""
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": VERSION, "rates": {**_read_cache(), rates.key: asdict(rates)}}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rates-")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except OSError:
        pass


# -- measuring -------------------------------------------------------------------------
def _synthetic(card, n_albums: int = 8, per: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.random((n_albums, card.feature_dim), dtype=np.float32)
    labels = np.repeat(np.arange(n_albums), per)
    feats = centres[labels] + 0.3 * rng.random((len(labels), card.feature_dim), dtype=np.float32)
    return feats.astype(np.float16), labels


def time_head_steps(card, head_state: dict, steps: int, device: str | None = None) -> float:
    """Seconds per step of a real head fine-tune (batch 160, every loss and miner) on synthetic
    features of ``card``'s size; nothing is kept."""
    from .finetune import TrainConfig, train_head

    feats, labels = _synthetic(card)
    cfg = TrainConfig(epochs=1, min_steps_per_epoch=steps, max_steps_per_epoch=steps, val_fraction=0.0,
                      device=device)
    clock = _StepClock()
    train_head(feats, labels, card, head_state, cfg, progress=clock)
    return clock.per_step()


class _StepClock:
    """Seconds per training step from a run's progress, its first (warm-up) step left out."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def __call__(self, p) -> None:
        if p.stage == "training":
            self.marks.append(time.perf_counter())

    def per_step(self) -> float:
        """The median step: on a CPU shared with other work, a step the scheduler paused
        for a while says nothing about the next ones (the mean of a few steps varied by 50 %
        at a load of 15 on 2 cores; real runs correct what the median leaves out, see learn)."""
        gaps = np.diff(self.marks)
        return float(np.median(gaps)) if len(gaps) else 0.05


def time_pair_steps(card, head_state: dict, device: str | None = None) -> float:
    """Seconds per step of a marks-only fine-tune (60 marked pairs, 60 other photos kept)."""
    from .finetune import TrainConfig
    from .pairs import train_pairs

    feats, labels = _synthetic(card, 4, 15)
    rng = np.random.default_rng(1)
    pairs = rng.choice(len(labels), size=(60, 2))
    y = np.where(labels[pairs[:, 0]] == labels[pairs[:, 1]], 1, -1)
    y[:2], y[2:4] = 1, -1
    cfg = TrainConfig(epochs=1, val_fraction=0.0, device=device)
    clock = _StepClock()
    train_pairs(feats, pairs, y, card, head_state, cfg, others=feats, progress=clock)
    return clock.per_step()


def probe(card, head_state: dict, device: str | None = None) -> float:
    """Seconds of a head step now (the median of eight): how fast this machine runs at this moment."""
    return time_head_steps(card, head_state, 9, device)


def calibrate(lib, photos: Sequence[str] = (), *, thorough: bool = False) -> Rates:
    """Measure this machine's rates (a few seconds): decode and embed up to 16 of ``photos``
    (else the int8 calibration photos shipped with photosim), ten head steps, a marks step,
    a validation, standard mode's blocks on synthetic activations (four training steps and a
    validation), and in ``thorough`` mode two photos through the lower blocks in torch."""
    from ..evaluation import retrieval_metrics
    from ..imageio import PhotoError, read_photo
    from .runner import _parent_head_state

    card = lib.card
    key = rates_key(lib)
    rates = default_rates(key)
    head_state = _parent_head_state(lib.model_dir(card.id), card)
    rates.head_step = time_head_steps(card, head_state, 13, lib.device)
    # after the steps above: the first head steps of a process also set torch up, and a
    # probe taken then read as a slow machine, so that every estimate after it was told short
    rates.probe = probe(card, head_state, lib.device)
    # Standard mode's blocks are timed (3-5 s: four steps of 80 views, the fastest of the last
    # three kept, and a validation of 48 photos, on synthetic taps). Scaled by the head steps' speed instead, they were told 28 %
    # short on CIFAR-10 (head steps are small matrix products, the blocks convolutions in
    # bfloat16); by the photos' rate, which is mostly decoding for real photos and none for
    # tiny ones, 43 % short; and with its validation passes left out, a third short. Accepting
    # from taps (ONNX Runtime's upper graph, not made here) follows the head steps' speed.
    from .thorough import time_blocks

    speed = float(np.clip(rates.head_step / default_rates(key).head_step, 0.25, 4.0))
    rates.tap_photo *= speed
    rates.late_block_view, rates.late_val_photo = time_blocks(lib.encoder, "standard")
    rates.pair_step = time_pair_steps(card, head_state, lib.device)
    v = np.random.default_rng(0).standard_normal((500, card.dim)).astype(np.float32)
    t = time.perf_counter()
    retrieval_metrics(v / np.linalg.norm(v, axis=1, keepdims=True), np.arange(500) % 10)
    rates.eval_pair = (time.perf_counter() - t) / 500**2
    sample = list(photos)[:16] or _shipped_photos()
    enc = lib.encoder
    images, pixels, decode = [], [], 0.0
    for path in sample:
        t = time.perf_counter()
        try:  # what a scan's decode threads do for each photo: hash, decode reduced, preprocess
            image = read_photo(path).image
            pixels.append(enc.preprocess(image))
        except (PhotoError, OSError):
            continue
        decode += time.perf_counter() - t
        images.append(image)
    if images:
        batch = np.stack(pixels)
        enc.project(enc.features(batch[:1]))  # a first call warms the session up
        t = time.perf_counter()
        enc.project(enc.features(batch))
        forward = (time.perf_counter() - t) / len(images)
        # a scan decodes on half the cores beside the forward passes (pipeline/scan.py)
        workers = max(1, (os.cpu_count() or 2) // 2)
        rates.embed_photo = decode / len(images) / workers + forward
        if thorough:
            rates.read_photo, rates.block_view = _time_lower(enc, images[:2], decode / len(images))
    rates.source = "calibrated"
    return rates


def _time_lower(enc, images, decode: float) -> tuple[float, float]:
    import torch

    batch = torch.from_numpy(np.stack([enc.preprocess(im) for im in images])).to(enc.device)
    with torch.inference_mode():
        enc.net.lower(batch[:1])
        t = time.perf_counter()
        enc.net.lower(batch)
        per_view = (time.perf_counter() - t) / len(images)
    return decode + 2 * per_view, BLOCKS_PER_VIEW * per_view


def _shipped_photos() -> list[str]:
    folder = Path(__file__).resolve().parents[2] / "resources" / "calibration"
    return sorted(str(p) for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:16]


def rates_for(lib, photos: Sequence[str] = (), *, thorough: bool = False,
              calibrate_now: bool = True) -> tuple[Rates, bool]:
    """The cached rates of the library's device, calibrated (and cached) at first use, and
    whether they were measured just now."""
    key = rates_key(lib)
    rates = load_rates(key)
    if rates is not None and (not thorough or rates.source != "default"):
        return rates, False
    if not calibrate_now:
        return default_rates(key), False
    rates = calibrate(lib, photos, thorough=thorough)
    save_rates(rates)
    return rates, True


# -- the estimate ----------------------------------------------------------------------
@dataclass
class Estimate:
    """Seconds per stage (see :data:`STAGES`) of a fine-tune about to run."""

    stages: dict[str, float]
    mode: str
    device: str
    #: how the rates were had ("default", "calibrated", "learnt") and how much slower than
    #: then the machine runs now (1.0: as fast)
    source: str = "default"
    load: float = 1.0
    #: what the stages count: photos to read, labelled photos, steps, library photos …
    counts: dict[str, int] = field(default_factory=dict)
    #: a fine-tune from marks alone (its steps are pair steps)
    marks_only: bool = False

    @property
    def device_words(self) -> str:
        """"on this CPU (2 cores)", "on the GPU (NVIDIA H200)"."""
        kind, _, rest = self.device.split("|")[0].partition(":")  # the key's backbone is not the device
        if kind == "cuda":
            return f"on the GPU ({rest})"
        return f"on this CPU ({rest} core{'s' if rest != '1' else ''})"

    @property
    def total(self) -> float:
        return float(sum(self.stages.values()))

    @property
    def finetune_s(self) -> float:
        """The stages :meth:`Library.finetune` runs itself (not scanning, not accepting)."""
        return float(sum(v for k, v in self.stages.items() if k in FINETUNE_STAGES))

    def words(self, stages: Sequence[str] | None = None) -> str:
        """"about 4 minutes (reading new photos about 3 minutes, training about 40 seconds, …)"."""
        keys = [k for k in STAGES if k in self.stages and (stages is None or k in stages)]
        total = sum(self.stages[k] for k in keys)
        parts = [f"{STAGES[k]} {duration(self.stages[k])}" for k in keys if self.stages[k] >= 0.5]
        return duration(total) + (f" ({', '.join(parts)})" if len(parts) > 1 else "")


def duration(seconds: float, about: bool = True) -> str:
    """Seconds in words, rounded as a person would say them: "about 40 seconds", "about 4 minutes"."""
    s = max(0.0, float(seconds))
    lead = "about " if about else ""
    if s < 10:
        return f"{lead}{max(1, round(s))} second{'s' if round(s) != 1 else ''}" if about else f"{s:.1f} s"
    if s < 90:
        return f"{lead}{int(round(s / 5) * 5)} seconds" if about else f"{s:.0f} s"
    if s < 3600:
        if not about:
            return f"{int(s // 60)} min {int(round(s % 60)):02d} s"
        return f"{lead}{round(s / 60)} minutes"
    h, m = divmod(round(s / 60), 60)
    return f"{lead}{h} h {m:02d} min"


def plan_stages(rates: Rates, *, mode: str, album_sizes: Sequence[int] = (), n_triplets: int = 0,
                n_mark_pairs: int = 0, n_new: int = 0, n_library: int = 0, n_thorough: int | None = None,
                config=None, load: float = 1.0, n_unread: int = 0, n_tapped: int = 0,
                n_tapped_library: int = 0) -> Estimate:
    """The estimate for counts (``album_sizes``: labelled photos per album; ``n_mark_pairs``:
    marked pairs of a marks-only fine-tune, else 0; ``n_new``: photos still to scan or read;
    ``n_library``: photos of the library once scanned; ``n_unread``: those of them whose
    features the cache does not keep, read again to accept a head-only model;
    ``n_tapped``: labelled photos whose taps are kept, which standard mode need not read;
    ``n_tapped_library``: photos of the library with taps, which accepting it need not read)."""
    from .finetune import TrainConfig, head_plan, split_validation
    from .pairs import marks_plan

    cfg = config or TrainConfig()
    cpu = rates.key.startswith("cpu")
    f = load if cpu else 1.0
    labels = np.concatenate([np.full(n, i) for i, n in enumerate(album_sizes)]) if len(album_sizes) \
        else np.zeros(0, np.int64)
    n_labelled = int(len(labels)) + 2 * n_mark_pairs
    stages = {"scan": n_new * rates.embed_photo * f,
              "prepare": rates.overhead + n_labelled * rates.gather_photo * f}
    counts = {"new_photos": n_new, "labelled": n_labelled, "library": n_library, "unread": n_unread}
    if n_mark_pairs:
        epochs, steps = marks_plan(n_mark_pairs, cfg)
        stages["train"] = epochs * steps * rates.pair_step * f
        counts["steps"] = epochs * steps
    else:
        rng = np.random.default_rng(cfg.seed)  # the split train_head makes, exactly
        val = split_validation(labels, cfg.val_fraction, rng)
        head_cfg = cfg if mode == "quick" else replace(cfg, epochs=None)
        plan = head_plan(labels[~val], n_triplets, head_cfg)
        batch = plan.batch or 64
        step = rates.head_step * max(0.3, batch / 160)
        n_val = int(val.sum())
        stages["train"] = plan.epochs * plan.steps * step * f + (plan.epochs + 1) * n_val**2 * rates.eval_pair * f
        counts.update(steps=plan.epochs * plan.steps, held_out=n_val)
        if mode != "quick":
            from .thorough import PLANS

            plan = PLANS[mode]
            n_used = int(len(labels) if n_thorough is None else min(n_thorough, len(labels)))
            n_albums = max(2, min(16, len(album_sizes)))
            per = max(2, min(16 // plan.views, cfg.batch_size // (plan.views * n_albums)))
            epochs = cfg.epochs if cfg.epochs is not None else plan.epochs
            n_train = int(round(n_used * (1 - cfg.val_fraction)))
            steps = int(np.clip(n_train // (n_albums * per), 25, cfg.max_steps_per_epoch))
            views = plan.views * n_albums * per
            if mode == "standard":  # photos without taps: decoded and run to the cut (most of a scan)
                n_read = max(0, n_used - n_tapped)
                stages["read"] = n_read * rates.embed_photo * f
                # each epoch then validates on the held-out photos (the start's figure is the
                # head's own): the blocks in float32, then the pairwise metrics
                n_held = int(round(n_val * n_used / max(1, len(labels))))
                validate = n_held * rates.late_val_photo + n_held**2 * rates.eval_pair
                stages["blocks"] = epochs * (steps * views * rates.late_block_view + validate) * f
            else:
                n_read = n_used
                stages["read"] = n_read * rates.read_photo * f
                stages["blocks"] = epochs * steps * views * rates.block_view * f
            counts.update(read=n_read, block_steps=epochs * steps)
    if mode == "standard" and not n_mark_pairs:
        from ..store.taps import MAX_PHOTOS

        # the library's photos with taps, and those the fine-tune reads (it keeps their taps)
        read = int(counts.get("read", 0))
        tapped = min(n_library, max(n_tapped_library, min(MAX_PHOTOS, n_tapped_library + read)))
        stages["accept"] = (tapped * rates.tap_photo + (n_library - tapped) * rates.embed_photo) * f + 10.0
        counts.update(accept_read=n_library - tapped)
    elif mode == "thorough" and not n_mark_pairs:
        stages["accept"] = n_library * rates.embed_photo * f + 10.0  # a new backbone: its graph, then every photo
    else:
        n_unread = min(n_unread, n_library)  # loading the new model, then the vectors (from features or photos)
        stages["accept"] = 2.0 + ((n_library - n_unread) * rates.accept_photo + n_unread * rates.embed_photo) * f
    return Estimate(stages=stages, mode=mode, device=rates.key, source=rates.source, load=load, counts=counts,
                    marks_only=bool(n_mark_pairs))


def estimate_finetune(lib, albums: Sequence[str] | None = None, *, mode: str = "quick", use_marks: bool = True,
                      epochs: int | None = None, config=None, folder: str | os.PathLike | None = None,
                      calibrate_now: bool = True) -> Estimate:
    """How long ``lib.finetune(albums, mode=…, use_marks=…)`` and accepting it will take.

    ``folder``: a folder whose sub-folders are about to become albums (``photosim finetune
    --albums``): its photos not yet in the library count as photos to scan, its sub-folders
    as the albums. Raises :class:`~photosim.errors.PhotosimError` when the labels cannot be
    fine-tuned on (the same sentence the fine-tune itself would give): bad input is told
    before anything starts."""
    import random

    from ..errors import PhotosimError
    from .finetune import MODES, TrainConfig
    from .runner import gather_labels, lacking_features
    from .triplets import mark_triplets

    if mode not in MODES:
        raise PhotosimError(f"unknown fine-tuning mode {mode!r} (quick, standard or thorough)")
    cfg = config or TrainConfig()
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    n_library = lib.count(status="ok")
    n_unread = max(0, n_library - lib.store.features.count(lib.backbone_id))  # the cache's policy
    sample: list[str] = []
    n_triplets = n_pairs = n_new = 0
    if folder is not None:
        from ..pipeline.scan import list_photos

        root = Path(os.path.abspath(os.fspath(folder)))
        listed = list_photos([str(root)], skip=[str(lib.path)])
        known = {p.path for p in lib.photos(folder=str(root))}
        new = [e.path for e in listed if e.path not in known]
        n_new = len(new)
        sizes: dict[str, int] = {}
        for e in listed:
            rel = Path(e.path).relative_to(root).parts
            if len(rel) > 1 and not rel[0].startswith("."):
                sizes[rel[0]] = sizes.get(rel[0], 0) + 1
        album_sizes = [n for _, n in sorted(sizes.items()) if n >= 2]
        n_library += n_new
        sample = new[:: max(1, len(new) // 16)][:16] if new else [e.path for e in listed[:16]]
    else:
        data = gather_labels(lib, albums, use_marks, unread=True)
        n_new = len(lacking_features(lib, data))  # read first (a cache of labelled photos only)
        n_unread = max(0, n_unread - n_new)
        labels = np.asarray(data.labels)
        if data.marks_only:
            album_sizes = []
            n_pairs = len(data.positives) + len(data.negatives) + len(data.not_duplicates)
        else:
            album_sizes = [int((labels == a).sum()) for a in range(len(data.album_names))]
            n_triplets = len(mark_triplets(data, random.Random(cfg.seed)))
        ids = data.photo_ids[:: max(1, len(data.photo_ids) // 16)][:16]
        sample = [p.path for p in lib.photos_by_id(ids).values()]
    thorough = mode == "thorough"
    rates, measured_now = rates_for(lib, sample, thorough=thorough, calibrate_now=calibrate_now)
    load = 1.0
    if rates.probe and rates.key.startswith("cpu") and not measured_now:  # else: this moment's load already
        from .runner import _parent_head_state

        now = probe(lib.card, _parent_head_state(lib.model_dir(lib.card.id), lib.card), lib.device)
        load = float(np.clip(now / rates.probe, 0.4, 5.0))
    n_thorough = None
    if mode != "quick" and album_sizes:
        from .thorough import thorough_limit

        n_thorough = thorough_limit(lib.encoder, cfg, mode)
    n_tapped = n_tapped_library = 0
    if mode == "standard" and album_sizes:
        from ..model import late_cut

        kept = lib.taps.hashes(lib.backbone_id, late_cut(lib.card.architecture))
        n_tapped_library = sum(1 for p in lib.photos() if p.content_hash in kept)
        if folder is not None:  # the album import keeps the new photos' taps
            n_tapped = sum(1 for p in lib.photos(folder=str(root)) if p.content_hash in kept) + n_new
            n_tapped_library += n_new
        else:
            n_tapped = sum(1 for p in lib.photos_by_id(data.photo_ids).values() if p.content_hash in kept)
    return plan_stages(rates, mode=mode, album_sizes=album_sizes, n_triplets=n_triplets, n_mark_pairs=n_pairs,
                       n_new=n_new, n_library=n_library, n_thorough=n_thorough, config=cfg, load=load,
                       n_unread=n_unread, n_tapped=n_tapped, n_tapped_library=n_tapped_library)


def _accept_rates(estimate: Estimate) -> tuple[str, ...]:
    """The rate an accept's real duration corrects: only where one rate made almost all of
    it (an accept that also read photos says little about the per-photo rate)."""
    counts = estimate.counts
    if estimate.mode == "quick" or estimate.marks_only:
        return ("accept_photo",) if not counts.get("unread") else ()
    if estimate.mode == "standard" and counts.get("blocks_kept") and counts.get("accept_read") == 0:
        return ("tap_photo",)  # every photo embedded from its taps
    return ()  # a head-only result accepts from features, not as told; thorough reads every photo


def learn(estimate: Estimate, measured: dict[str, float], weight: float = 0.5) -> Rates | None:
    """Correct the cached rates of the estimate's device by the stages' real durations
    (seconds per stage, measured at the estimate's load): each stage's rates move ``weight``
    of the way to what would have predicted it exactly. Returns the rates kept."""
    rates = load_rates(estimate.device)
    if rates is None:
        return None
    by_stage = {"scan": ("embed_photo",), "prepare": ("gather_photo",),
                "train": ("pair_step",) if estimate.marks_only else ("head_step", "eval_pair"),
                "read": ("embed_photo",) if estimate.mode == "standard" else ("read_photo",),
                "blocks": ("late_block_view", "late_val_photo") if estimate.mode == "standard" else ("block_view",),
                "accept": _accept_rates(estimate)}
    changed = False
    for stage, real in measured.items():
        told = estimate.stages.get(stage)
        if not told or told <= 0.05 or real is None or real <= 0 or stage not in by_stage:
            continue
        if stage == "prepare":  # the fixed part is not a rate
            fixed = rates.overhead
            if told - fixed <= 0.05:
                continue
            ratio = max(real - fixed, 0.01) / (told - fixed)
        else:
            ratio = real / told
        ratio = float(np.clip(ratio, 0.2, 5.0)) ** weight
        for name in by_stage[stage]:
            setattr(rates, name, getattr(rates, name) * ratio)
            changed = True
    if changed:
        rates.source = "learnt"
        save_rates(rates)
    return rates
