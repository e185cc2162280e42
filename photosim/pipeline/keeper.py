"""The best copy of a group: an explainable ranking, one rule after another.

Rules, in the default order: the original format (RAW first, then camera formats, then
derived ones such as PNG/WebP exports), resolution, less compression (a larger file),
richer metadata (date taken, camera), then the oldest file. The first rule on which two
photos differ decides, and says so in words ("larger: 4032×3024 vs 2016×1512").
These rules see only what the library knows of each file; the duplicate search corrects
one of them from the photos: a copy larger only by a frame round the same picture is not
kept over that picture (:meth:`photosim.pipeline.duplicates._Run._unframed`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from functools import cmp_to_key

from ..errors import PhotosimError
from ..raw import RAW_EXTENSIONS

RAW = RAW_EXTENSIONS  # camera RAW photos (photosim.raw reads them through their preview)
CAMERA = frozenset({".jpg", ".jpeg", ".heic", ".heif", ".tif", ".tiff"})


def _format_rank(p) -> int:
    ext = os.path.splitext(p.path)[1].lower()
    return 0 if ext in RAW else 1 if ext in CAMERA else 2


def _fmt_name(p) -> str:
    return os.path.splitext(p.path)[1].lstrip(".").upper() or "no extension"


def _px(p) -> int:
    return (p.width or 0) * (p.height or 0)


def _dims(p) -> str:
    return f"{p.width}×{p.height}" if p.width else "unknown size"


def _meta(p) -> int:
    return int(bool(p.taken_at)) + int(bool(p.camera))


def _meta_text(p) -> str:
    have = [w for w, v in (("date taken", p.taken_at), ("camera", p.camera)) if v]
    return " and ".join(have) or "no date or camera"


def _size_text(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _when(a, b) -> str:
    fmt = "%Y-%m-%d"
    day = lambda p, f: time.strftime(f, time.localtime(p.mtime_ns / 1e9))  # noqa: E731
    if day(a, fmt) == day(b, fmt):
        fmt = "%Y-%m-%d %H:%M:%S"
    return f"older file: {day(a, fmt)} vs {day(b, fmt)}"


# name -> (key: lower is better, words when a wins over b)
RULES = {
    "format": (_format_rank, lambda a, b: f"original format: {_fmt_name(a)} vs {_fmt_name(b)}"),
    "resolution": (lambda p: -_px(p), lambda a, b: f"larger: {_dims(a)} vs {_dims(b)}"),
    "file size": (lambda p: -p.size, lambda a, b: f"less compressed: {_size_text(a.size)} vs {_size_text(b.size)}"),
    "metadata": (lambda p: -_meta(p), lambda a, b: f"richer metadata: {_meta_text(a)} vs {_meta_text(b)}"),
    "oldest": (lambda p: p.mtime_ns, _when),
}
DEFAULT_RULES: tuple[str, ...] = tuple(RULES)


def check_rules(rules: Sequence[str] | None) -> tuple[str, ...]:
    if rules is None:
        return DEFAULT_RULES
    bad = [r for r in rules if r not in RULES]
    if bad:
        raise PhotosimError(f"unknown keeper rule {bad[0]!r}; the rules are: {', '.join(RULES)}")
    return tuple(rules) + tuple(r for r in DEFAULT_RULES if r not in rules)


def deciding_rule(a, b, rules: Sequence[str] = DEFAULT_RULES) -> str | None:
    """The first rule on which a and b differ (None: they tie on every rule)."""
    return next((name for name in rules if RULES[name][0](a) != RULES[name][0](b)), None)


def compare(a, b, rules: Sequence[str] = DEFAULT_RULES) -> tuple[int, str]:
    """(-1 when a is the better copy, 1 when b is, 0 for a tie) and the deciding rule's words."""
    name = deciding_rule(a, b, rules)
    if name is None:
        return (-1 if a.path < b.path else 1 if a.path > b.path else 0), "first by path (the same on every rule)"
    key, words = RULES[name]
    return (-1, words(a, b)) if key(a) < key(b) else (1, words(b, a))


def rank(photos, rules: Sequence[str] = DEFAULT_RULES) -> list:
    """Best copy first."""
    return sorted(photos, key=cmp_to_key(lambda a, b: compare(a, b, rules)[0]))


def reasons(keeper, member, rules: Sequence[str] = DEFAULT_RULES) -> str:
    """Why ``keeper`` is kept rather than ``member``, from the keeper's side."""
    return compare(keeper, member, rules)[1]
