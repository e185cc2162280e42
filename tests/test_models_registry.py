"""The model registry: ids are names, damaged models are refused with a reason and the
library falls back to the bundled encoder loudly."""

from __future__ import annotations

import json
import shutil

import pytest

from photosim.errors import ModelUnusable, UnknownModel
from photosim.models.registry import ModelRegistry


@pytest.fixture
def registry(tmp_path):
    return ModelRegistry(tmp_path / "models")


def _copy_bundled(registry, name: str, **changes):
    folder = registry.root / name
    shutil.copytree(registry.bundled_dir, folder)
    card = json.loads((folder / "card.json").read_text())
    card.update(id=name, **changes)
    (folder / "card.json").write_text(json.dumps(card))
    return folder


@pytest.mark.parametrize("bad", ["../x", "..", ".", "/tmp", "a/b", ".hidden", ""])
def test_model_ids_are_names_never_paths(registry, tmp_path, bad):
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "card.json").write_text("{}")
    with pytest.raises(UnknownModel):
        registry.model_dir(bad)
    with pytest.raises(UnknownModel):
        registry.delete(bad)
    assert outside.exists()


def test_an_absolute_path_is_not_a_model(registry):
    with pytest.raises(UnknownModel):
        registry.model_dir(str(registry.bundled_dir))


def test_cards_are_read_once_until_they_change(registry, monkeypatch):
    import photosim.models.registry as reg

    _copy_bundled(registry, "ft-a")
    calls = []
    real = reg.ModelCard.load
    monkeypatch.setattr(reg.ModelCard, "load", classmethod(lambda cls, p, **kw: calls.append(p) or real(p, **kw)))
    for _ in range(3):
        assert registry.card("ft-a").id == "ft-a"
        assert registry.card(registry.bundled.id).id == registry.bundled.id
    assert len(calls) == 1


@pytest.mark.parametrize("text", ["[1, 2]", "null", "{not json", '"just a string"'])
def test_a_damaged_card_is_unusable_with_a_reason(registry, text):
    folder = _copy_bundled(registry, "ft-bad")
    (folder / "card.json").write_text(text)
    with pytest.raises(ModelUnusable, match="ft-bad"):
        registry.card("ft-bad")


def test_a_library_whose_active_model_broke_falls_back_loudly(tmp_path):
    from photosim import Library

    with Library(tmp_path / "lib") as lib:
        bundled = lib.encoder_id
        folder = _copy_bundled(lib.registry, "ft-mine")
        lib.store.meta.set("encoder_id", "ft-mine")
    (folder / "card.json").write_text("[1, 2]")
    with Library(tmp_path / "lib") as lib:
        assert lib.encoder_id == bundled
        assert "ft-mine" in lib.info().notice and "bundled" in lib.info().notice
        listed = {m.id for m in lib.models()}
        assert bundled in listed
