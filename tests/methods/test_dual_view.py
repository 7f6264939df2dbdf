"""dual-view transformer: the three view strategies, lead masking, cross-attention maps, artifact."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ecgbench.core.registry import METHODS
from ecgbench.methods.dual_view import DualViewEncoder, standardize_per_sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")
VARIANTS = ("dual-view-seqaug", "dual-view-interleave", "dual-view-split")


def build(name: str):
    cls = METHODS.get(name)
    torch.manual_seed(0)
    return cls(dataclasses.replace(cls.Config(), **cls.preset_overrides("smoke")))


def window(batch: int = 4) -> torch.Tensor:
    return torch.randn(batch, 12, 1000, generator=torch.Generator().manual_seed(0))  # (B, 12, 10 s at 100 Hz)


def test_registered_variants_and_alias():
    assert set(VARIANTS) | {"dual-view"} <= set(METHODS.names())
    assert METHODS.get("dual-view").strategy == "seqaug"
    config = METHODS.get("dual-view-split").Config()
    assert (len(config.leads), config.fs, config.n_samples) == (12, 100, 1000)
    assert config.warmup_steps == 5 * (17_418 // 256)  # the 5-epoch warm start on PTB-XL folds 1-8


def test_interleave_views_are_even_and_odd_samples_with_lead_masking():
    method = build("dual-view-interleave")
    x = window()
    first, second = method.encoder.views(x)
    assert torch.equal(first, standardize_per_sample(x[..., 0::2]))
    assert torch.equal(second, standardize_per_sample(x[..., 1::2]))
    torch.manual_seed(0)
    v1, v2 = method.make_views(x)
    assert v1.shape == v2.shape == (4, 12, 500)
    for view, source in ((v1, first), (v2, second)):
        kept = view.abs().sum(-1) > 0  # (B, leads)
        assert torch.equal(view[kept], source[kept]), "leads are kept whole or zeroed"


def test_split_views_are_the_two_halves():
    method = build("dual-view-split")
    x = window()
    first, second = method.encoder.views(x)
    assert torch.equal(first, standardize_per_sample(x[..., :500]))
    assert torch.equal(second, standardize_per_sample(x[..., 500:]))


@pytest.mark.parametrize("name", VARIANTS)
def test_every_view_is_normalised_per_sample_at_the_paper_shapes(name):
    """Seed 001 lists per-sample normalisation in all three strategies: at 12 x 1,000 each
    view has mean 0 and std 1 over its leads and samples, whatever the window's gain and offset
    (different for every sample), and the leads keep their relative amplitudes."""
    method = build(name)
    assert (len(method.config.leads), method.config.n_samples) == (12, 1000)
    x = window(8)
    x[:, 0] *= 3.0  # lead I three times as large as the others
    gain, offset = torch.rand(8, 1, 1) * 9 + 0.5, torch.randn(8, 1, 1) * 5
    torch.manual_seed(0)
    views = method.make_views(x * gain + offset)
    if name == "dual-view-seqaug":  # the normalised window is what the augmentations start from
        views = method.encoder.views(x * gain + offset)
        assert torch.allclose(views[0], standardize_per_sample(x), atol=1e-4)
    for view in views:
        kept = view.abs().sum(-1) > 0  # (B, leads): lead masking zeroes whole leads afterwards
        both = kept[:, 0] & kept[:, 1]
        ratio = view[:, 0].std(-1) / view[:, 1].std(-1)
        assert both.any() and torch.allclose(ratio[both], torch.tensor(3.0), rtol=0.2)
        if name != "dual-view-seqaug":  # unmasked views: exactly z-scored
            unmasked = method.encoder.views(x * gain + offset)
            for v in unmasked:
                assert torch.allclose(v.flatten(1).mean(1), torch.zeros(8), atol=1e-5)
                assert torch.allclose(v.flatten(1).std(1), torch.ones(8), atol=1e-4)
    method.eval()
    with torch.no_grad():  # evaluation normalises too: gain and offset do not reach the features
        assert torch.allclose(method.embed(x), method.embed(x * gain + offset), atol=1e-4)


def test_lead_masking_rate_and_at_least_one_lead_kept():
    method = build("dual-view-split")
    torch.manual_seed(0)
    x = torch.randn(400, 12, 1000)
    v1, v2 = method.make_views(x)
    masked = torch.cat([v1, v2]).abs().sum(-1) == 0  # (2B, leads)
    assert masked.float().mean().item() == pytest.approx(method.config.lead_mask_p, abs=0.03)
    assert (~masked).any(dim=1).all()


def test_seqaug_views_are_full_length_augmentations_without_lead_masking():
    method = build("dual-view-seqaug")
    torch.manual_seed(0)
    x = window(64)
    v1, v2 = method.make_views(x)
    assert v1.shape == v2.shape == x.shape
    assert not torch.equal(v1, v2) and not torch.equal(v1, x)
    assert (v1.abs().sum(-1) > 0).all() and (v2.abs().sum(-1) > 0).all()


@pytest.mark.parametrize("name", VARIANTS)
def test_encoder_averages_its_deterministic_views(name):
    method = build(name).eval()
    x = window()
    with torch.no_grad():
        expected = torch.stack([method.encoder.encode(v)[0] for v in method.encoder.views(x)]).mean(0)
        assert torch.allclose(method.embed(x), expected, atol=1e-6)
    assert method.embedding_dim == 2 * method.config.dim


def test_cross_attention_maps_are_row_stochastic_over_the_other_stream():
    encoder = DualViewEncoder(n_leads=12, n_samples=1000, strategy="seqaug", patch_size=50, dim=16,
                              depth=2, heads=2).eval()
    with torch.no_grad():
        features, maps = encoder.encode(window(3), return_attention=True)
    assert features.shape == (3, 32)
    assert maps["time_to_lead"].shape == (3, 20, 12) and maps["lead_to_time"].shape == (3, 12, 20)
    for attention in maps.values():
        assert torch.allclose(attention.sum(-1), torch.ones(attention.shape[:2]), atol=1e-5)
    assert encoder.encode(window(3))[1] == {}


def test_time_tokens_see_leads_only_through_cross_attention_when_patches_are_lead_blind():
    """Zero the time embedding's weights: time tokens then carry no signal of their own, and
    their output still changes with the input, through cross-attention to the channel tokens.
    (The second input differs in shape, not only in gain: views are normalised per sample.)"""
    encoder = DualViewEncoder(12, 1000, "seqaug", 50, dim=16, depth=1, heads=2).eval()
    torch.nn.init.zeros_(encoder.time_embed.weight)
    x = window(2)
    with torch.no_grad():
        a = encoder.encode(x)[0][:, 16:]  # the time stream's pooled half
        b = encoder.encode(x.flip(-1))[0][:, 16:]
        block = encoder.blocks[0]
        torch.nn.init.zeros_(block.cross_attn["time"].out_proj.weight)  # cut time <- channel
        c = encoder.encode(x)[0][:, 16:]
        d = encoder.encode(x.flip(-1))[0][:, 16:]
    assert not torch.allclose(a, b)
    assert torch.allclose(c, d, atol=1e-6)


def test_bad_lengths_are_refused():
    with pytest.raises(ValueError, match="patches of 60"):
        DualViewEncoder(12, 1000, "split", patch_size=60, dim=16, depth=1, heads=2)
    with pytest.raises(ValueError, match="unknown view strategy"):
        DualViewEncoder(12, 1000, "shuffle", patch_size=50, dim=16, depth=1, heads=2)


def test_artifact_is_a_png_of_the_cross_attention(tmp_path):
    method = build("dual-view-interleave").eval()
    with torch.no_grad():
        paths = method.artifacts({"signal": window(8)}, tmp_path / "artifacts")
    assert [p.name for p in paths] == ["cross_attention.png"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[0].stat().st_size > 10_000
    assert not list((tmp_path / "artifacts").glob("*.tmp"))
