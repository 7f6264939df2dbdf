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
