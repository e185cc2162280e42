"""The duplicate search's speed-ups change nothing: pairs verified in a thread pool give
the same groups as one by one, the template search for smooth pictures finds their
copies after its coarse pass, and one photo's verified copies come best copy first."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image, ImageFilter, ImageOps
from test_duplicates import copies_of, scene_photos  # noqa: F401  (scene_photos: a fixture)

import photosim.pipeline.duplicates as D
from photosim import Library
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
        assert 0 < len(kept) < 152 // 2, name  # the coarse pass leaves fewer placements to score
        check = V.verify(a, b)
        assert check.same, (name, check.why)
        assert check.matrix is not None and check.matrix.shape == (2, 3)
    assert V.verify(a, V.Look.of_image(original.rotate(90, expand=True))).turn in (90, 270)
    other = V.verify(a, V.Look.of_image(smooth(4)))
    assert not other.same and other.why


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
