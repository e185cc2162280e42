"""The library's duplicate threshold, calibrated by the verdicts: the rule on its own, then
through the library (the similarity bands and the duplicate search's bound follow)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageOps

from conftest import draw_scene

from photosim import Library
from photosim.pipeline.calibration import MAX_SHIFT, MIN_VERDICTS, calibrate
from photosim.pipeline.duplicates import CANDIDATE_MARGIN


def test_no_verdicts_or_too_few_leave_the_models_threshold():
    assert calibrate(0.77, [], []).threshold == 0.77
    assert calibrate(0.77, [], [0.9] * (MIN_VERDICTS - 1)).threshold == 0.77
    assert "needed" in calibrate(0.77, [0.5], []).describe()


def test_different_photos_scored_above_the_threshold_raise_it_just_above_them():
    c = calibrate(0.77, [], [0.80, 0.82, 0.81])
    assert c.threshold == pytest.approx(0.825) and c.calibrated
    assert "0.82" in c.describe() and "3 'not duplicates' pairs" in c.describe()


def test_confirmed_copies_below_the_threshold_lower_it_to_them():
    assert calibrate(0.77, [0.70, 0.72, 0.74], []).threshold == pytest.approx(0.70)


def test_the_threshold_that_disagrees_least_wins_and_moves_at_most_max_shift():
    # copies at 0.85 and 0.9, one pair of different photos at 0.80: just above it is right for all
    assert calibrate(0.77, [0.85, 0.90], [0.80]).threshold == pytest.approx(0.805)
    # different photos scored as high as copies: no threshold within MAX_SHIFT helps, none is taken
    assert calibrate(0.77, [], [0.99, 0.99, 0.99]).threshold == 0.77
    rng = np.random.default_rng(0)
    for _ in range(200):
        pos, neg = rng.uniform(0.3, 1.0, rng.integers(0, 6)), rng.uniform(0.3, 1.0, rng.integers(0, 6))
        assert abs(calibrate(0.77, pos, neg).threshold - 0.77) <= MAX_SHIFT + 1e-9
    # verdicts that agree with the model's threshold leave it there
    c = calibrate(0.77, [0.9, 0.95], [0.3, 0.4])
    assert c.threshold == 0.77 and not c.calibrated


def test_not_duplicates_alone_never_lower_the_threshold():
    rng = np.random.default_rng(1)
    for _ in range(200):
        assert calibrate(0.77, [], rng.uniform(0.3, 1.0, rng.integers(0, 8))).threshold >= 0.77


def test_the_librarys_threshold_comes_from_its_verdicts_under_the_active_model(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    a = draw_scene(12, (800, 600))
    a.save(root / "a.jpg", quality=95)
    a.crop((0, 0, 560, 420)).save(root / "crop70.jpg", quality=95)  # scored near the model's threshold
    a.crop((0, 0, 480, 360)).save(root / "crop60.jpg", quality=95)
    a.rotate(90, expand=True).save(root / "turned.jpg", quality=95)
    draw_scene(13, (800, 600)).save(root / "b.jpg", quality=95)
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        model = float(lib.card.duplicate_threshold)
        assert lib.duplicate_calibration().threshold == model
        assert lib.candidate_bound() == pytest.approx(model - CANDIDATE_MARGIN)
        pid = {p.name: p.id for p in lib.photos()}

        def cos(x, y):
            return next(m.score for m in lib.similar(pid[x], k=5) if m.photo.id == pid[y])

        lib.set_verdict([pid["a.jpg"], pid["crop70.jpg"], pid["crop60.jpg"]], "not duplicates")
        lib.set_verdict([pid["a.jpg"], pid["turned.jpg"]], "keep both")
        lib.set_verdict([pid["a.jpg"], pid["b.jpg"]], "not duplicates")
        want = calibrate(model, [cos("a.jpg", "turned.jpg")],
                         [cos("a.jpg", "crop70.jpg"), cos("a.jpg", "crop60.jpg"), cos("crop70.jpg", "crop60.jpg"),
                          cos("a.jpg", "b.jpg")])
        assert want.threshold != model  # these photos do move it (else this test shows nothing)
        got = lib.duplicate_calibration()
        assert (got.copies, got.different) == (1, 4)
        assert got.threshold == pytest.approx(want.threshold, abs=1e-4)
        assert lib.candidate_bound() == pytest.approx(min(model, got.threshold) - CANDIDATE_MARGIN)
    with Library(tmp_path / "lib") as lib:  # remembered: it comes from the stored verdicts
        assert lib.duplicate_calibration().threshold == pytest.approx(want.threshold, abs=1e-4)
