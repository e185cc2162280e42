"""Folder watching (photosim/pipeline/watch.py, ``photosim watch``): created, changed, moved,
deleted and still-being-copied photos, batching, the polling fallback, the paths-limited scan.

Intervals are small (tenths of a second) and every wait is a condition with a generous
timeout: nothing here asserts on a sleep."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from photosim import Library, WatchBatch, Watcher, apply_batch
from photosim.pipeline.watch import mount_type, needs_polling

from conftest import draw_scene, write_scenes

WAIT = 60.0  # generous: the machine running the tests may be very busy


class Calls:
    """What a watcher's callback was given, in order; waits on it from the test."""

    def __init__(self, on_call=None):
        self.calls: list[tuple[WatchBatch | None, object, BaseException | None]] = []
        self._cond = threading.Condition()
        self._on_call = on_call

    def __call__(self, batch, result=None, error=None):
        extra = self._on_call(batch) if self._on_call else None
        with self._cond:
            self.calls.append((batch, result if extra is None else (result, extra), error))
            self._cond.notify_all()

    @property
    def batches(self) -> list[WatchBatch]:
        return [b for b, _, _ in self.calls if b is not None]

    def paths(self) -> set[str]:
        return {p for b in self.batches for p in b.paths}

    def wait(self, cond, timeout: float = WAIT) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while not cond():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True


