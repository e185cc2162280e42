"""The gallery's windows in SQL (photosim/store/gallery.py): orders, filters, the row of a
photo, a view that holds still while photos are added, and the sort keys' migration."""

from __future__ import annotations

import os
import random

import pytest
from sqlalchemy import insert, text

from conftest import older_library
from photosim import Library
from photosim.store.gallery import date_key, natural_key, sort_keys
from photosim.store.schema import Photo

_COLUMNS = ("path", "size", "mtime_ns", "taken_at", "status", "scanned_at", "name_key", "folder_key", "date_key")


def fill_rows(lib: Library, paths, *, status: str = "ok", taken=None) -> None:
    """Photo rows without files, written with one executemany (fast enough for 10^5 rows);
    their sort keys computed as the writer computes them."""
    rows = []
    for i, path in enumerate(paths):
        when = taken(i) if taken else None
        mtime = 1_600_000_000_000_000_000 + i * 1_000_000_000
        keys = sort_keys(path, when, mtime)
        rows.append((os.fsencode(path), 1000 + i, mtime, when, status, 0.0,
                     keys["name_key"], keys["folder_key"], keys["date_key"]))
    with lib.store.write() as s:
        s.connection().exec_driver_sql(
            f"INSERT INTO photos ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", rows)


def _natural(text_):  # the order a person expects, written another way than natural_key
    import re

    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"([0-9]+)", text_.casefold()) if t]


@pytest.fixture
def lib(tmp_path):
    with Library(tmp_path / "lib") as lib:
        yield lib


def test_natural_key_orders_numbers_by_value_and_ignores_case():
    names = ["IMG_10.jpg", "img_2.jpg", "IMG_1.jpg", "b.jpg", "A.jpg", "IMG_1b.jpg", "IMG_01a.jpg", "2.jpg", "10.jpg"]
    assert sorted(names, key=natural_key) == ["2.jpg", "10.jpg", "A.jpg", "b.jpg", "IMG_1.jpg", "IMG_01a.jpg",
                                              "IMG_1b.jpg", "img_2.jpg", "IMG_10.jpg"]
    rng = random.Random(3)
    words = ["".join(rng.choice("ab1290_.") for _ in range(rng.randrange(1, 9))) for _ in range(400)]
    assert [_natural(w) for w in sorted(words, key=natural_key)] == sorted(_natural(w) for w in words)
    # a folder's key is a prefix of the keys of what is under it (its range is an index range)
    for folder in ("/p/a", "/p/a1", "/p/a b", "/p/Ä1x"):
        assert natural_key(folder + "/sub/x1").startswith(natural_key(folder + "/"))
    assert natural_key("caf\udce9") > natural_key("caf")  # a non-UTF-8 name (surrogate-escaped) still has a key
    assert date_key("2020-01-02T03:04:05", 0) == "2020-01-02T03:04:05"


def test_pages_follow_each_order_both_ways(lib):
    rng = random.Random(1)
    folders = ["/p/b1", "/p/b12", "/p/B2", "/p/a", "/p/a/sub"]
    paths = sorted({f"{rng.choice(folders)}/IMG_{rng.randrange(1, 400)}.JPG" for _ in range(700)})
    rng.shuffle(paths)
    fill_rows(lib, paths, taken=lambda i: None if i % 3 else f"20{10 + i % 9}-01-01T00:00:00")
    g = lib.gallery
    every = {p.id: p for p in g.page(0, 10_000)}
    assert g.count() == len(paths) == len(every)
    orders = {
        "name": lambda p: (_natural(p.name), _natural(p.folder), p.id),
        "folder": lambda p: (_natural(p.folder), _natural(p.name), p.id),
        "date": lambda p: (date_key(p.taken_at, p.mtime_ns), _natural(p.name), p.id),
    }
    for sort, key in orders.items():
        for descending in (False, True):
            want = sorted(every.values(), key=key, reverse=descending)
            got = [p for start in range(0, len(paths), 256) for p in g.page(start, 256, sort=sort,
                                                                            descending=descending)]
            assert [p.id for p in got] == [p.id for p in want], (sort, descending)
            for row in (0, 1, 255, 256, 300, len(want) - 1):
                assert g.row_of(want[row].id, sort=sort, descending=descending) == row


