"""The edits people make to their photos, as small composable functions.

Every function takes a PIL RGB image and a seeded :class:`random.Random` and
returns a new RGB image; the same image and the same rng state always give the
same result. They are used to build near-duplicate test sets (evaluation) and
self-supervised positives (training): a photo and its edited copy are "the same
photo" to photosim.

Rotations are real pixel rotations WITHOUT any EXIF orientation tag, as happens
when a photo is rotated by software that rewrites the pixels, or when a sideways
photo lost its EXIF data.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageEnhance

__all__ = [
    "EDIT_KINDS",
    "EDITS",
    "apply_edit",
    "colour",
    "crop",
    "exposure",
    "jpeg",
    "perspective",
    "random_edit",
    "random_edits",
    "resize",
    "rotate",
    "rotate90",
]


def _rgb(img: Image.Image) -> Image.Image:
    return img if img.mode == "RGB" else img.convert("RGB")


def crop(img: Image.Image, rng: random.Random, min_area: float = 0.6) -> Image.Image:
    """Crop a random window keeping at least ``min_area`` of the pixels (aspect may change a little)."""
    img = _rgb(img)
    w, h = img.size
    area = rng.uniform(min_area, 0.95)
    # aspect jitter of the window, limited so that both sides fit
    ratio = rng.uniform(0.8, 1.25)
    cw = min(w, max(1, round(w * (area * ratio) ** 0.5)))
    ch = min(h, max(1, round(h * area / max(cw / w, 1e-6))))
    if cw * ch < min_area * w * h:  # clipping on one side: grow the other back
        cw = min(w, max(cw, round(min_area * w * h / ch + 0.5)))
    x0 = rng.randint(0, w - cw)
    y0 = rng.randint(0, h - ch)
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def resize(img: Image.Image, rng: random.Random, min_scale: float = 0.3, max_scale: float = 0.8) -> Image.Image:
    """Downscale (e.g. a copy sent by a messenger app), aspect kept."""
    img = _rgb(img)
    w, h = img.size
    s = rng.uniform(min_scale, max_scale)
    size = (max(16, round(w * s)), max(16, round(h * s)))
    method = rng.choice([Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS])
    return img.resize(size, method)


def colour(img: Image.Image, rng: random.Random) -> Image.Image:
    """Saturation change (incl. near black-and-white) and a white-balance tint."""
    img = _rgb(img)
    if rng.random() < 0.2:
        out = ImageEnhance.Color(img).enhance(rng.uniform(0.0, 0.15))  # (near) greyscale
    else:
        out = ImageEnhance.Color(img).enhance(rng.uniform(0.5, 1.7))
    gains = np.array([rng.uniform(0.85, 1.15) for _ in range(3)], dtype=np.float32)
    arr = np.asarray(out, dtype=np.float32) * gains
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


def exposure(img: Image.Image, rng: random.Random) -> Image.Image:
    """Brightness, contrast and gamma ("exposure") changes."""
    img = _rgb(img)
    out = ImageEnhance.Brightness(img).enhance(rng.uniform(0.65, 1.4))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.65, 1.4))
    gamma = rng.uniform(0.75, 1.33)
    lut = [min(255, round(255 * (i / 255) ** gamma)) for i in range(256)] * 3
    return out.point(lut)


def jpeg(img: Image.Image, rng: random.Random, min_quality: int = 40, max_quality: int = 90) -> Image.Image:
    """Re-compress as JPEG at quality 40–90."""
    img = _rgb(img)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=rng.randint(min_quality, max_quality))
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def rotate90(img: Image.Image, quarter_turns: int) -> Image.Image:
    """Rotate the pixels counter-clockwise by ``quarter_turns`` × 90°, no EXIF involved."""
    img = _rgb(img)
    k = quarter_turns % 4
    if k == 0:
        return img.copy()
    op = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_270}[k]
    return img.transpose(op)


def rotate(img: Image.Image, rng: random.Random) -> Image.Image:
    """90°, 180° or 270° pixel rotation (a sideways or upside-down photo without EXIF)."""
    return rotate90(img, rng.choice([1, 2, 3]))


def _perspective_coeffs(dst: Sequence[tuple[float, float]], src: Sequence[tuple[float, float]]) -> list[float]:
    """Coefficients for PIL's PERSPECTIVE transform mapping output points ``dst`` to input ``src``."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.asarray(rows, dtype=np.float64), np.asarray(rhs, dtype=np.float64)).tolist()


def perspective(img: Image.Image, rng: random.Random, strength: float = 0.08) -> Image.Image:
    """Small perspective (keystone) change, as from a slightly different camera angle.

    The source quadrilateral lies inside the photo (corners moved inwards by up to
    ``strength`` of the side), so the output has no empty borders.
    """
    img = _rgb(img)
    w, h = img.size
    dx, dy = strength * w, strength * h
    src = [
        (rng.uniform(0, dx), rng.uniform(0, dy)),
        (w - rng.uniform(0, dx), rng.uniform(0, dy)),
        (w - rng.uniform(0, dx), h - rng.uniform(0, dy)),
        (rng.uniform(0, dx), h - rng.uniform(0, dy)),
    ]
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    return img.transform((w, h), Image.Transform.PERSPECTIVE, _perspective_coeffs(dst, src), Image.Resampling.BILINEAR)


#: Every edit kind, by name.
EDITS: dict[str, Callable[[Image.Image, random.Random], Image.Image]] = {
    "crop": crop,
    "resize": resize,
    "colour": colour,
    "exposure": exposure,
    "jpeg": jpeg,
    "rotate": rotate,
    "perspective": perspective,
}
EDIT_KINDS: tuple[str, ...] = tuple(EDITS)


def apply_edit(img: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    """Apply the edit named ``kind``."""
    try:
        fn = EDITS[kind]
    except KeyError:
        raise ValueError(f"unknown edit kind {kind!r}; known: {', '.join(EDIT_KINDS)}") from None
    return fn(img, rng)


def random_edit(img: Image.Image, rng: random.Random, kinds: Sequence[str] | None = None) -> Image.Image:
    """One edit of a kind drawn by ``rng`` from ``kinds`` (default: all of :data:`EDIT_KINDS`)."""
    kinds = tuple(kinds) if kinds else EDIT_KINDS
    return apply_edit(img, rng.choice(kinds), rng)


def random_edits(
    img: Image.Image, rng: random.Random, n: int = 2, kinds: Sequence[str] | None = None
) -> tuple[Image.Image, list[str]]:
    """A chain of ``n`` distinct edits (e.g. crop then JPEG), as people often combine them.

    Returns the edited image and the kinds applied, in order.
    """
    kinds = list(kinds) if kinds else list(EDIT_KINDS)
    chosen = rng.sample(kinds, min(n, len(kinds)))
    out = _rgb(img)
    for kind in chosen:
        out = apply_edit(out, kind, rng)
    return out, chosen
