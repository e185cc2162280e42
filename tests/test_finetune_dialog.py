"""The fine-tune and Models dialogs under pytest-qt (offscreen): train, compare, accept /
discard, cancel; switch models. The dialogs get a LibraryService, never the Library; the
tests themselves look at the library directly (the GUI-thread guard is on)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from conftest import draw_scene

pytest.importorskip("PySide6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHOT = os.environ.get("PHOTOSIM_DIALOG_SHOT")  # e.g. /tmp/finetune_dialog.png, to look at it


@pytest.fixture
def albums_lib(tmp_path):
    from photosim import Library

    for i, (name, rgb) in enumerate({"warm": (255, 140, 0), "cool": (0, 120, 255)}.items()):
        folder = tmp_path / "photos" / name
        folder.mkdir(parents=True)
        for s in range(10):
            a = np.asarray(draw_scene(100 * i + s, (160, 120))).astype(np.float32) * 0.75 + np.float32(rgb) * 0.25
            Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(folder / f"{s}.jpg", quality=90)
    lib = Library(tmp_path / "lib")
    lib.import_albums(tmp_path / "photos")
    warm = [p.id for p in lib.album_photos("warm")]
    lib.mark(warm[0], warm[1], True)
    yield lib
    lib.close()


@pytest.fixture
def service(albums_lib, qtbot):
    from photosim.gui.service import LibraryService

    svc = LibraryService()
    with qtbot.waitSignal(svc.opened, timeout=60_000):
        svc.open(albums_lib)  # adopted: the fixture above closes it
    yield svc
    svc.close()


def _train(qtbot, dlg, epochs=0):  # 0: auto
    dlg.epochs.setValue(epochs)
    dlg.start_btn.click()
    qtbot.waitUntil(lambda: dlg.discard_btn.isEnabled() or "Stopped" in dlg.status.text(), timeout=180_000)
    dlg.wait_idle()


def _open(qtbot, dialog):
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.wait_idle(60_000)  # the lists are read in jobs
    return dialog


def test_dialog_trains_compares_and_accepts(qtbot, albums_lib, service):
    from photosim.gui.finetune_dialog import FineTuneDialog

    lib = albums_lib
    bundled = lib.encoder_id
    dlg = _open(qtbot, FineTuneDialog(service))
    assert dlg.selected_albums() == ["cool", "warm"]
    assert "1 similar and 0 not-similar marks; mark at least 20 of each" in dlg.marks_hint.text()
    # The duration is told before Start, and the real one after. The default, Automatic, picks
    # standard mode: on a library of album imports it costs seconds more than quick.
    assert dlg.auto.isChecked() and dlg.mode() == "auto"
    qtbot.waitUntil(lambda: "This will take about" in dlg.estimate_label.text(), timeout=60_000)
    assert dlg.estimate_label.text().startswith("Automatic picks Standard: it learns much more than quick for about")
    _train(qtbot, dlg)
    assert dlg.result is not None and dlg.result.record.mode == "standard"
    assert dlg.curve.losses and dlg.curve.val
    assert "(estimated about" in dlg.status.text() and dlg.result.record.estimated_s > 0
    assert lib.encoder_id == bundled  # nothing changes before Accept
    qtbot.waitUntil(lambda: dlg.examples_area.widget() is not None)
    if SHOT:
        dlg.grab().save(SHOT)
    model_id = dlg.result.model_id
    # Accept names the model: the suggestion says what it learnt from; a bad name is refused
    assert dlg.name_edit.isEnabled() and dlg.name_edit.text().startswith("Tuned on 2 albums and 1 mark, ")
    dlg.name_edit.setText("   ")
    dlg.accept_btn.click()
    qtbot.waitUntil(lambda: "Choose another name" in dlg.message.text(), timeout=30_000)
    assert "needs a name" in dlg.message.text() and dlg.accept_btn.isEnabled() and lib.encoder_id == bundled
    dlg.name_edit.setText("Warm and cool")
    with qtbot.waitSignal(dlg.model_accepted, timeout=60_000) as sig:
        dlg.accept_btn.click()
    assert sig.args == [model_id]
    dlg.wait_idle()
    assert lib.encoder_id == model_id
    assert service.state.encoder_id == model_id  # what the other widgets read
    assert service.state.model_name == "Warm and cool" and lib.card.name == "Warm and cool"


def test_dialog_discard_and_errors_keep_the_model(qtbot, albums_lib, service):
    from photosim.gui.finetune_dialog import FineTuneDialog

    lib = albums_lib
    bundled = lib.encoder_id
    dlg = _open(qtbot, FineTuneDialog(service))
    _train(qtbot, dlg, epochs=1)
    model_id = dlg.result.model_id
    dlg.discard_btn.click()
    dlg.wait_idle()
    assert model_id not in [m.id for m in lib.models()]
    assert lib.encoder_id == bundled
    # Fewer than two albums: a clear message, nothing changes.
    dlg.album_list.item(0).setCheckState(dlg.album_list.item(0).checkState().__class__.Unchecked)
    dlg.marks_check.setChecked(False)
    dlg.start_btn.click()
    qtbot.waitUntil(lambda: "at least two albums" in dlg.message.text(), timeout=30_000)
    dlg.wait_idle()
    assert dlg.start_btn.isEnabled()
    assert [m.id for m in lib.models()] == [bundled]


def test_dialog_from_marks_alone_says_what_it_has_and_refuses_what_it_cannot_check(qtbot, albums_lib, service):
    from photosim.gui.finetune_dialog import FineTuneDialog

    lib = albums_lib
    warm = [p.id for p in lib.album_photos("warm")]
    cool = [p.id for p in lib.album_photos("cool")]
    for i in range(1, 4):  # with the fixture's one: 4 similar, 3 not similar
        lib.mark(warm[i], warm[i + 1], True)
        lib.mark(warm[i], cool[i], False)
    lib.set_verdict([cool[0], cool[1]], "not duplicates")
    for name in ("warm", "cool"):
        lib.delete_album(name)
    bundled = lib.encoder_id
    dlg = _open(qtbot, FineTuneDialog(service))
    assert dlg.selected_albums() == []
    hint = dlg.marks_hint.text()
    assert hint.startswith("4 similar and 3 not-similar marks and 1 'not duplicates' verdict; mark at least 20 "
                           "of each for a useful result") and "marks alone" in hint
    qtbot.waitUntil(lambda: "This will take about" in dlg.estimate_label.text(), timeout=60_000)
    assert dlg.estimate_label.text().startswith("Automatic picks Quick: marks alone retrain the head only. ")
    _train(qtbot, dlg)
    r = dlg.result
    assert r.marks_only and r.n_val == 0  # too few of a kind to hold any out
    assert "7 marks alone" in dlg.status.text()
    assert not dlg.accept_btn.isEnabled() and dlg.message.text().startswith("Nothing could be held out")
    assert dlg._metric_labels["mark_auc"][0].isVisibleTo(dlg) and not dlg._metric_labels["map_at_r"][0].isVisibleTo(dlg)
    assert lib.encoder_id == bundled
    # Marks off: nothing left to learn from, told before Start.
    dlg.marks_check.setChecked(False)
    qtbot.waitUntil(lambda: "at least two albums" in dlg.estimate_label.text(), timeout=30_000)


def test_dialog_cancel(qtbot, albums_lib, service):
    from photosim.gui.finetune_dialog import FineTuneDialog

    lib = albums_lib
    bundled = lib.encoder_id
    dlg = _open(qtbot, FineTuneDialog(service))
    dlg.epochs.setValue(500)
    dlg.start_btn.click()
    qtbot.waitUntil(lambda: len(dlg.curve.losses) > 3, timeout=30_000)
    dlg.cancel_btn.click()
    qtbot.waitUntil(lambda: "cancelled" in dlg.message.text(), timeout=30_000)
    dlg.wait_idle()
    assert lib.encoder_id == bundled
    assert [m.id for m in lib.models()] == [bundled]


def test_dialog_thorough_reads_the_photos_then_trains(qtbot, albums_lib, service):
    from photosim.gui.finetune_dialog import FineTuneDialog
    from photosim.training import TrainProgress

    lib = albums_lib
    dlg = _open(qtbot, FineTuneDialog(service))
    dlg._on_progress(TrainProgress.of("preparing", 0, 2, 3, 20, None, 1.0, 6.0))
    assert dlg.status.text().startswith("Reading labelled photos: 3 / 20")
    assert (dlg.progress.value(), dlg.progress.maximum()) == (3, 20)
    from dataclasses import replace

    from photosim.training.thorough import FROM_TAPS  # standard mode, from an album import's taps
    dlg._on_progress(replace(TrainProgress.of("preparing", 0, 2, 20, 20, None, 1.0, None), detail=FROM_TAPS))
    assert dlg.status.text() == "Loading the activations their scan kept: 20 / 20"
    dlg._on_progress(TrainProgress.of("preparing", 0, 2, 3, 20, None, 1.0, 6.0))
    if SHOT:
        dlg.grab().save(SHOT.replace(".png", "-thorough-reading.png"))
    dlg.thorough.setChecked(True)
    _train(qtbot, dlg, epochs=1)
    assert dlg.result is not None and dlg.curve.losses
    # The curve shows where the head (stage 1) ends and the blocks (stage 2) begin.
    assert [name for _, name in dlg.curve.stages] == ["last blocks"]
    assert 0 < dlg.curve.stages[0][0] < len(dlg.curve.losses)
    card = [m for m in lib.models() if m.id == dlg.result.model_id][0]
    assert card.id != lib.encoder_id  # written, not active
    if SHOT:
        dlg.grab().save(SHOT.replace(".png", "-thorough.png"))


def test_models_dialog_switches_back_and_forth_and_deletes(qtbot, albums_lib, service, monkeypatch):
    from photosim.gui import models_dialog
    from photosim.gui.models_dialog import ModelsDialog

    lib = albums_lib
    bundled = lib.encoder_id
    tuned = lib.finetune(epochs=2).model_id
    dlg = _open(qtbot, ModelsDialog(service))
    rows = {m: dlg.row_of(m) for m in (bundled, tuned)}
    assert dlg.tree.topLevelItemCount() == 2 and all(rows.values())
    # in plain words: names, not ids, as the label; what it learnt from; what got better; in use
    assert rows[bundled].text(0) == "Bundled encoder" and rows[bundled].text(1) == "in use · bundled"
    assert rows[tuned].text(0).startswith("Tuned on 2 albums and 1 mark, ") and rows[tuned].text(1) == ""
    assert rows[tuned].text(3) == "2 albums and 1 mark"
    assert rows[tuned].text(4).startswith("finds the right album for ") and "% of photos, was " in rows[tuned].text(4)
    assert tuned in rows[tuned].toolTip(0) and "MAP@R" not in "".join(dlg.tree.headerItem().text(c) for c in range(5))
    assert dlg.status.text() == "In use: Bundled encoder"
    dlg.tree.setCurrentItem(rows[bundled])
    assert not dlg.use_btn.isEnabled() and not dlg.delete_btn.isEnabled()  # active and bundled
    assert not dlg.rename_btn.isEnabled()

    # Cancelled at once: nothing switches.
    dlg.tree.setCurrentItem(rows[tuned])
    assert dlg.use_btn.isEnabled() and dlg.delete_btn.isEnabled()
    monkeypatch.setattr(lib, "use_model", _cancelled_use_model(lib.use_model))
    dlg.use_selected()
    dlg.wait_idle()
    qtbot.waitUntil(lambda: "Cancelled" in dlg.status.text())
    assert lib.encoder_id == bundled
    monkeypatch.undo()

    changed = []
    dlg.model_changed.connect(changed.append)
    dlg.tree.setCurrentItem(_row(dlg, tuned))
    assert dlg.detail.text().startswith(f"id {tuned} · quick fine-tune") and dlg.rename_btn.isEnabled()
    assert "of “Bundled encoder”" in dlg.detail.text()
    dlg.use_selected()
    dlg.wait_idle()
    qtbot.waitUntil(lambda: changed == [tuned])
    assert lib.encoder_id == tuned and _row(dlg, tuned).text(1) == "in use"
    # renamed: stored in the card, listed under the new name; a taken name is refused in words
    renamed = []
    dlg.modelRenamed.connect(lambda i, n: renamed.append((i, n)))
    dlg.rename_selected("Colour casts")
    dlg.wait_idle()
    assert renamed == [(tuned, "Colour casts")] and _row(dlg, tuned).text(0) == "Colour casts"
    assert dlg.status.text().startswith("Renamed ")
    dlg.tree.setCurrentItem(_row(dlg, tuned))
    dlg.rename_selected("bundled ENCODER")
    dlg.wait_idle()
    assert "already called" in dlg.status.text() and _row(dlg, tuned).text(0) == "Colour casts"
    if SHOT:
        dlg.grab().save(SHOT.replace(".png", "-models.png"))
    assert not dlg.delete_btn.isEnabled()  # the active model (still selected) cannot be deleted

    dlg.tree.setCurrentItem(_row(dlg, bundled))
    dlg.use_selected()
    dlg.wait_idle()
    qtbot.waitUntil(lambda: changed == [tuned, bundled])
    assert lib.encoder_id == bundled

    monkeypatch.setattr(models_dialog, "confirm", lambda *a: False)
    dlg.tree.setCurrentItem(_row(dlg, tuned))
    dlg.delete_selected()
    dlg.wait_idle()
    assert tuned in [m.id for m in lib.models()]  # not confirmed: kept
    monkeypatch.setattr(models_dialog, "confirm", lambda *a: True)
    dlg.delete_selected()
    dlg.wait_idle()
    assert [m.id for m in lib.models()] == [bundled] and dlg.tree.topLevelItemCount() == 1
    assert len(lib.cached_features()[0]) == len(lib.photos())  # shared backbone: features kept


def _row(dlg, model_id):
    return dlg.row_of(model_id)


def _cancelled_use_model(use_model):
    def use(model_id, progress=None, cancel=None):
        return use_model(model_id, progress=progress, cancel=lambda: True)
    return use


def test_models_dialog_greys_out_a_fine_tune_whose_backbone_is_gone(qtbot, albums_lib, service):
    """After an upgrade that ships another backbone, an old quick fine-tune is listed, says
    why it cannot be used, and cannot be switched to; it can still be deleted."""
    import json

    from photosim.gui.models_dialog import ModelsDialog

    lib = albums_lib
    tuned = lib.finetune(epochs=1).model_id
    card_path = lib.model_dir(tuned) / "card.json"
    card = json.loads(card_path.read_text())
    card["parent"], card["backbone_id"] = "photosim-mnv2-split-v3", "mobilenet_v2-gem-224-0000000000000000"
    card_path.write_text(json.dumps(card))
    dlg = _open(qtbot, ModelsDialog(service))
    row = _row(dlg, tuned)
    assert row.text(1) == "cannot be used" and "fine-tune again" in row.toolTip(1)
    dlg.tree.setCurrentItem(row)
    assert not dlg.use_btn.isEnabled() and dlg.delete_btn.isEnabled()
    assert dlg.status.text().startswith(f"Cannot use {row.text(0)}") and "Fine-tune again" in dlg.status.text()
    dlg.use_selected()  # e.g. a double-click: nothing happens
    assert lib.encoder_id != tuned and dlg._job is None
    if SHOT:
        dlg.grab().save(SHOT.replace(".png", "-models-orphan.png"))
    dlg.tree.setCurrentItem(_row(dlg, lib.encoder_id))
    assert dlg.status.text() == "In use: Bundled encoder"
