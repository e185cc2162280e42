"""The network's pieces: a backbone cut anywhere gives the same features; the split head."""

import numpy as np
import pytest
import torch

from photosim.model import EncoderNet, GeM, ModelCard, RegionalGeM, SplitHead, build_head


@pytest.mark.parametrize("rotations,pooling", [(1, "gem"), (4, "gem"), (1, "rmac")])
def test_lower_then_upper_is_features_at_any_cut(rotations, pooling):
    torch.manual_seed(0)
    card = ModelCard(id="t", context_size=32, rotations=rotations, feature_dim=2560, head="identity", dim=2560,
                     pooling=pooling)
    net = EncoderNet(card).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        want = net.features(x)
        for cut in (0, 7, 14, 19):
            up, ctx = net.lower(x, cut)
            assert ctx.shape[0] == 4 * 3 and up.shape[0] == rotations * 3
            assert torch.allclose(net.upper(up, ctx, cut), want, atol=1e-5)


def test_regional_pooling_matches_a_thing_that_fills_a_corner_with_the_thing_filling_the_photo():
    """Why the bundled encoder pools regions: the same object, once filling the photo and
    once filling a corner of a busy photo, must look more alike than global pooling says."""
    assert RegionalGeM.regions(9, 9) == [(0, 0, 9, 9), (0, 0, 6, 6), (0, 3, 6, 6), (3, 0, 6, 6), (3, 3, 6, 6)]
    assert RegionalGeM.regions(7, 5)[1:] == [(0, 0, 5, 3), (0, 2, 5, 3), (2, 0, 5, 3), (2, 2, 5, 3)]
    rng = np.random.default_rng(0)
    thing = np.zeros(64, np.float32)
    thing[:16] = rng.random(16) + 0.5  # the object's channels
    clutter = np.zeros((64, 9, 9), np.float32)
    clutter[16:] = rng.random((48, 9, 9)) * (rng.random((48, 1, 1)) < 0.5)  # other things
    whole = np.broadcast_to(thing[:, None, None], (64, 9, 9)).copy()
    corner = clutter.copy()
    corner[:, 3:, 3:] = thing[:, None, None]
    maps = torch.from_numpy(np.stack([whole, corner]))

    def cos(v: torch.Tensor) -> float:
        v = torch.nn.functional.normalize(v, dim=1)
        return float(v[0] @ v[1])

    assert cos(RegionalGeM()(maps)) > cos(GeM()(maps)) + 0.04  # 0.87 against 0.81


def test_regional_pooling_refuses_rotation_pooling():
    with pytest.raises(ValueError, match="regional"):
        EncoderNet(ModelCard(id="t", pooling="rmac", rotations=4, head="identity", dim=1280))


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
