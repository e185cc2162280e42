"""Heads trained on scaled inputs come back as heads of the raw features, exactly."""

import numpy as np
import pytest
import torch

from photosim.card import ModelCard
from photosim.model import build_head
from photosim.training.input_scale import input_scale, input_weights, scale_input_weights


@pytest.mark.parametrize("kind", ["linear", "mlp", "split"])
def test_scaling_the_input_weights_is_the_same_function_of_scaled_inputs(kind):
    torch.manual_seed(0)
    card = ModelCard(id="t", head=kind, feature_dim=64, dim=16, head_hidden=32, context_size=32,
                     context_dims=6, context_topk=3)
    head = build_head(card).eval()
    x = torch.rand(5, 64) * 40  # GeM features of EfficientNet-Lite2 have norms of ~36
    want = head(x)
    s = input_scale(x.numpy())
    assert s == pytest.approx(float(np.median(np.linalg.norm(x.numpy(), axis=1))))
    scale_input_weights(head, s)
    assert torch.allclose(head(x / s), want, atol=1e-5)
    scale_input_weights(head, 1 / s)
    assert torch.allclose(head(x), want, atol=1e-5)
    assert len(input_weights(head)) == (2 if kind == "split" else 1)


def test_degenerate_features_leave_the_scale_at_one():
    assert input_scale(np.zeros((0, 8))) == 1.0
    assert input_scale(np.zeros((3, 8))) == 1.0
    with pytest.raises(ValueError, match="no input weights"):
        input_weights(torch.nn.Identity())


@pytest.mark.parametrize("kind", ["linear", "split"])
def test_the_before_figure_is_the_parent_head_on_the_raw_features(kind):
    """A fine-tune's "before" is what the parent gives (its biases make head(x / s) another
    function than head(x): the figure was once made that way, and wrong)."""
    from photosim.evaluation import retrieval_metrics
    from photosim.training.finetune import TrainConfig, project_with, train_head

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    card = ModelCard(id="t", head=kind, feature_dim=64, dim=16, context_size=32, context_dims=6, context_topk=3)
    head = build_head(card)
    with torch.no_grad():
        for m in head.modules():
            if isinstance(m, torch.nn.Linear):
                m.bias.normal_(0, 1.0)  # biases that matter
    state = {f"head.{k}": v for k, v in head.state_dict().items()}
    labels = np.repeat(np.arange(6), 20)
    centres = rng.random((6, 64)) * 40
    feats = (centres[labels] + rng.random((len(labels), 64)) * 20).astype(np.float16)  # norms of ~200
    out = train_head(feats, labels, card, state, TrainConfig(epochs=1, seed=0))
    rows = np.asarray(out.val_rows)
    want = retrieval_metrics(project_with(state, card, feats[rows]), labels[rows])["map_at_r"]
    assert out.before["map_at_r"] == pytest.approx(want, abs=1e-4)
