"""Duplicates in tiers, without chaining; stacks of other shots beside them.

1. *Candidates* from the index: a photo's neighbours at cosine >= a loose per-model
   bound (``card.duplicate_threshold - CANDIDATE_MARGIN``, or the caller's threshold);
   copies are looked for among each photo's :data:`NEAR_K` nearest (either way round),
   stacks among its ``k`` nearest.
2. *Exact*: the same content hash, or the same decoded pixels (a candidate pair of one
   size whose reduced decodes agree, confirmed on the full pixels).
3. *Near*: the same photo edited, decided by :mod:`photosim.pipeline.verify` (local
   features, a similarity alignment and the residual after it), never by the cosine alone.
4. Groups are built around keepers: photos go best copy first (:mod:`.keeper`), and a
   keeper's group holds only photos *verified against that keeper*; nothing joins
   through a third photo, so two different shots are never chained together. A keeper
   that won on resolution only by a flat frame round the same picture gives way to the
   copy that is that picture alone, if every other copy verifies against it too.
5. *Stacks* ("similar"): candidate pairs that are not copies (other shots of one scene,
   bursts: same camera, seconds apart), grouped around their best photo the same way;
   offered to look at, never for the trash; RAW + JPEG of one shot and burst frames
   (:mod:`.stacks`) are stacks whatever verification says.

The user's verdicts ("not duplicates", "keep both", by photo id) keep a pair out of the
duplicate tiers across re-scans and model switches.
"""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cmp_to_key

import cv2
import numpy as np
from PIL import Image

from ..errors import PhotosimError
from ..frames import PICTURE, TOLERANCE
from ..imageio import decode_bytes, open_image_meta
from ..progress import ProgressFn, as_token, emit
from ..values import CopyMatch, DuplicateGroup, DuplicateGroups, Match, PhotoInfo
from . import keeper as _keeper
from .calibration import Calibration, calibrate
from .stacks import Shots
from .verify import SIDE as VERIFY_SIDE
from .verify import Look, Looks, verify

#: More photos than this in one group of copies is taken for a broken similarity scale.
MAX_GROUP = 50
#: Share of photos whose k nearest neighbours are all candidates beyond which the
#: threshold is refused as too loose for this model.
MAX_SATURATED = 0.5
#: Candidates are checked from this far below the model's own duplicate threshold: the
#: cosine alone misses turned and cropped copies, and verification is the judge.
#: With :data:`NEAR_K`, chosen on the validation half of ``benchmarks/bench_duplicates.py``
#: (copies among the candidates: 0.933 at 0.15, 0.967 at 0.22, no more at 0.25) and timed
#: on ``bench_duplicates_10k.py`` (the pairs verified grow with the margin and with k).
CANDIDATE_MARGIN = 0.22
#: Copies are verified among each photo's this many nearest neighbours (either way round).
#: In a 10,000-photo library of look-alikes (``bench_duplicates_10k.py``) 99 % of the edited
#: copies within the bound are among the 4 nearest of their original or it of theirs, while
#: the 16 nearest hold 2.9x as many neighbours to verify. More copies of one photo than
#: this still join its group: the neighbours of the copies found are checked too.
NEAR_K = 4
EXACT_COSINE = 0.99  # candidates this close and of one size get the pixel comparison
BURST_MARGIN = 0.15  # bursts (same camera, seconds apart) join a stack this far below the bound
TIERS = ("duplicates", "exact", "near", "similar")
#: A copy "holds all of" a photo when this share of the photo's frame lies inside it.
COVERS = 0.97
#: Content resolutions this close (ratio) count as the same.
SAME_RESOLUTION = 0.1
#: A keeper adds only a frame round a copy's picture when this share of what lies outside
#: that picture is flat (a caption in the frame is allowed) and the picture begins sharply
#: (``_flat_around``; on the validation half of ``bench_duplicates.py --copies 6``, a
#: bordered copy's frame was found round its original 85 % of the time, round its crop never).
FLAT_SHARE = 0.85
#: Threads that verify pairs (OpenCV and the JPEG decoder release the GIL); None: one per
#: core this process may use. 1 verifies in the calling thread.
VERIFY_WORKERS: int | None = None
#: A photo's similar photos (``Library.similar(copies_first=True)``) put its verified copies
#: first among this many of the nearest: an edited copy's nearest by the cosine is another
#: photo 1-2 % of the time (another portrait of the same person, cropped; see the README).
COPIES_FIRST = 6
AHEAD_PER_WORKER = 4  # pairs queued ahead of the deciding loop, per thread


