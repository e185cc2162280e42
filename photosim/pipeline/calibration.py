"""The library's own duplicate threshold, calibrated by the user's verdicts.

Each model card carries the cosine above which two photos are likely copies
(``duplicate_threshold``, chosen on a validation set). A person's library can disagree:
bursts of one subject that the model scores as copies, or copies it scores low. The
duplicates view's verdicts say so pair by pair: "not duplicates" (different photos) and
"keep both" (copies, both kept). The library's threshold is the cosine, under the active
model, that disagrees with the fewest of those verdicts, nearest the model's own on a tie,
moved by at most :data:`MAX_SHIFT`, and only from :data:`MIN_VERDICTS` verdict pairs on.

What it changes:
- the similarity bands ("likely a copy" from the library's threshold) of the similar panel;
- which neighbours the duplicate search verifies: from the lower of the two thresholds
  (less the candidate margin), so copies confirmed below the model's threshold are looked
  for, while "not duplicates" never makes the search look at fewer neighbours: whether a
  pair is a copy is decided by verification, and the verdict already keeps that pair out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Fewer verdict pairs than this leave the model's threshold as it is.
MIN_VERDICTS = 3
#: The most the library's threshold moves away from the model's.
MAX_SHIFT = 0.10
#: How far above a "not duplicates" pair's cosine the threshold goes to leave it out.
STEP = 0.005


@dataclass(frozen=True)
class Calibration:
    model: float  # the model card's threshold
    threshold: float  # the library's
    copies: int = 0  # "keep both" pairs with a vector on both sides
    different: int = 0  # "not duplicates" pairs with a vector on both sides

    @property
    def calibrated(self) -> bool:
        return self.threshold != self.model

    def describe(self) -> str:
        n = self.copies + self.different
        if not n:
            return f"{self.model:.2f} (the model's; no verdicts yet)"
        said = " and ".join(f"{n} '{v}'" for n, v in ((self.different, "not duplicates"), (self.copies, "keep both"))
                            if n) + f" pair{'s' if n != 1 else ''}"
        if n < MIN_VERDICTS:
            return f"{self.model:.2f} (the model's; {said}: {MIN_VERDICTS} are needed to calibrate)"
        if not self.calibrated:
            return f"{self.model:.2f} (the model's, which agrees best with your {said})"
        return f"{self.threshold:.2f} (the model's {self.model:.2f}, calibrated by your {said})"


def calibrate(model: float, copies: Sequence[float], different: Sequence[float]) -> Calibration:
    """The library's threshold from the cosines of "keep both" (``copies``) and "not
    duplicates" (``different``) pairs under the model whose threshold is ``model``."""
    pos, neg = np.sort(np.asarray(copies, float)), np.sort(np.asarray(different, float))
    if len(pos) + len(neg) < MIN_VERDICTS:
        return Calibration(model, model, len(pos), len(neg))
    lo, hi = model - MAX_SHIFT, model + MAX_SHIFT
    options = np.unique(np.clip(np.concatenate([[model], pos, neg + STEP]), lo, hi))
    # verdicts a threshold t gets wrong: copies below t, different photos at or above it
    wrong = np.searchsorted(pos, options, side="left") + (len(neg) - np.searchsorted(neg, options, side="left"))
    best = options[(wrong == wrong.min())]
    t = float(best[np.argmin(np.abs(best - model))])
    return Calibration(model, round(t, 4), len(pos), len(neg))
