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
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Bump when the exported graphs change for the same weights (export code, opset,
#: quantization recipe, calibration photos): old files are then ignored.
FORMAT_VERSION = 3

ENV = "PHOTOSIM_CACHE_DIR"


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
