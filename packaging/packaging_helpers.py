"""Writing an encoder directory (card + safetensors) from a state dict."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from photosim.model import EncoderNet, ModelCard, make_backbone_id


def write_encoder(out: Path, card: ModelCard, state: dict[str, torch.Tensor]) -> ModelCard:
    """Check the state fits the card, stamp the backbone id, write both files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    net = EncoderNet(card)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("pool.")]:
        raise ValueError(f"state does not fit card: missing={missing[:5]} unexpected={unexpected[:5]}")
    full = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    card.backbone_id = make_backbone_id(card, {k: v for k, v in full.items() if k.startswith("backbone.")})
    save_file(full, str(out / card.weights), metadata={"id": card.id, "format": str(card.format)})
    card.save(out / "card.json")
    return card
