"""One encoder network run through ONNX Runtime: the features graph, the lower
activations at any cut (alone, or with the features) and the features from those
activations, each loaded from the graph cache or made on first use.

Every graph is checked when it is loaded: a probe batch runs through it and through
the torch network it was made from, and the two must agree (fp32: cosine >= 0.9999
row by row). A graph that cannot be read, cannot run or disagrees is made again
once; if the new one fails too, :class:`GraphUnusable` says why and the caller
falls back to torch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .cache import cache_root, graph_path, prune, touch, write_atomically
from .export import export_graph
from .session import default_threads, lanes_for, make_session

#: Row-wise cosine each precision must reach against torch on the probe batch. fp32
#: is the parity that lets ONNX vectors share the card's id; int8 (its own id) only has
#: to be the same network, not a damaged or foreign graph.
MIN_COSINE = {"fp32": 0.9999, "int8": 0.9}


class GraphUnusable(RuntimeError):
    """An ONNX graph could not be made, loaded or trusted (the message says why)."""


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def _weights_key(net) -> str:
    """A cache key for a card without a backbone id: a hash of the backbone's weights and
    of the card's input pipeline (what :func:`photosim.model.make_backbone_id` hashes)."""
    from ..model import make_backbone_id

    return "unnamed-" + make_backbone_id(net.card, net.backbone.state_dict())


