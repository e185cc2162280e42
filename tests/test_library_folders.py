"""Library.remove_root, and a cancelled first scan remembering its folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import write_scenes

from photosim.errors import PhotosimError, ReadOnlyLibrary


def test_remove_root_forgets_its_photos_but_not_the_files(tmp_path):
    from photosim import Library

    a = write_scenes(tmp_path / "photos" / "a", range(0, 3), size=(96, 72))
    b = write_scenes(tmp_path / "photos" / "b", range(3, 5), size=(96, 72))
    with Library(tmp_path / "lib") as lib:
        lib.scan([tmp_path / "photos" / "a", tmp_path / "photos" / "b"])
        assert len(lib.photos()) == 5
        assert lib.remove_root(tmp_path / "photos" / "a") == 3
        assert lib.roots() == [str(tmp_path / "photos" / "b")]
        assert sorted(p.path for p in lib.photos()) == sorted(map(str, b))
        assert len(lib.index) == 2 and lib.info().photos == 2
        assert all(p.exists() for p in a)  # never touched
        report = lib.rescan()
        assert report.added == 0 and len(lib.photos()) == 2  # not scanned again


def test_remove_root_keeps_photos_a_parent_folder_still_covers(tmp_path):
    from photosim import Library

    write_scenes(tmp_path / "photos" / "a", range(0, 2), size=(96, 72))
    with Library(tmp_path / "lib") as lib:
        lib.scan([tmp_path / "photos"])
        lib.scan([tmp_path / "photos" / "a"])
        assert lib.remove_root(tmp_path / "photos" / "a") == 0
        assert len(lib.photos()) == 2 and lib.roots() == [str(tmp_path / "photos")]


def test_a_cancelled_first_scan_remembers_its_folder(tmp_path):
    from photosim import Library

    write_scenes(tmp_path / "photos", range(0, 4), size=(96, 72))
    with Library(tmp_path / "lib") as lib:
        report = lib.scan([tmp_path / "photos"], cancel=lambda: True)
        assert report.cancelled
        assert lib.roots() == [str(tmp_path / "photos")]
        lib.rescan()
        assert len(lib.photos()) == 4


def _layout(tmp_path):
    """photos/{keep: 2, skip: 2 + skip/deep: 1, odd name: 1}; 6 photos in all."""
    root = tmp_path / "photos"
    write_scenes(root / "keep", range(0, 2), size=(96, 72))
    write_scenes(root / "skip", range(2, 4), size=(96, 72))
    write_scenes(root / "skip" / "deep", range(4, 5), size=(96, 72))
    odd = os.fsdecode(os.fsencode(str(root)) + b"/caf\xe9 \nnight")  # not UTF-8, and a newline
    write_scenes(Path(odd), range(5, 6), size=(96, 72))
    return root, odd


def test_excluding_a_sub_folder_forgets_its_photos_and_scans_skip_it(tmp_path):
    from photosim import Library

    root, _odd = _layout(tmp_path)
    skip = str(root / "skip")
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        assert lib.count() == 6 and len(lib.index) == 6
        lib.add_to_album("mixed", [p.id for p in lib.photos()])
        assert lib.count(folder=skip) == 3  # what the confirmation states
        assert lib.exclude_folder(skip) == 3
        left = sorted(p.path for p in lib.photos())
        assert len(left) == 3 and not any(p.startswith(skip + os.sep) for p in left)
        assert len(lib.index) == 3 and lib.info().photos == 3
        assert lib.vectors()[1].shape[0] == 3 and lib.albums()[0].count == 3
        assert all(p.exists() for p in (root / "skip").rglob("*.jpg"))  # the files are never touched
        assert lib.info().excluded == [skip] and lib.roots() == [str(root)]
        report = lib.rescan()
        assert report.added == 0 and lib.count() == 3  # not read again
        write_scenes(root / "skip", range(6, 7), size=(96, 72))  # a new photo there: still skipped
        assert lib.rescan().added == 0
        lib.include_folder(skip)
        assert lib.info().excluded == [] and lib.count() == 3  # back on the next scan, not before
        assert lib.rescan().added == 4 and lib.count() == 7 and len(lib.index) == 7


def test_exclusion_is_kept_across_reopening_and_by_names_that_are_not_utf8(tmp_path):
    from photosim import Library

    root, odd = _layout(tmp_path)
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        assert lib.exclude_folder(odd) == 1
    with Library(tmp_path / "lib") as lib:
        assert lib.info().excluded == [odd]
        assert os.fsencode(lib.info().excluded[0]).endswith(b"/caf\xe9 \nnight")
        assert lib.rescan().added == 0 and lib.count() == 5
        assert not any(p.path.startswith(odd) for p in lib.photos())
    with Library(tmp_path / "lib", readonly=True) as ro:
        with pytest.raises(ReadOnlyLibrary):
            ro.include_folder(odd)
        assert ro.info().excluded == [odd]


def test_exclude_refuses_what_it_cannot_mean_and_changes_nothing(tmp_path):
    from photosim import Library

    root, _odd = _layout(tmp_path)
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        with pytest.raises(PhotosimError, match="one of the library's folders"):
            lib.exclude_folder(root)
        with pytest.raises(PhotosimError, match="not inside any"):
            lib.exclude_folder(tmp_path / "elsewhere")
        lib.exclude_folder(root / "skip")
        with pytest.raises(PhotosimError, match="excluded already"):
            lib.exclude_folder(root / "skip")
        with pytest.raises(PhotosimError, match=r"excluded already \(with"):
            lib.exclude_folder(root / "skip" / "deep")
        with pytest.raises(PhotosimError, match="not an excluded folder"):
            lib.include_folder(root / "keep")
        assert lib.count() == 3 and lib.info().excluded == [str(root / "skip")]


def test_excluding_a_parent_covers_nested_exclusions_and_scanning_one_explicitly_includes_it(tmp_path):
    from photosim import Library

    root, _odd = _layout(tmp_path)
    deep, skip = str(root / "skip" / "deep"), str(root / "skip")
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        assert lib.exclude_folder(deep) == 1
        assert lib.exclude_folder(skip) == 2
        assert lib.info().excluded == [skip]  # the parent covers the nested one
        lib.scan([deep])  # asked for by name: scanned, as a folder of its own
        assert lib.count(folder=deep) == 1 and lib.count(folder=skip) == 1
        assert lib.roots() == [str(root), deep] and lib.info().excluded == [skip]
        lib.include_folder(skip)
        lib.rescan()
        assert lib.count() == 6
        lib.exclude_folder(root / "keep")
        lib.remove_root(root)  # its exclusions go with it; a folder scanned on its own keeps its own
        assert lib.roots() == [deep] and lib.info().excluded == [] and lib.count() == 1


def test_folder_tree_counts_from_sql(tmp_path):
    from photosim import Library

    root, odd = _layout(tmp_path)
    (root / "empty").mkdir()
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        [top] = lib.folder_tree()
        assert top.path == str(root) and top.count == 6 and not top.more
        kids = {c.name: c for c in top.children}
        assert set(kids) == {"keep", "skip", os.path.basename(odd)}  # no empty folder
        assert kids["keep"].count == 2 and kids["skip"].count == 3 and kids[os.path.basename(odd)].count == 1
        assert [(c.name, c.count) for c in kids["skip"].children] == [("deep", 1)]
        assert kids[os.path.basename(odd)].path == odd
        [small] = lib.folder_tree(limit=2)  # the root and one child, then it stops
        assert len(small.children) == 1 and small.more and small.count == 6
        lib.scan([root / "keep"])  # a scanned folder inside another is not a second top
        assert [t.path for t in lib.folder_tree()] == [str(root)]


def test_rename_album(tmp_path):
    from photosim import Library

    write_scenes(tmp_path / "photos", range(0, 2), size=(96, 72))
    with Library(tmp_path / "lib") as lib:
        lib.scan([tmp_path / "photos"])
        ids = [p.id for p in lib.photos()]
        lib.add_to_album("a", ids)
        lib.add_to_album("b", ids[:1])
        assert lib.rename_album("a", " holiday ").name == "holiday"
        assert [(a.name, a.count) for a in lib.albums()] == [("b", 1), ("holiday", 2)]
        with pytest.raises(PhotosimError, match="already an album"):
            lib.rename_album("b", "holiday")
        with pytest.raises(PhotosimError, match="no album"):
            lib.rename_album("nope", "x")
        with pytest.raises(PhotosimError, match="needs a name"):
            lib.rename_album("b", "  ")
