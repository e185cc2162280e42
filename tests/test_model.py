"""The network's pieces: a backbone cut anywhere gives the same features; the split head."""

import numpy as np
import pytest
import torch

from photosim.model import EncoderNet, ModelCard, SplitHead, build_head


@pytest.mark.parametrize("rotations", [1, 4])
def test_lower_then_upper_is_features_at_any_cut(rotations):
    torch.manual_seed(0)
    card = ModelCard(id="t", context_size=32, rotations=rotations, feature_dim=2560, head="identity", dim=2560)
    net = EncoderNet(card).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        want = net.features(x)
        for cut in (0, 7, 14, 19):
            up, ctx = net.lower(x, cut)
            assert ctx.shape[0] == 4 * 3 and up.shape[0] == rotations * 3
            assert torch.allclose(net.upper(up, ctx, cut), want, atol=1e-5)


def test_split_head_keeps_a_sparse_context_code():
    torch.manual_seed(0)
    card = ModelCard(id="t", context_size=96, feature_dim=40, head="split", dim=24, context_dims=8,
                     context_topk=3, context_weight=0.5)
    head = build_head(card)
    assert isinstance(head, SplitHead)
    f = torch.randn(5, 40)
    out = head(f)
    upright, context = out[:, :16], out[:, 16:]
    assert torch.allclose(upright.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.allclose(context.norm(dim=1), torch.full((5,), 0.5), atol=1e-5)
    assert ((context != 0).sum(dim=1) == 3).all()
    # Same context, other upright features: the context channel alone adds weight² = 0.25.
    g = f.clone()
    g[:, :20] = torch.randn(5, 20)
    other = head(g)
    assert torch.allclose((other[:, 16:] * out[:, 16:]).sum(1), torch.full((5,), 0.25), atol=1e-5)


def test_split_head_needs_sane_sizes():
    with pytest.raises(ValueError):
        build_head(ModelCard(id="t", context_size=96, feature_dim=40, head="split", dim=24,
                             context_dims=8, context_topk=9))
    with pytest.raises(ValueError):
        build_head(ModelCard(id="t", context_size=0, feature_dim=40, head="split", dim=24,
                             context_dims=8, context_topk=2))
