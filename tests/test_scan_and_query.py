"""End-to-end engine behaviour on generated photos: scan, query, re-scan, duplicates, export."""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import shutil
import threading

import numpy as np
import pytest
from PIL import Image

from photosim import Library, PhotosimError
from photosim.cli import main as cli_main
from photosim.edits import colour, crop, exposure, jpeg, resize

from conftest import draw_scene, write_scenes

EDITS = {
    "crop": lambda im, rng: crop(im, rng, min_area=0.7),
    "resize": lambda im, rng: resize(im, rng, min_scale=0.4, max_scale=0.7),
    "reencode": lambda im, rng: jpeg(im, rng, min_quality=40, max_quality=60),
    "brightness": exposure,
    "colour": colour,
    "small-rotate": lambda im, rng: im.rotate(rng.uniform(-4, 4), resample=Image.BICUBIC, expand=False),
}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """A library of 16 generated photos, shared by the read-only tests of this module."""
    base = tmp_path_factory.mktemp("scanned")
    root = base / "photos"
    write_scenes(root / "a", range(100, 108))
    write_scenes(root / "b", range(108, 116))
    lib = Library(base / "lib")
    report = lib.scan([root])
    assert report.added == 16 and not report.failed
    yield lib, root, base
    lib.close()


def test_scan_records_metadata_and_vectors(scanned):
    lib, root, _ = scanned
    photos = lib.photos()
    assert len(photos) == 16
    p = photos[0]
    assert (p.width, p.height) == (640, 480)
    assert p.status == "ok" and p.content_hash and p.size > 0
    vec = lib.vector(p.id)
    assert vec.shape == (lib.card.dim,)
    assert abs(np.linalg.norm(vec) - 1) < 1e-4
    info = lib.info()
    assert info.photos == 16 and info.indexed == 16 and info.index_size == 16
    assert info.encoder_id == lib.card.id
    assert lib.roots() == [str(root)]


def test_edited_copies_find_their_original(scanned, tmp_path):
    lib, root, _ = scanned
    rng = random.Random(7)
    originals = sorted((root / "a").glob("*.jpg")) + sorted((root / "b").glob("*.jpg"))
    misses = []
    for orig in originals[::2]:
        base = Image.open(orig).convert("RGB")
        for name, edit in EDITS.items():
            out = tmp_path / f"{orig.stem}-{name}.jpg"
            edit(base, rng).save(out, quality=90)
            top = lib.similar_to_image(out, k=1)[0]
            if top.photo.path != str(orig):
                misses.append((orig.name, name, top.photo.name, top.score))
    assert not misses, misses
    # nothing queried from outside was added
    assert len(lib.photos()) == 16


def test_similar_excludes_query_and_respects_k_and_min_score(scanned):
    lib, _, _ = scanned
    p = lib.photos()[3]
    res = lib.similar(p, k=5)
    assert len(res) == 5
    assert p.id not in {m.photo.id for m in res}
    scores = [m.score for m in res]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0001 <= s <= 1.0001 for s in scores)
    # k larger than the library is clamped, not an error
    assert len(lib.similar(p, k=1000)) == 15
    cut = scores[2]
    assert all(m.score >= cut for m in lib.similar(p, k=5, min_score=cut))
    assert len(lib.similar(p, k=5, min_score=cut)) == 3
    # querying a library photo by path is the same as by photo, itself excluded
    assert [m.photo.id for m in lib.similar_to_image(p.path, k=5)] == [m.photo.id for m in res]
    # by id and by path, the same answer; an id or a path not in the library is told
    assert [m.photo.id for m in lib.similar(p.id, k=5)] == [m.photo.id for m in res]
    assert [m.photo.id for m in lib.similar(p.path, k=5)] == [m.photo.id for m in res]
    with pytest.raises(PhotosimError, match="not in the library"):
        lib.similar(10**9)
    with pytest.raises(PhotosimError, match="not in the library"):
        lib.similar(os.path.join(os.path.dirname(p.path), "no-such-photo.jpg"))


