"""One training loop and its pieces, one idea per file (as pytorch-metric-learning is laid out).

* :mod:`.fit` – :func:`fit`: steps, epochs, validation, best epoch, cancel, hooks.
* :mod:`.sampling` – which rows a step sees (``MPerClassSampler``, mark triplets, views).
* :mod:`.schedule` – the learning-rate schedule.
* :mod:`.best` – keeping the best epoch (epoch 0 = the start).
* :mod:`.guards` – NaN and out-of-memory detection.
* :mod:`.hooks` – end-of-epoch hooks that may stop training.
* :mod:`.progress` – :class:`TrainProgress`.

Used by quick fine-tuning (:func:`photosim.training.finetune.train_head`), thorough
fine-tuning (:func:`photosim.training.trunk.train_blocks`) and the bundled encoder's
training script (``packaging/train_encoder.py``).
"""

from .best import KeepBest
from .fit import FitResult, fit
from .guards import Diverged, check_loss, check_weights, is_oom
from .hooks import EpochEnd, Hook
from .progress import TrainProgress
from .sampling import ChoiceClassBatches, MPerClassBatches, TripletBatches, two_views
from .schedule import cosine

__all__ = [
    "ChoiceClassBatches", "Diverged", "EpochEnd", "FitResult", "Hook", "KeepBest", "MPerClassBatches",
    "TrainProgress", "TripletBatches", "check_loss", "check_weights", "cosine", "fit", "is_oom", "two_views",
]
