"""Shared encoders: the contract (B, leads, T) -> (B, embedding_dim) and the architectures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecgbench.encoders import ResNet1d, TransformCNN, count_parameters


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _lengths_after_blocks(encoder: TransformCNN, x: torch.Tensor) -> list[int]:
    lengths = []
    hooks = [b.register_forward_hook(lambda m, i, o: lengths.append(o.shape[-1])) for b in encoder.blocks]
    encoder(x)
    for h in hooks:
        h.remove()
    return lengths


def test_transform_cnn_paper_size():
    encoder = TransformCNN()
    assert encoder(torch.randn(2, 1, 2560)).shape == (2, 128)
    assert encoder.embedding_dim == 128
    # 'same' convolutions keep each block's length; pool 8 / stride 2 between blocks.
    assert _lengths_after_blocks(encoder, torch.randn(1, 1, 2560)) == [2560, 1277, 635]
    # Conv weights + biases of the six layers: 1*32*32+32 + 32*32*32+32 + 32*64*16+64
    # + 64*64*16+64 + 64*128*8+128 + 128*128*8+128.
    assert count_parameters(encoder) == 329_152


def test_transform_cnn_uses_leaky_relu_and_no_batch_norm():
    encoder = TransformCNN()
    slopes = {m.negative_slope for m in encoder.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}
    assert not any(isinstance(m, nn.BatchNorm1d) for m in encoder.modules())


def test_transform_cnn_global_max_pooling():
    encoder = TransformCNN(channels=(4, 8, 16), kernels=(8, 4, 2))
    x = torch.randn(3, 1, 640)
    last = []
    encoder.blocks[-1].register_forward_hook(lambda m, i, o: last.append(o))
    assert torch.equal(encoder(x), last[0].amax(dim=-1))


@pytest.mark.parametrize("blocks", [(1,), (1, 2), (1, 2, 3)])
def test_residual_variants_have_1x1_projections(blocks):
    encoder = TransformCNN(residual_blocks=blocks)
    assert sorted(int(k) for k in encoder.shortcuts) == list(blocks)
    channels_in = {1: 1, 2: 32, 3: 64}
    channels_out = {1: 32, 2: 64, 3: 128}
    for b in blocks:
        projection = encoder.shortcuts[str(b)]
        assert isinstance(projection, nn.Conv1d) and projection.kernel_size == (1,)
        assert (projection.in_channels, projection.out_channels) == (channels_in[b], channels_out[b])
    assert encoder(torch.randn(2, 1, 2560)).shape == (2, 128)


def test_residual_connection_adds_the_projected_input():
    torch.manual_seed(0)
    plain = TransformCNN(channels=(4, 8, 16), kernels=(8, 4, 2))
    residual = TransformCNN(channels=(4, 8, 16), kernels=(8, 4, 2), residual_blocks=(1, 2, 3))
    residual.load_state_dict(plain.state_dict(), strict=False)  # same conv blocks
    x = torch.randn(2, 1, 640)
    assert not torch.allclose(plain(x), residual(x))
    for projection in residual.shortcuts.values():
        nn.init.zeros_(projection.weight)
        nn.init.zeros_(projection.bias)
    assert torch.allclose(plain(x), residual(x))  # with a zero shortcut only the blocks remain


def test_residual_identity_where_channels_match():
    encoder = TransformCNN(channels=(8, 8, 8), kernels=(4, 4, 4), residual_blocks=(2, 3))
    assert all(isinstance(m, nn.Identity) for m in encoder.shortcuts.values())


def test_residual_blocks_validated_and_coerced():
    with pytest.raises(ValueError, match="outside 1..3"):
        TransformCNN(residual_blocks=(4,))
    assert TransformCNN(residual_blocks=("1", "2")).residual_blocks == (1, 2)


@pytest.mark.parametrize("in_leads, width, blocks", [(12, 0.125, (1, 1, 1, 1)), (1, 0.25, (2, 1, 1, 2))])
def test_resnet1d_shapes(in_leads, width, blocks):
    encoder = ResNet1d(in_leads=in_leads, width=width, blocks=blocks).eval()
    assert encoder.embedding_dim == int(512 * width)
    for t in (250, 1000):
        assert encoder(torch.randn(3, in_leads, t)).shape == (3, encoder.embedding_dim)
    n_blocks = sum(len(stage) for stage in encoder.stages)
    assert n_blocks == sum(blocks)


def test_resnet1d_default_is_a_resnet18():
    encoder = ResNet1d()
    assert encoder.embedding_dim == 512
    assert [len(stage) for stage in encoder.stages] == [2, 2, 2, 2]
    assert encoder.stem[0].kernel_size == (15,) and encoder.stem[0].stride == (2,)
    assert count_parameters(encoder) == 8_737_408


def test_encoders_backpropagate():
    for encoder, x in [(TransformCNN(channels=(4, 8, 16)), torch.randn(2, 1, 640)),
                       (ResNet1d(width=0.125), torch.randn(2, 12, 250))]:
        encoder(x).sum().backward()
        assert all(p.grad is not None for p in encoder.parameters())