def test_query_from_bytes_and_pil_match_file(scanned):
    lib, root, _ = scanned
    path = sorted((root / "a").glob("*.jpg"))[0]
    buf = io.BytesIO()
    Image.open(path).save(buf, "PNG")
    by_bytes = lib.similar_to_image(buf.getvalue(), k=1)[0]
    by_pil = lib.similar_to_image(Image.open(path), k=1)[0]
    assert by_bytes.photo.path == str(path) == by_pil.photo.path
    assert by_bytes.score > 0.97


def test_same_file_gives_same_vector(scanned, tmp_path):
    lib, root, _ = scanned
    # the same photos scanned again (another run, another library): identical vectors
    with Library(tmp_path / "again") as other:
        other.scan([root])
        for p in lib.photos():
            np.testing.assert_array_equal(other.vector(other.photo(p.path).id), lib.vector(p.id))
    # alone rather than in a batch of 32: equal up to float rounding
    path = sorted((root / "b").glob("*.jpg"))[1]
    alone = lib.embed_image(path)
    np.testing.assert_allclose(lib.vector(lib.photo(path).id), alone, atol=2e-4)
    np.testing.assert_array_equal(lib.embed_image(path), alone)


def test_export_vectors(scanned, tmp_path):
    lib, _, _ = scanned
    out = tmp_path / "v.npz"
    assert lib.export_vectors(out) == 16
    data = np.load(out)
    assert data["vectors"].dtype == np.float32 and data["vectors"].shape == (16, lib.card.dim)
    for path, vec in zip(data["paths"], data["vectors"]):
        assert os.path.isabs(str(path))
        np.testing.assert_array_equal(vec, lib.vector(lib.photo(str(path)).id))


def test_duplicates_group_edited_copies(tmp_path):
    root = tmp_path / "photos"
    write_scenes(root, range(200, 206))
    rng = random.Random(1)
    for seed in (200, 201):
        im = Image.open(root / f"scene_{seed:03d}.jpg")
        jpeg(resize(im, rng, 0.5, 0.6), rng, 50, 60).save(root / f"copy_{seed}.jpg")
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        groups = lib.duplicates()  # at the encoder's own threshold
        names = sorted(sorted(p.name for p in g.photos) for g in groups)
        assert names == [["copy_200.jpg", "scene_200.jpg"], ["copy_201.jpg", "scene_201.jpg"]]
        for g in groups:
            assert g.photos[0].name.startswith("scene_")  # the larger one is the keeper
            assert g.scores[0] == pytest.approx(1.0, abs=1e-4) and g.scores[1] >= lib.card.duplicate_threshold


def test_rescan_is_incremental(tmp_path):
    root = tmp_path / "photos"
    paths = write_scenes(root / "x", range(300, 306))
    with Library(tmp_path / "lib") as lib:
        assert lib.scan([root]).added == 6
        ids = {p.path: p.id for p in lib.photos()}
        vec_before = lib.vector(ids[str(paths[0])])

        r = lib.scan([root])
        assert (r.added, r.updated, r.moved, r.removed, r.unchanged) == (0, 0, 0, 0, 6)

        # add one, move one to another folder, rename one, delete one
        write_scenes(root / "x", [306])
        (root / "y").mkdir()
        shutil.move(paths[0], root / "y" / "moved.jpg")
        os.rename(paths[1], root / "x" / "renamed.jpg")
        os.remove(paths[2])
        r = lib.scan([root])
        assert (r.added, r.moved, r.removed, r.unchanged) == (1, 2, 1, 3), r
        moved = lib.photo(root / "y" / "moved.jpg")
        assert moved.id == ids[str(paths[0])]  # same row, same vector, no re-embedding
        np.testing.assert_array_equal(lib.vector(moved.id), vec_before)
        assert lib.photo(root / "x" / "renamed.jpg").id == ids[str(paths[1])]
        assert lib.photo(paths[2]) is None
        assert ids[str(paths[2])] not in lib.index
        assert len(lib.index) == len(lib.photos()) == 6
        assert all(m.photo.path != str(paths[2]) for m in lib.similar(moved, k=10))

        # a changed file is re-embedded in place
        draw_scene(999).save(paths[3], quality=90)
        os.utime(paths[3], ns=(1, 10**18))
        r = lib.scan([root])
        assert (r.updated, r.unchanged) == (1, 5)
        assert lib.photo(paths[3]).id == ids[str(paths[3])]

        # an identical copy borrows the vector of its twin
        shutil.copy(paths[4], root / "x" / "twin.jpg")
        r = lib.scan([root])
        assert r.added == 1
        twin = lib.photo(root / "x" / "twin.jpg")
        np.testing.assert_array_equal(lib.vector(twin.id), lib.vector(lib.photo(paths[4]).id))


