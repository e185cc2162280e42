"""The fine-tune dialog for people who are not ML engineers: guidance when albums are few,
albums made from folders, plain words, Accept refused when it cannot be justified."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from conftest import write_scenes  # noqa: E402


@pytest.fixture
def service(tmp_path, qtbot):
    from photosim import Library
    from photosim.gui.service import LibraryService

    lib = Library(tmp_path / "lib")
    svc = LibraryService()
    with qtbot.waitSignal(svc.opened, timeout=60_000):
        svc.open(lib)
    yield svc
    svc.close()
    lib.close()


def test_no_albums_guides_and_folders_become_albums(qtbot, service, tmp_path):
    from photosim.gui.finetune_dialog import FineTuneDialog

    dlg = FineTuneDialog(service)
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.wait_idle(60_000)
    assert dlg.album_list.count() == 0 and dlg.albums_hint.isVisible()
    hint = dlg.albums_hint.text()
    assert "no albums yet" in hint and "at least 4 photos into each of 3 or more albums" in hint
    assert dlg.from_folders_btn.isVisible()
    for text in (dlg.quick.text(), dlg.standard.text(), dlg.thorough.text()):
        assert "head" not in text and "blocks" not in text
    import os

    if os.environ.get("PHOTOSIM_UX_SHOTS"):
        dlg.grab().save(os.path.join(os.environ["PHOTOSIM_UX_SHOTS"], "finetune-empty.png"))
    root = tmp_path / "trips"
    for i, name in enumerate(("beach", "city", "forest")):
        write_scenes(root / name, range(10 * i, 10 * i + 4), size=(96, 72))
    with qtbot.waitSignal(dlg.albumsMade, timeout=120_000) as made:
        dlg.albums_from_folders(str(root))
    assert made.args == [3]
    qtbot.waitUntil(lambda: dlg.album_list.count() == 3, timeout=60_000)
    assert dlg.selected_albums() == ["beach", "city", "forest"]
    assert not dlg.albums_hint.isVisible()


def test_accept_is_refused_without_held_out_photos_or_for_a_worse_model():
    from photosim.gui.finetune_dialog import METRICS, FineTuneDialog

    none_held = SimpleNamespace(n_val=0, before={}, after={})
    assert "Nothing could be held out" in FineTuneDialog.refusal(none_held)
    worse = SimpleNamespace(n_val=6, before={"map_at_r": 0.62}, after={"map_at_r": 0.55})
    assert "worse" in FineTuneDialog.refusal(worse) and "0.55 against 0.62" in FineTuneDialog.refusal(worse)
    better = SimpleNamespace(n_val=6, before={"map_at_r": 0.5, "recall_at_1": 0.6}, after={"map_at_r": 0.7, "recall_at_1": 0.8})
    assert FineTuneDialog.refusal(better) == ""
    words = FineTuneDialog._better_in_words(better)
    assert "60% → 80%" in words and "50% → 70%" in words
    assert all("@" not in name for _key, name in METRICS)  # words, the ML names only in tooltips