def test_folder_and_album_filters_are_exact(lib):
    paths = [f"/p/{folder}/x{i}.jpg" for folder in ("b1", "b12", "b1 c", "B1", "b1/deep") for i in range(5)]
    fill_rows(lib, paths)
    g = lib.gallery
    shown = [p.path for p in g.page(0, 100, sort="folder", folder="/p/b1")]
    # the folder and what is under it; not b12, "b1 c", nor B1 (same key once casefolded)
    assert sorted(shown) == sorted(p for p in paths if p.startswith(("/p/b1/",)))
    assert g.count(folder="/p/b1") == 10 and g.count(folder="/p/b1/") == 10
    # every folder once (B1 too, though it is b1 once casefolded), in natural order
    assert g.folders() == ["/p/B1", "/p/b1", "/p/b1 c", "/p/b1/deep", "/p/b12"]
    ids = [p.id for p in g.page(0, 100, sort="name")]
    album = lib.add_to_album("Picked", ids[3:9])
    album_id = next(a.id for a in lib.albums() if a.name == album.name)
    got = g.page(0, 100, sort="name", album=album_id)
    assert [p.id for p in got] == ids[3:9]
    assert g.count(album=album_id) == 6 and g.row_of(ids[5], sort="name", album=album_id) == 2
    assert g.row_of(ids[0], album=album_id) is None  # not in the album
    assert g.count(album=album_id, folder="/p/b12") == sum(1 for p in got if p.folder == "/p/b12")


def test_a_view_that_holds_still_puts_new_photos_after_the_ones_shown(lib):
    fill_rows(lib, [f"/p/IMG_{i}.jpg" for i in (5, 20)])
    g = lib.gallery
    upto = g.max_id()
    fill_rows(lib, [f"/p/IMG_{i}.jpg" for i in (1, 10)])  # a scan adds two photos
    still = [p.name for p in g.page(0, 10, sort="name", upto=upto)]
    assert still == ["IMG_5.jpg", "IMG_20.jpg", "IMG_1.jpg", "IMG_10.jpg"]
    assert [p.name for p in g.page(2, 10, sort="name", upto=upto)] == ["IMG_1.jpg", "IMG_10.jpg"]
    assert [p.name for p in g.page(1, 2, sort="name", descending=True, upto=upto)] == ["IMG_5.jpg", "IMG_1.jpg"]
    new = g.page(3, 1, sort="name", upto=upto)[0]
    assert g.row_of(new.id, sort="name", upto=upto) == 3 and g.count(upto=upto) == 4
    # the scan finished: one full sort
    assert [p.name for p in g.page(0, 10, sort="name")] == ["IMG_1.jpg", "IMG_5.jpg", "IMG_10.jpg", "IMG_20.jpg"]


def test_keys_follow_writes_of_the_orm_and_of_core_inserts(lib):
    with lib.store.write() as s:
        s.execute(insert(Photo), [{"path": "/p/IMG_10.jpg", "size": 1, "mtime_ns": 0, "status": "ok", "scanned_at": 0},
                                  {"path": "/p/IMG_9.jpg", "size": 1, "mtime_ns": 0, "status": "ok", "scanned_at": 0}])
        s.add(Photo(path="/q/img_2.jpg", size=1, mtime_ns=0, status="ok", scanned_at=0, taken_at="1999-01-01T00:00:00"))
    g = lib.gallery
    assert [p.name for p in g.page(0, 9, sort="name")] == ["img_2.jpg", "IMG_9.jpg", "IMG_10.jpg"]
    # the date shown: EXIF's (1999), else the file's (1970 here)
    assert [p.name for p in g.page(0, 9, sort="date")] == ["IMG_9.jpg", "IMG_10.jpg", "img_2.jpg"]
    moved = g.page(2, 1, sort="name")[0]
    with lib.store.write() as s:  # a move (the scan's way): the row's keys follow its new path
        s.get(Photo, moved.id).path = "/a/IMG_0.jpg"
    assert g.page(0, 1, sort="name")[0].id == moved.id and g.page(0, 1, sort="folder")[0].id == moved.id
    with lib.store.write() as s:  # unreadable now: not in the gallery
        s.get(Photo, moved.id).status = "error"
    assert g.count() == 2 and g.row_of(moved.id) is None


def test_migration_gives_an_older_library_its_sort_keys(tmp_path):
    older_library(tmp_path / "lib", 5, [("/p/" + name, "ok") for name in ("IMG_10.jpg", "IMG_9.jpg", "a/IMG_1.jpg")])
    with Library(tmp_path / "lib") as lib:
        assert lib.schema_from == 5
        assert [p.name for p in lib.gallery.page(0, 9, sort="name")] == ["IMG_1.jpg", "IMG_9.jpg", "IMG_10.jpg"]
        with lib.store.read() as s:
            plan = " ".join(r[-1] for r in s.execute(text(
                "EXPLAIN QUERY PLAN SELECT id FROM photos WHERE status = 'ok' ORDER BY name_key, folder_key, id")))
        assert "ix_photos_sort_name" in plan and "TEMP B-TREE" not in plan