def jpeg_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    draw_scene(seed, (320, 240)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "photos"
    (r / "sub").mkdir(parents=True)
    return r


def started(watcher: Watcher) -> Watcher:
    """Started, and its folders set up (events before that would be missed)."""
    assert watcher.start().wait_ready(WAIT), "the watcher did not set up its folders"
    return watcher


def test_many_files_make_one_batch_and_unwanted_paths_are_ignored(root):
    lib_dir = root / "my-library"  # a library kept inside a watched folder: never reported
    lib_dir.mkdir()
    calls = Calls()
    data = jpeg_bytes(1)
    with started(Watcher([root], calls, skip=[lib_dir], settle=0.2, debounce=2.0)):  # 40 writes in far less
        for i in range(40):
            (root / "sub" / f"p{i:02d}.jpg").write_bytes(data)
        (root / "notes.txt").write_text("not a photo")
        (lib_dir / "thumb.jpg").write_bytes(data)
        (root / ".Trash-1000" / "files").mkdir(parents=True)  # a drive's trash under the folder
        (root / ".Trash-1000" / "files" / "gone.jpg").write_bytes(data)
        expected = {str(root / "sub" / f"p{i:02d}.jpg") for i in range(40)}
        assert calls.wait(lambda: calls.paths() >= expected)
    assert len(calls.batches) == 1, [len(b) for b in calls.batches]
    assert set(calls.batches[0].paths) == expected  # no .txt, nothing of the library or a trash, no parent folder
    assert calls.batches[0].events >= 40


def test_a_file_still_being_copied_is_reported_once_it_is_complete(root):
    target = root / "big.jpg"
    data = jpeg_bytes(2)
    sizes_seen = []
    calls = Calls(on_call=lambda batch: target.stat().st_size if batch and str(target) in batch.paths else None)
    finished = threading.Event()

    def copy_slowly():  # like a copy from a slow card: growing for ~1 s, never still for long
        with open(target, "wb") as f:
            step = len(data) // 10 + 1
            for start in range(0, len(data), step):
                f.write(data[start:start + step])
                f.flush()
                sizes_seen.append(f.tell())
                time.sleep(0.1)
        finished.set()

    with started(Watcher([root], calls, settle=1.5, debounce=0.2)):
        writer = threading.Thread(target=copy_slowly)
        writer.start()
        assert calls.wait(lambda: str(target) in calls.paths())
        writer.join()
    assert finished.is_set() and len(sizes_seen) >= 5
    reported = [(b, r) for b, r, _ in calls.calls if b is not None and str(target) in b.paths]
    assert len(reported) == 1
    (_, (_, size_when_reported)) = reported[0]
    assert size_when_reported == len(data)  # never while it was still growing


def test_settling_by_the_clock(root):
    """The rules on a given clock (no observer): a path settles once neither an event nor its
    size and mtime moved for ``settle`` s; the batch waits for ``debounce`` s of quiet."""
    f = root / "x.jpg"
    f.write_bytes(b"\xff\xd8" + b"0" * 100)
    w = Watcher([root], Calls(), settle=1.0, debounce=0.5)
    w._take([(str(f), False)], now=100.0)
    assert w._ready(100.9) is None  # not settled yet
    with open(f, "ab") as out:  # grows, and no event says so (a network drive between polls)
        out.write(b"1" * 100)
    assert w._ready(101.1) is None  # the stat saw it move: wait again
    assert w._ready(102.0) is None
    batch = w._ready(102.2)
    assert batch is not None and batch.paths == (str(f),) and w.pending() == 0
    # an event about one path holds back the batch of all, until the quiet period is over
    g = root / "y.jpg"
    g.write_bytes(b"\xff\xd8")
    w._take([(str(f), False)], now=200.0)
    w._take([(str(g), False)], now=201.0)
    assert w._ready(201.5) is None  # f settled, g not
    assert w._ready(202.1).paths == (str(f), str(g))


def test_moves_report_both_paths_and_deletes_report_the_gone_one(root):
    src = root / "sub" / "a.jpg"
    src.write_bytes(jpeg_bytes(3))
    calls = Calls()
    with started(Watcher([root], calls, settle=0.1, debounce=0.2)):
        dest = root / "renamed.jpg"
        os.rename(src, dest)
        assert calls.wait(lambda: {str(src), str(dest)} <= calls.paths())
        gone = root / "renamed.jpg"
        os.remove(gone)
        assert calls.wait(lambda: len(calls.batches) >= 2)
    assert calls.batches[-1].paths == (str(gone),)


def test_polling_fallback_when_forced(root):
    calls = Calls()
    w = started(Watcher([root], calls, settle=0.1, debounce=0.2, polling=True, poll_interval=0.1))
    try:
        assert w.modes() == {str(root): "polling"}
        new = root / "sub" / "new.jpg"
        new.write_bytes(jpeg_bytes(4))
        assert calls.wait(lambda: str(new) in calls.paths())
        moved = root / "moved.jpg"
        os.rename(new, moved)
        assert calls.wait(lambda: str(moved) in calls.paths())
        os.remove(moved)
        assert calls.wait(lambda: len(calls.batches) >= 3)
    finally:
        w.stop()
    assert not w.running


def test_network_drives_are_polled():
    mounts = ("/dev/sda1 / ext4 rw,relatime 0 0\n"
              "server:/export /mnt/nas nfs4 rw,relatime 0 0\n"
              "//box/photos /mnt/my\\040share cifs rw 0 0\n"
              "me@host:/pics /home/me/remote fuse.sshfs rw 0 0\n"
              "/dev/sdb1 /mnt/nas/local ext4 rw 0 0\n")
    assert mount_type("/home/me/Pictures", mounts) == "ext4"
    assert needs_polling("/mnt/nas/2024/trip", mounts)
    assert needs_polling("/mnt/my share/x", mounts)  # /proc/mounts escapes the space
    assert needs_polling("/home/me/remote/a", mounts)
    assert not needs_polling("/mnt/nas/local/photos", mounts)  # the innermost mount decides
    assert not needs_polling("/home/me/Pictures", mounts)
    calls = Calls()
    w = Watcher(["/mnt/nas/2024"], calls, mounts=mounts)
    assert w._mode("/mnt/nas/2024") == "polling" and w._mode("/home/me") == "events"
    assert Watcher([], calls, polling=False, mounts=mounts)._mode("/mnt/nas") == "events"


def test_a_missing_folder_is_said_and_not_watched(tmp_path):
    calls = Calls()
    w = Watcher([tmp_path / "unplugged"], calls, settle=0.1, debounce=0.1).start()
    try:
        assert w.wait_ready(WAIT) and calls.calls
    finally:
        w.stop()
    assert "missing" in str(calls.calls[0][2]) and w.modes() == {}


# -- into a library ------------------------------------------------------------------------------
def test_created_changed_moved_and_deleted_photos_reach_the_library(tmp_path, root):
    a, b, c = write_scenes(root, [10, 11, 12])
    with Library(tmp_path / "lib") as lib:
        assert lib.scan([root]).added == 3
        ids = {p.path: p.id for p in lib.photos()}
        lib.add_to_album("trip", [ids[str(b)]])
        lib.mark(ids[str(a)], ids[str(b)], True)
        vec_a, vec_b = lib.vector(ids[str(a)]), lib.vector(ids[str(b)])
        unseen = write_scenes(root / "before", [13])[0]  # there before the watching: no event, not taken in
        calls = Calls()
        w = Watcher(lib.roots(), calls, skip=[lib.path], settle=0.2, debounce=0.3)
        w.apply = lambda batch: apply_batch(lib, batch, cancel=w.stopping)
        with started(w):
            def step(action, check):
                n = len(calls.calls)
                action()
                assert calls.wait(lambda: len(calls.calls) > n and check())
                _, report, error = calls.calls[-1]
                assert error is None, error
                return report

            new = root / "sub" / "new.jpg"
            r = step(lambda: new.write_bytes(jpeg_bytes(20)), lambda: lib.photo(new) is not None)
            assert (r.added, r.updated, r.moved, r.removed, r.unchanged) == (1, 0, 0, 0, 0)
            assert lib.vector(lib.photo(new).id) is not None

            r = step(lambda: a.write_bytes(jpeg_bytes(21)), lambda: lib.photo(a).size == len(jpeg_bytes(21)))
            assert r.updated == 1 and lib.photo(a).id == ids[str(a)]
            assert float(lib.vector(ids[str(a)]) @ vec_a) < 0.999  # embedded again

            moved = root / "sub" / "b-renamed.jpg"
            r = step(lambda: shutil.move(b, moved), lambda: lib.photo(moved) is not None)
            assert (r.moved, r.added, r.removed) == (1, 0, 0)
            assert lib.photo(moved).id == ids[str(b)] and lib.photo(b) is None  # the same photo
            np.testing.assert_array_equal(lib.vector(ids[str(b)]), vec_b)
            assert [p.id for p in lib.album_photos("trip")] == [ids[str(b)]]
            assert lib.marks()

            r = step(lambda: os.remove(c), lambda: lib.photo(c) is None)
            assert r.removed == 1
        assert lib.photo(unseen) is None  # batches scan their paths only, never whole folders
        assert all(p.exists() for p in (a, moved, new, unseen))  # the library never deletes files
        assert {p.path for p in lib.photos()} == {str(a), str(moved), str(new)}
        assert len(lib.index) == 3


def test_apply_batch_leaves_an_unmounted_folders_photos_alone(tmp_path, root):
    (p,) = write_scenes(root / "sub", [30])
    other = tmp_path / "other"
    write_scenes(other, [31])
    with Library(tmp_path / "lib") as lib:
        lib.scan([root, other])
        shutil.rmtree(root)  # as an unmounted drive looks
        report = apply_batch(lib, WatchBatch((str(p), str(root))))
        assert report.removed == 0 and lib.photo(p) is not None
        # a path outside every folder of the library is not taken in
        stray = write_scenes(tmp_path / "elsewhere", [32])[0]
        assert apply_batch(lib, WatchBatch((str(stray),))).added == 0 and lib.photo(stray) is None


def test_watch_command_prints_what_it_picked_up_and_stops_on_ctrl_c(tmp_path, root):
    write_scenes(root, [40])
    lib = tmp_path / "lib"
    with Library(lib) as library:
        library.scan([root])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PYTHONUNBUFFERED": "1"}
    # A shell without job control starts background commands with SIGINT ignored, and Python
    # keeps an ignored SIGINT ignored: Ctrl-C is restored for the child, as a terminal has it.
    proc = subprocess.Popen([sys.executable, "-m", "photosim.cli", "watch", "--library", str(lib),
                             "--settle", "0.2", "--debounce", "0.3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        end = time.monotonic() + WAIT * 2
        while not any(line.startswith("watching") for line in lines) and time.monotonic() < end:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        (root / "new.jpg").write_bytes(jpeg_bytes(41))
        while not any("1 added" in line for line in lines) and time.monotonic() < end:
            time.sleep(0.05)
        assert any("1 added" in line for line in lines), lines
        assert any(str(root / "new.jpg") in line for line in lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(WAIT)
        except subprocess.TimeoutExpired:  # say where it hung (stderr has every thread's stack)
            proc.kill()
            raise AssertionError(f"watch did not stop in {WAIT} s: {proc.communicate()[1]}") from None
        reader.join(5)
    assert code == 0, proc.stderr.read()
    assert lines[-1].startswith("stopped")
    with Library(lib, readonly=True) as library:
        assert library.photo(root / "new.jpg") is not None


def test_watch_command_needs_a_library(tmp_path, capsys):
    from photosim.cli import main

    assert main(["watch", "--library", str(tmp_path / "none")]) == 2
    assert "no library" in capsys.readouterr().err


# -- the app ---------------------------------------------------------------------------------------
def _window(qtbot, lib_path, watch: bool | None):
    from photosim.gui import settings
    from photosim.gui.main_window import MainWindow

    if watch is not None:
        settings.set_value("watch_folders", watch)
    w = MainWindow(str(lib_path))
    w.watch.settle, w.watch.debounce = 0.2, 0.3  # read when the library has opened
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.gallery_ready, timeout=int(WAIT * 1000))
    return w


def test_app_takes_in_new_photos_queued_behind_a_running_job(qtbot, gui_dirs, root):
    pytest.importorskip("pytestqt")
    write_scenes(root, [50, 51])
    with Library(gui_dirs / "lib") as lib:
        lib.scan([root])
    w = _window(qtbot, gui_dirs / "lib", watch=True)
    assert w.act_watch.isChecked()
    qtbot.waitUntil(lambda: w.watch.watching and w.watch.watcher.wait_ready(0), timeout=int(WAIT * 1000))
    assert str(w.thumbs.dir) in w.watch.watcher.skip  # its own thumbnails are never photos
    assert w.model.rowCount() == 2

    new = root / "sub" / "new.jpg"
    new.write_bytes(jpeg_bytes(52))
    qtbot.waitUntil(lambda: w.model.rowCount() == 3, timeout=int(WAIT * 1000))
    assert "From your folders: 1 added" in w.banner.text()

    # while another exclusive job (a scan, a model switch) runs, batches wait for it
    gate = threading.Event()
    blocker = w.service.start("scanning", lambda lib, job: gate.wait(WAIT))
    assert blocker is not None
    try:
        os.remove(new)
        qtbot.waitUntil(lambda: bool(w.watch._queue), timeout=int(WAIT * 1000))
        assert w.model.rowCount() == 3 and not w.banner.text().startswith("Could not")
    finally:
        gate.set()
    qtbot.waitUntil(lambda: w.model.rowCount() == 2, timeout=int(WAIT * 1000))
    assert "1 removed" in w.banner.text()
    assert w.service.wait_idle(int(WAIT * 1000))

    # a folder added to the library is watched from then on
    other = gui_dirs / "other"
    write_scenes(other, [53])
    with qtbot.waitSignal(w.service.scanFinished, timeout=int(WAIT * 1000)):
        assert w.start_scan([str(other)])
    qtbot.waitUntil(lambda: str(other) in w.watch.watcher.modes(), timeout=int(WAIT * 1000))
    (other / "later.jpg").write_bytes(jpeg_bytes(54))
    qtbot.waitUntil(lambda: w.model.rowCount() == 4, timeout=int(WAIT * 1000))
    assert w.service.wait_idle(int(WAIT * 1000))


def test_app_watching_off_is_remembered(qtbot, gui_dirs, root):
    pytest.importorskip("pytestqt")
    from photosim.gui import settings

    write_scenes(root, [60])
    with Library(gui_dirs / "lib") as lib:
        lib.scan([root])
    w = _window(qtbot, gui_dirs / "lib", watch=True)
    qtbot.waitUntil(lambda: w.watch.watching, timeout=int(WAIT * 1000))
    watcher = w.watch.watcher
    w.act_watch.setChecked(False)  # the menu action
    assert not w.watch.watching and not watcher.running
    assert settings.value("watch_folders", None, bool) is False
    w.close()

    w2 = _window(qtbot, gui_dirs / "lib", watch=None)  # a later run reads the setting
    assert not w2.act_watch.isChecked() and not w2.watch.watching
    assert w2.service.wait_idle(int(WAIT * 1000)) and not w2.watch.watching
    w2.act_watch.setChecked(True)
    qtbot.waitUntil(lambda: w2.watch.watching, timeout=int(WAIT * 1000))
    assert settings.value("watch_folders", None, bool) is True


def test_a_moved_imported_photo_keeps_its_row(tmp_path, root):
    """Photos imported with their vectors have no content hash: a move is found by the
    file's size and mtime, which a rename keeps."""
    from photosim.pipeline.export import write_npz

    a, b = write_scenes(root, [70, 71])
    with Library(tmp_path / "lib") as lib:
        lib.store.roots.add([str(root)])
        vecs = np.eye(2, lib.card.dim, dtype=np.float32)
        write_npz(tmp_path / "v.npz", [str(a), str(b)], vecs, lib.encoder_id)
        assert lib.import_vectors(tmp_path / "v.npz").imported == 2
        before = lib.photo(a)
        assert before.content_hash is None
        dest = root / "sub" / "renamed.jpg"
        os.rename(a, dest)
        report = apply_batch(lib, WatchBatch((str(a), str(dest))))
        assert (report.moved, report.added, report.removed) == (1, 0, 0)
        assert lib.photo(dest).id == before.id and lib.photo(a) is None
        np.testing.assert_array_equal(lib.vector(before.id), vecs[0])


def test_identical_copies_moved_together_keep_their_own_rows(tmp_path, root):
    data = jpeg_bytes(80)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (root / "sub" / name).write_bytes(data)
    with Library(tmp_path / "lib") as lib:
        lib.scan([root])
        before = {p.name: p.id for p in lib.photos()}
        os.rename(root / "sub", root / "renamed")
        batch = [str(root / "sub"), str(root / "renamed")] + [str(root / d / n) for d in ("sub", "renamed")
                                                             for n in ("a.jpg", "b.jpg", "c.jpg")]
        report = apply_batch(lib, WatchBatch(tuple(batch)))
        assert (report.moved, report.added, report.removed) == (3, 0, 0)
        assert {p.name: p.id for p in lib.photos()} == before  # each copy kept its own row (and albums)
        assert all(p.folder == str(root / "renamed") for p in lib.photos())
