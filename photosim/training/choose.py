"""The default fine-tuning mode ("auto"): standard where it costs little more than quick.

Standard mode also learns the network's last five blocks, and learns much more than quick
(README, Speed: CIFAR-10 albums triplet accuracy 0.954 against quick's 0.917; Caltech-101
half/half MAP@R 0.870 against 0.831). What it costs beyond quick is training those blocks
and, on accepting, re-embedding the whole library: from the taps an album import kept (up
to 20,000 photos), by reading the other photos again. On a library of a few album imports
that is minutes; on 100,000 photos with two albums it would be hours for a small gain. So
"auto" asks the estimate (:func:`.estimate.estimate_finetune`, the duration told up front)
and picks standard when it takes at most :data:`EXTRA_BUDGET_S` longer than quick, else
quick, saying why in one sentence. Marks alone train the head only: quick.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from .estimate import Estimate, duration, estimate_finetune

#: The name of the choice, beside :data:`.finetune.MODES`.
AUTO = "auto"
#: How much longer than quick standard may take to be chosen (at the estimate's rates).
EXTRA_BUDGET_S = 600.0


@dataclass(frozen=True)
class ModeChoice:
    """The mode "auto" picked, why (a clause: "it learns much more than quick for about 4
    minutes more"), and the estimate of that mode."""

    mode: str
    reason: str
    estimate: Estimate


def choose_mode(lib, albums: Sequence[str] | None = None, *, folder: str | os.PathLike | None = None,
                use_marks: bool = True, epochs: int | None = None, config=None) -> ModeChoice:
    """What ``mode="auto"`` runs for these albums (``folder``: about to be imported, as
    :func:`.estimate.estimate_finetune` takes it). Raises what the estimate raises for labels
    that cannot be fine-tuned on."""
    kw = {"folder": folder, "use_marks": use_marks, "config": config}
    quick = estimate_finetune(lib, albums, mode="quick", epochs=epochs, **kw)
    if quick.marks_only:
        return ModeChoice("quick", "marks alone retrain the head only", quick)
    standard = estimate_finetune(lib, albums, mode="standard", epochs=epochs, **kw)
    extra = standard.total - quick.total
    if extra <= EXTRA_BUDGET_S:
        return ModeChoice("standard", f"it learns much more than quick for {duration(extra)} more",
                          standard)
    read = int(standard.counts.get("accept_read", 0))
    why = f"accepting it would read {read:,} photos again" if read else "training the network's blocks"
    return ModeChoice("quick", f"standard would take {duration(extra)} longer here ({why})", quick)
