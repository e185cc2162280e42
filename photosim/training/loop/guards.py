"""What stops a run that went wrong: a loss or weights that are no longer numbers, and
running out of memory. The messages here say what happened; callers that speak to the user
(fine-tuning) add what that means for them ("the active model is unchanged")."""

from __future__ import annotations

from ...errors import PhotosimError


class Diverged(PhotosimError):
    """The loss or the weights became NaN or infinite; ``reason`` says which, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"training stopped: {reason}")
        self.reason = reason


LOSS_NAN = "the loss became NaN (not a number), the training diverged"
WEIGHTS_NAN = "the weights became NaN, the training diverged"


def check_loss(loss) -> None:
    import torch

    if not torch.isfinite(loss):
        raise Diverged(LOSS_NAN)


def check_weights(model) -> None:
    import torch

    for p in model.parameters():
        if not torch.isfinite(p).all():
            raise Diverged(WEIGHTS_NAN)


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is running out of memory (host or accelerator)."""
    import torch

    if isinstance(exc, MemoryError | torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
