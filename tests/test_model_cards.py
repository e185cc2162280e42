"""Damaged model cards and weights end in ModelUnusable with one sentence, never a
traceback; model ids are names, never paths (issue 17)."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from photosim.card import ModelCard, valid_model_id
from photosim.encoder import Encoder, bundled_model_dir
from photosim.errors import ModelUnusable, PhotosimError


@pytest.fixture(scope="module")
def bundled_card() -> dict:
    return json.loads((bundled_model_dir() / "card.json").read_text())


def _write(tmp_path: Path, content) -> Path:
    p = tmp_path / "card.json"
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    return p


@pytest.mark.parametrize("content, words", [
    ([1, 2], "holds a list, not an object"),
    (None, "holds null, not an object"),
    ("\"just a string\"", "holds a string"),
    ('{"id": "x", ', "not valid JSON"),
    ("", "not valid JSON"),
])
def test_a_card_that_is_not_a_json_object(tmp_path, content, words):
    path = _write(tmp_path, content)
    with pytest.raises(ModelUnusable, match=words) as info:
        ModelCard.load(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    assert isinstance(info.value, PhotosimError)


@pytest.mark.parametrize("change, words", [
    ({"extra": "oops"}, '"extra" must be an object, not a string'),
    ({"dim": "x"}, '"dim" must be a positive whole number, not a string'),
    ({"dim": True}, '"dim" must be a positive whole number, not true/false'),
    ({"dim": -3}, '"dim" must be a positive whole number'),
    ({"mean": [0.5, 0.5]}, '"mean" must be a list of 3 numbers'),
    ({"std": [0.2, 0, 0.2]}, '"std" must be a list of 3 positive numbers'),
    ({"gem_p": float("nan")}, '"gem_p" must be a positive number'),
    ({"head": "transformer"}, '"head" must be'),
    ({"head_only": "yes"}, '"head_only" must be true or false'),
    ({"id": "../x"}, '"id" must be a model name'),
    ({"id": "/abs/model"}, '"id" must be a model name'),
    ({"id": "a/b"}, '"id" must be a model name'),
    ({"parent": "../../other"}, '"parent" must be null or a model name'),
    ({"weights": "../../elsewhere.safetensors"}, '"weights" must be a file name inside'),
    ({"weights": "/etc/passwd"}, '"weights" must be a file name inside'),
    ({"finetune": "x"}, '"finetune" must be an object'),
    ({"finetune": {"albums": "abc"}}, '"finetune.albums" must be a list of names'),
    ({"finetune": {"metrics": {"after": {"map_at_r": "high"}}}}, '"finetune.metrics" must be'),
    ({"format": 99}, "needs a newer photosim"),
])
def test_fields_of_the_wrong_type_or_value(tmp_path, bundled_card, change, words):
    path = _write(tmp_path, {**bundled_card, **change})
    with pytest.raises(ModelUnusable, match=words.replace("(", r"\(")):
        ModelCard.load(path)


@pytest.mark.parametrize("field", ["id", "dim", "weights", "head", "backbone_id"])
def test_missing_required_fields(tmp_path, bundled_card, field):
    path = _write(tmp_path, {k: v for k, v in bundled_card.items() if k != field})
    with pytest.raises(ModelUnusable, match=f"lacks the field {field}"):
        ModelCard.load(path)


def test_missing_or_undecodable_card_and_folder_mismatch(tmp_path, bundled_card):
    with pytest.raises(ModelUnusable, match="is missing"):
        ModelCard.load(tmp_path / "nope" / "card.json")
    (tmp_path / "card.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelUnusable, match="cannot be read"):
        ModelCard.load(tmp_path / "card.json")
    path = _write(tmp_path, {**bundled_card, "id": "ft-a"})
    with pytest.raises(ModelUnusable, match="not the name of its folder"):
        ModelCard.load(path, expect_id="ft-b")
    assert ModelCard.load(path, expect_id="ft-a").id == "ft-a"


def test_a_valid_card_keeps_unknown_fields_in_extra(tmp_path, bundled_card):
    card = ModelCard.load(_write(tmp_path, {**bundled_card, "future_field": [1]}))
    assert card.id == bundled_card["id"] and card.extra["future_field"] == [1]
    assert "training" in card.extra
    assert ModelCard.load(_write(tmp_path, card.to_json())).to_json() == card.to_json()


@pytest.mark.parametrize("model_id, ok", [
    ("ft-20261201-093412-abc123", True), ("photosim-mnv2-rmac288-v4", True), ("v1.2_x", True),
    ("../x", False), ("../../x", False), ("/abs", False), ("a/b", False), ("a\\b", False),
    ("..", False), (".", False), (".hidden", False), ("x.", False), ("", False), ("a\nb", False),
    ("a" * 129, False), (None, False), (3, False),
])
def test_model_ids_are_names_never_paths(model_id, ok):
    assert valid_model_id(model_id) is ok


def test_a_bad_card_is_listed_as_unusable_with_its_reason(tmp_path, bundled_card):
    from photosim.training.models_store import list_models

    root = tmp_path / "models"
    for name, content in {"ft-list": "[1, 2]", "ft-null": "null",
                          "ft-extra": json.dumps({**bundled_card, "id": "ft-extra", "extra": "oops"}),
                          "ft-other": json.dumps({**bundled_card, "id": "../x"})}.items():
        (root / name).mkdir(parents=True)
        (root / name / "card.json").write_text(content)
    models = {m.id: m for m in list_models(root, bundled_model_dir(), bundled_card["id"])}
    assert models[bundled_card["id"]].problem == ""
    assert set(models) == {bundled_card["id"], "ft-list", "ft-null", "ft-extra", "ft-other"}
    assert "holds a list" in models["ft-list"].problem
    assert "holds null" in models["ft-null"].problem
    assert '"extra" must be an object' in models["ft-extra"].problem
    assert '"id" must be a model name' in models["ft-other"].problem


# -- damaged weights ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled_state():
    from safetensors.torch import load_file

    card = ModelCard.load(bundled_model_dir() / "card.json")
    return card, load_file(str(bundled_model_dir() / card.weights))


def _model_with(tmp_path: Path, card: ModelCard, weights) -> Path:
    d = tmp_path / "model"
    d.mkdir(parents=True)
    card.save(d / "card.json")
    if callable(weights):
        weights(d / card.weights)
    elif weights is not None:
        (d / card.weights).write_bytes(weights)
    return d


class _Planted:
    """Unpickling this would create a file: proof that weights are never unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_as_weights_is_refused_without_running_it(tmp_path, bundled_state):
    card, _ = bundled_state
    marker = tmp_path / "pickle-ran"
    d = _model_with(tmp_path, card, pickle.dumps({"backbone.0.weight": _Planted(marker)}))
    with pytest.raises(ModelUnusable, match="damaged or not a safetensors file"):
        Encoder.load(d, device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "missing"])
