"""The one embed path: decode → encoder input → backbone features → head → stored.

The scan (new and changed photos), a model switch (photos read afresh for a model
with a backbone of its own) and re-embedding (cached features under a new head)
all store features and vectors through here, so a fresh embedding and one
re-projected from the cache are the same numbers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ..errors import PhotoError
from ..imageio import open_image
from ..progress import ProgressFn, as_token, emit


def encode(encoder, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features, vectors) of a batch of preprocessed encoder inputs."""
    feats = encoder.features(pixels)
    return feats, encoder.project(feats)


def store_embeddings(session, store, encoder, ids: Sequence[int], feats: np.ndarray | None,
                     vecs: np.ndarray, keep_features: bool = False) -> None:
    """Features (when given) and vectors of ``ids`` under ``encoder``, in ``session``'s
    transaction. Features are kept as the library's feature cache says (every photo's, or
    only those of photos fine-tuning learns from), or all of them with ``keep_features``."""
    if feats is not None:
        keep = [True] * len(ids) if keep_features else store.features.keep(session, ids)
        if all(keep):
            store.features.put(session, encoder.backbone_id, ids, feats)
        elif any(keep):
            rows = [i for i, k in enumerate(keep) if k]
            store.features.put(session, encoder.backbone_id, [ids[i] for i in rows], feats[rows])
    store.vectors.put(session, encoder.id, ids, vecs)


def decoded(encoder, paths: Sequence[str], workers: int = 2, window: int = 96) -> Iterator[np.ndarray | None]:
    """Encoder inputs of ``paths`` in order (None where a photo cannot be read now),
    decoded in ``workers`` threads, at most ``window`` photos ahead of the consumer."""
    def pixels(path):
        try:
            return encoder.preprocess(open_image(path))
        except (PhotoError, OSError, MemoryError):
            return None

    pending: deque[Future] = deque()
    it = iter(paths)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="photosim-decode") as pool:
        try:
            while True:
                while len(pending) < window:
                    path = next(it, None)
                    if path is None:
                        break
                    pending.append(pool.submit(pixels, path))
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def project_cached(store, encoder, photo_ids: Sequence[int], cancel=None, chunk: int = 2048,
                   message: str = "re-embedding cancelled; the active model is unchanged"):
    """Store ``encoder``'s vectors of photos from their cached features (no decoding), a
    transaction per chunk; yields each chunk's (ids, vectors). A set ``cancel`` between
    chunks raises :class:`Cancelled` (what was stored stays, under ``encoder.id``)."""
    token = as_token(cancel)
    dim = encoder.card.feature_dim
    for start in range(0, len(photo_ids), chunk):
        token.check(message)
        ids, feats = store.features.load(encoder.backbone_id, dim, photo_ids[start:start + chunk],
                                         dtype=np.float16)
        if not ids:
            continue
        vecs = encoder.project(feats)
        with store.write() as s:
            store_embeddings(s, store, encoder, ids, None, vecs)
        yield ids, vecs


def embed_photos(store, encoder, photo_ids: Sequence[int], progress: ProgressFn | None = None, cancel=None,
                 batch: int = 32, keep_features: bool = False) -> int:
    """Features and vectors of photos decoded afresh (a model with a backbone of its own
    has no cached features yet); returns how many were stored. Photos that cannot be read
    now are skipped: the re-scan after a switch reports them."""
    token = as_token(cancel)
    paths = {pid: p.path for pid, p in store.photos.photos_by_id(photo_ids).items()}
    todo = [pid for pid in photo_ids if pid in paths]
    stored = seen = 0
    message = "reading photos for the new model was cancelled; the active model is unchanged"
    got: list[tuple[int, np.ndarray]] = []

    def flush() -> int:
        if not got:
            return 0
        feats, vecs = encode(encoder, np.stack([x for _, x in got]))
        with store.write() as s:
            store_embeddings(s, store, encoder, [pid for pid, _ in got], feats, vecs, keep_features)
        n = len(got)
        got.clear()
        return n

    for pid, x in zip(todo, decoded(encoder, [paths[p] for p in todo])):
        token.check(message)
        seen += 1
        if x is not None:
            got.append((pid, x))
        if len(got) >= batch:
            stored += flush()
        if seen % batch == 0 or seen == len(todo):
            emit(progress, "reading photos", seen, len(todo))
    token.check(message)
    return stored + flush()


def embed_from_taps(store, encoder, taps, photo_ids: Sequence[int], progress: ProgressFn | None = None,
                    cancel=None, chunk: int = 256) -> list[int]:
    """Features and vectors of photos from the taps their parent model's scan kept
    (``encoder.card.extra["taps"]`` names them: a standard fine-tune changed only the blocks
    from that cut on), no decoding; returns the ids stored. Photos without taps are left
    for :func:`embed_photos`."""
    token = as_token(cancel)
    spec = encoder.card.extra.get("taps") if isinstance(encoder.card.extra, dict) else None
    if taps is None or not isinstance(spec, dict) or encoder.precision != "fp32":
        return []
    backbone, cut = spec.get("backbone_id"), spec.get("cut")
    if not isinstance(backbone, str) or not isinstance(cut, int):
        return []
    infos = store.photos.photos_by_id(photo_ids)
    have = taps.hashes(backbone, cut)
    by_hash: dict[str, list[int]] = {}  # exact copies share a hash, and so a tap
    for pid in photo_ids:
        h = infos[pid].content_hash if pid in infos else None
        if h and h in have:
            by_hash.setdefault(h, []).append(pid)
    total = sum(len(v) for v in by_hash.values())
    message = "re-embedding cancelled; the active model is unchanged"
    stored: list[int] = []
    pending: list = []  # (hashes, upright, context) read, not yet embedded

    def flush() -> None:
        hs = [h for part in pending for h in part[0]]
        up = np.concatenate([part[1] for part in pending])
        ctx = None if pending[0][2] is None else np.concatenate([part[2] for part in pending])
        pending.clear()
        feats = encoder.upper(up, ctx, cut)
        rows = [i for i, h in enumerate(hs) for _ in by_hash[h]]
        ids = [pid for h in hs for pid in by_hash[h]]
        feats = feats[rows]
        with store.write() as s:
            store_embeddings(s, store, encoder, ids, feats, encoder.project(feats))
        stored.extend(ids)
        emit(progress, "re-embedding from kept activations", len(stored), total)

    token.check(message)
    for part in taps.each(backbone, cut, set(by_hash)):
        pending.append(part)
        if sum(len(p[0]) for p in pending) >= chunk:
            token.check(message)
            flush()
    if pending:
        token.check(message)
        flush()
    return stored
