"""The int8 setting: a precision variant of the active model, with vectors of its own."""

from __future__ import annotations

import numpy as np
import pytest

from photosim import Library
from photosim.cli import main
from photosim.errors import PhotosimError, UnknownModel
from photosim.inference import quantize
from photosim import precision as variants

from conftest import write_scenes


def test_variant_ids_carry_the_recipe_and_parse_back():
    v = variants.variant_id("m-1", "int8")
    assert v == f"m-1@int8r{quantize.RECIPE}" and variants.split(v) == ("m-1", "int8")
    assert variants.variant_id("m-1", "fp32") == "m-1" and variants.split("m-1") == ("m-1", "fp32")
    assert variants.split("m-1@int8r1") == ("m-1", "int8")  # an older recipe: int8, and a new id
    assert variants.variant_id(*variants.split("m-1@int8r1")) != "m-1@int8r1"
    for bad in ("m-1@fp16", "m-1@int8", "m-1@int8rx"):
        with pytest.raises(UnknownModel):
            variants.split(bad)
    with pytest.raises(ValueError):
        variants.variant_id("m-1", "fp16")


@pytest.fixture(scope="module")
def lib_int8(tmp_path_factory):
    """A library of 6 photos scanned in fp32, then switched to int8."""
    base = tmp_path_factory.mktemp("precision")
    photos = base / "photos"
    write_scenes(photos, range(6), size=(320, 240))
    lib = Library(base / "lib")
    lib.scan([photos])
    fp32_id = lib.encoder_id
    fp32 = {p.id: lib.store.vectors.get(p.id, fp32_id) for p in lib.photos()}
    lib.use_model(variants.variant_id(fp32_id, "int8"))
    yield lib, fp32_id, fp32, photos
    lib.close()


def test_switching_to_int8_remakes_every_vector_under_its_own_id(lib_int8):
    lib, fp32_id, fp32, _ = lib_int8
    assert lib.encoder_id == f"{fp32_id}@int8r{quantize.RECIPE}"
    assert lib.encoder.precision == "int8" and lib.encoder.id == lib.encoder_id
    assert lib.card.backbone_id.endswith(f"@int8r{quantize.RECIPE}")  # int8 features cached apart
    ids = [p.id for p in lib.photos()]
    assert lib.store.vectors.photo_ids(lib.encoder_id) == set(ids)
    assert not lib.store.vectors.photo_ids(fp32_id)  # the old model's vectors are dropped, never mixed
    v8 = np.stack([lib.store.vectors.get(i, lib.encoder_id) for i in ids])
    v32 = np.stack([fp32[i] for i in ids])
    sims = v8 @ v32.T
    assert (sims.argmax(axis=1) == np.arange(len(ids))).all()  # each photo's nearest fp32 vector is its own
    assert sims.diagonal().max() < 0.99999  # but not the same vectors: they must not share an id
    first = lib.photos()[0]
    assert lib.similar(first, k=3)  # the index was rebuilt from the int8 vectors


def test_scans_in_int8_decode_on_every_core(lib_int8, monkeypatch):
    """int8's forward pass is cheap, so decoding is the bound: every core decodes; fp32
    leaves half of them to the forward pass."""
    import os

    from photosim.pipeline.scan import Scan

    lib = lib_int8[0]
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    args = (lib.store, None, lambda: lib.encoder, lib.card, [], None, None)
    assert Scan(*args).workers == 4
    assert Scan(lib.store, None, lambda: None, lib.registry.card(lib_int8[1]), [], None, None).workers == 2
    assert Scan(*args, workers=1).workers == 1  # asked for: as asked


def test_int8_refuses_fine_tuning_and_deleting_its_model(lib_int8):
    lib, fp32_id, _, _ = lib_int8
    with pytest.raises(PhotosimError, match="full precision"):
        lib.finetune(["nothing"])
    with pytest.raises(PhotosimError, match="precision setting"):
        lib.registry.delete(lib.encoder_id)
    models = lib.models()
    assert [m.id for m in models if m.active] == [fp32_id]  # the model in use, listed once


def test_reopened_library_stays_in_int8_and_an_old_recipe_moves_to_the_current(lib_int8, tmp_path):
    lib, fp32_id, _, _ = lib_int8
    with Library(lib.path, readonly=True) as again:
        assert again.encoder_id == lib.encoder_id and again.notice == ""
    card, notice = lib.registry.resolve_active(f"{fp32_id}@int8r1")
    assert card.id == lib.encoder_id and notice == ""


def test_cli_precision_switches_to_int8_and_back(tmp_path, capsys):
    photos = tmp_path / "photos"
    write_scenes(photos, range(3), size=(320, 240))
    lib = ["--library", str(tmp_path / "lib")]
    assert main(["scan", str(photos), *lib]) == 0
    capsys.readouterr()
    assert main(["models", "precision", *lib]) == 0
    assert "runs in fp32" in capsys.readouterr().out
    assert main(["models", "precision", "fp16", *lib]) != 0
    assert "fp32 or int8" in capsys.readouterr().err
    assert main(["models", "precision", "int8", *lib]) == 0
    assert "now runs in int8" in capsys.readouterr().out
    assert main(["models", "precision", *lib]) == 0
    assert "runs in int8 (scans about 1.5x faster" in capsys.readouterr().out
    assert main(["models", "precision", "fp32", *lib]) == 0
    with Library(tmp_path / "lib", readonly=True) as back:
        assert "@" not in back.encoder_id and back.count(status="ok") == 3
        assert len(back.store.vectors.photo_ids(back.encoder_id)) == 3
