"""Fine-tuning the encoder on the user's own albums and similarity marks.

* :mod:`.triplets` – albums + marks → cleaned labelled photos and triplets.
* :mod:`.loop` – the one training loop (:func:`~.loop.fit`) and its pieces: batches from
  ``MPerClassSampler``, schedule, best epoch, NaN, cancel, progress, hooks.
* :mod:`.finetune` – quick mode: a head trained on cached features (no Qt, no DB).
* :mod:`.trunk`, :mod:`.thorough` – thorough mode: the last backbone blocks too.
* :mod:`.pairs` – fine-tuning from similar / not similar marks alone (a pair loss, held-out marks).
* :mod:`.estimate` – how long a fine-tune will take, told before it starts (measured rates).
* :mod:`.choose` – the default mode ("auto"): standard where it costs little more than quick.
* :mod:`.record` – :class:`FineTuneRecord`, the one description of a fine-tune (in its card).
* :mod:`.models_store` – versioned models written atomically under the library.
* :mod:`.runner` – glue used by :meth:`photosim.library.Library.finetune`.
"""

from .choose import AUTO, ModeChoice, choose_mode
from .estimate import Estimate, duration, estimate_finetune
from .finetune import MODES, TrainConfig, TrainOutcome, train_head
from .loop import TrainProgress
from .models_store import ModelInfo
from .pairs import USEFUL_EACH
from .record import FineTuneRecord
from .runner import FineTuneResult, example_queries
from .triplets import LabelledSet, album_triplets, collect_labels, mark_triplets, marks_in_words

__all__ = [
    "AUTO", "MODES", "USEFUL_EACH", "Estimate", "ModeChoice", "choose_mode", "FineTuneRecord", "FineTuneResult", "LabelledSet", "ModelInfo",
    "TrainConfig", "TrainOutcome", "TrainProgress", "album_triplets", "collect_labels", "duration",
    "estimate_finetune", "example_queries", "mark_triplets", "marks_in_words", "train_head",
]
