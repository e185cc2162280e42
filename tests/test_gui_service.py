"""The job service: kinds (exclusive jobs never overlap), exception objects for callbacks,
one progress form, cancel tokens; and the GUI-thread guard that keeps engine calls off the
GUI thread."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from conftest import write_scenes  # noqa: E402

WAIT = 60_000


@pytest.fixture
def service(qtbot, gui_dirs):
    from photosim.gui.service import LibraryService

    svc = LibraryService()
    with qtbot.waitSignal(svc.opened, timeout=WAIT):
        svc.open(str(gui_dirs / "lib"))
    yield svc
    svc.close()


def _collect():
    got = []

    def callback(result=None, error=None):
        got.append((result, error))
    return got, callback


def test_guard_is_on_and_fires_when_gui_code_calls_the_engine_on_the_gui_thread(qtbot, service):
    from photosim import Library
    from photosim.gui import guard

    assert guard.installed(Library)  # conftest switched it on; so did PHOTOSIM_GUI_GUARD for the service
    caught, results = [], []

    def on_gui_thread(result=None, error=None):  # a callback: GUI thread, under the service's code
        results.append(result)
        try:
            service.lib.photos()
        except guard.GuiThreadViolation as exc:
            caught.append(str(exc))

    service.call(lambda lib: len(lib.photos()), on_gui_thread)  # the same call in the job is fine
    assert service.wait_idle(WAIT)
    assert results == [0]
    assert len(caught) == 1 and "Library.photos" in caught[0] and "photosim.gui.service" in caught[0]
    assert "Library.photos" in guard.violations[-1]  # recorded even when GUI code swallows it
    del guard.violations[:]  # seen: the conftest check after this test is for unexpected ones
    # a property counts too, and a test body (not GUI code) may look at the library directly
    def reads_a_property(result=None, error=None):
        try:
            service.lib.encoder_id
        except guard.GuiThreadViolation as exc:
            caught.append(str(exc))

    service.call(lambda lib: None, reads_a_property)
    service.wait_idle(WAIT)
    assert len(caught) == 2 and "Library.encoder_id" in caught[1] and guard.violations
    del guard.violations[:]
    assert service.lib.photos() == []


def test_callbacks_get_exception_objects_and_bugs_keep_their_traceback(qtbot, service, capfd):
    from photosim.errors import PhotosimError

    got, callback = _collect()
    user = PhotosimError("that folder does not exist")
    service.call(lambda lib: (_ for _ in ()).throw(user), callback)
    service.call(lambda lib: 1 / 0, callback)
    service.call(lambda lib: "fine", callback)
    assert service.wait_idle(WAIT)
    (r1, e1), (r2, e2), (r3, e3) = got
    assert e1 is user and r1 is None
    assert isinstance(e2, ZeroDivisionError) and r2 is None
    assert (r3, e3) == ("fine", None)
    err = capfd.readouterr().err
    assert "ZeroDivisionError" in err and "Traceback" in err  # the bug is printed
    assert "that folder does not exist" not in err  # the user's error is only a message

    from photosim.gui.service import error_text

    assert error_text(e1) == "that folder does not exist"
    assert error_text(e2, "Finding duplicates").startswith("Finding duplicates failed (ZeroDivisionError")


def test_exclusive_jobs_never_overlap_while_queries_go_on(qtbot, service):
    from photosim.gui.service import JobRefused, Kind

    release = threading.Event()
    changes = []
    service.exclusiveChanged.connect(changes.append)
    got, callback = _collect()
    first = service.start("fine-tuning", lambda lib, job: release.wait(WAIT / 1000) and "trained", callback)
    assert first is not None and service.exclusive == "fine-tuning"

    refused, on_refused = _collect()
    assert service.call(lambda lib: lib.forget([]), on_refused, kind=Kind.EXCLUSIVE) is None
    assert not service.scan(None)  # F5 too: nothing starts
    assert not service.scanning
    queries, on_query = _collect()
    service.call(lambda lib: len(lib.photos()), on_query)  # a query does not wait for it
    service.call(lambda lib: lib.duplicates(), on_query, kind=Kind.LONG)
    qtbot.waitUntil(lambda: len(queries) == 2 and len(refused) == 1, timeout=WAIT)
    assert not got  # the exclusive job still runs
    assert (0, None) in queries and ([], None) in queries  # either may answer first
    assert isinstance(refused[0][1], JobRefused)
    assert str(refused[0][1]) == "Fine-tuning is still running; try again when it has finished."

    release.set()
    assert service.wait_idle(WAIT)
    assert got == [("trained", None)] and service.exclusive == ""
    assert changes == ["fine-tuning", ""]
    again = service.start("scanning", lambda lib, job: "ok", callback)  # free again
    assert again is not None and service.wait_idle(WAIT) and got[-1] == ("ok", None)


def test_progress_is_one_form_and_cancel_is_a_token(qtbot, service):
    from photosim.errors import Cancelled
    from photosim.progress import CancelToken, Progress

    seen = []
    started = threading.Event()

    def job(lib, job):
        assert isinstance(job.token, CancelToken)
        job.report(Progress("indexing", 1, 4))
        job.report(Progress("re-embedding", 2, 4))
        started.set()
        while not job.token.cancelled:
            job.token.check()  # raises once cancelled ...
            threading.Event().wait(0.01)
        job.token.check("stopped by the user")  # ... here at the latest

    got, callback = _collect()
    running = service.start("switching models", job, callback, progress=seen.append)
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=WAIT)
    assert started.is_set() and not got
    running.cancel()
    assert service.wait_idle(WAIT)
    assert [type(p) for p in seen] == [Progress, Progress]
    assert [(p.stage, p.done, p.total) for p in seen] == [("indexing", 1, 4), ("re-embedding", 2, 4)]
    assert got[0][0] is None and isinstance(got[0][1], Cancelled)


def test_f5_during_a_model_switch_starts_no_second_scan(qtbot, gui_dirs, monkeypatch):
    from photosim import Library
    from photosim.gui.main_window import MainWindow

    photos = gui_dirs / "photos"
    write_scenes(photos, range(40, 42), size=(160, 120))
    with Library(gui_dirs / "lib") as lib:
        lib.scan([photos])
    w = MainWindow(str(gui_dirs / "lib"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.gallery_ready and not w.service.busy, timeout=WAIT)
    lib = w.service.lib
    bundled = w.service.state.encoder_id
    release, entered = threading.Event(), threading.Event()

    def slow_use_model(model_id, progress=None, cancel=None):  # the engine's switch, held open
        from photosim.progress import Progress

        entered.set()
        progress(Progress("re-embedding", 1, 2))
        release.wait(WAIT / 1000)
        return 2, 0

    monkeypatch.setattr(lib, "use_model", slow_use_model)
    changed, done = [], []
    w.service.modelChanged.connect(changed.append)
    assert w.service.switch_model(bundled, lambda result=None, error=None: done.append((result, error)))
    qtbot.waitUntil(entered.is_set, timeout=WAIT)

    w.act_rescan.trigger()  # F5
    assert not w.service.scanning and not w.scan_bar.isVisible()
    assert "Switching models is still running" in w.banner.text()
    assert not w.start_scan([str(photos)])  # Add folder neither

    release.set()
    qtbot.waitUntil(lambda: bool(done), timeout=WAIT)
    assert done == [(bundled, None)] and [s.encoder_id for s in changed] == [bundled]
    assert "Now searching with the model" in w.banner.text()  # the window heard it from the service
    with qtbot.waitSignal(w.service.scanFinished, timeout=WAIT):
        assert w.start_scan(None)  # and F5 works again
    w.close()


def test_the_index_builds_in_the_background_and_its_progress_reaches_the_window(qtbot, gui_dirs, tmp_path,
                                                                               monkeypatch):
    import numpy as np

    import photosim.index as ix
    from photosim import Library
    from photosim.gui.service import LibraryService
    from photosim.pipeline.export import write_npz

    files = tmp_path / "files"
    files.mkdir()
    paths = [files / f"{i}.jpg" for i in range(400)]
    for i, p in enumerate(paths):
        p.write_bytes(b"\xff\xd8\xff" + i.to_bytes(4, "little"))
    lib_dir = gui_dirs / "big"
    with Library(lib_dir) as lib:
        vecs = np.random.default_rng(0).normal(size=(len(paths), lib.card.dim)).astype(np.float32)
        write_npz(tmp_path / "v.npz", [str(p) for p in paths], vecs / np.linalg.norm(vecs, axis=1, keepdims=True),
                  lib.encoder_id)
        lib.import_vectors(tmp_path / "v.npz")
    (lib_dir / "index.bin").unlink()  # the next open builds it
    monkeypatch.setattr(ix, "SYNC_BUILD_BELOW", 0)  # in the background, as for a large library
    real_add = ix.VectorIndex.add

    def slow_add(self, *a, **k):
        if threading.current_thread().name == "photosim-index-build":
            threading.Event().wait(1.0)
        return real_add(self, *a, **k)

    ix.VectorIndex.add = slow_add
    seen = []
    svc = LibraryService()
    svc.indexProgress.connect(seen.append)
    try:
        with qtbot.waitSignal(svc.opened, timeout=WAIT):
            svc.open(str(lib_dir))
        qtbot.waitUntil(lambda: any(p is not None for p in seen), timeout=WAIT)
        answers = []
        svc.call(lambda lib: len(lib.similar(lib.photos()[0], k=5)), lambda result=None, error=None:
                 answers.append((result, error)))  # a query meanwhile is answered, not blocked
        qtbot.waitUntil(lambda: bool(answers), timeout=WAIT)
        assert answers == [(5, None)]
        qtbot.waitUntil(lambda: bool(seen) and seen[-1] is None, timeout=WAIT)
    finally:
        ix.VectorIndex.add = real_add
        svc.close()
    progress = [p for p in seen if p is not None]
    assert progress and all(p.stage == "building index" for p in progress)
    assert (lib_dir / "index.bin").exists()
