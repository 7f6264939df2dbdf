"""Token masking (ecgbench.models.masking), the shared transformer block, and how Ti-MAE uses them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ecgbench.models.encoders import TransformerEncoder1d, sinusoidal_positions
from ecgbench.models.masking import gather_tokens, n_masked, random_token_mask, scatter_tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("n_tokens, ratio", [(100, 0.75), (10, 0.75), (7, 0.5), (1000, 0.9), (5, 0.0)])
def test_exact_mask_ratio_and_consistent_outputs(n_tokens, ratio):
    g = torch.Generator().manual_seed(0)
    keep_idx, mask = random_token_mask(16, n_tokens, ratio, g)
    expected_masked = n_masked(n_tokens, ratio)
    assert expected_masked == min(round(ratio * n_tokens), n_tokens - 1)
    assert keep_idx.shape == (16, n_tokens - expected_masked) and keep_idx.dtype == torch.int64
    assert mask.shape == (16, n_tokens) and mask.dtype == torch.bool
    assert torch.equal(mask.sum(dim=1), torch.full((16,), expected_masked))
    # keep_idx lists exactly the unmasked positions, ascending and without repeats.
    assert torch.equal(keep_idx, keep_idx.sort(dim=1).values)
    for row in range(16):
        assert torch.equal(keep_idx[row], torch.nonzero(~mask[row]).squeeze(1))


def test_at_least_one_token_stays_visible_and_bad_ratios_fail():
    keep_idx, mask = random_token_mask(4, 3, 0.99)
    assert keep_idx.shape == (4, 1) and (~mask).sum(dim=1).eq(1).all()
    for ratio in (-0.1, 1.0):
        with pytest.raises(ValueError, match="mask ratio"):
            random_token_mask(4, 10, ratio)


def test_every_sample_gets_its_own_mask():
    _, mask = random_token_mask(32, 100, 0.75, torch.Generator().manual_seed(1))
    assert len({tuple(row.tolist()) for row in mask}) == 32
    # Over many samples every position is masked about 75 % of the time (no positional bias).
    _, many = random_token_mask(4000, 20, 0.75, torch.Generator().manual_seed(2))
    assert torch.allclose(many.float().mean(dim=0), torch.full((20,), 0.75), atol=0.04)


def test_generator_makes_masks_deterministic_and_global_rng_is_used_without_one():
    a = random_token_mask(8, 50, 0.75, torch.Generator().manual_seed(3))
    b = random_token_mask(8, 50, 0.75, torch.Generator().manual_seed(3))
    c = random_token_mask(8, 50, 0.75, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    torch.manual_seed(5)
    d = random_token_mask(8, 50, 0.75)
    torch.manual_seed(5)
    assert torch.equal(d[1], random_token_mask(8, 50, 0.75)[1])


def test_gather_then_scatter_round_trip():
    g = torch.Generator().manual_seed(6)
    tokens = torch.randn(4, 12, 5, generator=g)  # (B, N, D)
    keep_idx, mask = random_token_mask(4, 12, 0.75, g)
    visible = gather_tokens(tokens, keep_idx)
    assert visible.shape == (4, 3, 5)
    for row in range(4):
        assert torch.equal(visible[row], tokens[row, keep_idx[row]])
    fill = torch.full((5,), -7.0)
    restored = scatter_tokens(visible, keep_idx, 12, fill)
    assert torch.equal(restored[~mask], tokens[~mask])  # visible tokens back in place
    assert (restored[mask] == -7.0).all()  # the mask token everywhere else
    # With nothing masked the round trip is the identity.
    all_idx = torch.arange(12).expand(4, 12)
    assert torch.equal(scatter_tokens(gather_tokens(tokens, all_idx), all_idx, 12, fill), tokens)


def test_scatter_passes_gradients_to_tokens_and_mask_token():
    visible = torch.randn(2, 3, 4, requires_grad=True)
    fill = torch.zeros(4, requires_grad=True)
    keep_idx = torch.tensor([[0, 2, 5], [1, 3, 4]])
    scatter_tokens(visible, keep_idx, 6, fill).sum().backward()
    assert torch.equal(visible.grad, torch.ones(2, 3, 4))
    assert torch.equal(fill.grad, torch.full((4,), 6.0))  # 2 samples x 3 masked positions


# ----- shared transformer pieces ---------------------------------------------------------------------
def test_sinusoidal_positions_values():
    table = sinusoidal_positions(50, 8)
    assert table.shape == (50, 8)
    assert torch.allclose(table[0], torch.tensor([0.0, 1.0] * 4))
    pos, i = 7, 1  # column 2i = sin(pos / 10000^(2i/d)), column 2i+1 = cos(...)
    angle = torch.tensor(pos / 10000 ** (2 * i / 8))
    assert table[pos, 2].item() == pytest.approx(torch.sin(angle).item(), abs=1e-6)
    assert table[pos, 3].item() == pytest.approx(torch.cos(angle).item(), abs=1e-6)
    assert sinusoidal_positions(10, 7).shape == (10, 7)


def test_transformer_encoder_1d_shapes_and_padding_mask():
    torch.manual_seed(0)
    block = TransformerEncoder1d(dim=16, depth=2, heads=4).eval()
    x = torch.randn(3, 10, 16)
    assert block(x).shape == (3, 10, 16)
    assert all(layer.norm_first and layer.self_attn.batch_first for layer in block.layers)
    # Padded positions do not change the outputs at the other positions.
    padding = torch.zeros(3, 10, dtype=torch.bool)
    padding[:, 8:] = True
    changed = x.clone()
    changed[:, 8:] = 100.0
    with torch.no_grad():
        a = block(x, key_padding_mask=padding)[:, :8]
        b = block(changed, key_padding_mask=padding)[:, :8]
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        TransformerEncoder1d(dim=10, depth=1, heads=4)


# ----- Ti-MAE's use of the mask --------------------------------------------------------------------
def _ti_mae(**overrides):
    from ecgbench.methods.ti_mae import TiMAE

    config = dataclasses.replace(TiMAE.Config(), **{**TiMAE.preset_overrides("smoke"), **overrides})
    torch.manual_seed(0)
    return TiMAE(config)


def test_mask_counts_round_or_truncate_the_kept_tokens_as_asked():
    assert n_masked(30, 0.75) == 22  # round(22.5): Python rounds half to even
    assert n_masked(30, 0.75, count="keep-floor") == 23  # MAE/ST-MEM code: int(7.5) = 7 kept
    assert n_masked(100, 0.75, count="keep-floor") == n_masked(100, 0.75) == 75
    assert n_masked(3, 0.99, count="keep-floor") == 2  # one token always kept
    keep_idx, mask = random_token_mask(6, 30, 0.75, torch.Generator().manual_seed(0),
                                       count="keep-floor")
    assert keep_idx.shape == (6, 7) and (mask.sum(1) == 23).all()
    with pytest.raises(ValueError, match="mask count"):
        n_masked(30, 0.75, count="ceil")


def test_ti_mae_encoder_sees_only_visible_tokens():
    method = _ti_mae().train()
    seen = []
    method.encoder.transformer.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    x = torch.randn(4, 1, method.config.n_samples)
    prediction, mask = method.reconstruct(x, torch.Generator().manual_seed(0))
    n = method.config.n_samples
    assert seen == [(4, n - n_masked(n, 0.75), method.config.embed_dim)]
    assert prediction.shape == (4, n, 1) and mask.shape == (4, n)
    # embed() uses every token, unmasked.
    seen.clear()
    assert method.eval().embed(x).shape == (4, method.config.embed_dim)
    assert seen == [(4, n, method.config.embed_dim)]


def test_ti_mae_prediction_never_sees_masked_values_with_point_tokens():
    # With token_kernel = 1 each token is one time step, so changing the masked samples of the
    # input leaves the reconstruction untouched; the paper's kernel-3 embedding (applied before
    # masking) lets neighbouring values through, as the module docstring says.
    x = torch.randn(2, 1, 64)
    for kernel, leaks in ((1, False), (3, True)):
        method = _ti_mae(token_kernel=kernel).eval()
        prediction, mask = method.reconstruct(x, torch.Generator().manual_seed(1))
        changed = torch.where(mask.unsqueeze(1), torch.full_like(x, 5.0), x)
        prediction2, mask2 = method.reconstruct(changed, torch.Generator().manual_seed(1))
        assert torch.equal(mask, mask2)
        assert torch.allclose(prediction, prediction2, atol=1e-5) != leaks


# ----- ECG-JEPA's time-column masks -------------------------------------------------------------
from ecgbench.models.masking import multi_block_mask, random_time_mask  # noqa: E402


def _runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    """(start, length) of every run of True."""
    runs, start = [], None
    for i, m in enumerate(mask.tolist() + [False]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


def test_random_time_mask_ratio_stays_in_its_range_and_varies():
    g = torch.Generator().manual_seed(0)
    counts = {int(random_time_mask(50, (0.6, 0.7), g).sum()) for _ in range(300)}
    assert counts <= set(range(30, 36))  # round(0.6 * 50) .. round(0.7 * 50)
    assert len(counts) >= 4  # the ratio is drawn per call, not fixed


def test_multi_block_mask_is_a_union_of_contiguous_blocks_in_range():
    g = torch.Generator().manual_seed(1)
    lengths = []
    for _ in range(300):
        mask = multi_block_mask(50, 4, (0.175, 0.225), g)
        runs = _runs(mask)
        assert 1 <= len(runs) <= 4  # overlapping blocks merge
        assert all(length >= 9 for _, length in runs)  # round(0.175 * 50) = 9
        assert 9 <= int(mask.sum()) <= 44 and not mask.all()  # at most 4 x round(0.225 * 50)
        lengths.append(int(mask.sum()))
    fractions = torch.tensor(lengths, dtype=torch.float32) / 50
    assert 0.45 < float(fractions.mean()) < 0.75  # 4 overlapping ~20 % blocks


def test_time_masks_repeat_with_the_same_generator_seed():
    a = multi_block_mask(50, 4, (0.175, 0.225), torch.Generator().manual_seed(3))
    b = multi_block_mask(50, 4, (0.175, 0.225), torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        multi_block_mask(50, 4, (0.0, 0.2))


# ----- NERULA's complementary patch masks ------------------------------------------------------------
from ecgbench.models.masking import complementary_patch_mask, random_composition, resize_mask  # noqa: E402


def _patch_runs(mask: torch.Tensor) -> list[list[int]]:
    """Lengths of the contiguous True runs of each row."""
    out = []
    for row in mask.tolist():
        runs, length = [], 0
        for value in row + [False]:
            if value:
                length += 1
            elif length:
                runs.append(length)
                length = 0
        out.append(runs)
    return out


def test_patch_mask_hides_exactly_half_in_15_to_30_random_patches():
    n_draws, n_samples = 3200, 1000
    mask = complementary_patch_mask(n_draws, n_samples, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (n_draws, n_samples) and mask.dtype == torch.bool
    assert torch.equal(mask.sum(dim=1), torch.full((n_draws,), 500))  # exactly 50 %, every draw
    runs = _patch_runs(mask)
    counts = torch.tensor([len(r) for r in runs])
    assert counts.min() == 15 and counts.max() == 30
    # The number of patches is uniform on 15..30: each count near n_draws / 16 = 200.
    frequency = torch.bincount(counts, minlength=31)[15:]
    assert (frequency > 140).all() and (frequency < 260).all(), frequency
    # The complement (the second view's mask) is made of the gaps: also exactly half.
    assert torch.equal((~mask).sum(dim=1), torch.full((n_draws,), 500))
    # Patch lengths are random, not equal splits: within a draw and across draws.
    lengths = torch.tensor([n for r in runs for n in r], dtype=torch.float32)
    assert lengths.min() == 1 and lengths.max() > 100 and len(lengths.unique()) > 100
    assert sum(len(set(r)) > 1 for r in runs) == n_draws
    assert lengths.mean().item() == pytest.approx(500 / counts.float().mean().item(), rel=0.02)


def test_patch_mask_has_no_positional_bias_inside_the_signal():
    mask = complementary_patch_mask(4000, 400, generator=torch.Generator().manual_seed(1))
    rate = mask.float().mean(dim=0)
    # Away from the ends every position is hidden half of the time; the ends are mostly visible
    # in the first view (the end gaps may be empty but rarely are), hidden in the second.
    assert torch.allclose(rate[40:-40], torch.full((320,), 0.5), atol=0.05)
    assert rate[0] < 0.2 and rate[-1] < 0.2


def test_patch_mask_generator_device_and_bad_sizes():
    a = complementary_patch_mask(4, 300, generator=torch.Generator().manual_seed(3))
    b = complementary_patch_mask(4, 300, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    torch.manual_seed(4)
    c = complementary_patch_mask(4, 300)
    torch.manual_seed(4)
    assert torch.equal(c, complementary_patch_mask(4, 300))
    assert complementary_patch_mask(2, 101, n_patches=(2, 3)).sum(dim=1).tolist() == [50, 50]
    with pytest.raises(ValueError, match="cannot hold 30 separate patches"):
        complementary_patch_mask(2, 50)
    with pytest.raises(ValueError, match="n_patches"):
        complementary_patch_mask(2, 500, n_patches=(20, 10))


def test_random_composition_is_uniform_over_compositions():
    g = torch.Generator().manual_seed(5)
    total, parts = torch.full((6000,), 4), torch.full((6000,), 2)
    split = random_composition(total, parts, 3, g)
    assert split.shape == (6000, 3) and (split[:, 2] == 0).all() and (split.sum(dim=1) == 4).all()
    _, frequency = torch.unique(split[:, 0], return_counts=True)  # (1,3), (2,2), (3,1)
    assert len(frequency) == 3 and torch.allclose(frequency / 6000.0, torch.full((3,), 1 / 3), atol=0.03)
    varied = random_composition(torch.tensor([10, 7, 3]), torch.tensor([3, 7, 1]), 7, g)
    assert varied.sum(dim=1).tolist() == [10, 7, 3]
    assert [(row > 0).sum().item() for row in varied] == [3, 7, 1]
    with pytest.raises(ValueError):
        random_composition(torch.tensor([3]), torch.tensor([4]), 5, g)


def test_resize_mask_keeps_complements_complementary():
    mask = complementary_patch_mask(8, 5000, generator=torch.Generator().manual_seed(6))
    assert resize_mask(mask, 5000) is mask
    for length in (2492, 1152, 577, 18, 5):
        small = resize_mask(mask, length)
        assert small.shape == (8, length)
        assert torch.equal(resize_mask(~mask, length), ~small)
        # Majority over each position's span (adaptive pooling's), ties to the centre sample.
        i = torch.arange(length)
        start, end = i * 5000 // length, -(-(i + 1) * 5000 // length)
        centre = (2 * i + 1) * 5000 // (2 * length)
        for row in range(8):
            share = torch.tensor([mask[row, a:b].float().mean().item() for a, b in zip(start, end)])
            expected = (share > 0.5) | ((share == 0.5) & mask[row, centre])
            if expected.any() and not expected.all():  # else the fix-up below applies
                assert torch.equal(small[row], expected)


def test_resize_mask_never_hides_a_view_entirely():
    # True holds 4 of 6 samples in each half: a plain majority at length 2 would give this view
    # both positions and its complement none.
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, [0, 1, 2, 3, 6, 7, 8, 9]] = True
    two = resize_mask(mask, 2)
    assert two.sum().item() == 1 and torch.equal(resize_mask(~mask, 2), ~two)
    whole = torch.ones(3, 50, dtype=torch.bool)  # a mask with nothing hidden stays whole
    assert resize_mask(whole, 7).all() and not resize_mask(~whole, 7).any()
    assert resize_mask(mask, 1).shape == (1, 1)  # one position cannot serve two views
