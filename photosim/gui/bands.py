"""Similarity in words: "same photo", "very similar", "related", per model.

A cosine score means little to people, and each encoder has its own scale, so the
bands are set from the model card's ``duplicate_threshold`` (the score above which two
files are copies of one photo: resized, re-encoded, lightly edited):

- **same photo**: ``score >= t``, the duplicates view's own cut-off;
- **very similar**: ``score >= t - VERY_BELOW``;
- **related**: ``score >= t - RELATED_BELOW``; this is also the default cut-off of the
  similar panel, set again for every query. Results below it are counted, not shown.

The offsets come from ``benchmarks/similarity_bands.py`` on the 273 files of Debian's
wallpaper packages with the bundled encoder (t = 0.73): files of one picture (other sizes)
score 0.94 or more in 95 % of pairs; pairs of unrelated pictures score 0.31 at their 95th and
0.49 at their 99th percentile. So "related" starts at t - 0.30 = 0.43 (1.3 % of unrelated
pairs reach it, no copy falls under it) and "very similar" at t - 0.16 = 0.57 (above the 99th
percentile of unrelated pairs: 0.5 % reach it). A fine-tuned model carries its own
threshold in its card, and the bands move with it. The issue's report (same waterfall from
another angle 0.47, unrelated mountains 0.43) sits at the edge of "related": the band is a
hint, the slider the user's.
"""

from __future__ import annotations

from dataclasses import dataclass

VERY_BELOW = 0.16
RELATED_BELOW = 0.30

SAME, VERY, RELATED = "same photo", "very similar", "related"


@dataclass(frozen=True)
class Bands:
    same: float
    very: float
    related: float

    @classmethod
    def for_threshold(cls, duplicate_threshold: float) -> Bands:
        t = float(duplicate_threshold)
        return cls(round(t, 2), round(max(0.0, t - VERY_BELOW), 2), round(max(0.0, t - RELATED_BELOW), 2))

    def label(self, score: float | None) -> str | None:
        """The band of ``score``, or None below "related"."""
        if score is None:
            return None
        if score >= self.same:
            return SAME
        if score >= self.very:
            return VERY
        if score >= self.related:
            return RELATED
        return None

    @property
    def cutoff(self) -> float:
        """Where the similar panel's slider starts for each query."""
        return self.related


__all__ = ["Bands", "SAME", "VERY", "RELATED"]