def test_garbage_truncated_or_missing_weights(tmp_path, bundled_state, kind):
    card, _ = bundled_state
    raw = (bundled_model_dir() / card.weights).read_bytes()
    content = {"garbage": bytes(range(256)) * 64, "empty": b"", "truncated": raw[: len(raw) // 2],
               "missing": None}[kind]
    d = _model_with(tmp_path, card, content)
    with pytest.raises(ModelUnusable, match="missing" if kind == "missing" else "damaged") as info:
        Encoder.load(d, device="cpu")
    assert card.id in str(info.value) and "\n" not in str(info.value)


def test_weights_of_the_wrong_shape_or_with_nan(tmp_path, bundled_state):
    import torch
    from safetensors.torch import save_file

    card, state = bundled_state
    key = next(k for k, v in state.items() if k.startswith("head.") and v.ndim == 2)
    wrong = dict(state)
    wrong[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    d = _model_with(tmp_path / "shape", card, lambda p: save_file(wrong, str(p)))
    with pytest.raises(ModelUnusable, match="do not fit its card"):
        Encoder.load(d, device="cpu")

    nan = dict(state)
    nan[key] = state[key].clone()
    nan[key][0, 0] = float("nan")
    d = _model_with(tmp_path / "nan", card, lambda p: save_file(nan, str(p)))
    with pytest.raises(ModelUnusable, match="NaN"):
        Encoder.load(d, device="cpu")

    fewer = {k: v for k, v in state.items() if k != key}
    d = _model_with(tmp_path / "fewer", card, lambda p: save_file(fewer, str(p)))
    with pytest.raises(ModelUnusable, match="do not fit its card: missing"):
        Encoder.load(d, device="cpu")


def test_a_card_the_network_cannot_be_built_from(tmp_path, bundled_state):
    card, _ = bundled_state
    bad = ModelCard(**{**card.__dict__, "context_size": 0})  # a split head needs the context
    d = _model_with(tmp_path, bad, None)
    shutil.copy(bundled_model_dir() / card.weights, d / card.weights)
    with pytest.raises(ModelUnusable, match="cannot be built from its card"):
        Encoder.load(d, device="cpu")