def candidate_bound(card, calibration: Calibration | None = None) -> float:
    """The cosine from which neighbours are verified by default under ``card``'s model
    (from the library's calibrated threshold where that is lower: see :mod:`.calibration`)."""
    t = float(card.duplicate_threshold)
    if calibration is not None:
        t = min(t, calibration.threshold)
    return t - CANDIDATE_MARGIN


def _workers() -> int:
    if VERIFY_WORKERS is not None:
        return max(1, int(VERIFY_WORKERS))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class _Sets:
    """Union-find, for the exact tier only (identity is transitive)."""

    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _merge_pairs(keys: np.ndarray, scores: np.ndarray, met: np.ndarray):
    """Each pair key once, with its highest score and where it was first met, ordered by
    that (as a loop over photos and their ranked neighbours would have found them)."""
    if len(keys) == 0:
        return keys, scores, met
    order = np.lexsort((-scores, keys))
    keys, scores, met = keys[order], scores[order], met[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    keys, scores, met = keys[starts], scores[starts], np.minimum.reduceat(met, starts)
    order = np.argsort(met, kind="stable")
    return keys[order], scores[order], met[order]


def _same_pixels(a, b) -> bool:
    """Full decode of both files, compared (only for pairs whose small decodes agree)."""
    try:
        with Image.open(a.path) as ia, Image.open(b.path) as ib:
            if ia.size != ib.size:
                return False
            return ia.convert("RGB").tobytes() == ib.convert("RGB").tobytes()
    except (OSError, ValueError, Image.DecompressionBombError):
        return False


class Duplicates:
    """Finds duplicate groups and stacks for a library (see the module docstring)."""

    def __init__(self, store, index_keeper, active):
        self.store, self._index, self._active = store, index_keeper, active

    def candidate_bound(self, calibration: Calibration | None = None) -> float:
        """The similarity from which :meth:`duplicates` checks neighbours by default (under
        ``calibration``, the library's: see :meth:`duplicate_calibration`, read when not given)."""
        return candidate_bound(self._active.card, calibration or self.duplicate_calibration())

    def duplicate_calibration(self) -> Calibration:
        """The library's duplicate threshold: the model's, calibrated by the verdicts."""
        card = self._active.card
        verdicts = self.store.verdicts.all()  # {(a, b): verdict}
        ids = sorted({pid for pair in verdicts for pid in pair})
        got, vecs = self.store.vectors.load(card.id, card.dim, ids=ids) if ids else ([], None)
        row = {pid: i for i, pid in enumerate(got)}
        scored = [(a, b, v) for (a, b), v in verdicts.items() if a in row and b in row]
        if not scored:
            return calibrate(float(card.duplicate_threshold), [], [])
        ia = np.array([row[a] for a, _, _ in scored])
        ib = np.array([row[b] for _, b, _ in scored])
        cos = np.einsum("ij,ij->i", vecs[ia], vecs[ib])
        same = np.array([v == "keep both" for _, _, v in scored])
        return calibrate(float(card.duplicate_threshold), cos[same], cos[~same])

    # -- verdicts -------------------------------------------------------------
    def set_verdict(self, photo_ids, verdict: str) -> int:
        """Remember "not duplicates" or "keep both" for a pair or a whole group (every
        pair in it), by photo id: re-scans, moves and model switches keep it."""
        return self.store.verdicts.set(photo_ids, verdict)

    def clear_verdict(self, photo_ids) -> None:
        self.store.verdicts.clear(photo_ids)

    def verdicts(self) -> dict[tuple[int, int], str]:
        return self.store.verdicts.all()

    # -- one photo's copies ------------------------------------------------------
    def copies_of(self, ref, k: int = 10, threshold: float | None = None, *, rules=None) -> list[CopyMatch]:
        """The photos that are the same photo as ``ref`` (a library photo, its id or
        path): of its ``k`` nearest neighbours (from ``threshold`` if given: by default
        verification alone decides), those verified as edited copies of one photo, *what
        ``ref`` is most likely a copy of first*: the copy that holds all of ``ref``'s
        picture (:data:`COVERS`), then the one with the most pixels of that picture
        (not of its canvas: a border adds none), then the one that adds least around it
        (a border, a canvas), then the keeper rules (format, less compression, metadata,
        age). The cosine alone often ranks another edited copy,
        or another shot, first. Scores are cosines; each :class:`CopyMatch` says how much of
        ``ref`` it holds, at what resolution, whether ``ref`` is most likely a copy of it
        (``source``), and in ``reasons`` the same and how it was verified. Photos are only read."""
        photo = self._photo(ref)
        card = self._active.card
        vec = self.store.vectors.get(photo.id, card.id)
        if vec is None:
            raise PhotosimError(f"{photo.path} has no vector ({photo.error or 'not indexed yet'})")
        near = self._index.get().query(vec, k, exclude={photo.id})
        if threshold is not None:
            near = [(pid, s) for pid, s in near if s >= float(threshold)]
        return self._verified(photo, near, rules)

    def copies_first(self, ref, matches: list[Match], n: int = COPIES_FIRST, *, rules=None) -> list[Match]:
        """``matches`` (``ref``'s similar photos, best first) with its verified copies among
        the first ``n`` at or above :meth:`candidate_bound` moved to the front, as
        :class:`CopyMatch` in :meth:`copies_of`'s order (what ``ref`` is most likely a copy
        of first); the others follow in their order. An edited copy is the most similar
        photo there is, though the cosine sometimes ranks another shot of the same person or
        place above it. ``ref`` that cannot be read: ``matches`` as they are."""
        return self._first(matches, n, lambda near: self._verified(self._photo(ref), near, rules))

    def copies_first_of_image(self, image, matches: list[Match], n: int = COPIES_FIRST, *, rules=None) -> list[Match]:
        """:meth:`copies_first` for an image from outside the library (a file's path, its
        bytes, or a PIL image), compared as it is (it is never added)."""
        def verified(near):
            photo, look = _outside(image)
            return self._verified(photo, near, rules, query=look)

        return self._first(matches, n, verified)

    def _first(self, matches: list[Match], n: int, verified) -> list[Match]:
        """``matches`` with ``verified(near)`` (the copies among ``near``, (id, cosine) of the
        first ``n`` from the candidate bound) in front; when the query cannot be read (gone
        since it was scanned or embedded), the plain order rather than an error."""
        bound = self.candidate_bound()
        near = [(m.photo.id, m.score) for m in matches[:n] if m.score >= bound]
        if not near:
            return matches
        try:
            held = verified(near)
        except (PhotosimError, OSError):
            return matches
        first = {m.photo.id for m in held}
        return held + [m for m in matches if m.photo.id not in first]

    def _photo(self, ref) -> PhotoInfo:
        photo = ref if isinstance(ref, PhotoInfo) else self.store.photos.photo(ref)
        if photo is None:
            raise PhotosimError(f"not in the library: {ref}")
        return photo

    def _verified(self, photo: PhotoInfo, near: list[tuple[int, float]], rules, query: Look | None = None
                  ) -> list[CopyMatch]:
        """Of ``near`` ((id, cosine) of ``photo``'s neighbours) those verified as copies of
        ``photo``, what it is most likely a copy of first (``query``: ``photo``'s look, when
        it is not a library photo)."""
        info = self.store.photos.photos_by_id(([] if query is not None else [photo.id]) + [pid for pid, _ in near])
        near = [(pid, s) for pid, s in near if pid in info]
        if not near:
            return []
        looks = Looks({pid: p.path for pid, p in info.items()})
        query = query if query is not None else looks.get(photo.id)
        if query is None:
            raise PhotosimError(f"cannot read {photo.path} to compare it with its neighbours")

        def check(pid):
            look = looks.get(pid)
            found = None if look is None else verify(look, query)
            return None if found is None or not found.same else _Holds(info[pid], look, found, photo, query)

        with ThreadPoolExecutor(min(_workers(), len(near)), thread_name_prefix="verify") as pool:
            held = [h for h in pool.map(check, [pid for pid, _ in near]) if h is not None]
        rules = _keeper.check_rules(rules)
        held.sort(key=cmp_to_key(lambda a, b: a.compare(b, rules)))
        score = dict(near)
        return [CopyMatch(h.photo, score[h.photo.id], h.reasons(), holds=min(1.0, h.covers),
                          resolution=h.resolution, source=h.source) for h in held]

    # -- search -----------------------------------------------------------------
    def duplicates(self, threshold: float | None = None, k: int = 16, *, tier: str = "duplicates",
                   rules=None, progress: ProgressFn | None = None, cancel=None) -> DuplicateGroups:
        """Groups, largest first, keeper first. ``tier``: "duplicates" (exact and near),
        "exact", "near", or "similar" (stacks of other shots). ``threshold``: the cosine
        from which neighbours are candidates (default: the active model's own, less
        :data:`CANDIDATE_MARGIN`).
        ``rules``: the keeper rules' order (see :mod:`photosim.pipeline.keeper`)."""
        if tier not in TIERS:
            raise PhotosimError(f"unknown tier {tier!r}; use one of: {', '.join(TIERS)}")
        card = self._active.card
        # the default scale check is at the model's own threshold, not at the loose bound below it
        saturate_at = card.duplicate_threshold if threshold is None else float(threshold)
        threshold = self.candidate_bound() if threshold is None else float(threshold)
        rules = _keeper.check_rules(rules)
        index = self._index.wait_index(progress, cancel)  # a build in progress first (all pairs need it)
        run = _Run(self.store, index, card, threshold, k, rules, progress, as_token(cancel),
                   saturate_at=saturate_at)
        groups = run.run(stacks=tier == "similar")
        if tier in ("exact", "near"):
            groups = [g for g in groups if g.tier == tier]
        groups.sort(key=lambda g: (g.tier != "exact", -len(g.photos), g.photos[0].path))
        return DuplicateGroups(groups, run.notices, threshold)


def _outside(image) -> tuple[PhotoInfo, Look]:
    """An image from outside the library (a path, bytes, a PIL image) as a stand-in photo
    (its full size, upright) and its look, for :meth:`Duplicates._verified`."""
    if isinstance(image, Image.Image):
        size, small = image.size, image.copy()
        small.thumbnail((VERIFY_SIDE, VERIFY_SIDE), Image.Resampling.BILINEAR)
    else:
        small, meta = (decode_bytes(bytes(image), VERIFY_SIDE) if isinstance(image, bytes | bytearray)
                       else open_image_meta(image, VERIFY_SIDE))
        size = (meta.width, meta.height)
    photo = PhotoInfo(id=-1, path="", size=0, mtime_ns=0, width=size[0], height=size[1], taken_at=None,
                      camera=None, orientation=None, status="ok", error=None, content_hash=None)
    return photo, Look.of_image(small)


def _full_per_look(photo, look) -> float:
    """The photo's own pixels per pixel of its look (decoded reduced)."""
    return max(photo.width or 0, photo.height or 0) / max(look.gray.shape) or 1.0


def _flat_around(gray: np.ndarray, shape, matrix) -> bool:
    """Whether ``gray`` holds only a flat frame round a picture of ``shape`` that ``matrix``
    maps into it (a border, a caption in it, a canvas), not more of a scene: as in
    :mod:`photosim.frames`, the frame is flat (:data:`FLAT_SHARE` of what lies outside the
    picture within ``TOLERANCE`` of its median colour) and the picture begins sharply (less
    than ``PICTURE`` of its edge in the frame's colour: a crop of a smooth sky is no frame)."""
    h, w = shape
    inside = cv2.warpAffine(np.ones((h, w), np.uint8), matrix, gray.shape[::-1], flags=cv2.INTER_NEAREST)
    band = np.ones((7, 7), np.uint8)  # the picture's edge, blurred by resizing and alignment
    outside = (cv2.dilate(inside, band) == 0).astype(np.uint8)
    values = gray[outside > 0].astype(np.int16)
    if values.size < 0.01 * gray.size:
        return False
    colour = np.median(values)
    # the picture's edge where the frame lies beyond it (a crop below a sky is sky at its top)
    near = cv2.dilate(outside, np.ones((21, 21), np.uint8)) > 0
    edge = gray[(inside > 0) & (cv2.erode(inside, band) == 0) & near].astype(np.int16)
    if not edge.size:
        return False
    return (float(np.mean(np.abs(values - colour) <= TOLERANCE)) >= FLAT_SHARE
            and float(np.mean(np.abs(edge - colour) <= TOLERANCE)) < PICTURE)


class _Holds:
    """How much of a query photo a verified copy of it holds, and at what resolution."""

    def __init__(self, photo, look, check, query_photo, query_look):
        self.check = check
        m = check.matrix  # the query's look pixels onto the copy's
        qh, qw = query_look.gray.shape
        ch, cw = look.gray.shape
        quad = cv2.transform(np.float32([[[0, 0], [qw, 0], [qw, qh], [0, qh]]]), m)[0]
        rect = np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]])
        inside, _ = cv2.intersectConvexConvex(rect, quad)
        self.photo = photo
        self.covers = inside / max(1.0, abs(cv2.contourArea(quad)))
        self.fills = inside / float(cw * ch)  # the share of the copy's frame that is the query's picture
        # the copy's own pixels per pixel of the query's picture, at full size
        self.resolution = (math.sqrt(abs(np.linalg.det(m[:, :2]))) * _full_per_look(photo, look)
                           / _full_per_look(query_photo, query_look))

    @property
    def source(self) -> bool:
        """All of the query's picture, at least at its resolution: the query is a copy of it."""
        return self.covers >= COVERS and math.log(self.resolution) >= -SAME_RESOLUTION

    def reasons(self) -> tuple[str, ...]:
        """In words, of "this photo" (the query): how much of it the copy holds, at what
        resolution, what else is in its frame, and how it was verified."""
        held = "holds all of this photo" if self.covers >= COVERS else f"holds {self.covers:.0%} of this photo"
        r = self.resolution
        if abs(math.log(r)) <= SAME_RESOLUTION:
            held += ", at the same resolution"
        else:
            held += f", at {r:.1f}× its resolution" if r > 1 else f", at {r:.0%} of its resolution"
        out = [held]
        if self.fills < COVERS:
            out.append(f"{1 - self.fills:.0%} of its frame lies outside this photo")
        return (*out, self.check.describe())

    def compare(self, other: _Holds, rules) -> int:
        a, b = self.covers >= COVERS, other.covers >= COVERS
        if a != b:
            return -1 if a else 1
        if abs(math.log(self.resolution / other.resolution)) > SAME_RESOLUTION:
            return -1 if self.resolution > other.resolution else 1
        if abs(self.fills - other.fills) > 1 - COVERS:  # one adds a border, a canvas
            return -1 if self.fills > other.fills else 1
        return _keeper.compare(self.photo, other.photo, tuple(r for r in rules if r != "resolution"))[0]