def test_scan_of_missing_folder_is_a_clear_error(library, tmp_path):
    with pytest.raises(PhotosimError, match="not a folder"):
        library.scan([tmp_path / "nope"])


def test_progress_and_cancel(tmp_path):
    root = tmp_path / "photos"
    write_scenes(root, range(400, 412), size=(320, 240))
    events = []
    with Library(tmp_path / "lib") as lib:
        def cancel():  # once a batch is committed (progress events are throttled to 10 a second,
            return lib.count(status="ok") >= 4  # so a fast encoder can finish before one says 4)

        r = lib.scan([root], progress=events.append, cancel=cancel, batch_size=4)
        assert r.cancelled
        kept = len(lib.photos())
        assert 4 <= kept < 12
        assert len(lib.index) == kept
        assert events[0].stage == "listing" and any(e.stage == "scanning" and e.total == 12 for e in events)
        # resuming finishes the job; committed photos are not redone
        r = lib.scan([root])
        assert not r.cancelled and r.added == 12 - kept and r.unchanged == kept
        assert len(lib.photos()) == 12 == len(lib.index)


def test_the_encoder_takes_what_is_decoded_when_the_next_photo_is_slow(tmp_path, monkeypatch):
    """A batch goes to the encoder before it is full when the next photo is still being
    decoded (the scan's first batch, a slow file), instead of leaving the encoder idle."""
    from photosim.pipeline import scan as scan_mod

    root = tmp_path / "photos"
    write_scenes(root, range(500, 520), size=(320, 240))
    flushed, released, started = [], threading.Event(), itertools.count()
    real_work, real_flush = scan_mod.Scan._work, scan_mod.Scan._flush

    def slow_work(self, item, row_id, known):
        if next(started) == scan_mod.EARLY_BATCH + 1:  # decodes only once something was embedded
            released.wait(timeout=10)
        return real_work(self, item, row_id, known)

    def flush(self, batch):
        flushed.append(len(batch))
        released.set()
        return real_flush(self, batch)

    monkeypatch.setattr(scan_mod.Scan, "_work", slow_work)
    monkeypatch.setattr(scan_mod.Scan, "_flush", flush)
    with Library(tmp_path / "lib") as lib:
        report = lib.scan([root], batch_size=32, workers=1)
        assert report.added == 20 and lib.count(status="ok") == 20 == len(lib.index)
    assert scan_mod.EARLY_BATCH <= flushed[0] < 20 and sum(flushed) == 20