class OnnxRuntime:
    """``features`` and ``lower`` of ``net`` (a :class:`photosim.model.EncoderNet` on
    CPU) through ONNX Runtime. ``probe``: a small preprocessed batch for the checks;
    ``calibration``: a callable giving the preprocessed int8 calibration batch."""

    def __init__(self, net, precision: str = "fp32", cache_dir: Path | str | None = None,
                 probe: np.ndarray | None = None, calibration=None, threads: int | None = None):
        if precision not in MIN_COSINE:
            raise ValueError(f"precision must be fp32 or int8, not {precision!r}")
        self.net = net
        self.card = net.card
        self.precision = precision
        self.root = cache_root(cache_dir)
        self.threads = threads
        size = self.card.input_size
        self._probe = probe if probe is not None else \
            np.random.default_rng(0).normal(size=(1, 3, size, size)).astype(np.float32)
        self._calibration = calibration
        self._lower: dict[int, object] = {}
        self._tapped: dict[int, object] = {}
        self._upper: dict[int, object] = {}
        self._pool = None  # threads of the lanes after the first (the caller runs the first)
        self.lanes, self._per_lane = lanes_for(threads or default_threads())
        self.key = self.card.backbone_id or _weights_key(net)
        self.features_path = graph_path(self.root, self.key, "features", precision)
        self._features = self._load("features", precision, None)

    # -- running ------------------------------------------------------------
    def _run(self, sess, batch: np.ndarray) -> list[np.ndarray]:
        """``sess`` on ``batch``, its rows split over the lanes (see photosim.inference.session);
        the rows come back in order. An output of k rows per photo (``lower``'s quarter
        turns: turn by turn, each turn a block of every photo) is put back together turn
        by turn."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        lanes = min(self.lanes, len(x))
        if lanes <= 1:
            return sess.run(None, {"pixels": x})
        parts = np.array_split(x, lanes)
        outs = self._in_lanes(sess, [{"pixels": part} for part in parts])
        joined = []
        for i in range(len(outs[0])):
            pieces = [out[i] for out in outs]
            k = len(pieces[0]) // len(parts[0])
            joined.append(np.concatenate([p.reshape(k, len(part), *p.shape[1:]) for p, part in zip(pieces, parts)],
                                         axis=1).reshape(k * len(x), *pieces[0].shape[1:]))
        return joined

    def _in_lanes(self, sess, feeds: list[dict]) -> list[list[np.ndarray]]:
        """``sess`` on each feed at once: the first on the calling thread, the others on the
        lanes' threads; the outputs in the feeds' order."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self.lanes - 1, thread_name_prefix="photosim-ort-lane")
        others = [self._pool.submit(sess.run, None, feed) for feed in feeds[1:]]
        return [sess.run(None, feeds[0])] + [f.result() for f in others]

    def features(self, batch: np.ndarray) -> np.ndarray:
        return self._run(self._features, batch)[0]

    def lower(self, batch: np.ndarray, split: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Activations before block ``split`` (fp32 graph, made on first use per cut)."""
        sess = self._lower.get(split)
        if sess is None:
            sess = self._lower[split] = self._load("lower", "fp32", split)
        out = self._run(sess, batch)
        return out[0], (out[1] if len(out) > 1 else None)

    def tapped(self, batch: np.ndarray, split: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The features and the activations before block ``split`` in one pass (fp32 graph,
        made on first use per cut): what a scan keeping taps for fine-tuning runs."""
        sess = self._tapped.get(split)
        if sess is None:
            sess = self._tapped[split] = self._load("tapped", "fp32", split)
        out = self._run(sess, batch)
        return out[0], out[1], (out[2] if len(out) > 2 else None)

    def upper(self, upright: np.ndarray, context: np.ndarray | None, split: int) -> np.ndarray:
        """Pooled features from the activations before block ``split`` (``lower``'s outputs:
        ``context`` turn by turn, or None), fp32 graph made on first use per cut. Accepting
        a standard fine-tune re-embeds its photos' kept taps with it."""
        sess = self._upper.get(split)
        if sess is None:
            sess = self._upper[split] = self._load("upper", "fp32", split)
        return self._run_upper(sess, upright, context)

    def _run_upper(self, sess, upright: np.ndarray, context: np.ndarray | None) -> np.ndarray:
        """``sess`` on taps, photos split over the lanes: each lane gets its photos' rows
        of every turn (upright: ``rotations`` turns, context: 4)."""
        turns = max(1, int(self.card.rotations))
        up = np.asarray(upright, dtype=np.float32)
        n = len(up) // turns
        ctx = None if context is None else np.asarray(context, dtype=np.float32)

        def feed(a: int, b: int) -> dict:
            def rows(x, k):
                x = x.reshape(k, n, *x.shape[1:])[:, a:b]
                return np.ascontiguousarray(x.reshape(k * (b - a), *x.shape[2:]))
            out = {"upright": rows(up, turns)}
            if ctx is not None:
                out["context"] = rows(ctx, 4)
            return out

        lanes = min(self.lanes, n)
        if lanes <= 1:
            return sess.run(None, feed(0, n))[0]
        bounds = np.linspace(0, n, lanes + 1).astype(int)
        outs = self._in_lanes(sess, [feed(a, b) for a, b in zip(bounds[:-1], bounds[1:])])
        return np.concatenate([out[0] for out in outs])

    def set_threads(self, threads: int | None) -> None:
        """Re-open the sessions for ``threads`` threads (None or 0: the default), e.g. one
        on two cores while decode threads use the other (bench_scan.py)."""
        threads = threads or None
        if threads == self.threads:
            return
        self.threads = threads
        lanes, self._per_lane = lanes_for(threads or default_threads())
        if lanes != self.lanes and self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        self.lanes = lanes
        self._features = self._load("features", self.precision, None)  # made again if pruned meanwhile
        self._lower.clear()  # re-opened on next use
        self._tapped.clear()
        self._upper.clear()

    # -- making and checking graphs -------------------------------------------
    def _torch(self, kind: str, x: np.ndarray, split: int | None) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(x)
            if kind == "features":
                return [self.net.features(t).float().numpy()]
            up, ctx = self.net.lower(t, split)
            if kind == "upper":
                return [self.net.upper(up, ctx, split).float().numpy()]
            taps = [up.float().numpy()] + ([] if ctx is None else [ctx.float().numpy()])
            if kind == "tapped":
                return [self.net.upper(up, ctx, split).float().numpy(), *taps]
            return taps

    def _check(self, sess, kind: str, precision: str, split: int | None) -> str | None:
        """None when the graph agrees with torch on the probe batch, else why not."""
        if kind == "upper":  # fed the probe's own taps
            taps = self._torch("lower", self._probe, split)
            got = sess.run(None, dict(zip(["upright", "context"], taps)))
        else:
            got = sess.run(None, {"pixels": self._probe})
        want = self._torch(kind, self._probe, split)
        if len(got) != len(want):
            return f"the graph gives {len(got)} outputs, not {len(want)}"
        for g, w in zip(got, want):
            if g.shape != w.shape:
                return f"the graph gives shape {g.shape}, not {w.shape}"
            worst = float(_cosines(g, w).min())
            if not np.isfinite(worst) or worst < MIN_COSINE[precision]:
                return f"the graph's {precision} output differs from PyTorch's (cosine {worst:.4f})"
        return None

    def _build(self, kind: str, precision: str, split: int | None, path: Path) -> None:
        if precision == "fp32":
            write_atomically(path, lambda tmp: export_graph(self.net, tmp, kind, split))
            return
        from .quantize import quantize_features

        if self._calibration is None:
            raise GraphUnusable("int8 needs calibration photos")
        calibration = self._calibration()
        with tempfile.TemporaryDirectory(prefix="photosim-int8-") as tmpdir:
            fp32 = Path(tmpdir) / "fp32.onnx"  # made afresh: a cached one may be what is damaged
            export_graph(self.net, fp32, kind, split)
            write_atomically(path, lambda tmp: quantize_features(fp32, tmp, calibration))

    def _load(self, kind: str, precision: str, split: int | None):
        name = kind if split is None else f"{kind}{split}"
        path = graph_path(self.root, self.key, name, precision)
        why = "no graph"
        for attempt in range(2):
            try:
                built = attempt or not path.is_file()
                if built:
                    self._build(kind, precision, split, path)
                sess = make_session(path, self._per_lane)
                why = self._check(sess, kind, precision, split)
                if why is None:
                    touch(path)  # used now: pruning keeps it longest
                    if built:
                        prune(self.root, keep=path)
                    return sess
            except GraphUnusable as exc:
                why = str(exc)
                break
            except Exception as exc:  # noqa: BLE001 - protobuf, ORT and exporter errors alike
                why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
        raise GraphUnusable(why)
