"""ONNX Runtime sessions and their thread settings.

photosim shares few cores between decoding photos (the scan's worker threads),
the forward pass and SQLite. The forward pass gets ``threads`` threads (default:
every core, as torch does). By default they are *lanes*: sessions with one
intra-op thread, each lane running its own slice of a batch (ONNX Runtime's
``run`` may be called from several threads at once). One operator split over two
threads wastes part of each core on small late layers and synchronisation; two
lanes keep both busy: on 2 cores encoder v5's forward pass ran at 64-74 images/s
in lanes against 59-63 with two intra-op threads (``benchmarks/bench_scan.py``).
A batch of one row runs on one lane. ``$PHOTOSIM_ORT_LANES=1`` gives the old
layout (one lane of ``threads`` intra-op threads).

One inter-op thread (this graph is a chain: parallel branches would only
oversubscribe). Idle intra-op threads do not spin-wait for work: on a busy CPU
spinning takes the cores the decode threads need.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Whether idle intra-op threads spin (ORT's default is to spin).
ALLOW_SPINNING = False


#: Overrides the intra-op thread count of every session (a positive integer).
THREADS_ENV = "PHOTOSIM_ORT_THREADS"


def default_threads() -> int:
    """``$PHOTOSIM_ORT_THREADS`` when set, else one per core."""
    try:
        wanted = int(os.environ.get(THREADS_ENV, "0"))
    except ValueError:
        wanted = 0
    return wanted if wanted > 0 else max(1, os.cpu_count() or 1)


#: ``1``: one lane of every thread (intra-op threads) instead of one lane per thread.
LANES_ENV = "PHOTOSIM_ORT_LANES"


def lanes_for(threads: int) -> tuple[int, int]:
    """``(lanes, intra-op threads per lane)`` for a forward pass of ``threads`` threads."""
    if os.environ.get(LANES_ENV, "").strip() == "1":
        return 1, threads
    return threads, 1


def make_session(path: Path, threads: int | None = None):
    """A CPU inference session of the graph at ``path`` (raises on a damaged file)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only: no warnings on the user's terminal
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if ALLOW_SPINNING else "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
