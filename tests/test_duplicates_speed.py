"""The duplicate search's speed-ups change nothing: pairs verified in a thread pool give
the same groups as one by one, the template search for smooth pictures finds their
copies after its coarse pass, the keypoints' coarse pass aligns copies and sends other
pictures away early, a photo with more copies than the neighbours verified keeps them all,
and one photo's verified copies come best copy first."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps
from test_duplicates import copies_of, other_shot, scene_photos  # noqa: F401  (scene_photos: a fixture)

from conftest import draw_scene

import photosim.pipeline.duplicates as D
from photosim import Library
from photosim.search import Search
from photosim.values import CopyMatch
from photosim.pipeline import verify as V


def smooth(seed: int, size=(640, 480)) -> Image.Image:
    """A picture with almost no keypoints: a slightly blurred blend of soft colour blobs."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    out = np.zeros((h, w, 3))
    for _ in range(8):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.75), rng.uniform(0.05, 0.2)
        out += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / r ** 2)[..., None] * rng.uniform(40, 200, 3)
    out = np.clip(out + 20, 0, 255).astype(np.uint8)
    return Image.fromarray(out).filter(ImageFilter.GaussianBlur(2))


def test_smooth_pictures_are_verified_by_the_template_search_after_its_coarse_pass():
    original = smooth(3)
    a = V.Look.of_image(original)
    assert len(a.points) < V.TEXTURE_POINTS  # the template path is the one taken
    for name, im in {"half": original.resize((320, 240)), "turned": original.rotate(90, expand=True),
                     "mirror": ImageOps.mirror(original)}.items():
        b = V.Look.of_image(im)
        kept = V._coarse_placements(a, b, V.TEMPLATE_SIDE // 2)
        placements = 5 * (len(V._SMALL_RELS) + len(V._BIG_RELS))  # four turns and the mirror, each scale
        assert 0 < len(kept) < placements // 2, name  # the coarse pass leaves fewer placements to score
        check = V.verify(a, b)
        assert check.same, (name, check.why)
        assert check.matrix is not None and check.matrix.shape == (2, 3)
    assert V.verify(a, V.Look.of_image(original.rotate(90, expand=True))).turn in (90, 270)
    other = V.verify(a, V.Look.of_image(smooth(4)))
    assert not other.same and other.why


def test_the_template_search_tries_turns_and_the_mirror_but_not_both():
    """Upside down and mirrored, a smooth landscape is its own reflection in the water:
    that orientation is not tried for pictures without keypoints (no one edits a copy so)."""
    original = smooth(5)
    a = V.Look.of_image(original)
    for im in (original.rotate(180), ImageOps.mirror(original)):
        found = V._by_template(a, V.Look.of_image(im))
        assert found is not None and found.same
    upside_down_mirror = V._by_template(a, V.Look.of_image(ImageOps.flip(original)))
    assert upside_down_mirror is None or not upside_down_mirror.same


def test_the_coarse_pass_aligns_copies_and_sends_other_pictures_away(monkeypatch):
    big = draw_scene(5, (1280, 960))
    original = big.crop((100, 80, 1100, 830)).resize((800, 600))
    a = V.Look.of_image(original)
    assert len(a.points) > V.COARSE_POINTS  # there is a coarse pass
    calls = []
    real = V._aligned
    monkeypatch.setattr(V, "_aligned", lambda a, b, mirrored, points: (calls.append(points), real(a, b, mirrored, points))[1])
    crop = V.Look.of_image(copies_of(original)["crop"])
    calls.clear()
    assert V.verify(a, crop).same and calls == [V.COARSE_POINTS]  # aligned by the strongest points alone
    noise = np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8)
    calls.clear()
    unrelated = V.verify(a, V.Look.of_image(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1.5))))
    assert not unrelated.same and calls == [V.COARSE_POINTS, V.COARSE_POINTS]  # both ways round, no full match
    # with the coarse pass or without it, the same verdicts
    shot = V.Look.of_image(other_shot(big, (260, 180, 1260, 930), 5).resize((800, 600)))
    copies = [V.Look.of_image(im) for im in copies_of(original).values()]
    with_coarse = [V.verify(a, b).same for b in [shot, *copies]]
    monkeypatch.setattr(V, "COARSE_POINTS", 10**9)
    assert [V.verify(a, b).same for b in [shot, *copies]] == with_coarse == [False] + [True] * len(copies)


def test_the_full_match_runs_one_way_round_the_one_the_coarse_pass_agreed_more(monkeypatch):
    big = draw_scene(5, (1280, 960))
    original = big.crop((100, 80, 1100, 830)).resize((800, 600))
    a = V.Look.of_image(original)
    calls = []
    real = V._aligned

    def counting(a, b, mirrored, points):
        check = real(a, b, mirrored, points)
        calls.append((points, mirrored, check.inliers))
        return check

    monkeypatch.setattr(V, "_aligned", counting)
    # another shot aligns in part: enough agreement in the coarse pass to go on
    shot = V.Look.of_image(other_shot(big, (260, 180, 1260, 930), 5).resize((800, 600)))
    assert not V.verify(a, shot).same
    coarse = {m: n for points, m, n in calls if points == V.COARSE_POINTS}
    full = [(m, n) for points, m, n in calls if points is None]
    assert sorted(coarse) == [False, True] and max(coarse.values()) >= V.COARSE_MIN_INLIERS
    assert [m for m, _ in full] == [max(coarse, key=lambda m: (coarse[m], not m))]
    # a mirrored copy the coarse pass could not settle goes on to the full match mirrored
    calls.clear()
    monkeypatch.setattr(V, "_residual", lambda *_: (0.0, 1.0, 1.0))  # every alignment judged "another framing"
    assert not V.verify(a, V.Look.of_image(ImageOps.mirror(original))).same
    assert [(points, m) for points, m, _ in calls] == [(V.COARSE_POINTS, False), (V.COARSE_POINTS, True), (None, True)]


