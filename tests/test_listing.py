"""The parallel listing of a re-scan: the same files, in the same order, as a serial one,
through odd names, symlink loops, aliases, dangling links, pipes and unreadable folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from photosim.pipeline.scan import list_photos


def _tree(root: Path) -> None:
    (root / "2019" / "summer").mkdir(parents=True)
    (root / "2020" / "deep" / "er" / "est").mkdir(parents=True)
    (root / "empty").mkdir()
    for i in range(30):
        (root / "2019" / "summer" / f"IMG_{i:04d}.jpg").write_bytes(b"x" * i)
    (root / "2020" / "deep" / "er" / "est" / "bottom.png").write_bytes(b"png")
    (root / "2020" / "a b\tc\nd.jpg").write_bytes(b"odd")  # space, tab, newline
    (root / "2020" / "été ☀.JPG").write_bytes(b"unicode")
    os.mkdir(os.fsencode(root / "2020") + b"/bad-\xff-utf8")  # a name that is not UTF-8
    open(os.fsencode(root / "2020") + b"/bad-\xff-utf8/\xfe.jpg", "wb").close()
    (root / "2020" / "notes.txt").write_text("not a photo")
    (root / "2020" / "loop").symlink_to(root)  # a loop back to the root
    (root / "2020" / "deep" / "er" / "up").symlink_to("..")  # a loop to a parent
    (root / "alias").symlink_to(root / "2019")  # the same folder twice
    (root / "dangling.jpg").symlink_to(root / "nowhere.jpg")
    (root / "linked.jpg").symlink_to(root / "2019" / "summer" / "IMG_0001.jpg")  # a file link: listed
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.jpg")  # never a photo, never opened


def _rel(listed, root) -> list[str]:
    return [os.path.relpath(item.path, root) for item in listed]


def test_parallel_listing_equals_the_serial_one(tmp_path):
    root = tmp_path / "photos"
    _tree(root)
    serial_errors, parallel_errors = [], []
    serial = list_photos([root], errors=serial_errors, threads=1)
    parallel = list_photos([root], errors=parallel_errors, threads=8)
    assert [(i.path, i.size, i.mtime_ns) for i in parallel] == [(i.path, i.size, i.mtime_ns) for i in serial]
    assert serial_errors == parallel_errors == []
    names = sorted(_rel(serial, root))
    want = sorted([f"2019/summer/IMG_{i:04d}.jpg" for i in range(30)] + [
        "2020/deep/er/est/bottom.png", "2020/a b\tc\nd.jpg", "2020/été ☀.JPG",
        os.fsdecode(b"2020/bad-\xff-utf8/\xfe.jpg"), "linked.jpg"])
    assert names == want  # each folder once (no alias/ copy, no loop), no pipe, no dangling link
    sizes = {os.path.relpath(i.path, root): i.size for i in serial}
    assert sizes["2019/summer/IMG_0007.jpg"] == 7 and sizes["linked.jpg"] == 1


def test_a_folder_reached_twice_is_listed_under_its_shallowest_first_path(tmp_path):
    root = tmp_path / "photos"
    (root / "b" / "real").mkdir(parents=True)
    (root / "b" / "real" / "x.jpg").write_bytes(b"x")
    (root / "a").symlink_to(root / "b" / "real")  # shallower than the real one
    for threads in (1, 4):
        assert _rel(list_photos([root], threads=threads), root) == ["a/x.jpg"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_an_unreadable_folder_is_reported_not_fatal(tmp_path):
    root = tmp_path / "photos"
    (root / "locked").mkdir(parents=True)
    (root / "ok.jpg").write_bytes(b"x")
    (root / "locked").chmod(0)
    try:
        for threads in (1, 4):
            errors = []
            assert _rel(list_photos([root], errors=errors, threads=threads), root) == ["ok.jpg"]
            assert [Path(p).name for p, _ in errors] == ["locked"]
    finally:
        (root / "locked").chmod(0o755)


def test_skip_and_two_roots(tmp_path):
    root = tmp_path / "photos"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "thumb.jpg").write_bytes(b"t")
    (root / "p.jpg").write_bytes(b"p")
    other = tmp_path / "other"
    other.mkdir()
    (other / "q.jpg").write_bytes(b"q")
    for threads in (1, 4):
        listed = list_photos([root, other, root], skip=[root / "lib"], threads=threads)
        assert [Path(i.path).name for i in listed] == ["p.jpg", "q.jpg"]  # the library's own folder skipped
