"""Library.remove_root, and a cancelled first scan remembering its folder."""

from __future__ import annotations

from conftest import write_scenes


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