def test_cli_json_outputs(scanned, capsys):
    lib, root, base = scanned
    q = sorted((root / "a").glob("*.jpg"))
    lib.close()  # the CLI opens its own handle
    try:
        assert cli_main(["similar", str(q[0]), str(q[1]), "-k", "3", "--json", "--library", str(base / "lib")]) == 0
        out = json.loads(capsys.readouterr().out)
        assert [o["query"] for o in out] == [str(q[0]), str(q[1])]
        assert all(len(o["results"]) == 3 for o in out)
        # a verified copy (listed first) says so and how; every other result is a path and a score
        assert all(set(r) == ({"path", "score", "copy", "reasons"} if r.get("copy") else {"path", "score"})
                   for o in out for r in o["results"])
        assert str(q[0]) not in [r["path"] for r in out[0]["results"]]
        assert cli_main(["info", "--json", "--library", str(base / "lib")]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["photos"] == 16 and info["failed"] == []
        assert cli_main(["similar", str(base / "missing.jpg"), "--library", str(base / "lib")]) == 1
        assert "error" in capsys.readouterr().out
    finally:
        lib.__init__(base / "lib")


def test_duplicates_progress_cancel_and_trash(tmp_path, monkeypatch):
    from photosim import Cancelled

    root = tmp_path / "photos"
    paths = write_scenes(root, range(500, 504))
    rng = random.Random(2)
    copy = root / "copy.jpg"
    jpeg(Image.open(paths[0]), rng, 60, 70).save(copy)
    trashed = []
    monkeypatch.setattr("send2trash.send2trash", lambda p: (trashed.append(p), os.remove(p)))
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        seen = []
        groups = lib.duplicates(threshold=0.9, progress=lambda p: seen.append((p.done, p.total)))
        assert seen[-1] == (5, 5) and len(groups) == 1
        with pytest.raises(Cancelled):
            lib.duplicates(threshold=0.9, cancel=lambda: True)
        victim = next(p for p in groups[0].photos if p.name == "copy.jpg")
        assert lib.move_to_trash([victim.id]) == []
        assert trashed == [str(copy)] and not copy.exists()
        assert lib.photo(victim.id) is None and victim.id not in lib.index
        assert lib.duplicates(threshold=0.9) == []
        # forget() drops a photo from the library but never touches the file
        keep = lib.photo(paths[1])
        lib.forget([keep.id])
        assert lib.photo(paths[1]) is None and paths[1].exists()


def test_several_images_at_once_keep_each_photos_best_score(scanned):
    lib, root, _ = scanned
    a, b = sorted((root / "a").glob("*.jpg"))[:2]
    per_query = [lib.similar_to_image(q, k=6) for q in (a, b)]
    merged = lib.similar_to_images([a, b], k=6)
    assert len(merged) == 6 and len({m.photo.id for m in merged}) == 6
    for m in merged:
        best = max(x.score for results in per_query for x in results if x.photo.id == m.photo.id)
        assert m.score == pytest.approx(best)
    assert [m.score for m in merged] == sorted((m.score for m in merged), reverse=True)


def test_duplicates_default_to_the_encoders_own_threshold(tmp_path):
    """Each encoder has its own similarity scale, so the near-duplicate threshold comes
    from its card unless the caller gives one."""
    from photosim import Library

    photos = tmp_path / "photos"
    photos.mkdir()
    base = draw_scene(3, (160, 120))
    base.save(photos / "a.jpg", quality=95)
    base.save(photos / "b.jpg", quality=60)  # a re-compressed copy
    draw_scene(77, (160, 120)).save(photos / "c.jpg", quality=95)
    with Library(tmp_path / "lib") as lib:
        lib.scan([photos])
        assert 0.5 <= lib.card.duplicate_threshold <= 0.99
        found = lib.duplicates()
        assert [sorted(p.path.rsplit("/", 1)[1] for p in g.photos) for g in found] == [["a.jpg", "b.jpg"]]
        from photosim.pipeline.duplicates import CANDIDATE_MARGIN

        lib.card.duplicate_threshold = 0.9999 + CANDIDATE_MARGIN  # candidates stricter than a re-compression
        assert lib.duplicates() == []
        assert len(lib.duplicates(threshold=0.5)) >= 1  # an explicit threshold wins


def test_similar_to_a_photo_that_failed_says_why_by_id_and_by_path(tmp_path):
    root = tmp_path / "photos"
    write_scenes(root, range(3))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        failed = next(p for p in lib.problems.list() if p.name == "broken.jpg")
        for ref in (failed.id, failed.path):
            with pytest.raises(PhotosimError, match="broken.jpg has no vector"):
                lib.similar(ref)
