"""The counts of photos by status that triggers keep (the gallery's first screen and
``info`` read them instead of counting every row) agree with the rows through a scan, a
photo turning unreadable and readable again, a removed file, a forgotten photo, imported
vectors, and the upgrade of an older library."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from photosim import Library

from conftest import older_library, write_scenes


def _kept(lib) -> dict[str, int]:
    with lib.store.read() as s:
        return {st: n for st, n in s.execute(text("SELECT status, n FROM photo_counts")) if n}


def _counted(lib) -> dict[str, int]:
    with lib.store.read() as s:
        return dict(s.execute(text("SELECT status, count(*) FROM photos GROUP BY status")).all())


def _vectors_kept_and_counted(lib) -> tuple[dict[str, int], dict[str, int]]:
    with lib.store.read() as s:
        kept = {e: n for e, n in s.execute(text("SELECT encoder_id, n FROM vector_counts")) if n}
        counted = dict(s.execute(text("SELECT encoder_id, count(*) FROM vectors GROUP BY encoder_id")).all())
    return kept, counted


def test_the_kept_counts_follow_scans_failures_removals_and_forgetting(tmp_path):
    photos = tmp_path / "photos"
    paths = write_scenes(photos, range(5))
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    with Library(tmp_path / "lib") as lib:
        lib.scan([photos])
        assert _kept(lib) == _counted(lib) == {"ok": 5, "error": 1}
        kept, counted = _vectors_kept_and_counted(lib)
        assert kept == counted == {lib.encoder_id: 5} and lib.info().indexed == 5
        assert lib.count(status="ok") == 5 and lib.count(status="error") == 1 and lib.count() == 6
        assert lib.gallery.count() == 5
        write_scenes(tmp_path / "fixed", [9])
        os.replace(tmp_path / "fixed" / os.listdir(tmp_path / "fixed")[0], photos / "broken.jpg")
        paths[0].write_bytes(b"damaged now")
        paths[1].unlink()
        write_scenes(tmp_path / "other", [30])  # another picture under a known name: its vector
        os.replace(tmp_path / "other" / os.listdir(tmp_path / "other")[0], paths[2])  # is replaced
        lib.scan([photos])
        assert _kept(lib) == _counted(lib) == {"ok": 4, "error": 1}
        kept, counted = _vectors_kept_and_counted(lib)
        assert kept == counted and sum(kept.values()) == lib.info().indexed
        lib.forget([lib.gallery.page(0, 1)[0].id])
        assert _kept(lib) == _counted(lib) == {"ok": 3, "error": 1}
        assert _vectors_kept_and_counted(lib)[0] == _vectors_kept_and_counted(lib)[1]
        assert lib.gallery.count() == 3 and lib.gallery.count(upto=0) == 3
        last = lib.gallery.max_id()
        write_scenes(photos / "new", [20, 21])  # two photos after the view's ``upto``, and the
        lib.scan([photos])  # forgotten one again (its file is still there)
        assert lib.gallery.count(upto=last) == len(lib.gallery.page(0, 99, upto=last)) == 6
        assert [p.id > last for p in lib.gallery.page(0, 99, upto=last)] == [False] * 3 + [True] * 3
        assert _kept(lib) == _counted(lib)
        kept, counted = _vectors_kept_and_counted(lib)
        assert kept == counted == {lib.encoder_id: 6}
        ids = [p.id for p in lib.gallery.page(0, 4)]
        other = np.eye(4, lib.card.dim, dtype=np.float32)
        with lib.store.write() as s:  # another model's vectors (a fine-tune's), written twice
            lib.store.vectors.put(s, "other-model", ids, other)
        with lib.store.write() as s:
            lib.store.vectors.put(s, "other-model", ids[:2], other[:2])
        assert _vectors_kept_and_counted(lib)[0] == {lib.encoder_id: 6, "other-model": 4}
        lib.store.vectors.keep_only(lib.encoder_id)
        kept, counted = _vectors_kept_and_counted(lib)
        assert kept == counted == {lib.encoder_id: 6} and lib.store.vectors.count("other-model") == 0


def test_imported_vectors_count_and_an_older_library_gets_its_counts(tmp_path):
    older_library(tmp_path / "old", 8, [(f"/p/{i}.jpg", status) for i, status in enumerate(["ok", "ok", "error"])])
    with Library(tmp_path / "old") as lib:
        assert lib.schema_from == 8
        assert _kept(lib) == {"ok": 2, "error": 1} and lib.gallery.count() == 2
    paths = write_scenes(tmp_path / "photos", range(3))
    with Library(tmp_path / "lib") as lib:
        vectors = np.eye(3, lib.card.dim, dtype=np.float32)
        npz = tmp_path / "v.npz"
        np.savez(npz, paths=np.array([str(p) for p in paths]), vectors=vectors, encoder_id=np.array(lib.encoder_id))
        lib.import_vectors(npz)
        assert _kept(lib) == _counted(lib) == {"ok": 3} and lib.gallery.count() == 3


def test_a_new_library_has_pages_a_vector_row_does_not_waste(tmp_path):
    """With SQLite's 4 KB pages a 2 KB vector row had a page to itself: 4.1 KB a photo."""
    from photosim.store.schema import PAGE_SIZE

    with Library(tmp_path / "lib") as lib:
        with lib.store.read() as s:
            assert s.execute(text("PRAGMA page_size")).scalar() == PAGE_SIZE == 16384
        ids = []
        with lib.store.write() as s:
            for i in range(400):
                s.execute(text("INSERT INTO photos (path, size, mtime_ns, status, scanned_at) VALUES (:p, 1, 0, 'ok', 0)"),
                          {"p": os.fsencode(f"/p/{i}.jpg")})
            ids = [r[0] for r in s.execute(text("SELECT id FROM photos"))]
            lib.store.vectors.put(s, lib.encoder_id, ids, np.ones((len(ids), lib.card.dim), np.float32))
        with lib.store.read() as s:
            try:
                pages = s.execute(text("SELECT count(*) FROM dbstat WHERE name = 'vectors'")).scalar()
            except OperationalError:
                pytest.skip("this SQLite is built without its dbstat table")
        assert pages * PAGE_SIZE / len(ids) < 2.6 * 1024


def test_compacting_an_older_library_gives_it_the_new_pages_and_keeps_everything(tmp_path, monkeypatch):
    import photosim.store.schema as schema

    photos = tmp_path / "photos"
    write_scenes(photos, range(4))
    monkeypatch.setattr(schema, "PAGE_SIZE", 4096)  # a library made by the last version
    with Library(tmp_path / "lib") as lib:
        lib.scan([photos])
        with lib.store.read() as s:
            assert s.execute(text("PRAGMA page_size")).scalar() == 4096
    monkeypatch.undo()
    with Library(tmp_path / "lib") as lib:
        before = [m.photo.id for m in lib.similar(lib.photos()[0].id, k=3)]
        assert lib.set_feature_cache("labelled", compact=True) == 4
        with lib.store.read() as s:
            assert s.execute(text("PRAGMA page_size")).scalar() == 16384
            assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert lib.count(status="ok") == 4 and lib.info().indexed == 4 and lib.feature_cache().photos == 0
        assert [m.photo.id for m in lib.similar(lib.photos()[0].id, k=3)] == before
        write_scenes(tmp_path / "more", [7])
        assert lib.scan([tmp_path / "more"]).added == 1  # and it writes as before
