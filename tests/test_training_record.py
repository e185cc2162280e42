"""One record of a fine-tune (photosim.training.record): into the card and back, and cards
written by earlier photosim versions still list."""

from __future__ import annotations

import json

from photosim.card import ModelCard
from photosim.encoder import bundled_model_dir
from photosim.training.models_store import list_models
from photosim.training.record import FineTuneRecord

RECORD = FineTuneRecord(
    based_on="photosim-mnv2-rmac288-v4", created="2026-11-30T10:00:00.123456+00:00", albums=["cats", "dogs"],
    marks=3, mode="thorough", seed=2, epochs=4, best_epoch=3, n_train=40, n_val=10,
    before={"map_at_r": 0.5, "recall_at_1": 0.7}, after={"map_at_r": 0.625, "recall_at_1": 0.8},
    history=[{"epoch": 1, "loss": 0.25, "map_at_r": 0.6}], warnings=["album 'x' has fewer than two usable photos"])

#: extra["finetune"] as photosim has written it since its first fine-tunes (commit 4724f43)
ON_DISK = {
    "based_on": "photosim-mnv2-rmac288-v4", "created": "2026-11-30T10:00:00.123456+00:00",
    "albums": ["cats", "dogs"], "marks": 3, "mode": "thorough", "epochs": 4, "best_epoch": 3, "seed": 2,
    "n_train": 40, "n_val": 10,
    "metrics": {"before": {"map_at_r": 0.5, "recall_at_1": 0.7}, "after": {"map_at_r": 0.625, "recall_at_1": 0.8}},
    "history": [{"epoch": 1, "loss": 0.25, "map_at_r": 0.6}],
    "warnings": ["album 'x' has fewer than two usable photos"],
}


def _card(model_id: str, finetune=None) -> ModelCard:
    card = ModelCard(id=model_id, parent="photosim-mnv2-rmac288-v4", head_only=True)
    if finetune is not None:
        card.extra = {"finetune": finetune}
    return card


def test_the_record_is_the_cards_json_and_reads_back(tmp_path):
    card = _card("ft-1")
    RECORD.write_into(card)
    assert card.extra["finetune"] == ON_DISK
    card.save(tmp_path / "card.json")
    assert json.loads((tmp_path / "card.json").read_text())["finetune"] == ON_DISK
    assert FineTuneRecord.from_card(ModelCard.load(tmp_path / "card.json")) == RECORD
    assert FineTuneRecord.from_card(_card("bundled")) is None


def test_models_written_by_earlier_versions_still_list(tmp_path):
    root = tmp_path / "models"
    cards = {
        "ft-20261101-000000-aaaaaa": {**ON_DISK, "created": "2026-11-01T00:00:00+0100"},  # seconds, no mode
        "ft-20261102-000000-bbbbbb": {"based_on": "photosim-mnv2-v3", "albums": ["a"], "created": "2026-11-02T00:00:00"},
        "ft-20261103-000000-cccccc": "not a mapping",
        "ft-20261104-000000-dddddd": {"albums": "oops", "metrics": [], "marks": "2", "created": 5},
    }
    del cards["ft-20261101-000000-aaaaaa"]["mode"]
    for model_id, ft in cards.items():
        (root / model_id).mkdir(parents=True)
        _card(model_id, ft).save(root / model_id / "card.json")
    listed = list_models(root, bundled_model_dir(), "ft-20261102-000000-bbbbbb")
    assert listed[0].bundled and listed[0].finetune is None and listed[0].mode is None
    by_id = {m.id: m for m in listed}
    assert set(by_id) == {listed[0].id, *cards}
    old = by_id["ft-20261101-000000-aaaaaa"]
    assert old.mode is None and old.albums == ["cats", "dogs"] and old.after == ON_DISK["metrics"]["after"]
    assert old.finetune.history == ON_DISK["history"] and old.finetune.best_epoch == 3
    sparse = by_id["ft-20261102-000000-bbbbbb"]
    assert sparse.active and sparse.based_on == "photosim-mnv2-v3" and sparse.before == {} and sparse.mode is None
    # A record that is not one (the card validation refuses it): listed, unusable, with the reason.
    for model_id, field in (("ft-20261103-000000-cccccc", '"finetune"'), ("ft-20261104-000000-dddddd", '"finetune.')):
        damaged = by_id[model_id]
        assert damaged.finetune is None and damaged.albums == [] and field in damaged.problem
    # `photosim models list --json` prints the same flat objects as before the record existed
    # (the display name, issue 18, is added at the end; an unnamed fine-tune's is made from its record).
    assert list(old.to_dict()) == ["id", "bundled", "active", "created", "based_on", "albums", "before", "after",
                                   "path", "mode", "description", "backbone_id", "problem", "name"]
    assert old.name.startswith("Tuned on 2 albums")
    # oldest first; a card without a date first of all (as before)
    assert [m.id for m in listed[1:]] == ["ft-20261103-000000-cccccc", "ft-20261104-000000-dddddd",
                                         "ft-20261101-000000-aaaaaa", "ft-20261102-000000-bbbbbb"]
