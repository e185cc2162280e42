"""Fine-tuning the encoder on the user's own albums and similarity marks.

* :mod:`.triplets` – albums + marks → cleaned labelled photos and triplets.
* :mod:`.finetune` – the engine: a head trained on cached features (no Qt, no DB).
* :mod:`.models_store` – versioned models written atomically under the library.
* :mod:`.runner` – glue used by :class:`photosim.library.Library`.
"""

from .finetune import MODES, TrainConfig, TrainOutcome, TrainProgress, train_head
from .models_store import ModelInfo
from .runner import FineTuneResult, example_queries
from .triplets import LabelledSet, album_triplets, collect_labels, mark_triplets

__all__ = [
    "MODES", "FineTuneResult", "LabelledSet", "ModelInfo", "TrainConfig", "TrainOutcome",
    "TrainProgress", "album_triplets", "collect_labels", "example_queries", "mark_triplets",
    "train_head",
]
