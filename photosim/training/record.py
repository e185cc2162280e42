"""One record of a fine-tune: what it was made from and how it scored.

Written into the new model's card as ``extra["finetune"]`` when the model is written, and
read back from there: the model list (:class:`~.models_store.ModelInfo`) and the result a
fine-tune returns (:class:`~.runner.FineTuneResult`) both carry this record rather than
copies of its fields. The JSON layout on disk is the one fine-tunes have always had, so
older models keep listing; every field a card lacks reads as empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KEY = "finetune"


@dataclass(frozen=True)
class FineTuneRecord:
    #: the model fine-tuned from
    based_on: str | None = None
    #: ISO date with microseconds (two fine-tunes in one second still list in order)
    created: str | None = None
    albums: list[str] = field(default_factory=list)
    #: marks used (similar + not similar pairs)
    marks: int = 0
    #: "quick" or "thorough" (None: a card written before modes existed)
    mode: str | None = None
    seed: int = 0
    #: epochs trained and the one kept (0: the start was best)
    epochs: int = 0
    best_epoch: int = 0
    n_train: int = 0
    n_val: int = 0
    #: validation metrics of the parent and of the new model, on the same held-out photos
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: "albums" (scored by MAP@R on held-out album photos) or "marks" (a fine-tune from
    #: similar / not similar marks alone, scored by the AUC of held-out marks; n_val then
    #: counts held-out marks)
    objective: str = "albums"
    #: the duration told before the run started (seconds, per stage in ``estimate``) and
    #: the real one, both for what the fine-tune itself did (not scanning, not accepting)
    estimated_s: float | None = None
    seconds: float | None = None
    estimate: dict = field(default_factory=dict)
    #: the real seconds of those stages
    stage_seconds: dict = field(default_factory=dict)

    @property
    def score(self) -> str:
        """The metric of ``before``/``after`` a fine-tune is judged by."""
        return "mark_auc" if self.objective == "marks" else "map_at_r"

    def to_card(self) -> dict:
        """The JSON of ``card.extra["finetune"]``."""
        return {
            "based_on": self.based_on, "created": self.created, "albums": list(self.albums),
            "marks": self.marks, "mode": self.mode, "epochs": self.epochs, "best_epoch": self.best_epoch,
            "seed": self.seed, "n_train": self.n_train, "n_val": self.n_val,
            "metrics": {"before": dict(self.before), "after": dict(self.after)},
            "history": list(self.history), "warnings": list(self.warnings),
            # only when set, so that records without them keep the layout they always had
            **({"objective": self.objective} if self.objective != "albums" else {}),
            **({"timing": {"estimated_s": self.estimated_s, "seconds": self.seconds,
                           "estimate": dict(self.estimate), "stages": dict(self.stage_seconds)}}
               if self.estimated_s is not None or self.seconds is not None else {}),
        }

    @classmethod
    def from_card(cls, card) -> FineTuneRecord | None:
        """The record in ``card`` (a :class:`~photosim.card.ModelCard`), None when it has
        none (the bundled model) or it is not a mapping; missing or malformed fields read
        as empty."""
        extra = card.extra if isinstance(card.extra, dict) else {}
        ft = extra.get(KEY)
        if not isinstance(ft, dict):
            return None
        metrics = ft.get("metrics") if isinstance(ft.get("metrics"), dict) else {}

        def text(key):
            return ft[key] if isinstance(ft.get(key), str) else None

        def number(key):
            value = ft.get(key)
            return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

        def mapping(value):
            return dict(value) if isinstance(value, dict) else {}

        def items(value):
            return list(value) if isinstance(value, list) else []

        timing = mapping(ft.get("timing"))

        def seconds(value):
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(
            based_on=text("based_on"), created=text("created"),
            albums=[a for a in items(ft.get("albums")) if isinstance(a, str)],
            marks=number("marks"), mode=text("mode"), seed=number("seed"), epochs=number("epochs"),
            best_epoch=number("best_epoch"), n_train=number("n_train"), n_val=number("n_val"),
            before=mapping(metrics.get("before")), after=mapping(metrics.get("after")),
            history=[h for h in items(ft.get("history")) if isinstance(h, dict)],
            warnings=[w for w in items(ft.get("warnings")) if isinstance(w, str)],
            objective="marks" if ft.get("objective") == "marks" else "albums",
            estimated_s=seconds(timing.get("estimated_s")), seconds=seconds(timing.get("seconds")),
            estimate={k: v for k, v in mapping(timing.get("estimate")).items() if seconds(v) is not None},
            stage_seconds={k: v for k, v in mapping(timing.get("stages")).items() if seconds(v) is not None},
        )

    def write_into(self, card) -> None:
        """Set ``card.extra["finetune"]`` to this record."""
        card.extra = {**(card.extra if isinstance(card.extra, dict) else {}), KEY: self.to_card()}
