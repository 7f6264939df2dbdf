"""Token masking for masked-modelling methods (MAE-style): pure functions on tensors.

Conventions: tokens are ``(B, N, D)``; ``keep_idx`` is ``(B, K)`` int64, the positions of the
visible tokens of each sample in ascending order; ``mask`` is ``(B, N)`` bool, True where a
token is masked (hidden from the encoder, to be reconstructed). Randomness comes from the
``generator`` when given, else from torch's global RNG (which the trainer seeds), so a run is
repeatable either way. Tested in tests/test_masking.py.
"""

from __future__ import annotations

import torch
from torch import Tensor


def n_masked(n_tokens: int, ratio: float) -> int:
    """How many of ``n_tokens`` a ``ratio`` masks: round(ratio * n), at least one token kept."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    return min(int(round(ratio * n_tokens)), n_tokens - 1)


def random_token_mask(batch: int, n_tokens: int, ratio: float,
                      generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """A different uniformly random mask for every sample, with exactly ``n_masked`` tokens.

    As in MAE (He et al. 2022): rank i.i.d. uniform noise per sample and mask the tokens with
    the largest noise. Returns ``(keep_idx (B, K), mask (B, N))``, K = N - n_masked.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    noise_device = generator.device if generator is not None else device
    noise = torch.rand(batch, n_tokens, generator=generator, device=noise_device).to(device)
    n_keep = n_tokens - n_masked(n_tokens, ratio)
    keep_idx = noise.argsort(dim=1)[:, :n_keep].sort(dim=1).values  # (B, K) ascending
    mask = torch.ones(batch, n_tokens, dtype=torch.bool, device=device)
    mask.scatter_(1, keep_idx, False)
    return keep_idx, mask


def gather_tokens(tokens: Tensor, idx: Tensor) -> Tensor:
    """``tokens[b, idx[b]]``: (B, N, D), (B, K) -> (B, K, D)."""
    return torch.gather(tokens, 1, idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def scatter_tokens(visible: Tensor, keep_idx: Tensor, n_tokens: int, fill: Tensor) -> Tensor:
    """Undo :func:`gather_tokens`: put the visible tokens back at their positions.

    ``visible`` (B, K, D) goes to positions ``keep_idx`` (B, K) of a (B, N, D) sequence whose
    other positions hold ``fill`` (a (D,) mask token, broadcast). Gradients reach both.
    """
    b, _, d = visible.shape
    out = fill.to(visible.dtype).expand(b, n_tokens, d).clone()
    return out.scatter(1, keep_idx.unsqueeze(-1).expand(-1, -1, d), visible)


# ----- Time-column masks (ECG-JEPA): one mask over the patch positions, shared by all leads ------
def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    u = torch.rand((), generator=generator, device=generator.device if generator else None)
    return low + (high - low) * float(u)


def random_time_mask(n_tokens: int, ratio_range: tuple[float, float],
                     generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> Tensor:
    """ECG-JEPA's random masking: a ratio drawn uniformly from ``ratio_range``, then that many
    patch positions chosen uniformly without replacement. Returns ``(n_tokens,)`` bool, True =
    masked; the caller masks the same positions in every lead (and, as in the paper's code,
    every sample of the batch, which keeps the token count rectangular)."""
    low, high = (float(r) for r in ratio_range)
    count = n_masked(n_tokens, _uniform(low, high, generator))
    order = torch.randperm(n_tokens, generator=generator,
                           device=generator.device if generator else None)
    mask = torch.zeros(n_tokens, dtype=torch.bool, device=order.device)
    mask[order[:count]] = True
    return mask.to(device) if device is not None else mask


def multi_block_mask(n_tokens: int, n_blocks: int, block_ratio_range: tuple[float, float],
                     generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> Tensor:
    """Multi-block masking (I-JEPA, Assran et al. 2023, in 1-D as in ECG-JEPA): the union of
    ``n_blocks`` contiguous blocks, each ``round(ratio * n_tokens)`` positions long with its own
    ratio drawn uniformly from ``block_ratio_range`` and a uniform start. Blocks may overlap, so
    the masked fraction is at most ``n_blocks * max(ratio)``. At least one position stays
    visible. Returns ``(n_tokens,)`` bool, True = masked."""
    low, high = (float(r) for r in block_ratio_range)
    if not 0.0 < low <= high < 1.0:
        raise ValueError(f"block ratios must satisfy 0 < low <= high < 1, got {block_ratio_range}")
    g_device = generator.device if generator else None
    mask = torch.zeros(n_tokens, dtype=torch.bool, device=g_device)
    for _ in range(int(n_blocks)):
        length = min(max(1, int(round(_uniform(low, high, generator) * n_tokens))), n_tokens - 1)
        start = int(torch.randint(0, n_tokens - length + 1, (), generator=generator,
                                  device=g_device))
        mask[start:start + length] = True
    if mask.all():  # every position covered: keep one context patch
        mask[int(torch.randint(0, n_tokens, (), generator=generator, device=g_device))] = False
    return mask.to(device) if device is not None else mask
