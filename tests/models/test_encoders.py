"""Shared encoders: the contract (B, leads, T) -> (B, embedding_dim) and the architectures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecgbench.models.encoders import ResNet1d, TransformCNN, count_parameters

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


# ----- LocalLead encoder (NERULA) --------------------------------------------------------------------
from ecgbench.models.encoders import (  # noqa: E402
    LocalLeadEncoder,
    LocalLeadStemBlock,
    local_window_attention,
)
from ecgbench.models.masking import complementary_patch_mask, resize_mask  # noqa: E402


def _tiny_local_lead(**overrides) -> LocalLeadEncoder:
    sizes = dict(stem_channels=(4, 8, 8, 8), stem_depths=(1, 1, 1, 1), dim=16, heads=2,
                 arch=(1, 1, 3), windows=(9, 9, 5, -1), latent_len=72)
    torch.manual_seed(0)
    return LocalLeadEncoder(**{**sizes, **overrides})


def test_local_lead_paper_architecture_and_shapes():
    encoder = LocalLeadEncoder().eval()
    assert encoder.embedding_dim == 128
    assert [b.down.pointwise.out_channels for b in encoder.stem] == [24, 48, 96, 96]
    assert [b.down.depthwise.stride[0] for b in encoder.stem] == [2, 2, 2, 1]
    assert [len(b.body) for b in encoder.stem] == [4, 5, 6, 7]
    assert all(b.entry.depthwise.kernel_size == (9,) for b in encoder.stem)
    assert encoder.stem[0].entry.depthwise.groups == 1 and encoder.stem[1].entry.depthwise.groups == 24
    assert encoder.project.layers.in_channels == 96 and encoder.project.layers.out_channels == 128
    assert encoder.project.layers.kernel_size == (1,)
    assert len(encoder.embed) == 2 and len(encoder.layers) == 10
    assert [layer.attn.window for layer in encoder.layers] == [19] * 7 + [-1] * 3
    assert all(layer.attn.heads == 4 for layer in encoder.layers)
    lengths = []
    for layer in encoder.layers:
        layer.register_forward_hook(lambda m, i, o: lengths.append(o.shape[-1]))
    with torch.no_grad():
        assert encoder(torch.randn(1, 1, 5000)).shape == (1, 128)
    assert lengths == [1152, 1152, 576, 288, 144, 72, 36, 18, 9, 5]


def test_local_window_attention_matches_a_dense_band_masked_reference():
    g = torch.Generator().manual_seed(0)
    for t, radius in [(37, 4), (36, 9), (5, 9), (20, 1)]:
        q, k, v = torch.randn(3, 2, 3, t, 8, generator=g).unbind(0)
        keep = torch.rand(2, t, generator=g) > 0.4
        keep[1, : min(t, 2 * radius + 2)] = False  # queries whose window holds no visible key
        i = torch.arange(t)
        valid = ((i[:, None] - i[None, :]).abs() <= radius)[None] & keep[:, None, :]
        answered = valid.any(dim=-1)  # (B, T): queries with a visible key in their window
        dense = (q @ k.transpose(-1, -2)).masked_fill(~valid[:, None], float("-inf"))
        reference = dense.softmax(dim=-1) @ v
        out = local_window_attention(q, k, v, radius, keep)
        assert out.shape == (2, 3, t, 8) and torch.isfinite(out).all()
        assert (~answered).any() and answered.any()
        rows = answered[:, None, :, None].expand_as(out)
        assert torch.allclose(out[rows], reference[rows], atol=1e-5), (t, radius)


def test_local_lead_mask_zeroes_the_latent_of_every_layer():
    encoder = _tiny_local_lead().eval()
    x = torch.randn(4, 1, 600)
    keep = ~complementary_patch_mask(4, 600, n_patches=(3, 6), generator=torch.Generator().manual_seed(1))
    modules = [*encoder.stem, *[b.entry for b in encoder.stem], *[b.down for b in encoder.stem],
               *[layer for b in encoder.stem for layer in b.body], encoder.project,
               *encoder.embed, *encoder.layers]
    outputs = []
    for module in modules:
        module.register_forward_hook(lambda m, i, o: outputs.append(o))
    with torch.no_grad():
        latents, keep_out = encoder.sequence(x, keep)
    assert len(outputs) == len(modules)
    for out in outputs:
        hidden = ~resize_mask(keep, out.shape[-1])
        assert (out * hidden[:, None]).abs().max() == 0  # every hidden position is zero
        assert (out * ~hidden[:, None]).abs().max() > 0
    assert torch.equal(keep_out, resize_mask(keep, latents.shape[-1]))


def test_local_lead_hidden_input_does_not_reach_the_representation():
    encoder = _tiny_local_lead().eval()
    x = torch.randn(4, 1, 600)
    keep = ~complementary_patch_mask(4, 600, n_patches=(3, 6), generator=torch.Generator().manual_seed(2))
    changed = torch.where(keep[:, None], x, torch.randn_like(x) * 10)
    with torch.no_grad():
        a, b = encoder(x, keep), encoder(changed, keep)
        # The latent masking matters: the zero-filled view alone gives other features.
        unmasked_latents = encoder(x * keep[:, None])
        full = encoder(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, unmasked_latents, rtol=1e-2, atol=0.0)
    assert torch.equal(full, encoder.eval()(x, torch.ones(4, 600, dtype=torch.bool)))


def test_local_lead_stem_block_residual_and_lengths():
    block = LocalLeadStemBlock(1, 4, stride=2, depth=2).eval()
    keep = torch.ones(2, 100, dtype=torch.bool)
    out = block(torch.randn(2, 1, 100), keep)
    assert out.shape == (2, 4, (100 - 8 - 9) // 2 + 1)  # two valid k=9 convs, the second strided
    with pytest.raises(ValueError, match="multiple"):
        LocalLeadStemBlock(3, 4, stride=1, depth=1)


def test_local_lead_without_resizing_and_bad_windows():
    encoder = _tiny_local_lead(latent_len=0)
    h, keep = encoder.sequence(torch.randn(2, 1, 600))
    assert h.shape[:2] == (2, 16) and keep.all()
    encoder(torch.randn(2, 1, 600)).sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())
    with pytest.raises(ValueError, match="windows"):
        _tiny_local_lead(windows=(9, 9))
    with pytest.raises(ValueError, match="odd"):
        _tiny_local_lead(windows=(8, 9, 5, -1))