class _Ahead:
    """Pairs verified ahead of the loop that decides, in a thread pool, a few at a time
    (:data:`AHEAD_PER_WORKER` per thread) in the order the loop will ask for them; a
    pair of a photo already settled is never started."""

    def __init__(self, looks, workers: int):
        self.looks = looks
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="verify") if workers > 1 else None
        self.window = AHEAD_PER_WORKER * workers
        self.planned: deque[tuple[int, int]] = deque()
        self.futures: dict[tuple[int, int], Future] = {}
        self.settled: set[int] = set()
        self.asked: set[tuple[int, int]] = set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _verify(self, a: int, b: int):
        la, lb = self.looks.get(a), self.looks.get(b)
        return None if la is None or lb is None else verify(la, lb)

    def plan(self, a: int, b: int) -> None:
        if self.pool is not None:
            self.planned.append((a, b))

    def _fill(self) -> None:
        for key in [k for k in self.futures if k[0] in self.settled or k[1] in self.settled]:
            self.futures.pop(key).cancel()
        while self.planned and len(self.futures) < self.window:
            a, b = self.planned.popleft()
            if a not in self.settled and b not in self.settled and (a, b) not in self.asked and (a, b) not in self.futures:
                self.futures[(a, b)] = self.pool.submit(self._verify, a, b)

    def result(self, a: int, b: int, la, lb):
        """verify(la, lb): the pool's answer when it has (or is making) one."""
        if self.pool is None:
            return verify(la, lb)
        self.asked.add((a, b))
        self._fill()
        future = self.futures.pop((a, b), None)
        self._fill()
        if future is not None and not future.cancel():
            found = future.result()
            if found is not None:
                return found
        return verify(la, lb)

    def done_with(self, pid: int) -> None:
        self.settled.add(pid)


