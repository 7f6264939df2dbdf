"""ECG augmentations: pure functions on ``(B, C, T)`` tensors.

Every augmentation has the signature ``fn(x, generator=None, **params) -> Tensor`` and draws
its randomness per sample (and per lead where that makes sense) from ``generator`` when one is
given, else from torch's global RNG on ``x``'s device (which the trainer seeds). Random numbers
are drawn on the generator's device and moved to ``x``'s, so a CPU generator drives CUDA data
deterministically. Bind parameters with :func:`functools.partial` and chain with
:class:`Compose`.

The six transformations of Sarkar & Etemad (IEEE TAC 2020) with their parameters are bundled by
:func:`sarkar_etemad_transforms`; they were checked against the authors' released code
(github.com/pritamqu/SSL-ECG, ``implementation/signal_transformation_task.py`` and ``main.py``).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, Protocol, Sequence

import torch
from torch import Tensor


class Augmentation(Protocol):
    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor: ...


# ----- random numbers --------------------------------------------------------------------------
def _uniform(shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None,
             low: float = 0.0, high: float = 1.0) -> Tensor:
    device = generator.device if generator is not None else x.device
    u = torch.rand(shape, generator=generator, device=device).to(x.device)
    return low + (high - low) * u


def _normal(shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None) -> Tensor:
    device = generator.device if generator is not None else x.device
    return torch.randn(shape, generator=generator, device=device).to(x.device, x.dtype)


def _range(value: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return float(value), float(value)
    low, high = value
    return float(low), float(high)


# ----- resampling at arbitrary positions -------------------------------------------------------
def sample_at(x: Tensor, positions: Tensor) -> Tensor:
    """Linear interpolation of ``x`` (B, C, T) at fractional ``positions`` (B, T_out)."""
    T = x.shape[-1]
    pos = positions.clamp(0, T - 1)
    i0 = pos.floor().long()
    i1 = (i0 + 1).clamp(max=T - 1)
    w = (pos - i0).to(x.dtype)[:, None, :]  # (B, 1, T_out)
    idx = (-1, x.shape[1], -1)
    x0 = x.gather(-1, i0[:, None, :].expand(*idx))
    x1 = x.gather(-1, i1[:, None, :].expand(*idx))
    return x0 + w * (x1 - x0)


def _stretch_positions(start: Tensor, length: Tensor, n_out: int) -> Tensor:
    """Source positions that resize the window [start, start + length) to ``n_out`` samples.

    Half-sample centres (like ``cv2.resize`` / ``F.interpolate(align_corners=False)``).
    ``start`` and ``length`` broadcast against the output grid.
    """
    j = torch.arange(n_out, device=start.device, dtype=torch.float32)
    return start + (j + 0.5) * length / n_out - 0.5


# ----- amplitude -------------------------------------------------------------------------------
def gaussian_noise(x: Tensor, generator: torch.Generator | None = None,
                   snr_db: float | Sequence[float] = 15.0) -> Tensor:
    """Add white Gaussian noise at ``snr_db`` (a value or a (low, high) range) per lead.

    Signal power is the mean of ``x**2`` over time, as in Sarkar & Etemad's code.
    """
    B, C, _ = x.shape
    low, high = _range(snr_db)
    snr = _uniform((B, C, 1), x, generator, low, high)
    power = x.pow(2).mean(dim=-1, keepdim=True)  # (B, C, 1)
    sigma = (power / 10.0 ** (snr / 10.0)).sqrt()
    return x + sigma * _normal(tuple(x.shape), x, generator)


def scale(x: Tensor, generator: torch.Generator | None = None, factor: float = 0.9) -> Tensor:
    """Multiply by a fixed factor (Sarkar & Etemad's "scaling")."""
    return x * factor


def random_scale(x: Tensor, generator: torch.Generator | None = None,
                 low: float = 0.5, high: float = 2.0, per_lead: bool = True) -> Tensor:
    """Multiply each lead (or each sample) by a log-uniform factor in [low, high]."""
    B, C, _ = x.shape
    log_factor = _uniform((B, C if per_lead else 1, 1), x, generator,
                          math.log(low), math.log(high))
    return x * log_factor.exp().to(x.dtype)


def negate(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Amplitude flip: -x."""
    return -x


def baseline_wander(x: Tensor, generator: torch.Generator | None = None, fs: float = 100.0,
                    max_amplitude: float = 0.1,
                    freq_hz: Sequence[float] = (0.05, 0.5)) -> Tensor:
    """Add a low-frequency sinusoid per lead: random frequency in ``freq_hz``, random phase,
    amplitude uniform in [0, max_amplitude] times the lead's standard deviation (so the
    augmentation does not depend on the recording's units)."""
    B, C, T = x.shape
    freq = _uniform((B, C, 1), x, generator, *freq_hz)
    phase = _uniform((B, C, 1), x, generator, 0.0, 2 * math.pi)
    amplitude = _uniform((B, C, 1), x, generator, 0.0, max_amplitude)
    t = torch.arange(T, device=x.device, dtype=torch.float32) / fs
    wave = torch.sin(2 * math.pi * freq * t + phase)  # (B, C, T)
    return x + (amplitude * x.std(dim=-1, keepdim=True) * wave).to(x.dtype)


def lead_mask(x: Tensor, generator: torch.Generator | None = None, p: float = 0.25) -> Tensor:
    """Zero each lead with probability ``p``; at least one lead per sample is kept."""
    B, C, _ = x.shape
    scores = _uniform((B, C), x, generator)
    keep = scores >= p
    keep[torch.arange(B, device=x.device), scores.argmax(dim=1)] = True
    return x * keep[:, :, None].to(x.dtype)


# ----- time ------------------------------------------------------------------------------------
def time_flip(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Horizontal flip: reverse the time axis."""
    return x.flip(-1)


def permute_segments(x: Tensor, generator: torch.Generator | None = None,
                     n_segments: int = 20) -> Tensor:
    """Cut into ``n_segments`` equal segments and shuffle them (one order per sample).

    The ``T % n_segments`` samples left over at the end stay in place.
    """
    B, C, T = x.shape
    L = T // n_segments
    order = _uniform((B, n_segments), x, generator).argsort(dim=1)  # (B, n)
    within = torch.arange(L, device=x.device)
    idx = (order[:, :, None] * L + within).reshape(B, n_segments * L)
    tail = torch.arange(n_segments * L, T, device=x.device).expand(B, -1)
    idx = torch.cat([idx, tail], dim=1)  # (B, T)
    return x.gather(-1, idx[:, None, :].expand(-1, C, -1))


def time_warp(x: Tensor, generator: torch.Generator | None = None, n_segments: int = 9,
              stretch: float = 1.05) -> Tensor:
    """Sarkar & Etemad's time warping, length-preserving.

    Cut into ``n_segments`` equal segments; stretch a random ceil(n/2) of them by ``stretch``
    and squeeze the others by ``1/stretch`` (linear interpolation); concatenate; then take a
    random window of the original length (the warped signal is longer when stretch > 1), or
    resample back to the original length when it came out shorter.
    """
    B, _, T = x.shape
    L = T // n_segments
    n_stretch = math.ceil(n_segments / 2)
    long, short = math.ceil(L * stretch), math.ceil(L / stretch)
    rank = _uniform((B, n_segments), x, generator).argsort(dim=1).argsort(dim=1)
    stretched = rank < n_stretch  # (B, n): a random ceil(n/2) of the segments
    out_len = torch.where(stretched, long, short)  # (B, n)
    width = max(long, short)
    j = torch.arange(width, device=x.device, dtype=torch.float32)
    seg = torch.arange(n_segments, device=x.device, dtype=torch.float32)[None, :, None]
    n_out = out_len[:, :, None].float()
    first = seg * L
    pos = first + (j + 0.5) * L / n_out - 0.5  # (B, n, width); cv2.resize's sample centres
    pos = torch.maximum(torch.minimum(pos, first + L - 1), first)  # stay inside the segment
    valid = j < n_out  # every sample has the same number of valid positions
    total = n_stretch * long + (n_segments - n_stretch) * short
    pos = pos[valid].view(B, total)  # row-major order keeps the segments in order
    return sample_at(x, _fit_length(pos, T, x, generator))


def _fit_length(pos: Tensor, T: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """A random length-T window of a position map, or the map resampled to T if shorter."""
    B, total = pos.shape
    if total >= T:
        offset = (_uniform((B, 1), x, generator) * (total - T + 1)).long().clamp(max=total - T)
        idx = offset + torch.arange(T, device=pos.device)
        return pos.gather(1, idx)
    grid = _stretch_positions(torch.zeros(B, 1, device=pos.device),
                              torch.full((B, 1), float(total), device=pos.device), T)
    return sample_at(pos[:, None, :], grid)[:, 0]


def random_resized_crop(x: Tensor, generator: torch.Generator | None = None,
                        scale: Sequence[float] = (0.5, 1.0)) -> Tensor:
    """Crop a random window covering a fraction in ``scale`` of the signal, resize back to T."""
    B, _, T = x.shape
    length = _uniform((B, 1), x, generator, *scale) * T
    start = _uniform((B, 1), x, generator) * (T - length)
    return sample_at(x, _stretch_positions(start, length, T))


def random_crop(x: Tensor, generator: torch.Generator | None = None,
                length: int = 250) -> Tensor:
    """A random window of ``length`` samples per sample (no resizing): (B, C, length)."""
    B, C, T = x.shape
    if length > T:
        raise ValueError(f"crop length {length} exceeds signal length {T}")
    start = (_uniform((B, 1), x, generator) * (T - length + 1)).long().clamp(max=T - length)
    idx = start + torch.arange(length, device=x.device)
    return x.gather(-1, idx[:, None, :].expand(-1, C, -1))


# ----- composition -----------------------------------------------------------------------------
class Compose:
    """Apply augmentations in order, each to a random subset of the batch.

    ``steps`` is a sequence of ``(augmentation, p)``: each sample gets the augmentation with
    probability ``p`` (per-sample coin flips; p = 1 applies it to all). Augmentations with
    p < 1 must keep the shape.
    """

    def __init__(self, steps: Sequence[tuple[Augmentation, float]]):
        self.steps = list(steps)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for fn, p in self.steps:
            if p >= 1.0:
                x = fn(x, generator=generator)
            elif p > 0.0:
                apply = _uniform((x.shape[0], 1, 1), x, generator) < p
                x = torch.where(apply, fn(x, generator=generator), x)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(f"({_name(fn)}, p={p})" for fn, p in self.steps)
        return f"Compose([{inner}])"


def _name(fn: Callable) -> str:
    if isinstance(fn, partial):
        args = ", ".join(f"{k}={v}" for k, v in fn.keywords.items())
        return f"{fn.func.__name__}({args})"
    return getattr(fn, "__name__", repr(fn))


# ----- Sarkar & Etemad -------------------------------------------------------------------------
def sarkar_etemad_transforms(
    snr_db: float = 15.0,
    scale_factor: float = 0.9,
    permute_segments_n: int = 20,
    warp_segments: int = 9,
    warp_stretch: float = 1.05,
) -> dict[str, Augmentation]:
    """The six signal transformations of Sarkar & Etemad, in the order of their task heads.

    Parameters (defaults): noise SNR 15 dB, scaling factor 0.9, permutation into 20 segments,
    time warping of 9 segments with stretch factor 1.05 (squeeze 1/1.05). The released code
    (``main.py``) sets ``scale_param = 1.1``; the defaults follow the paper's value 0.9.
    """
    return {
        "noise": partial(gaussian_noise, snr_db=snr_db),
        "scale": partial(scale, factor=scale_factor),
        "negate": negate,
        "flip": time_flip,
        "permute": partial(permute_segments, n_segments=permute_segments_n),
        "time_warp": partial(time_warp, n_segments=warp_segments, stretch=warp_stretch),
    }
