"""Write the interim encoder: plain ImageNet MobileNetV2 with global average pooling.

This is the untrained baseline that photosim shipped before its own metric-learning
encoder (``packaging/train_encoder.py``) existed, and the reference that the
trained encoder is measured against. Usage: python packaging/make_interim_encoder.py OUT_DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from packaging_helpers import write_encoder  # noqa: E402
from pretrained import imagenet_backbone_state  # noqa: E402

from photosim.model import ModelCard  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "photosim-build")
    args = ap.parse_args()
    card = ModelCard(
        id="mobilenet_v2-imagenet-avg-interim",
        pooling="avg",
        head="identity",
        dim=1280,
        description="INTERIM: ImageNet MobileNetV2 global-average features, no metric learning. "
        "Baseline only; photosim's trained encoder replaces it.",
    )
    write_encoder(args.out, card, imagenet_backbone_state(args.cache))


if __name__ == "__main__":
    main()