def test_faiss_and_opencv_give_the_same_keypoint_matches(monkeypatch):
    from photosim.pipeline import hamming

    if not hamming.faiss_available():
        pytest.skip("faiss is not installed here (a Linux-only dependency)")
    big = draw_scene(9, (1280, 960))
    a = V.Look.of_image(big.crop((100, 80, 1100, 830)))
    looks = [V.Look.of_image(im) for im in copies_of(big.crop((100, 80, 1100, 830))).values()]
    looks.append(V.Look.of_image(other_shot(big, (260, 180, 1260, 930), 9)))
    for b in looks:
        d1, i1 = hamming.two_nearest(b.desc, a.desc, use_faiss=True)
        d2, i2 = hamming.two_nearest(b.desc, a.desc, use_faiss=False)
        assert np.array_equal(d1, d2)
        with_faiss = V._match(a.desc, b.desc)
        monkeypatch.setattr(hamming, "_faiss", lambda: None)  # as where faiss is not installed
        with_opencv = V._match(a.desc, b.desc)
        monkeypatch.undo()
        assert len(with_faiss[0]) > 20
        assert all(np.array_equal(x, y) for x, y in zip(with_faiss, with_opencv))


def test_more_copies_than_the_neighbours_verified_all_join_one_group(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    original = draw_scene(31, (1280, 960)).crop((100, 80, 1100, 830)).resize((800, 600))
    original.save(root / "original.jpg", quality=95)
    n = D.NEAR_K + 4
    for i in range(n):
        side = 760 - 40 * i
        original.resize((side, side * 3 // 4)).save(root / f"copy{i}.jpg", quality=60 + 4 * i)
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        near = [g for g in lib.duplicates() if g.tier == "near"]
        assert [len(g.photos) for g in near] == [n + 1]
        assert near[0].keeper.name == "original.jpg"


def test_the_thread_pool_gives_the_groups_of_one_by_one(tmp_path, scene_photos, monkeypatch):  # noqa: F811
    root, _ = scene_photos
    threads = set()
    real = D.verify

    def recording(a, b):
        threads.add(threading.current_thread().name)
        return real(a, b)

    monkeypatch.setattr(D, "verify", recording)
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        found = {}
        for workers in (1, 3):
            monkeypatch.setattr(D, "VERIFY_WORKERS", workers)
            threads.clear()
            groups = lib.duplicates(threshold=0.3)  # many candidates: most pairs are refused
            found[workers] = [(g.tier, [p.name for p in g.photos], g.scores, g.reasons) for g in groups]
            if workers == 1:
                assert threads == {threading.current_thread().name}
            else:
                assert any(t.startswith("verify") for t in threads)
        assert found[1] == found[3]
        assert sum(g[0] == "near" for g in found[1]) == 2


def test_an_edited_copy_finds_its_original_first(tmp_path, scene_photos):  # noqa: F811
    root, truth = scene_photos
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        for seed in (11, 12):
            for kind in copies_of(Image.new("RGB", (8, 8))):
                if kind == "border":  # nothing holds all of a bordered copy's frame
                    continue
                name = f"s{seed}_copy_{kind}.jpg"
                found = lib.copies_of(lib.photo(str(root / name)))
                names = [m.photo.name for m in found]
                assert names and names[0] == f"s{seed}_original.jpg", (name, names)
                assert set(names) <= truth[seed] and f"s{seed}_other.jpg" not in names
                assert all(-1.0 <= m.score <= 1.0 for m in found)
        assert lib.copies_of(lib.photo(str(root / "s11_other.jpg"))) == []


def test_similar_with_copies_first_puts_the_original_above_a_closer_other_shot(tmp_path, scene_photos, monkeypatch):  # noqa: F811
    root, truth = scene_photos
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        query = lib.photo(str(root / "s11_copy_crop.jpg"))
        plain = lib.similar(query, k=6)
        assert not any(isinstance(m, CopyMatch) for m in plain)
        # the cosine's order turned round (the 6 nearest: all are verified), so that other photos
        # come before the original:
        # copies_first must still put the verified original first, then the copies
        real = Search.matches
        monkeypatch.setattr(Search, "matches", lambda self, *a, **kw: real(self, *a, **kw)[::-1])
        turned = lib.similar(query, k=6)
        assert turned[0].photo.name != "s11_original.jpg"
        first = lib.similar(query, k=6, copies_first=True)
        assert {m.photo.id for m in first} == {m.photo.id for m in plain}  # the same photos, reordered
        copies = [m for m in first if isinstance(m, CopyMatch)]
        assert copies and first[:len(copies)] == copies
        assert copies[0].photo.name == "s11_original.jpg" and copies[0].source and copies[0].reasons
        assert {m.photo.name for m in copies} <= truth[11] and "s11_other.jpg" not in {m.photo.name for m in copies}
        rest = first[len(copies):]
        assert rest == [m for m in turned if m.photo.id not in {c.photo.id for c in copies}]
        # another shot has no verified copies: the order stays the cosine's
        other = lib.photo(str(root / "s11_other.jpg"))
        assert lib.similar(other, k=6, copies_first=True) == lib.similar(other, k=6)
        # a query whose file is gone since the scan: the plain order, no error
        (root / "s11_copy_crop.jpg").unlink()
        assert lib.similar(query, k=6, copies_first=True) == turned
