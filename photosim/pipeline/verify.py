""""Is this the same photo?": local features, a similarity alignment, and the pixels after it.

An edited copy (resized, re-encoded, cropped, turned by 90°, mirrored, tone-changed,
bordered) is the original's pixels under a *similarity* transform: uniform scale, a turn
by a multiple of 90°, a shift, maybe a mirror, and one of the two pictures lies inside
the other. Another shot of the same scene is not: its viewpoint differs (no similarity
explains the matches, or only part of the frame), or things moved (the aligned pixels
differ somewhere). So, on both photos decoded at :data:`SIDE` px:

1. ORB keypoints (rotation-invariant, so 90° turns match), matched with Lowe's ratio
   test, then a RANSAC similarity (``cv2.estimateAffinePartial2D``); the mirrored
   image is tried when the direct one does not align.
2. The transform must be a turn by a multiple of 90° (±:data:`MAX_TILT`°) and one
   picture must lie (almost) inside the other (:data:`MIN_CONTAINED`).
3. The residual: the second picture warped onto the first, its tones mapped onto the
   first's inside the overlap (so brightness, contrast and gamma changes do not count) at a
   coarse size, compared cell by cell; the worst cells decide (:data:`MAX_RESIDUAL`).

Nothing here writes anything; photos are only read.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import PhotoError
from ..imageio import open_image
from .hamming import two_nearest

#: Long side, in pixels, at which photos are decoded for verification.
SIDE = 512
#: Smaller photos are enlarged to this long side first: ORB describes no point within 31 px
#: of an edge, which left a 112 px copy a 50 px square of points and few to match.
MIN_SIDE = 240
N_FEATURES = 1000
RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 5.0  # reprojection tolerance at SIDE px
MIN_INLIERS = 15
# The coarse pass (see verify): on 8,674 candidate pairs of a 10,000-photo library of
# look-alikes, it sent 27 % of the pairs of different photos on to the full match; of the
# 5,066 pairs the full match alone verified it lost 51 and verified 82 others (RANSAC's
# draws differ). A textured copy took 4.2 ms, a textured pair of different photos 6.7 ms.
COARSE_POINTS = 500
COARSE_MIN_INLIERS = 8
MIN_INLIER_SHARE = 0.25  # of the matches that passed the ratio test
MAX_TILT = 4.0  # degrees away from a multiple of 90° still called a turn
MIN_CONTAINED = 0.90  # share of one picture's area that lies inside the other
COARSE = 96  # long side of the residual comparison
GRID = 6  # cells per side of the residual comparison
MAX_RESIDUAL = 0.06  # worst-cell mean difference after tone matching, 0-1 (0: identical)

TEXTURE_POINTS = 300  # fewer keypoints than this: the template search is tried first
TEMPLATE_SIDE = 128
TEMPLATE_MIN = 0.955  # normalised correlation from which a placement is checked
# At half the size, a placement that scores TEMPLATE_MIN at full size scored at most
# 0.03 less on the development set's low-texture pairs: those within this are re-scored.
TEMPLATE_COARSE_SLACK = 0.06
# Smooth pictures tone-match too easily (two dusk lakes do): a stricter residual there.
MAX_RESIDUAL_TEMPLATE = 0.03

cv2.setNumThreads(1)  # many small images: threads cost more than they bring


@dataclass
class Look:
    """What verification needs of one photo: its small grey image and ORB features
    (the mirrored image's features are computed only when asked for)."""

    gray: np.ndarray
    points: np.ndarray
    desc: np.ndarray | None
    keypoints: np.ndarray | None = field(default=None, repr=False)  # (n, 6): x, y, size, angle, response, octave
    _mirror: tuple | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)  # derived images, computed once

    @classmethod
    def of_image(cls, image) -> Look:
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
        if 0 < max(gray.shape) < MIN_SIDE:  # a small photo: ORB keeps 31 px off each edge
            f = MIN_SIDE / max(gray.shape)
            gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
        return cls(gray, *_strongest_first(*_orb().detectAndCompute(gray, None)))

    @classmethod
    def of_file(cls, path) -> Look:
        return cls.of_image(open_image(path, SIDE))

    def mirrored(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Points and descriptors of the mirrored image (x -> w-1-x): described at the
        mirrored keypoints, with mirrored orientations, rather than detected again (FAST
        and Harris do not care about the mirror: detecting again finds the same points,
        and detection is two thirds of ORB's time)."""
        if self._mirror is None:
            flipped = np.ascontiguousarray(self.gray[:, ::-1])
            if self.keypoints is None or not len(self.keypoints):
                self._mirror = (flipped, np.zeros((0, 2), np.float32), None)
            else:
                w = self.gray.shape[1]
                given = [cv2.KeyPoint(float(w - 1 - x), float(y), float(size), float((180.0 - angle) % 360.0),
                                      float(response), int(octave))
                         for x, y, size, angle, response, octave in self.keypoints.tolist()]
                kps, desc = _orb().compute(flipped, given)
                points, desc, _ = _strongest_first(kps, desc)
                self._mirror = (flipped, points, desc)
        return self._mirror[1], self._mirror[2]


def _orb():
    """ORB as verification uses it (a new one per call: verification runs in several threads)."""
    return cv2.ORB_create(nfeatures=N_FEATURES, fastThreshold=10)


def _strongest_first(kps, desc) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """ORB's keypoints and descriptors, strongest first (the first :data:`COARSE_POINTS`
    are the coarse pass's): (points, descriptors, keypoints as rows of x, y, size, angle,
    response, octave)."""
    rows = np.array([(*k.pt, k.size, k.angle, k.response, k.octave) for k in kps], np.float32).reshape(-1, 6)
    order = np.argsort(-rows[:, 4], kind="stable")
    rows = rows[order]
    desc = None if desc is None or not len(rows) else np.ascontiguousarray(desc[order])
    return np.ascontiguousarray(rows[:, :2]), desc, rows


@dataclass
class Check:
    """The verdict on one pair: ``same`` when b is an edited copy of a (or a of b)."""

    same: bool
    why: str
    inliers: int = 0
    turn: int = 0  # degrees, the turn that maps b onto a
    mirrored: bool = False
    contained: float = 0.0
    residual: float = 1.0
    matrix: np.ndarray | None = field(default=None, repr=False)  # 2×3, b's pixels onto a's (when same)

    def describe(self) -> str:
        if not self.inliers:  # found by the template search
            how = [f"turned {self.turn}°"] if self.turn else []
            how += ["mirrored"] if self.mirrored else []
            extra = f", {', '.join(how)}" if how else ""
            return f"same photo: smooth picture aligned as a whole, pixels differ {self.residual:.1%}{extra}"
        how = []
        if self.turn:
            how.append(f"turned {self.turn}°")
        if self.mirrored:
            how.append("mirrored")
        extra = f", {', '.join(how)}" if how else ""
        return f"same photo: {self.inliers} matching points, aligned pixels differ {self.residual:.1%}{extra}"


def _match(da, db) -> tuple[np.ndarray, np.ndarray]:
    """(indices into a, indices into b) of b's descriptors whose nearest in a passes
    Lowe's ratio test (numpy arrays straight from OpenCV: no object per match)."""
    if da is None or db is None or len(da) < 2 or len(db) < 2:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    dist, idx = two_nearest(db, da)
    ok = np.flatnonzero(dist[:, 0] < RATIO * dist[:, 1])
    return idx[ok, 0].astype(np.intp), ok


def _similarity(pa, pb, matches) -> tuple[np.ndarray | None, int, int]:
    ia, ib = matches
    if len(ia) < MIN_INLIERS:
        return None, 0, len(ia)
    m, mask = cv2.estimateAffinePartial2D(pb[ib], pa[ia], method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                          maxIters=2000, confidence=0.995, refineIters=10)
    if m is None:
        return None, 0, len(ia)
    return m, int(mask.sum()), len(ia)


def _tone_matched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b's values put on a's tone scale by the curve that best maps one onto the other
    (the mean of a at each level of b): brightness, contrast, gamma and curves do not count."""
    levels = b.astype(np.intp)
    counts = np.bincount(levels, minlength=256).astype(np.float64)
    sums = np.bincount(levels, weights=a.astype(np.float64), minlength=256)
    have = counts > 0
    lut = np.interp(np.arange(256), np.nonzero(have)[0], sums[have] / counts[have])
    return lut[levels].astype(np.float32)


def _residual(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> tuple[float, float, float]:
    """(contained, residual, mean): how much of one lies inside the other, and how much
    the aligned pixels differ in the worst cells."""
    ha, wa = a.shape
    hb, wb = b.shape
    ones = np.ones_like(b, dtype=np.uint8)
    mask = cv2.warpAffine(ones, m, (wa, ha), flags=cv2.INTER_NEAREST)
    overlap = float(mask.sum())
    scale2 = abs(np.linalg.det(m[:, :2]))
    contained = max(overlap / (wa * ha), overlap / max(1.0, wb * hb * scale2))
    if overlap < 0.2 * wa * ha and overlap < 0.2 * wb * hb * scale2:
        return contained, 1.0, 1.0
    warped = cv2.warpAffine(b, m, (wa, ha), flags=cv2.INTER_AREA if scale2 < 1 else cv2.INTER_LINEAR)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8))
    x0, y0, bw, bh = cv2.boundingRect(mask)  # of the nonzero pixels
    if bw == 0 or bh == 0:
        return contained, 1.0, 1.0
    y1, x1 = y0 + bh, x0 + bw
    f = COARSE / max(y1 - y0, x1 - x0)
    size = (max(GRID, round((x1 - x0) * f)), max(GRID, round((y1 - y0) * f)))
    ca = cv2.resize(a[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    cb = cv2.resize(warped[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    cm = cv2.resize(mask[y0:y1, x0:x1].astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.99
    if cm.sum() < GRID * GRID:
        return contained, 1.0, 1.0
    diff = np.zeros(ca.shape, dtype=np.float32)
    diff[cm] = np.abs(ca[cm].astype(np.float32) - _tone_matched(ca[cm], cb[cm])) / 255.0
    h, w = ca.shape
    # the GRID x GRID cells' sums at once (cell gy spans rows gy*h//GRID up to (gy+1)*h//GRID)
    rows, cols = np.arange(GRID) * h // GRID, np.arange(GRID) * w // GRID
    cell_sum = np.add.reduceat(np.add.reduceat(diff.astype(np.float64), rows, axis=0), cols, axis=1)
    cell_n = np.add.reduceat(np.add.reduceat(cm.astype(np.int64), rows, axis=0), cols, axis=1)
    cell_size = np.outer(np.diff(np.append(rows, h)), np.diff(np.append(cols, w)))
    full = cell_n >= 0.5 * cell_size
    if not full.any():
        return contained, 1.0, 1.0
    cells = np.sort(cell_sum[full] / cell_n[full])
    worst = float(np.mean(cells[-2:]))  # the two worst cells: a local change shows there
    return contained, worst, float(np.mean(cells))


def _turn_of(m: np.ndarray) -> tuple[int, float]:
    angle = math.degrees(math.atan2(m[1, 0], m[0, 0])) % 360
    turn = int(round(angle / 90.0)) % 4 * 90
    off = abs((angle - turn + 180) % 360 - 180)
    return turn, off


def _mirror_matrix(m: np.ndarray, width: int) -> np.ndarray:
    """A transform found on the mirrored b (x -> w-1-x), as one on b itself."""
    flip = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return (np.vstack([m, [0.0, 0.0, 1.0]]) @ flip)[:2]


def _h(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def _scale(f: float) -> np.ndarray:
    return np.diag([f, f, 1.0])


def _place(small: np.ndarray, big: np.ndarray) -> tuple[float, np.ndarray | None]:
    """Where ``small`` (already at the scale tried) lies in ``big``: correlation, shift."""
    if small.shape[0] > big.shape[0] or small.shape[1] > big.shape[1] or min(small.shape) < 8:
        return -1.0, None
    res = cv2.matchTemplate(big, small, cv2.TM_CCOEFF_NORMED)
    _, score, _, loc = cv2.minMaxLoc(res)
    return float(score), np.array([[1.0, 0, loc[0]], [0, 1.0, loc[1]], [0, 0, 1.0]])


def _orientations(gray: np.ndarray):
    """(image, 3×3 transform from gray's pixels to it, turn, mirrored) for the orientations
    a copy is given by hand: the four right-angle turns, and the mirror image. A mirror
    and a turn together are left out: a smooth landscape turned upside down and mirrored
    is its own reflection in the water, and another dusk lake matched one that way."""
    h, w = gray.shape
    for mirrored in (False, True):
        g = gray[:, ::-1] if mirrored else gray
        flip = np.array([[-1.0, 0, w - 1], [0, 1, 0], [0, 0, 1]]) if mirrored else np.eye(3)
        m, cur = flip, g
        for turn in (0,) if mirrored else (0, 90, 180, 270):
            yield np.ascontiguousarray(cur), m, turn, mirrored
            ch, cw = cur.shape
            m = np.array([[0.0, 1, 0], [-1, 0, cw - 1], [0, 0, 1]]) @ m  # np.rot90, k=1
            cur = np.rot90(cur)


_SMALL_RELS = tuple(np.linspace(0.55, 1.0, 10))  # b's long side over a's, b inside a
_BIG_RELS = tuple(np.linspace(0.55, 0.95, 9))  # a inside b (b has a border, or a was cropped)


def _template_scales(look: Look, side: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``look`` reduced to a long side of ``side`` (its part as the first photo), and at
    every scale it is tried at against a first photo of that size, made from its reduction
    to :data:`TEMPLATE_SIDE` (cached on the look)."""
    key = ("template", side)
    if key not in look._cache:
        g = look.gray if side == TEMPLATE_SIDE else _template_scales(look, TEMPLATE_SIDE)[0]
        fa = side / max(g.shape)
        as_a = cv2.resize(g, None, fx=fa, fy=fa, interpolation=cv2.INTER_AREA)
        long = max(as_a.shape)
        fs = [] if side == TEMPLATE_SIDE else (
            [rel * long / max(g.shape) for rel in _SMALL_RELS] + [long / rel / max(g.shape) for rel in _BIG_RELS])
        look._cache[key] = (as_a, [cv2.resize(g, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) for f in fs])
    return look._cache[key]


def _coarse_placements(a: Look, b: Look, side: int) -> set[tuple[int, int]]:
    """The (orientation, scale) placements worth scoring at full size: those whose
    correlation at ``side`` px comes within :data:`TEMPLATE_COARSE_SLACK` of
    :data:`TEMPLATE_MIN`, or that cannot be tried at that size."""
    A, _ = _template_scales(a, side)
    _, scaled = _template_scales(b, side)
    keep = set()
    for i, img0 in enumerate(scaled):
        inside = i < len(_SMALL_RELS)
        for j, (img, *_rest) in enumerate(_orientations(img0)):
            score, shift = _place(img, A) if inside else _place(A, img)
            if shift is None or score >= TEMPLATE_MIN - TEMPLATE_COARSE_SLACK:
                keep.add((j, i))
    return keep


def _by_template(a: Look, b: Look) -> Check | None:
    """For photos with too little texture for keypoints (smooth gradients, skies): try
    every right-angle orientation and a range of scales, placing the smaller picture
    inside the larger by normalised correlation at a coarse size. The placements are
    scored first at half that size, and only those that come near :data:`TEMPLATE_MIN`
    there (or cannot be tried there) at :data:`TEMPLATE_SIDE`."""
    keep = _coarse_placements(a, b, TEMPLATE_SIDE // 2)
    fa = TEMPLATE_SIDE / max(a.gray.shape)
    A = _template_scales(a, TEMPLATE_SIDE)[0]
    best = (TEMPLATE_MIN, None, 0, False)
    for j, (img, orient, turn, mirrored) in enumerate(_orientations(b.gray)):
        if not any((j, i) in keep for i in range(len(_SMALL_RELS) + len(_BIG_RELS))):
            continue
        for i, rel in enumerate(_SMALL_RELS):  # b's long side over a's, b inside a
            if (j, i) not in keep:
                continue
            f = rel * max(A.shape) / max(img.shape)
            small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            score, shift = _place(small, A)
            if shift is not None and score > best[0]:
                best = (score, np.linalg.inv(_scale(fa)) @ shift @ _scale(f) @ orient, turn, mirrored)
        for i, rel in enumerate(_BIG_RELS, len(_SMALL_RELS)):  # a inside b (b has a border, or a was cropped)
            if (j, i) not in keep:
                continue
            f = max(A.shape) / rel / max(img.shape)
            big = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            score, shift = _place(A, big)
            if shift is not None and score > best[0]:
                best = (score, np.linalg.inv(_scale(fa)) @ np.linalg.inv(shift) @ _scale(f) @ orient, turn, mirrored)
    score, m, turn, mirrored = best
    if m is None:
        return None
    contained, residual, _ = _residual(a.gray, b.gray, m[:2])
    if contained < MIN_CONTAINED:
        return Check(False, f"only {contained:.0%} of the frame in common: another framing", 0, turn, mirrored,
                     contained, residual)
    if residual > min(MAX_RESIDUAL, MAX_RESIDUAL_TEMPLATE):
        return Check(False, f"aligned pixels differ {residual:.1%} somewhere: something changed", 0, turn,
                     mirrored, contained, residual)
    return Check(True, "", 0, turn, mirrored, contained, residual, m[:2])


def _aligned(a: Look, b: Look, mirrored: bool, points: int | None) -> Check:
    """b (mirrored or not) aligned onto a by the matches of their first ``points``
    (strongest) keypoints, or of all of them, and judged."""
    pa, da = a.points, a.desc
    pb, db = b.mirrored() if mirrored else (b.points, b.desc)
    if points is not None:
        pa, pb = pa[:points], pb[:points]
        da = None if da is None else da[:points]
        db = None if db is None else db[:points]
    matches = _match(da, db)
    m, inliers, n = _similarity(pa, pb, matches)
    if m is None or inliers < MIN_INLIERS or inliers < MIN_INLIER_SHARE * n:
        return Check(False, f"only {inliers} of {n} matching points agree on one alignment",
                     inliers=inliers, mirrored=mirrored)
    turn, off = _turn_of(m)
    if mirrored:
        m = _mirror_matrix(m, b.gray.shape[1])
    if off > MAX_TILT:
        return Check(False, f"seen at another angle ({off:.0f}° off a right-angle turn)", inliers, turn, mirrored)
    contained, residual, _ = _residual(a.gray, b.gray, m)
    if contained < MIN_CONTAINED:
        why = f"only {contained:.0%} of the frame in common: another framing"
    elif residual > MAX_RESIDUAL:
        why = f"aligned pixels differ {residual:.1%} somewhere: something changed"
    else:
        why = ""
    return Check(not why, why, inliers, turn, mirrored, contained, residual, m)


def verify(a: Look, b: Look) -> Check:
    """Whether ``b`` is the same photo as ``a`` (one edited from the other).

    Keypoints are matched twice over at most: first the :data:`COARSE_POINTS` strongest
    of each photo (a quarter of the work of matching all), which align most copies
    already, as is and mirrored; a pair that finds fewer than :data:`COARSE_MIN_INLIERS`
    agreeing matches there, either way round, is another photo; the rest are matched on
    all points, the way round (as is or mirrored) that agreed more in the coarse pass.
    (Matching all points both ways round verified no more copies among the 15,224
    candidate pairs of ``bench_duplicates_10k.py``'s library and took a fifth longer.)"""
    if min(len(a.points), len(b.points)) < TEXTURE_POINTS:
        found = _by_template(a, b)
        if found is not None and found.same:
            return found
    best = Check(False, "too few matching points")
    full = max(len(a.points), len(b.points)) > COARSE_POINTS
    agree: dict[bool, int] = {}
    for points in (COARSE_POINTS, None) if full else (None,):
        ways = (False, True)
        if points is None and full:
            ways = (max(agree, key=lambda m: (agree[m], not m)),)
        for mirrored in ways:
            check = _aligned(a, b, mirrored, points)
            if check.same:
                return check
            agree[mirrored] = max(agree.get(mirrored, 0), check.inliers)
            # the reason shown: the attempt that got furthest
            if check.inliers > best.inliers or (not check.why.startswith("only")
                                                and best.why.startswith(("too few", "only"))):
                best = check
        if points is not None and max(agree.values()) < COARSE_MIN_INLIERS:
            break
    return best


class Looks:
    """Looks of library photos, decoded once per search (``None`` for one that cannot be
    read); safe to share between threads (a photo is decoded once, by one of them)."""

    def __init__(self, paths: dict[int, str]):
        self.paths = paths
        self._cache: dict[int, Look | None] = {}
        self._locks: dict[int, threading.Lock] = {}
        self.decoded = 0

    def get(self, pid: int) -> Look | None:
        if pid in self._cache:
            return self._cache.get(pid)
        with self._locks.setdefault(pid, threading.Lock()):
            if pid not in self._cache:
                try:
                    look = Look.of_file(self.paths[pid])
                except (PhotoError, OSError):
                    look = None
                self.decoded += 1
                self._cache[pid] = look
                return look
        return self._cache.get(pid)

    def forget(self, pid: int) -> None:
        """Free a look no longer needed (a later :meth:`get` decodes it again)."""
        self._cache.pop(pid, None)
        self._locks.pop(pid, None)

    def __len__(self) -> int:
        return len(self._cache)
