"""import-vectors: an export read back into another library; bad files refused in a sentence."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import write_scenes

from photosim import Library
from photosim.cli import main
from photosim.errors import PhotosimError
from photosim.index import VectorIndex
from photosim.pipeline import switch


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Five photos scanned into a library and exported, plus the encoder id and dim."""
    base = tmp_path_factory.mktemp("imp")
    photos = base / "photos"
    write_scenes(photos / "a", range(3), size=(160, 120))
    write_scenes(photos / "b", range(3, 5), size=(160, 120))
    with Library(base / "src") as lib:
        lib.scan([photos])
        lib.export_vectors(base / "v.npz")
        enc, dim = lib.encoder_id, lib.card.dim
        _, vecs = lib.vectors()
    return {"base": base, "photos": photos, "npz": base / "v.npz", "enc": enc, "dim": dim, "vecs": vecs}


def _write(path, paths, vectors, encoder_id, **extra):
    np.savez(path, paths=np.array([str(p) for p in paths]), vectors=vectors,
             encoder_id=np.array(encoder_id), **extra)
    return path


def test_imported_photos_are_searchable_and_a_rescan_reads_none(tmp_path, capsys, exported, monkeypatch):
    lib_dir = tmp_path / "lib"
    code, out, _ = run(capsys, "import-vectors", exported["npz"], "--library", lib_dir, "--json")
    report = json.loads(out)
    assert code == 0 and report["imported"] == 5 and report["missing"] == 0 and report["index_size"] == 5
    with Library(lib_dir) as lib:
        photos = lib.photos()
        assert len(photos) == 5 and len(lib.index) == 5
        for p in photos:
            st = (exported["photos"] / p.path).stat()
            assert (p.size, p.mtime_ns) == (st.st_size, st.st_mtime_ns)
        _, vecs = lib.vectors()
        assert np.allclose(np.sort(vecs, axis=0), np.sort(exported["vecs"], axis=0))
        first = lib.photos()[0]
        assert lib.similar(first.id, k=2)  # the index answers
    stamp = (lib_dir / "index.bin").stat().st_mtime_ns
    with Library(lib_dir) as lib:
        # An unchanged re-scan: no whole-table id sets, no index loaded or rewritten.
        for repo in (lib.store.vectors, lib.store.features):
            repo.photo_ids = lambda *a: pytest.fail("whole-table id set loaded")
        with monkeypatch.context() as m:
            for name in ("load", "build"):
                m.setattr(VectorIndex, name, lambda *a, **k: pytest.fail("the index was loaded"))
            report = lib.scan([exported["photos"]])
        assert report.unchanged == 5 and report.added == report.updated == 0
        assert not lib.encoder_loaded  # nothing was read, so no model was needed
    assert (lib_dir / "index.bin").stat().st_mtime_ns == stamp
    with Library(lib_dir) as lib:
        # No cached features: a model switch has to read these photos (not re-project them).
        assert switch.reembed(lib.store, lib.encoder)[1] == 5
        # Importing again keeps what is there.
        again = lib.import_vectors(exported["npz"])
        assert again.imported == 0 and again.already == 5 and len(lib.index) == 5
    code, out, _ = run(capsys, "info", "--json", "--library", lib_dir)
    d = json.loads(out)
    assert code == 0 and (d["photos"], d["indexed"], d["errors"]) == (5, 5, 0)
    assert d["encoder_id"] == exported["enc"] and d["dim"] == exported["dim"] == d["encoder_dim"]
    assert d["failed"] == [] and "roots" in d


def test_missing_files_are_counted_not_fatal(tmp_path, capsys, exported):
    photos = tmp_path / "photos"
    shutil.copytree(exported["photos"], photos)
    paths = sorted(photos.rglob("*.jpg"))
    vecs = exported["vecs"][: len(paths)]
    (photos / "notes.txt").write_text("x")
    gone = [tmp_path / "gone.jpg", photos / "a"]  # no such file; a folder
    npz = _write(tmp_path / "v.npz", [*paths, *gone, photos / "notes.txt"],
                 np.concatenate([vecs, vecs[:3]]), exported["enc"])
    code, out, _ = run(capsys, "import-vectors", npz, "--library", tmp_path / "lib")
    assert code == 0, out
    assert "imported 5 photos" in out and "missing:   2 paths" in out and "skipped:   1 files" in out


@pytest.mark.parametrize("case, message", [
    ("other-encoder", "were made by the encoder 'someone-else', but this library uses"),
    ("no-vectors", "it has no vectors array"),
    ("wrong-shape", "vectors must be floats of shape (5, "),
    ("ints", "vectors must be floats of shape"),
    ("nan", "is not finite"),
    ("not-unit", "not 1 (1 vectors are not unit length)"),
    ("duplicates", "appears more than once"),
    ("not-npz", "is not a vector file photosim can import"),
    ("cut-short", "it is damaged or cut short"),
    ("no-file", "no such file"),
])
def test_a_bad_file_is_one_clear_message_and_changes_nothing(tmp_path, capsys, exported, case, message):
    paths = sorted(exported["photos"].rglob("*.jpg"))
    vecs, enc, npz = exported["vecs"].copy(), exported["enc"], tmp_path / "bad.npz"
    if case == "other-encoder":
        _write(npz, paths, vecs, "someone-else")
    elif case == "no-vectors":
        np.savez(npz, paths=np.array([str(p) for p in paths]), encoder_id=np.array(enc))
    elif case == "wrong-shape":
        _write(npz, paths, vecs[:, :10], enc)
    elif case == "ints":
        _write(npz, paths, (vecs * 100).astype(np.int32), enc)
    elif case == "nan":
        vecs[2, 0] = np.nan
        _write(npz, paths, vecs, enc)
    elif case == "not-unit":
        vecs[1] *= 2
        _write(npz, paths, vecs, enc)
    elif case == "duplicates":
        _write(npz, [*paths[:4], paths[0]], vecs, enc)
    elif case == "not-npz":
        npz.write_text("hello")
    elif case == "cut-short":
        _write(npz, paths, vecs, enc)
        npz.write_bytes(npz.read_bytes()[:300])
    lib_dir = tmp_path / "lib"
    code, _, err = run(capsys, "import-vectors", npz, "--library", lib_dir)
    assert code == 2 and message in err, err
    assert "Traceback" not in err
    with Library(lib_dir) as lib:
        assert lib.info().photos == 0
    with pytest.raises(PhotosimError), Library(lib_dir) as lib:
        lib.import_vectors(npz)
