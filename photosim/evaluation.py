"""Measuring an encoder: retrieval quality on labelled photos and near-duplicate recall.

* :func:`retrieval_metrics` – Recall@1, Precision@10 and MAP@R of vectors with
  class labels, every item queried against all the others (same label = relevant).
  MAP@R follows Musgrave, Belongie & Lim, "A Metric Learning Reality Check"
  (ECCV 2020): for a query with R relevant items, the mean over the top R results
  of precision@i at every rank i that is relevant, divided by R.
* :func:`near_duplicate_recall` – edited copies (crop, resize, colour, exposure,
  JPEG, perspective and 90°/180°/270° rotations without EXIF) queried against the
  gallery of all photos; a hit is when the nearest photo is the copy's original.
* :func:`evaluate_folder` – both, on a folder with one sub-folder per class
  ("album" layout); behind ``photosim eval``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import edits

#: Near-duplicate edit kinds: every single edit, with each pixel rotation separately.
NEAR_DUP_KINDS: tuple[str, ...] = tuple(k for k in edits.EDIT_KINDS if k != "rotate") + (
    "rotate90",
    "rotate180",
    "rotate270",
)
ROTATION_KINDS = ("rotate90", "rotate180", "rotate270")

#: progress(stage, done, total); stage is "embed" or "near-duplicates".
Progress = Callable[[str, int, int], None]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"vectors must be 2-D, got shape {v.shape}")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def retrieval_metrics(
    vectors: np.ndarray, labels: Sequence, *, k: int = 10, chunk: int = 1024
) -> dict:
    """Recall@1, Precision@k and MAP@R by cosine similarity, each item against all others.

    Queries whose label occurs only once have no relevant item and are left out
    (``n_queries`` says how many counted). Works in chunks of ``chunk`` queries so
    that memory stays at ``chunk × N`` similarities (10k × 10k is fine).
    """
    v = _normalise(vectors)
    n = len(v)
    if len(labels) != n:
        raise ValueError(f"{n} vectors but {len(labels)} labels")
    _, lab = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    lab = lab.reshape(-1)
    counts = np.bincount(lab)
    n_rel = counts[lab] - 1  # R for every query
    valid = n_rel > 0
    out = {"recall_at_1": 0.0, f"precision_at_{k}": 0.0, "map_at_r": 0.0,
           "n_queries": int(valid.sum()), "n_items": int(n)}
    if n < 2 or not valid.any():
        return out
    kk = min(k, n - 1)
    r1 = pk = mapr = 0.0
    for start in range(0, n, chunk):
        idx = np.arange(start, min(start + chunk, n))
        idx = idx[valid[idx]]
        if len(idx) == 0:
            continue
        sims = v[idx] @ v.T
        sims[np.arange(len(idx)), idx] = -np.inf  # never retrieve yourself
        top = int(max(kk, n_rel[idx].max()))
        if top < n:
            part = np.argpartition(-sims, top - 1, axis=1)[:, :top]
        else:
            part = np.tile(np.arange(n), (len(idx), 1))
        order = np.take_along_axis(sims, part, axis=1)
        ranked = np.take_along_axis(part, np.argsort(-order, axis=1, kind="stable"), axis=1)
        rel = lab[ranked] == lab[idx][:, None]  # (q, top)
        r1 += rel[:, 0].sum()
        pk += rel[:, :kk].sum(axis=1).sum() / kk
        R = n_rel[idx]
        ranks = np.arange(1, top + 1)
        in_r = ranks[None, :] <= R[:, None]
        relr = rel & in_r
        prec_at_i = np.cumsum(relr, axis=1) / ranks[None, :]
        mapr += ((prec_at_i * relr).sum(axis=1) / R).sum()
    q = out["n_queries"]
    out["recall_at_1"] = float(r1 / q)
    out[f"precision_at_{k}"] = float(pk / q)
    out["map_at_r"] = float(mapr / q)
    return out


def mean_average_precision(vectors: np.ndarray, labels: Sequence) -> float:
    """mAP over the whole ranking, every item a query against all others (the measure of
    INRIA Holidays); queries with no other item of their label are left out."""
    v = _normalise(vectors)
    lab = np.asarray(labels, dtype=object).astype(str)
    aps = []
    for i in range(len(v)):
        sims = v @ v[i]
        sims[i] = -np.inf
        rel = lab[np.argsort(-sims, kind="stable")[:-1]] == lab[i]
        if rel.any():
            aps.append(float(np.mean(np.cumsum(rel)[rel] / (np.flatnonzero(rel) + 1))))
    return float(np.mean(aps)) if aps else 0.0


def triplet_accuracy(vectors: np.ndarray, labels: Sequence, n: int = 10_000, seed: int = 0) -> float:
    """How often an anchor is nearer a random photo of its class than one of another class,
    over ``n`` random triplets."""
    rng = random.Random(seed)
    by: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by.setdefault(str(lab), []).append(i)
    classes = sorted(c for c in by if len(by[c]) >= 2)
    v = _normalise(vectors)
    good = 0
    for _ in range(n):
        c = rng.choice(classes)
        a, p = rng.sample(by[c], 2)
        neg = rng.choice(by[rng.choice([k for k in classes if k != c])])
        good += float(v[a] @ v[p]) > float(v[a] @ v[neg])
    return good / n


def make_near_duplicate(image: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    """One edited copy of ``image``; ``rotate90/180/270`` are exact pixel rotations."""
    if kind in ROTATION_KINDS:
        return edits.rotate90(image, {"rotate90": 1, "rotate180": 2, "rotate270": 3}[kind])
    return edits.apply_edit(image, kind, rng)


def near_duplicate_recall(
    encoder,
    originals: list[Image.Image],
    rng: random.Random,
    *,
    sample: int | None = 200,
    kinds: Sequence[str] = NEAR_DUP_KINDS,
    gallery_vectors: np.ndarray | None = None,
    sample_indices: Sequence[int] | None = None,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> dict:
    """Recall@1 of edited copies against the gallery of all ``originals``.

    ``sample`` originals (all if None) each get one copy per edit kind; a copy is a
    hit when its nearest gallery photo is its own original. ``gallery_vectors``
    (embeddings of ``originals``) are reused when given. With ``sample_indices``
    only those originals are edited and ``originals`` may hold ``None`` elsewhere
    (then ``gallery_vectors`` is required).
    """
    if gallery_vectors is None:
        gallery_vectors = _embed_all(encoder, originals, batch_size)
    gallery = _normalise(gallery_vectors)
    n = len(gallery)
    if sample_indices is None:
        pool = list(range(len(originals)))
        sample_indices = pool if sample is None or sample >= n else sorted(rng.sample(pool, sample))
    hits: dict[str, list[bool]] = {k: [] for k in kinds}
    jobs = [(i, kind) for i in sample_indices for kind in kinds]
    done = 0
    for start in range(0, len(jobs), batch_size):
        part = jobs[start : start + batch_size]
        copies = [make_near_duplicate(originals[i], kind, rng) for i, kind in part]
        q = _normalise(encoder.embed(copies))
        nearest = np.argmax(q @ gallery.T, axis=1)
        for (i, kind), j in zip(part, nearest):
            hits[kind].append(bool(j == i))
        done += len(part)
        if progress:
            progress("near-duplicates", done, len(jobs))
    per_kind = {k: float(np.mean(h)) if h else 0.0 for k, h in hits.items()}
    all_hits = [x for h in hits.values() for x in h]
    rot = [x for k in ROTATION_KINDS if k in hits for x in hits[k]]
    return {
        "recall_at_1": float(np.mean(all_hits)) if all_hits else 0.0,
        "rotation_recall_at_1": float(np.mean(rot)) if rot else None,
        "per_kind": per_kind,
        "n_queries": len(all_hits),
        "n_originals": len(sample_indices),
        "n_gallery": int(n),
    }


def _embed_all(encoder, images: Sequence[Image.Image], batch_size: int) -> np.ndarray:
    out = [encoder.embed(list(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, encoder.dim), dtype=np.float32)


@dataclass
class EvalReport:
    """What ``photosim eval`` prints (``format_text``) or dumps (``to_dict`` → JSON)."""

    folder: str
    model_id: str
    n_photos: int
    n_classes: int
    n_skipped: int
    retrieval: dict
    near_duplicates: dict
    per_class_map_at_r: dict = field(default_factory=dict)
    embed_seconds: float = 0.0
    images_per_second: float = 0.0
    skipped: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def format_text(self) -> str:
        r, nd = self.retrieval, self.near_duplicates
        lines = [
            f"Encoder     {self.model_id}",
            f"Folder      {self.folder}",
            f"Photos      {self.n_photos} in {self.n_classes} classes"
            + (f" ({self.n_skipped} unreadable, skipped)" if self.n_skipped else ""),
            f"Speed       {self.images_per_second:.1f} photos/s (decode + embed)",
            "",
            "Similar photos (same class = relevant, each photo against all others)",
            f"  mAP@R          {r.get('map_at_r', 0):.4f}",
            f"  Recall@1       {r.get('recall_at_1', 0):.4f}",
            f"  Precision@10   {r.get('precision_at_10', 0):.4f}",
            f"  queries        {r.get('n_queries', 0)}",
        ]
        if nd:
            lines += [
                "",
                f"Near-duplicates ({nd['n_originals']} photos × {len(nd['per_kind'])} edits "
                f"against {nd['n_gallery']} photos)",
                f"  Recall@1       {nd['recall_at_1']:.4f}",
            ]
            if nd.get("rotation_recall_at_1") is not None:
                lines.append(f"  rotations      {nd['rotation_recall_at_1']:.4f}  (90/180/270° without EXIF)")
            for kind, value in nd["per_kind"].items():
                lines.append(f"    {kind:<12} {value:.4f}")
        if self.per_class_map_at_r:
            worst = sorted(self.per_class_map_at_r.items(), key=lambda kv: kv[1])[:5]
            lines += ["", "Hardest classes (mAP@R): " + ", ".join(f"{c} {v:.2f}" for c, v in worst)]
        return "\n".join(lines)


def list_album(folder: Path) -> list[tuple[Path, str]]:
    """(photo, class) for every supported file in the class sub-folders, sorted."""
    from .imageio import is_supported

    folder = Path(folder)
    items = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(sub.rglob("*")):
            if f.is_file() and is_supported(f) and not f.name.startswith("."):
                items.append((f, sub.name))
    return items


def evaluate_folder(
    encoder,
    folder: Path,
    *,
    near_dup_sample: int = 200,
    seed: int = 0,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> EvalReport:
    """Embed every photo of an album folder (one sub-folder per class) and measure.

    Unreadable photos are skipped and counted. ``near_dup_sample`` photos (0 to skip)
    get one edited copy per :data:`NEAR_DUP_KINDS`, queried against all photos.
    """
    from .imageio import PhotoError, open_image

    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    items = list_album(folder)
    rng = random.Random(seed)
    candidates = set(rng.sample(range(len(items)), min(near_dup_sample, len(items)))) if near_dup_sample else set()

    vectors, labels, kept_images, sample_pos, skipped = [], [], [], [], []
    batch, batch_labels, batch_keep = [], [], []
    t0 = time.perf_counter()

    def flush():
        if batch:
            vectors.append(encoder.embed(batch))
            labels.extend(batch_labels)
            kept_images.extend(batch_keep)
            batch.clear(), batch_labels.clear(), batch_keep.clear()

    for i, (path, label) in enumerate(items):
        try:
            img = open_image(path)
        except PhotoError as exc:
            skipped.append(f"{path.relative_to(folder)}: {exc}")
            continue
        keep = i in candidates
        if keep:
            sample_pos.append(len(labels) + len(batch))
        batch.append(img)
        batch_labels.append(label)
        batch_keep.append(img if keep else None)
        if len(batch) >= batch_size:
            flush()
            if progress:
                progress("embed", i + 1, len(items))
    flush()
    if progress:
        progress("embed", len(items), len(items))
    seconds = time.perf_counter() - t0
    vecs = np.concatenate(vectors) if vectors else np.zeros((0, encoder.dim), dtype=np.float32)

    retrieval = retrieval_metrics(vecs, labels)
    per_class = {}
    if len(vecs):
        per_class = _per_class_map(vecs, labels)
    near = {}
    if sample_pos and len(vecs) > 1:
        near = near_duplicate_recall(
            encoder, kept_images, rng, gallery_vectors=vecs, sample_indices=sample_pos,
            batch_size=batch_size, progress=progress,
        )
    return EvalReport(
        folder=str(folder),
        model_id=encoder.id,
        n_photos=len(vecs),
        n_classes=len(set(labels)),
        n_skipped=len(skipped),
        retrieval=retrieval,
        near_duplicates=near,
        per_class_map_at_r=per_class,
        embed_seconds=round(seconds, 2),
        images_per_second=round(len(vecs) / seconds, 2) if seconds > 0 else 0.0,
        skipped=skipped,
    )


def _per_class_map(vectors: np.ndarray, labels: Sequence) -> dict:
    """MAP@R per class (queries of that class against all photos)."""
    v = _normalise(vectors)
    labels_arr = np.asarray(labels, dtype=object).astype(str)
    out = {}
    for cls in sorted(set(labels_arr)):
        q = np.flatnonzero(labels_arr == cls)
        R = len(q) - 1
        if R < 1:
            continue
        sims = v[q] @ v.T
        sims[np.arange(len(q)), q] = -np.inf
        top = np.argsort(-sims, axis=1, kind="stable")[:, :R]
        rel = labels_arr[top] == cls
        prec = np.cumsum(rel, axis=1) / np.arange(1, R + 1)
        out[cls] = round(float(((prec * rel).sum(axis=1) / R).mean()), 4)
    return out
