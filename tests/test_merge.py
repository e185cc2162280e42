"""Merge before trash: the keeper inherits its copies' albums, marks and verdicts; an XMP
sidecar with the copies' date taken / GPS is written only when asked, only where the
keeper lacks them, and never over an existing sidecar; photos are never modified."""

from __future__ import annotations

import hashlib
import os
import shutil
import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest
from PIL import Image

from photosim import Library
from photosim.pipeline.merge import read_gps

from conftest import draw_scene
from rawfile import jpeg_bytes

NS = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "exif": "http://ns.adobe.com/exif/1.0/"}


def exif_with(taken: str, lat=None, lon=None) -> Image.Exif:
    e = Image.Exif()
    e[0x0110] = "Pixel 8"
    e.get_ifd(0x8769)[0x9003] = taken
    if lat is not None:
        dms = lambda v: tuple(Fraction(x).limit_denominator(10000) for x in (int(v), int(v * 60) % 60,  # noqa: E731
                                                                              (v * 3600) % 60))
        e.get_ifd(0x8825).update({1: "N" if lat >= 0 else "S", 2: dms(abs(lat)),
                                  3: "E" if lon >= 0 else "W", 4: dms(abs(lon))})
    return e


@pytest.fixture
def trash_dir(tmp_path, monkeypatch):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    monkeypatch.setattr("send2trash.send2trash", lambda p: shutil.move(os.fspath(p), bin_ / os.path.basename(p)))
    return bin_


@pytest.fixture
def trio(tmp_path):
    """keeper.jpg (no date, no GPS), its half-size copy with both, and another photo."""
    root = tmp_path / "photos"
    root.mkdir()
    scene = draw_scene(41, (640, 480))
    (root / "keeper.jpg").write_bytes(jpeg_bytes(scene))
    (root / "copy.jpg").write_bytes(jpeg_bytes(scene.resize((320, 240)),
                                               exif=exif_with("2021:07:14 18:30:05", 45.8326, -6.8652)))
    (root / "other.jpg").write_bytes(jpeg_bytes(draw_scene(42)))
    return root


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_keeper_inherits_albums_marks_and_verdicts(tmp_path, trio, trash_dir):
    with Library(tmp_path / "lib") as lib:
        lib.scan([trio])
        keep, copy, other = (lib.photo(trio / n) for n in ("keeper.jpg", "copy.jpg", "other.jpg"))
        lib.add_to_album("Trip", [copy.id])
        lib.add_to_album("Both", [copy.id, keep.id])
        lib.mark(copy.id, other.id, similar=True)
        lib.mark(other.id, copy.id, similar=False)
        lib.mark(keep.id, copy.id, similar=True)  # between the copy and its keeper: dropped
        lib.set_verdict([copy.id, other.id], "not duplicates")
        before = _sha(trio / "keeper.jpg")
        result = lib.move_to_trash([copy.id], merge_into=keep.id)
        assert result == [] and (trash_dir / "copy.jpg").exists()
        assert (result.merged.albums, result.merged.marks, result.merged.verdicts) == (1, 2, 1)
        assert "inherited 1 album membership, 2 marks, 1 verdict" in result.merged.summary()
        assert [p.name for p in lib.album_photos("Trip")] == ["keeper.jpg"]
        assert [p.name for p in lib.album_photos("Both")] == ["keeper.jpg"]
        assert sorted((m.query_id, m.result_id, m.label) for m in lib.marks()) == sorted(
            [(keep.id, other.id, 1), (other.id, keep.id, -1)])
        assert lib.verdicts() == {tuple(sorted((keep.id, other.id))): "not duplicates"}
        assert not list(trio.glob("*.xmp"))  # no sidecar unless asked
        assert _sha(trio / "keeper.jpg") == before


def test_the_keepers_own_labels_win_and_nothing_merges_without_a_keeper(tmp_path, trio, trash_dir):
    with Library(tmp_path / "lib") as lib:
        lib.scan([trio])
        keep, copy, other = (lib.photo(trio / n) for n in ("keeper.jpg", "copy.jpg", "other.jpg"))
        lib.mark(keep.id, other.id, similar=False)
        lib.mark(copy.id, other.id, similar=True)
        lib.add_to_album("Trip", [copy.id])
        result = lib.move_to_trash([copy.id, keep.id], merge_into=keep.id)  # the keeper goes too
        assert result == [] and result.merged.summary() == ""
        assert lib.album_photos("Trip") == [] and lib.marks() == []


def test_sidecar_only_when_asked_only_what_the_keeper_lacks(tmp_path, trio, trash_dir):
    assert read_gps(str(trio / "copy.jpg")) == pytest.approx((45.8326, -6.8652), abs=1e-4)
    with Library(tmp_path / "lib") as lib:
        lib.scan([trio])
        keep, copy = lib.photo(trio / "keeper.jpg"), lib.photo(trio / "copy.jpg")
        before = _sha(trio / "keeper.jpg")
        result = lib.move_to_trash([copy.id], merge_into={copy.id: keep.id}, sidecar=True)
        sidecar = trio / "keeper.jpg.xmp"
        assert result.merged.sidecars == [str(sidecar)]
        desc = ET.parse(sidecar).getroot().find("rdf:RDF/rdf:Description", NS)
        assert desc.get(f"{{{NS['exif']}}}DateTimeOriginal") == "2021-07-14T18:30:05"
        lat, lon = desc.get(f"{{{NS['exif']}}}GPSLatitude"), desc.get(f"{{{NS['exif']}}}GPSLongitude")
        assert lat.startswith("45,49.95") and lat.endswith("N") and lon.startswith("6,51.91") and lon.endswith("W")
        assert _sha(trio / "keeper.jpg") == before  # the photo itself is never touched


@pytest.mark.parametrize("existing", ["keeper.jpg.xmp", "keeper.xmp"])
def test_an_existing_sidecar_is_never_overwritten(tmp_path, trio, trash_dir, existing):
    (trio / existing).write_text("<mine/>")
    with Library(tmp_path / "lib") as lib:
        lib.scan([trio])
        keep, copy = lib.photo(trio / "keeper.jpg"), lib.photo(trio / "copy.jpg")
        result = lib.move_to_trash([copy.id], merge_into=keep.id, sidecar=True)
        assert result.merged.sidecars == []
        assert result.merged.notes == [f"keeper.jpg already has a sidecar ({existing}): left untouched, nothing written"]
        assert (trio / existing).read_text() == "<mine/>"
        assert sorted(p.name for p in trio.glob("*.xmp")) == [existing]


def test_no_sidecar_when_the_keeper_lacks_nothing(tmp_path, trio, trash_dir):
    with Library(tmp_path / "lib") as lib:
        lib.scan([trio])
        other, copy = lib.photo(trio / "other.jpg"), lib.photo(trio / "copy.jpg")
        (trio / "copy2.jpg").write_bytes((trio / "other.jpg").read_bytes())
        lib.rescan()
        plain = lib.photo(trio / "copy2.jpg")
        result = lib.move_to_trash([plain.id], merge_into=other.id, sidecar=True)
        assert result.merged.sidecars == [] and "no XMP sidecar for other.jpg" in result.merged.notes[0]
        assert copy is not None and not list(trio.glob("*.xmp"))