class _Run:
    def __init__(self, store, index, card, threshold, k, rules, progress, token, *, saturate_at=None):
        self.store, self.index, self.card = store, index, card
        self.threshold, self.k, self.rules = threshold, k, rules
        # a broken similarity scale shows as most photos having k neighbours at this score
        self.saturate_at = threshold if saturate_at is None else saturate_at
        self.close: set[tuple[int, int]] = set()  # candidate pairs among NEAR_K nearest
        self.progress, self.token = progress, token
        self.notices: list[str] = []

    def run(self, stacks: bool) -> list[DuplicateGroup]:
        ids, vecs = self.store.vectors.load(self.card.id, self.card.dim)
        if len(ids) < 2:
            emit(self.progress, "done", len(ids), len(ids))
            return []
        self.row = {pid: i for i, pid in enumerate(ids)}
        self.vecs = vecs
        self.info = self.store.photos.photos_by_id(ids)
        self.vetoed = set(self.store.verdicts.all())
        cands = self._candidates(ids, vecs)
        # RAW + JPEG of one shot and burst frames: stacks, never offered as copies
        self.shots = Shots(self.info, self._cos, self.threshold - BURST_MARGIN, cands)
        self.vetoed |= self.shots.not_copies
        self.looks = Looks({pid: p.path for pid, p in self.info.items()})
        exact_groups, rep = self._exact(cands)
        near_groups, verified = self._near(cands, rep)
        groups = exact_groups + near_groups
        if stacks:
            in_group = {pid: n for n, g in enumerate(groups) for pid in (p.id for p in g.photos)}
            groups = self._stacks(cands, verified, in_group)
        emit(self.progress, "done", len(ids), len(ids))
        return groups

    def _cos(self, a: int, b: int) -> float:
        return float(np.dot(self.vecs[self.row[a]], self.vecs[self.row[b]]))

    # -- 1. candidates ------------------------------------------------------------
    def _candidates(self, ids, vecs, chunk: int = 8192) -> dict[tuple[int, int], float]:
        """Pairs of photos among each other's k nearest at ``threshold - BURST_MARGIN`` or
        more, with their best score, in the order they are first met (by photo, then rank);
        those also among each other's :data:`NEAR_K` nearest go in ``self.close``.
        Batched queries on every core, the pairs filtered and merged in numpy (no Python
        loop over the n * k neighbours, ~17 million at 10^6 photos); memory holds one
        batch's neighbours plus the pairs kept (each at most twice until merged)."""
        low = self.threshold - BURST_MARGIN
        known = np.asarray(ids, dtype=np.int64)  # sorted (the store loads by photo id)
        stride, width = int(known[-1]) + 1, self.k + 1
        keys, best, met, close = [], [], [], []
        saturated = 0
        for start in range(0, len(ids), chunk):
            self.token.check("duplicate search cancelled")
            rows = known[start:start + chunk]
            labels, scores = self.index.query_many(vecs[start:start + chunk], width)
            pos = np.minimum(np.searchsorted(known, labels), len(known) - 1)
            ok = (scores >= low) & (labels != rows[:, None]) & (known[pos] == labels)
            saturated += int(((ok & (scores >= self.saturate_at)).sum(axis=1) >= min(self.k, len(ids) - 1)).sum())
            r, c = np.nonzero(ok)
            a, b = rows[r], labels[r, c]
            key = np.minimum(a, b) * stride + np.maximum(a, b)
            keys.append(key)
            best.append(scores[r, c].astype(np.float32))
            met.append((start + r) * width + c)
            # the photo itself is (almost always) the first of its row
            close.append(key[(c <= NEAR_K) & (scores[r, c] >= self.threshold)])
            emit(self.progress, "comparing", min(start + chunk, len(ids)), len(ids))
        if len(ids) > 2 * self.k and saturated > MAX_SATURATED * len(ids):
            raise PhotosimError(
                f"under the model {self.card.id}, {saturated} of {len(ids)} photos have {self.k} or more "
                f"neighbours at similarity {self.saturate_at:.2f}: this threshold is far too loose for this "
                "model, so no groups were made; give a higher threshold or switch back to another model")
        keys, best, met = _merge_pairs(np.concatenate(keys), np.concatenate(best), np.concatenate(met))
        self.close = {(int(key // stride), int(key % stride)) for key in np.unique(np.concatenate(close))}
        return {(int(key // stride), int(key % stride)): float(score) for key, score in zip(keys, best)}

    # -- 2. exact -----------------------------------------------------------------
    def _exact(self, cands) -> tuple[list[DuplicateGroup], dict[int, int]]:
        sets = _Sets()
        by_hash: dict[str, list[int]] = {}
        for pid, p in self.info.items():
            if p.content_hash:
                by_hash.setdefault(p.content_hash, []).append(pid)
        how: dict[int, str] = {}
        for members in by_hash.values():
            for other in members[1:]:
                sets.union(members[0], other)
                how[other] = how[members[0]] = "identical file (same bytes)"
        for (a, b), score in cands.items():
            pa, pb = self.info[a], self.info[b]
            if (score >= EXACT_COSINE and pa.width and (pa.width, pa.height) == (pb.width, pb.height)
                    and pa.content_hash != pb.content_hash and sets.find(a) != sets.find(b)):
                la, lb = self.looks.get(a), self.looks.get(b)
                if la is not None and lb is not None and np.array_equal(la.gray, lb.gray) and _same_pixels(pa, pb):
                    sets.union(a, b)
                    how.setdefault(a, "same pixels, another file (metadata differs)")
                    how.setdefault(b, "same pixels, another file (metadata differs)")
        members: dict[int, list[int]] = {}
        for pid in sets.parent:
            members.setdefault(sets.find(pid), []).append(pid)
        groups, rep = [], {}
        for g in members.values():
            ranked = _keeper.rank([self.info[p] for p in g], self.rules)
            keep = ranked[0]
            kept = [keep] + [p for p in ranked[1:] if _pair(keep.id, p.id) not in self.vetoed]
            for p in ranked:
                rep[p.id] = keep.id
            if len(kept) > 1:
                groups.append(self._group("exact", kept, {p.id: [how.get(p.id, "identical")] for p in kept[1:]}))
        return groups, rep

    # -- 3. near ------------------------------------------------------------------
    def _near(self, cands, rep) -> tuple[list[DuplicateGroup], set[tuple[int, int]]]:
        neighbours: dict[int, dict[int, float]] = {}
        for (a, b), score in cands.items():
            if score < self.threshold or (a, b) not in self.close:
                continue
            ra, rb = rep.get(a, a), rep.get(b, b)
            if ra == rb or _pair(ra, rb) in self.vetoed:
                continue
            neighbours.setdefault(ra, {})[rb] = max(score, neighbours.get(ra, {}).get(rb, -1.0))
            neighbours.setdefault(rb, {})[ra] = neighbours[ra][rb]
        order = _keeper.rank([self.info[p] for p in neighbours], self.rules)
        with _Ahead(self.looks, _workers()) as ahead:
            return self._near_groups(order, neighbours, ahead)

    def _near_groups(self, order, neighbours, ahead) -> tuple[list[DuplicateGroup], set[tuple[int, int]]]:
        # every direct candidate pair, verified ahead in the order the loop below asks for
        # it (keeper first in the ranking): the loop decides alone, so the groups are the
        # same as when it verified each pair itself
        pos = {p.id: n for n, p in enumerate(order)}
        for keep in order:
            for other in sorted(neighbours[keep.id], key=lambda o: -neighbours[keep.id][o]):
                if pos[other] > pos[keep.id] and _pair(keep.id, other) not in self.vetoed:
                    ahead.plan(keep.id, other)
        assigned: set[int] = set()
        groups, verified = [], set()
        checks: dict[tuple[int, int], object] = {}
        for n, keep in enumerate(order):
            self.token.check("duplicate search cancelled")
            emit(self.progress, "verifying", n, len(order))
            if keep.id in assigned:
                continue
            look = self.looks.get(keep.id)
            if look is None:
                continue
            found, tried = {}, {keep.id}
            # the keeper's neighbours, then its verified copies' neighbours: each checked
            # against the keeper itself, so a photo joins only as a copy of the keeper
            frontier = sorted(neighbours[keep.id], key=lambda o: -neighbours[keep.id][o])
            while frontier:
                other = frontier.pop(0)
                if other in assigned or other in tried or _pair(keep.id, other) in self.vetoed:
                    continue
                tried.add(other)
                other_look = self.looks.get(other)
                if other_look is None:
                    continue
                key = _pair(keep.id, other)
                if key not in checks:
                    checks[key] = ahead.result(keep.id, other, look, other_look)
                if checks[key].same:
                    found[other] = checks[key]
                    verified.add(key)
                    frontier.extend(o for o in neighbours.get(other, ()) if o not in tried)
            ahead.done_with(keep.id)
            if not found:
                continue
            assigned.add(keep.id)
            assigned.update(found)
            for pid in (keep.id, *found):  # never a keeper nor a candidate again
                ahead.done_with(pid)
            members = (keep.id, *found)
            if len(members) > MAX_GROUP:
                self.notices.append(f"a group of {len(members)} copies of {keep.path} was refused: too many "
                                    "for copies of one photo; look at them by hand")
            else:
                keep, found, framed = self._unframed(keep, look, found)
                verified.update(_pair(keep.id, p) for p in found)
                photos = [keep] + _keeper.rank([self.info[p] for p in found], self.rules)
                groups.append(self._group("near", photos, {p: [c.describe()] for p, c in found.items()},
                                          framed=framed))
            for pid in members:  # a copy left out under a new keeper (a verdict) included
                self.looks.forget(pid)
        return groups, verified

    def _unframed(self, keep, look, found):
        """(keeper, its copies' checks, {photo id: share of it that is frame}): a keeper that
        beat a copy on resolution only by a flat frame it adds round the same picture (a
        border, a caption in it, a canvas) gives way to that copy, when every other copy is
        verified against it too (those the user said are not duplicates of it are left out);
        the framed photo then stays in the group as a copy."""
        picks = {}
        for pid, check in found.items():
            other = self.info[pid]
            if _keeper.deciding_rule(keep, other, self.rules) != "resolution":
                continue
            other_look = self.looks.get(pid)
            if other_look is None or check.matrix is None:
                continue
            held = _Holds(keep, look, check, other, other_look)
            if held.covers < COVERS or abs(math.log(held.resolution)) > SAME_RESOLUTION or held.fills >= COVERS:
                continue
            if _flat_around(look.gray, other_look.gray.shape, check.matrix):
                picks[pid] = 1 - held.fills
        if not picks:
            return keep, found, {}
        best = _keeper.rank([self.info[p] for p in found], self.rules)[0]
        if best.id not in picks:  # the best of the others is not the picture alone (a crop of it is)
            return keep, found, {}
        best_look = self.looks.get(best.id)
        checks = {keep.id: found[best.id]}
        for pid in found:
            if pid != best.id and _pair(best.id, pid) not in self.vetoed:  # "not duplicates" of it: left out
                other_look = self.looks.get(pid)
                check = None if other_look is None else verify(best_look, other_look)
                if check is None or not check.same:
                    return keep, found, {}  # not a copy of the picture alone: the framed keeper stays
                checks[pid] = check
        return best, checks, {keep.id: picks[best.id]}

    # -- 4. stacks ----------------------------------------------------------------
    def _stacks(self, cands, verified, in_group) -> list[DuplicateGroup]:
        assigned: set[int] = set()
        groups = []
        # bursts and RAW + JPEG of one shot (.stacks) first: each is a stack of its own
        sets = _Sets()
        for a, b in self.shots.pairs:
            if (a, b) not in verified:
                sets.union(a, b)
        shots: dict[int, list[int]] = {}
        for pid in sets.parent:
            shots.setdefault(sets.find(pid), []).append(pid)
        for members in shots.values():
            photos = _keeper.rank([self.info[p] for p in members], self.rules)
            keep = photos[0].id
            why = {p.id: self.shots.pairs.get(_pair(keep, p.id), ["in the stack of its burst"]) for p in photos[1:]}
            assigned.update(members)
            groups.append(self._group("similar", photos, why, compare=False))
        # then other shots of one scene, around their best photo
        neighbours: dict[int, dict[int, list[str]]] = {}
        for (a, b), score in cands.items():
            if (a, b) in verified or (a in in_group and in_group.get(a) == in_group.get(b)):
                continue
            if score < self.threshold or a in assigned or b in assigned:
                continue
            why = [f"another shot of the scene (similarity {score:.2f})"]
            neighbours.setdefault(a, {})[b] = why
            neighbours.setdefault(b, {})[a] = why
        for keep in _keeper.rank([self.info[p] for p in neighbours], self.rules):
            if keep.id in assigned:
                continue
            members = {o: w for o, w in neighbours[keep.id].items() if o not in assigned}
            if not members:
                continue
            assigned.add(keep.id)
            assigned.update(members)
            photos = [keep] + _keeper.rank([self.info[p] for p in members], self.rules)
            groups.append(self._group("similar", photos, members, compare=False))
        return groups

    def _group(self, tier, photos, why, compare: bool = True, framed=None) -> DuplicateGroup:
        """``framed``: {photo id: share of it that is frame} of the copies that only add a
        frame round the keeper's picture (:meth:`_unframed`)."""
        keep, framed = photos[0], framed or {}

        def better(p) -> str:
            if p.id in framed:
                return (f"the same picture without the frame {os.path.basename(p.path)} adds "
                        f"({framed[p.id]:.0%} of it)")
            return _keeper.reasons(keep, p, self.rules)

        reasons = [["keeper: " + (better(photos[1]) if compare else "the best photo")]]
        for p in photos[1:]:
            r = list(why.get(p.id, []))
            if compare:
                r.append("keeper is " + better(p))
            reasons.append(r)
        scores = [self._cos(keep.id, p.id) if keep.id in self.row and p.id in self.row else 1.0 for p in photos]
        return DuplicateGroup(photos, scores, tier, reasons)
