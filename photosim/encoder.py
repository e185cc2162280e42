"""Loading an encoder (card + safetensors weights) and turning images into vectors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .card import ModelCard
from .errors import ModelUnusable
from .frames import trim_frame

_HERE = Path(__file__).resolve().parent


def bundled_model_dir() -> Path:
    """The encoder shipped with photosim: inside the wheel, or ``resources/`` of a checkout."""
    for candidate in (_HERE / "resources" / "encoder", _HERE.parent / "resources" / "encoder"):
        if (candidate / "card.json").is_file():
            return candidate
    raise FileNotFoundError("photosim's bundled encoder is missing from this installation")


def pick_device(preferred: str | None = None) -> str:
    import torch

    if preferred:
        return preferred
    return "cuda" if torch.cuda.is_available() else "cpu"


def _parent_dir(card: ModelCard, resolve_parent: Callable[[str], Path] | None) -> Path:
    """Where a head-only model's backbone lives: its parent, or, when that is gone (an
    upgrade replaced the bundled encoder), any bundled encoder with the same backbone id
    or the same weights (see :func:`_same_weights`): the fine-tune then still works."""
    try:
        found = resolve_parent(card.parent) if resolve_parent else bundled_model_dir()
        if _same_weights(ModelCard.load(found / "card.json"), card):
            return found
    except Exception:  # noqa: BLE001 - unknown parent: try the bundled one below
        found = None
    bundled = bundled_model_dir()
    if _same_weights(ModelCard.load(bundled / "card.json"), card):
        return bundled
    if found is not None:
        return found
    raise ValueError(f"the backbone of {card.id} (from {card.parent}) is no longer installed: this photosim "
                     "ships another encoder; fine-tune again from the same albums")


def _same_weights(parent: ModelCard, card: ModelCard) -> bool:
    """Whether ``parent``'s backbone weights are those ``card`` was made on: the same backbone
    id, or one the parent lists as an earlier input pipeline over its weights (the fine-tune
    then runs them with its own card's pipeline, as it always did)."""
    return card.backbone_id == parent.backbone_id or card.backbone_id in parent.same_weights_as


def backbone_problem(card: ModelCard, resolve_parent: Callable[[str], Path] | None) -> str | None:
    """Why the model cannot be loaded because its backbone is gone (a head-only fine-tune
    of an encoder that an upgrade replaced), or None when it can."""
    if not card.head_only:
        return None
    try:
        _parent_dir(card, resolve_parent)
    except (ValueError, OSError, ModelUnusable) as exc:
        return str(exc)
    return None


def _load_weights(card: ModelCard, path: Path) -> dict:
    """A model's safetensors weights; anything else (a pickle, garbage, a truncated or
    missing file, NaN values) raises :class:`ModelUnusable` in one sentence."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except FileNotFoundError as exc:
        raise ModelUnusable(f"the weights of model {card.id} are missing ({path})") from exc
    except OSError as exc:
        raise ModelUnusable(f"the weights of model {card.id} cannot be read ({path}: "
                            f"{exc.strerror or exc})") from exc
    except (SafetensorError, ValueError, RuntimeError, MemoryError) as exc:
        raise ModelUnusable(f"the weights of model {card.id} are damaged or not a safetensors file "
                            f"({path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                            ) from exc
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelUnusable(f"the weights of model {card.id} are damaged ({name} holds NaN or "
                                "infinite values)")
    return state


#: Environment variable that ``backend="auto"`` obeys: ``torch`` or ``onnx``.
BACKEND_ENV = "PHOTOSIM_BACKEND"
BACKENDS = ("auto", "onnx", "torch")
PRECISIONS = ("fp32", "int8")


class Encoder:
    """A loaded encoder. ``features`` (backbone) and ``project`` (head) are separate
    so cached features can be re-projected by a fine-tuned head.

    On CPU the backbone runs through ONNX Runtime (``backend == "onnxruntime"``,
    about twice torch's speed, same vectors: cosine >= 0.9999, checked on every load);
    on CUDA, for training and whenever ONNX Runtime cannot run the model it runs in
    torch (``backend == "torch"``; ``notice`` then says why, in one sentence). The
    head always runs in torch (it is tiny)."""

    def __init__(self, card: ModelCard, net, device: str, runtime=None, notice: str = ""):
        self.card = card
        self.net = net
        self.device = device
        self.runtime = runtime  # photosim.inference.OnnxRuntime, or None: torch
        self.notice = notice
        self._torch_cuts: set = set()  # cuts (or ("upper", cut)) whose graph failed: torch runs them
        self._lock = threading.Lock()  # one forward pass at a time (GUI + scan threads)
        # (x / 255 - mean) / std as one multiply and one subtraction (equal within 5e-7)
        mean = np.asarray(card.mean, dtype=np.float64).reshape(3, 1, 1)
        std = np.asarray(card.std, dtype=np.float64).reshape(3, 1, 1)
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._shift = (mean / std).astype(np.float32)

    # -- identity ---------------------------------------------------------
    @property
    def backend(self) -> str:
        """"onnxruntime" or "torch": what runs the backbone."""
        return "onnxruntime" if self.runtime is not None else "torch"

    @property
    def precision(self) -> str:
        return self.runtime.precision if self.runtime is not None else "fp32"

    @property
    def id(self) -> str:
        """The card's id; int8 vectors (not equal to fp32 ones) carry their own."""
        return self.card.id if self.precision == "fp32" else f"{self.card.id}@{self._precision_tag}"

    @property
    def dim(self) -> int:
        return self.card.dim

    @property
    def backbone_id(self) -> str:
        """Key of cached features; int8 features are keyed apart from fp32 ones too."""
        bid = self.card.backbone_id
        return bid if self.precision == "fp32" else f"{bid}@{self._precision_tag}"

    @property
    def _precision_tag(self) -> str:
        """``int8r2``: the precision and its quantization recipe (a new recipe, new ids)."""
        from .inference.quantize import RECIPE

        return f"{self.precision}r{RECIPE}"

    # -- loading ----------------------------------------------------------
    @classmethod
    def load(
        cls,
        model_dir: Path | None = None,
        device: str | None = None,
        resolve_parent: Callable[[str], Path] | None = None,
        backend: str = "auto",
        precision: str = "fp32",
        cache_dir: Path | str | None = None,
    ) -> Encoder:
        """Load from a model directory (default: the bundled encoder).

        Head-only models (fine-tunes) name their ``parent``; ``resolve_parent``
        maps that id to the parent's directory so its backbone can be loaded.
        Raises :class:`ModelUnusable` (one sentence) for a damaged or invalid card, weights
        that are not safetensors, are truncated, hold NaN or do not fit the card, and a
        backbone that is no longer installed; weights are never unpickled.

        ``backend``: "auto" (ONNX Runtime on CPU, torch on CUDA; ``$PHOTOSIM_BACKEND``
        = ``torch`` or ``onnx`` overrides it), "onnx" or "torch". ``precision``:
        "fp32", or "int8" (ONNX Runtime only; faster, slightly less precise, vectors
        under their own id). ``cache_dir``: where ONNX graphs are kept (default
        ``$PHOTOSIM_CACHE_DIR`` or the user cache folder; see photosim.inference.cache).
        A graph that cannot be made or trusted never fails the load: the encoder then
        runs in torch and ``notice`` says why.
        """
        import torch

        from .model import EncoderNet

        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        model_dir = Path(model_dir) if model_dir else bundled_model_dir()
        card = ModelCard.load(model_dir / "card.json")  # raises ModelUnusable
        try:
            net = EncoderNet(card)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelUnusable(f"model {card.id} cannot be built from its card ({exc})") from exc
        state = _load_weights(card, model_dir / card.weights)
        if card.head_only:
            if not card.parent:
                raise ModelUnusable(f"head-only model {card.id} names no parent")
            try:
                parent_dir = _parent_dir(card, resolve_parent)
            except ValueError as exc:
                raise ModelUnusable(str(exc)) from exc
            parent_card = ModelCard.load(parent_dir / "card.json")
            parent_state = _load_weights(parent_card, parent_dir / parent_card.weights)
            state = {**{k: v for k, v in parent_state.items() if k.startswith("backbone.")}, **state}
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shapes that do not fit the card
            detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line),
                          str(exc).splitlines()[0] if str(exc) else "")
            raise ModelUnusable(f"the weights of model {card.id} do not fit its card ({detail})") from exc
        missing = [k for k in missing if not k.startswith("pool.")]
        if missing or unexpected:
            raise ModelUnusable(f"the weights of model {card.id} do not fit its card: missing "
                                f"{missing[:3]}, unexpected {unexpected[:3]}")
        device = pick_device(device)
        net = net.to(device).eval()
        if device == "cpu":
            net = net.to(memory_format=torch.channels_last)
        encoder = cls(card, net, device)
        encoder._start_runtime(backend, precision, cache_dir)
        return encoder

    def _start_runtime(self, backend: str, precision: str, cache_dir) -> None:
        """Put the backbone on ONNX Runtime where it should run there, else say why not."""
        import os

        if backend == "auto":
            wanted = os.environ.get(BACKEND_ENV, "").strip().lower()
            if wanted in ("torch", "onnx"):
                backend = wanted
            elif wanted:
                self.notice = f"{BACKEND_ENV}={wanted!r} is neither torch nor onnx and was ignored"
        fp32_only = "" if precision == "fp32" else ", in fp32"
        if backend == "torch" or (backend == "auto" and self.device != "cpu"):
            if precision != "fp32":
                self.notice = f"int8 needs ONNX Runtime on the CPU, so this encoder runs in PyTorch{fp32_only}"
            return
        if self.device != "cpu":
            self.notice = f"ONNX Runtime is used on the CPU only, so this encoder runs in PyTorch on {self.device}{fp32_only}"
            return
        try:
            from .inference import OnnxRuntime

            self.runtime = OnnxRuntime(self.net, precision, cache_dir, probe=self._probe_batch(),
                                       calibration=self._calibration_batch)
        except Exception as exc:  # noqa: BLE001 - ORT missing, export or graph failure: torch still works
            reason = str(exc).strip() or type(exc).__name__
            self.notice = (f"ONNX Runtime could not run this encoder ({reason.rstrip('.')}), so it runs "
                           f"in PyTorch{fp32_only}, about half as fast")

    def _calibration_batch(self) -> np.ndarray:
        from .inference.quantize import calibration_images

        return np.stack([self.preprocess(im) for im in calibration_images()])

    def _probe_batch(self) -> np.ndarray:
        """A photo to check a graph against torch with (a shipped one when there is; one
        row, so the check also covers a batch size other than the export's)."""
        from .inference.quantize import calibration_images

        try:
            images = calibration_images(1)
        except OSError:
            size = self.card.input_size
            return np.random.default_rng(0).normal(size=(1, 3, size, size)).astype(np.float32)
        return np.stack([self.preprocess(im) for im in images])

    def set_threads(self, threads: int | None) -> None:
        """Threads of the ONNX Runtime forward pass (None or 0: one per core, or
        ``$PHOTOSIM_ORT_THREADS``), each a lane running its own slice of a batch
        (photosim.inference.session). No effect under torch."""
        if self.runtime is not None:
            with self._lock:
                self.runtime.set_threads(threads)

    # -- inference --------------------------------------------------------
    def preprocess(self, image: Image.Image) -> np.ndarray:
        """PIL RGB → normalised CHW float32 at the encoder's input size (thread-safe), its
        flat frame trimmed first where the card says so (:mod:`photosim.frames`)."""
        size = self.card.input_size
        if image.mode != "RGB":
            image = image.convert("RGB")
        if self.card.trim_frames:
            image = trim_frame(image)
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
        out = np.empty((3, size, size), dtype=np.float32)
        np.multiply(np.asarray(image).transpose(2, 0, 1), self._scale, out=out)
        out -= self._shift
        return out

    def features(self, batch: np.ndarray) -> np.ndarray:
        """Pooled backbone features for a preprocessed (N, 3, S, S) batch."""
        if self.runtime is not None:
            with self._lock:
                return self.runtime.features(batch)
        import torch

        with self._lock, torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            if self.device == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            return self.net.features(x).float().cpu().numpy()

    def lower(self, batch: np.ndarray, split: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Activations before backbone block ``split`` (float32; see EncoderNet.lower) for a
        preprocessed batch: through ONNX Runtime (a graph per cut) on CPU, else torch."""
        return self._at_cut("lower", batch, split)

    def tapped(self, batch: np.ndarray, split: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``features(batch)`` and ``lower(batch, split)`` in one pass (the activations a
        fine-tune trains the blocks from ``split`` on); ONNX Runtime on CPU, else torch."""
        return self._at_cut("tapped", batch, split)

    def _at_cut(self, kind: str, batch: np.ndarray, split: int) -> tuple:
        """``lower`` or ``tapped``: the runtime's graph of that cut, else (or once it failed) torch."""
        if self.runtime is not None and split not in self._torch_cuts:
            try:
                with self._lock:
                    return getattr(self.runtime, kind)(batch, split)
            except Exception as exc:  # noqa: BLE001 - that cut's graph failed: torch gives the same
                self.notice = (f"ONNX Runtime could not run the network cut at block {split} "
                               f"({str(exc).strip() or type(exc).__name__}), so it runs in PyTorch")
                self._torch_cuts.add(split)
        import torch

        with self._lock, torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            if self.device == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            up, ctx = self.net.lower(x, split)
            taps = (up.float().cpu().numpy(), None if ctx is None else ctx.float().cpu().numpy())
            return taps if kind == "lower" else (self.net.upper(up, ctx, split).float().cpu().numpy(), *taps)

    def upper(self, upright: np.ndarray, context: np.ndarray | None, split: int) -> np.ndarray:
        """Pooled features from activations before block ``split`` (``context``: (n, 4, C, h, w),
        photo by photo, or None): a model whose blocks from ``split`` on are new embeds
        photos from taps with it (photosim.store.taps). ONNX Runtime on CPU (an ``upper``
        graph per cut), else, or once that graph failed, torch."""
        import torch

        c = None
        if context is not None:  # turn by turn, as lower() gives them
            c = np.ascontiguousarray(np.swapaxes(np.asarray(context, np.float32), 0, 1))
            c = c.reshape(-1, *c.shape[2:])
        if self.runtime is not None and ("upper", split) not in self._torch_cuts:
            try:
                with self._lock:
                    return self.runtime.upper(upright, c, split)
            except Exception as exc:  # noqa: BLE001 - that graph failed: torch gives the same
                self.notice = (f"ONNX Runtime could not run the network's blocks from {split} on "
                               f"({str(exc).strip() or type(exc).__name__}), so they run in PyTorch")
                self._torch_cuts.add(("upper", split))
        with self._lock, torch.inference_mode():
            u = torch.from_numpy(np.asarray(upright, dtype=np.float32)).to(self.device)
            ct = None if c is None else torch.from_numpy(c).to(self.device)
            if self.device == "cpu":
                u = u.contiguous(memory_format=torch.channels_last)
                ct = None if ct is None else ct.contiguous(memory_format=torch.channels_last)
            return self.net.upper(u, ct, split).float().cpu().numpy()

    def project(self, features: np.ndarray) -> np.ndarray:
        """Head + L2 normalisation; features are rounded to float16 first, exactly as
        they are cached, so a fresh embedding equals one re-projected from the cache."""
        import torch

        f16 = np.asarray(features, dtype=np.float16).astype(np.float32)
        with self._lock, torch.inference_mode():
            out = self.net.project(torch.from_numpy(f16).to(self.device))
            return out.float().cpu().numpy()

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = np.stack([self.preprocess(im) for im in images])
        return self.project(self.features(batch))
