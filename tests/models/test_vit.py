"""The ViT pieces shared by ST-MEM and ECG-JEPA (ecgbench.models.vit)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import butter, sosfiltfilt

from ecgbench.models.vit import (
    BandpassStandardize,
    LeadTimeViT,
    cross_pattern_mask,
    patchify,
    sincos_2d_positions,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_patchify_cuts_each_lead_into_consecutive_patches():
    x = torch.arange(2 * 3 * 12, dtype=torch.float32).reshape(2, 3, 12)
    patches = patchify(x, 4)
    assert patches.shape == (2, 3, 3, 4)
    assert torch.equal(patches[1, 2, 1], x[1, 2, 4:8])
    with pytest.raises(ValueError, match="whole number"):
        patchify(x, 5)


def test_sincos_2d_encodes_lead_in_first_half_and_time_in_second():
    table = sincos_2d_positions(3, 5, 8)
    assert table.shape == (3, 5, 8)
    assert torch.equal(table[0, :, :4], table[0, :1, :4].expand(5, 4))  # same lead, any time
    assert torch.equal(table[:, 2, 4:], table[:1, 2, 4:].expand(3, 4))  # same time, any lead
    assert not torch.equal(table[0, 0], table[1, 1])


def test_cross_pattern_mask_allows_same_lead_or_same_time_only():
    leads = torch.tensor([0, 0, 0, 1, 1, 1])  # 2 leads x 3 time patches
    times = torch.tensor([0, 1, 2, 0, 1, 2])
    blocked = cross_pattern_mask(leads, times)
    # token (lead 0, time 0) sees its lead (0, 1, 2) and (lead 1, time 0) = index 3
    assert blocked[0].tolist() == [False, False, False, False, True, True]
    assert not blocked.diagonal().any() and torch.equal(blocked, blocked.T)


def _sine(freq: float, fs: float = 250.0, n: int = 2250) -> torch.Tensor:
    t = np.arange(n) / fs
    return torch.tensor(np.sin(2 * np.pi * freq * t), dtype=torch.float32)[None, None]


def test_bandpass_keeps_the_band_and_removes_baseline_wander_and_high_frequencies():
    band = BandpassStandardize(250, 2250, (0.67, 40.0), standardize=False)
    # whole numbers of cycles in the 9 s window, so the periodic treatment is exact
    assert band(_sine(10.0)).abs().max() > 0.99
    assert band(_sine(2 / 9)).abs().max() < 0.02  # 0.22 Hz baseline wander
    assert band(_sine(80.0)).abs().max() < 0.02


def test_bandpass_matches_scipy_sosfiltfilt_away_from_the_window_edges():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal((2, 12, 2250)), -1) * 0.05 + rng.standard_normal((2, 12, 2250))
    ours = BandpassStandardize(250, 2250, standardize=False)(torch.tensor(x, dtype=torch.float32))
    sos = butter(2, [0.67, 40.0], btype="bandpass", fs=250, output="sos")
    reference = sosfiltfilt(sos, x, axis=-1)
    middle = slice(500, 1750)
    error = np.abs(ours.numpy()[..., middle] - reference[..., middle]).max()
    assert error < 0.05 * reference.std()


def test_standardisation_is_per_sample_over_leads_and_time():
    x = torch.randn(3, 12, 2250) * torch.tensor([1.0, 5.0, 20.0])[:, None, None] + 3.0
    y = BandpassStandardize(250, 2250)(x)
    assert torch.allclose(y.mean(dim=(1, 2)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(y.std(dim=(1, 2)), torch.ones(3), atol=1e-3)
    assert torch.equal(BandpassStandardize(250, 2250)(torch.zeros(1, 12, 2250)),
                       torch.zeros(1, 12, 2250))
    with pytest.raises(ValueError, match="2250 samples"):
        BandpassStandardize(250, 2250)(torch.zeros(1, 12, 2000))


def test_sep_tokens_take_the_end_positions_and_are_not_returned():
    vit = LeadTimeViT(3, 40, 10, 16, 1, 2, sep_tokens=True)
    tokens = vit.tokens(torch.randn(2, 3, 40))
    assert tokens.shape == (2, 3, 4, 16)
    assert vit.pos_embed.shape == (4 + 2, 16)  # [SEP], 4 patches, [SEP]
    assert vit.encode(tokens[:, :, :2]).shape == (2, 3, 2, 16)
    assert vit(torch.randn(2, 3, 40)).shape == (2, 16)


def test_cross_pattern_attention_limits_what_one_layer_can_see():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 30)
    for cross_pattern, changes in ((True, False), (False, True)):
        vit = LeadTimeViT(2, 30, 10, 16, 1, 2, positions="sincos-2d", lead_embedding=False,
                          cross_pattern=cross_pattern).eval()
        y = x.clone()
        y[0, 0, :10] += 1.0  # perturb the patch (lead 0, time 0)
        out_x, out_y = vit.encode(vit.tokens(x)), vit.encode(vit.tokens(y))
        # (lead 1, time 1) shares neither lead nor time with (lead 0, time 0)
        assert (not torch.allclose(out_x[0, 1, 1], out_y[0, 1, 1])) == changes
        assert not torch.allclose(out_x[0, 1, 0], out_y[0, 1, 0])  # same time patch: sees it


def test_cross_pattern_attention_on_a_visible_subset_uses_the_kept_time_indices():
    vit = LeadTimeViT(2, 40, 10, 16, 1, 2, positions="sincos-2d", lead_embedding=False,
                      cross_pattern=True).eval()
    tokens = vit.tokens(torch.randn(1, 2, 40))
    keep = torch.tensor([1, 3])
    out = vit.encode(tokens[:, :, keep], time_index=keep)
    assert out.shape == (1, 2, 2, 16) and torch.isfinite(out).all()


def test_training_attention_is_fused_sdpa_and_equals_explicit_softmax(monkeypatch):
    """The ViT's attention goes through F.scaled_dot_product_attention (flash / memory-efficient
    kernels on CUDA) and computes softmax(QK^T / sqrt(d) + mask) V with cross-pattern blocking."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    vit = LeadTimeViT(3, 60, 10, 16, 2, 4, positions="sincos-2d", lead_embedding=False,
                      cross_pattern=True).train()
    calls = []
    fused = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append(a[0].shape) or fused(*a, **k))
    vit(torch.randn(2, 3, 60)).sum().backward()
    assert len(calls) == 2  # one fused call per layer, none written out by hand

    attention = vit.transformer.layers[0].self_attn
    tokens = torch.randn(2, 3 * 6, 16)
    blocked = cross_pattern_mask(torch.arange(3).repeat_interleave(6), torch.arange(6).repeat(3))
    ours = attention(tokens, tokens, tokens, attn_mask=blocked, need_weights=False)[0]
    q, k, v = (torch.nn.functional.linear(tokens, w, b).reshape(2, 18, 4, 4).transpose(1, 2)
               for w, b in zip(attention.in_proj_weight.chunk(3), attention.in_proj_bias.chunk(3)))
    logits = (q @ k.transpose(-2, -1)) / 2.0 + torch.where(blocked, float("-inf"), 0.0)
    explicit = (logits.softmax(dim=-1) @ v).transpose(1, 2).reshape(2, 18, 16)
    torch.testing.assert_close(ours, attention.out_proj(explicit), rtol=1e-5, atol=1e-6)
