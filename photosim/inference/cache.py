"""The on-disk cache of ONNX graphs: one file per backbone, graph kind and precision.

Graphs are made from a model's weights on first use (seconds) and kept in
``platformdirs.user_cache_dir("photosim")/onnx``, or ``$PHOTOSIM_CACHE_DIR``, or the
folder a caller names. A file's name carries everything its content depends on:
the backbone id (a hash of the backbone's weights and input pipeline, see
:func:`photosim.model.make_backbone_id`), the graph kind (``features``, or
``lower14`` for the activations before block 14, ``tapped17`` for both at once,
``upper17`` for the features from the activations before block 17), the precision and
:data:`FORMAT_VERSION`. Files are written atomically (temporary file, then
rename), so a reader never sees half a graph; a damaged one is rebuilt by the
caller (:mod:`photosim.inference.runtime`).

Every fine-tune with a backbone of its own adds its graphs (about 33 MB for a standard
fine-tune of encoder v5), so the cache keeps at most :data:`MAX_BYTES`: a graph is
touched whenever it is loaded, and once a new one is written those used longest ago go
first (:func:`prune`); one needed again is made again, in seconds.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Bump when the exported graphs change for the same weights (export code, opset,
#: quantization recipe, calibration photos): old files are then ignored.
FORMAT_VERSION = 3

ENV = "PHOTOSIM_CACHE_DIR"
#: Most bytes of graphs the cache keeps (the bundled encoder's graphs are about 50 MB).
MAX_BYTES = 1 << 30


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """Where graphs live: ``override``, else ``$PHOTOSIM_CACHE_DIR``, else the user cache."""
    if override:
        return Path(override)
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    import platformdirs

    return Path(platformdirs.user_cache_dir("photosim")) / "onnx"


def graph_path(root: Path, backbone_id: str, kind: str, precision: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", backbone_id)
    return Path(root) / f"{safe}.{kind}.{precision}.v{FORMAT_VERSION}.onnx"


def write_atomically(path: Path, make: Callable[[Path], None]) -> Path:
    """Run ``make(tmp)`` to write a temporary file beside ``path``, then rename it over
    ``path`` (atomic on one file system). The temporary file is removed on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp.onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        make(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _graphs(root: Path) -> list[Path]:
    """The finished graph files under ``root`` (not another writer's temporary files)."""
    return [p for p in Path(root).glob("*.onnx") if ".tmp." not in p.name]


def touch(path: Path) -> None:
    """Mark a graph as used now (what :func:`prune` keeps longest); best effort."""
    with contextlib.suppress(OSError):
        os.utime(path)


def prune(root: Path, keep: Path | None = None, max_bytes: int | None = None) -> list[Path]:
    """Delete the graphs used longest ago until the cache holds at most ``max_bytes``
    (default :data:`MAX_BYTES`), never ``keep``; returns those deleted. A file another
    process holds open where the platform refuses is skipped."""
    limit = MAX_BYTES if max_bytes is None else max_bytes
    sized = []
    for p in _graphs(root):
        try:
            st = p.stat()
        except OSError:
            continue
        sized.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in sized)
    removed: list[Path] = []
    for _, size, p in sorted(sized, key=lambda t: t[0]):
        if total <= limit:
            break
        if keep is not None and p == Path(keep):
            continue
        try:
            p.unlink()
        except OSError:
            continue
        total -= size
        removed.append(p)
    return removed
