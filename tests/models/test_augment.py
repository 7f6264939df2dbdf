"""Augmentations: shapes, determinism, exactness, and the properties each one promises."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from ecgbench.models import augment as A

LENGTH_PRESERVING = {
    "gaussian_noise": A.gaussian_noise,
    "scale": A.scale,
    "random_scale": A.random_scale,
    "negate": A.negate,
    "baseline_wander": partial(A.baseline_wander, fs=256),
    "lead_mask": A.lead_mask,
    "time_flip": A.time_flip,
    "permute_segments": A.permute_segments,
    "time_warp": A.time_warp,
    "random_resized_crop": A.random_resized_crop,
    **{f"sarkar_{k}": fn for k, fn in A.sarkar_etemad_transforms().items()},
}
RANDOM = ["gaussian_noise", "random_scale", "baseline_wander", "lead_mask", "permute_segments",
          "time_warp", "random_resized_crop"]


def _ecg(b: int = 4, c: int = 3, t: int = 2560, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, t, generator=g).cumsum(-1) / 20 + torch.randn(b, c, t, generator=g)


def _ramp(b: int = 4, c: int = 2, t: int = 2560) -> torch.Tensor:
    return torch.arange(t, dtype=torch.float32).expand(b, c, t).clone()


@pytest.mark.parametrize("name", sorted(LENGTH_PRESERVING))
def test_shape_and_dtype_preserved(name):
    x = _ecg()
    y = LENGTH_PRESERVING[name](x, generator=torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()


@pytest.mark.parametrize("name", RANDOM)
def test_deterministic_with_a_seeded_generator(name):
    x, fn = _ecg(), LENGTH_PRESERVING[name]
    a = fn(x, generator=torch.Generator().manual_seed(7))
    b = fn(x, generator=torch.Generator().manual_seed(7))
    c = fn(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_global_rng_is_used_without_a_generator():
    x = _ecg()
    torch.manual_seed(3)
    a = A.time_warp(x)
    torch.manual_seed(3)
    assert torch.equal(a, A.time_warp(x))


def test_negation_flip_and_scale_are_exact():
    x = _ecg()
    assert torch.equal(A.negate(x), -x)
    assert torch.equal(A.time_flip(x), x[..., torch.arange(x.shape[-1] - 1, -1, -1)])
    assert torch.equal(A.time_flip(A.time_flip(x)), x)
    assert torch.equal(A.scale(x, factor=0.9), x * 0.9)


@pytest.mark.parametrize("t, n", [(2560, 20), (2563, 20), (640, 7)])
def test_permutation_keeps_the_multiset_of_segments(t, n):
    x = _ecg(t=t)
    y = A.permute_segments(x, generator=torch.Generator().manual_seed(0), n_segments=n)
    L = t // n
    for b in range(x.shape[0]):
        before = x[b, :, : n * L].reshape(x.shape[1], n, L).transpose(0, 1)  # (n, C, L)
        after = y[b, :, : n * L].reshape(x.shape[1], n, L).transpose(0, 1)
        assert sorted(map(lambda s: s.flatten().tolist(), before)) == sorted(
            map(lambda s: s.flatten().tolist(), after))
    assert torch.equal(y[..., n * L:], x[..., n * L:])  # leftover samples stay in place
    assert not torch.equal(y, x)


def test_permutation_moves_all_leads_together():
    x = _ramp(c=3)
    y = A.permute_segments(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])


def test_noise_has_the_requested_snr():
    x = _ecg(b=16, c=2)
    for snr in (15.0, 5.0):
        noise = A.gaussian_noise(x, generator=torch.Generator().manual_seed(0), snr_db=snr) - x
        measured = 10 * torch.log10(x.pow(2).mean(-1) / noise.pow(2).mean(-1))  # (B, C)
        assert measured.mean().item() == pytest.approx(snr, abs=0.1)
        assert (measured - snr).abs().max().item() < 0.5


def test_noise_snr_range_draws_per_lead():
    x = _ecg(b=64, c=2)
    noise = A.gaussian_noise(x, generator=torch.Generator().manual_seed(0), snr_db=(10.0, 30.0)) - x
    measured = 10 * torch.log10(x.pow(2).mean(-1) / noise.pow(2).mean(-1))
    assert 9.5 < measured.min() and measured.max() < 30.5 and measured.std() > 3


def test_time_warp_identity_without_stretch():
    x = _ecg(t=2556)  # 9 segments of 284 samples, nothing left over
    y = A.time_warp(x, generator=torch.Generator().manual_seed(0), n_segments=9, stretch=1.0)
    assert torch.allclose(y, x)


def test_time_warp_stretches_and_squeezes_a_ramp():
    # On a ramp, the output's local slope is the inverse of the local stretch: 1/1.05 in
    # stretched segments, about 1.05 in squeezed ones; it stays monotonic.
    x = _ramp(t=2560)
    y = A.time_warp(x, generator=torch.Generator().manual_seed(0), n_segments=9, stretch=1.05)
    slopes = y.diff(dim=-1)
    assert (slopes >= 0).all()
    inside = slopes[(slopes > 0.5) & (slopes < 1.5)]
    assert inside.numel() > 0.95 * slopes.numel()
    assert ((inside - 1 / 1.05).abs() < 0.01).sum() > 0.3 * inside.numel()
    assert ((inside - 1.05).abs() < 0.02).sum() > 0.3 * inside.numel()


def test_random_resized_crop_is_a_resized_window():
    x = _ramp(t=1000)
    y = A.random_resized_crop(x, generator=torch.Generator().manual_seed(0), scale=(0.5, 0.8))
    slope = y.diff(dim=-1)
    assert torch.allclose(slope, slope[..., :1].expand_as(slope), atol=1e-3)  # linear
    assert ((slope > 0.5 - 1e-3) & (slope < 0.8 + 1e-3)).all()  # window of 50-80 %
    assert (y >= 0).all() and (y <= 999).all()
    assert torch.allclose(A.random_resized_crop(x, scale=(1.0, 1.0)), x)


def test_random_crop_takes_a_contiguous_window():
    x = _ramp(t=1000)
    y = A.random_crop(x, generator=torch.Generator().manual_seed(0), length=250)
    assert y.shape == (4, 2, 250)
    assert torch.equal(y.diff(dim=-1), torch.ones(4, 2, 249))
    with pytest.raises(ValueError):
        A.random_crop(x, length=1001)


def test_baseline_wander_is_slow_and_bounded():
    x = _ecg(b=8, c=3, t=2560)
    fs, amplitude = 256, 0.2
    wander = A.baseline_wander(x, generator=torch.Generator().manual_seed(0), fs=fs,
                               max_amplitude=amplitude) - x
    assert (wander.abs() <= amplitude * x.std(-1, keepdim=True) + 1e-5).all()
    power = torch.fft.rfft(wander, dim=-1).abs().pow(2)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1 / fs)
    assert power[..., freqs > 1.0].sum() < 0.05 * power.sum()  # only window leakage above 1 Hz


def test_lead_mask_zeroes_whole_leads_and_keeps_one():
    x = _ecg(b=64, c=3) + 10
    y = A.lead_mask(x, generator=torch.Generator().manual_seed(0), p=0.9)
    zeroed = (y == 0).all(dim=-1)  # (B, C)
    kept = torch.isclose(y, x).all(dim=-1)
    assert (zeroed | kept).all()
    assert kept.any(dim=1).all() and zeroed.any()
    assert torch.equal(A.lead_mask(x, p=0.0), x)
    single = _ecg(c=1)
    assert torch.equal(A.lead_mask(single, p=1.0), single)


def test_compose_applies_in_order_with_per_sample_probability():
    x = _ecg(b=200, c=1, t=64)
    assert torch.equal(A.Compose([(A.negate, 0.0)])(x), x)
    assert torch.equal(A.Compose([(A.negate, 1.0), (partial(A.scale, factor=2.0), 1.0)])(x), -2 * x)
    y = A.Compose([(A.negate, 0.5)])(x, generator=torch.Generator().manual_seed(0))
    negated = (y == -x).all(dim=-1).squeeze(1)
    unchanged = (y == x).all(dim=-1).squeeze(1)
    assert (negated | unchanged).all()
    assert 60 < negated.sum() < 140
    assert "negate" in repr(A.Compose([(A.negate, 0.5)]))


def test_sarkar_etemad_parameters():
    t = A.sarkar_etemad_transforms()
    assert list(t) == ["noise", "scale", "negate", "flip", "permute", "time_warp"]
    assert t["noise"].keywords == {"snr_db": 15.0}
    assert t["scale"].keywords == {"factor": 0.9}
    assert t["permute"].keywords == {"n_segments": 20}
    assert t["time_warp"].keywords == {"n_segments": 9, "stretch": 1.05}


@pytest.mark.gpu
def test_cpu_generator_drives_cuda_tensors():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    x = _ecg().cuda()
    for name in RANDOM:
        fn = LENGTH_PRESERVING[name]
        a = fn(x, generator=torch.Generator().manual_seed(0))
        b = fn(x.cpu(), generator=torch.Generator().manual_seed(0))
        assert a.device.type == "cuda"
        assert torch.allclose(a.cpu(), b, atol=1e-4), name
        torch.manual_seed(0)
        assert fn(x).device.type == "cuda"
    assert math.isfinite(A.time_warp(x).sum().item())
