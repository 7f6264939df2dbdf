"""Token masking for masked-modelling methods (MAE-style): pure functions on tensors.

Conventions: tokens are ``(B, N, D)``; ``keep_idx`` is ``(B, K)`` int64, the positions of the
visible tokens of each sample in ascending order; ``mask`` is ``(B, N)`` bool, True where a
token is masked (hidden from the encoder, to be reconstructed). Randomness comes from the
``generator`` when given, else from torch's global RNG (which the trainer seeds), so a run is
repeatable either way. Tested in tests/models/test_masking.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

COUNTS = ("round", "keep-floor")


def n_masked(n_tokens: int, ratio: float, count: str = "round") -> int:
    """How many of ``n_tokens`` a ``ratio`` masks, at least one token kept.

    ``count="round"``: round(ratio * n). ``count="keep-floor"``: the reference MAE code's
    count (``len_keep = int(n * (1 - ratio))``, which ST-MEM's code keeps): the kept count is
    truncated, so a half token is masked (30 patches at 0.75: 23 masked, round() gives 22).
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    if count not in COUNTS:
        raise ValueError(f"mask count must be one of {COUNTS}, got {count!r}")
    masked = int(round(ratio * n_tokens)) if count == "round" else n_tokens - int(n_tokens * (1 - ratio))
    return min(masked, n_tokens - 1)


def random_token_mask(batch: int, n_tokens: int, ratio: float,
                      generator: torch.Generator | None = None,
                      device: torch.device | str | None = None,
                      count: str = "round") -> tuple[Tensor, Tensor]:
    """A different uniformly random mask for every sample, with exactly ``n_masked`` tokens
    (``count``: how the ratio becomes a number, see :func:`n_masked`).

    As in MAE (He et al. 2022): rank i.i.d. uniform noise per sample and mask the tokens with
    the largest noise. Returns ``(keep_idx (B, K), mask (B, N))``, K = N - n_masked.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    noise_device = generator.device if generator is not None else device
    noise = torch.rand(batch, n_tokens, generator=generator, device=noise_device).to(device)
    n_keep = n_tokens - n_masked(n_tokens, ratio, count)
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


def mask_indices(mask: Tensor, device: torch.device | str) -> tuple[Tensor, Tensor]:
    """(visible, masked) positions (ascending) of a CPU ``mask`` (N,) bool, on ``device``.

    On CUDA the copies go through pinned memory with ``non_blocking``: a copy from pageable
    memory waits for every queued kernel, which would stall the host once per training step.
    """
    visible, masked = (torch.nonzero(m).flatten() for m in (~mask, mask))
    if torch.device(device).type != "cuda":
        return visible.to(device), masked.to(device)
    return visible.pin_memory().to(device, non_blocking=True), masked.pin_memory().to(device, non_blocking=True)


# ----- Complementary patch masks (NERULA): contiguous patches of a raw signal ---------------------
def random_composition(total: Tensor, parts: Tensor, max_parts: int,
                       generator: torch.Generator | None = None) -> Tensor:
    """Split each ``total[b]`` into ``parts[b]`` positive integers, uniformly over all such
    compositions (``parts[b] - 1`` distinct cut points drawn without replacement).

    ``total``, ``parts``: (B,) int64 on the generator's device, ``1 <= parts <= total`` and
    ``parts <= max_parts``. Returns (B, max_parts) int64, zero after the first ``parts[b]``.
    """
    if bool((parts < 1).any() or (parts > total).any() or (parts > max_parts).any()):
        raise ValueError(f"random_composition: need 1 <= parts <= total and parts <= {max_parts}")
    batch, span = total.shape[0], max(int(total.max()) - 1, 1)
    positions = torch.arange(span, device=total.device)
    noise = torch.rand(batch, span, generator=generator, device=total.device)
    noise = noise.masked_fill(positions >= (total - 1)[:, None], float("inf"))  # beyond total
    cuts = noise.argsort(dim=1)[:, : max_parts - 1] + 1  # distinct cut points in 1..total-1
    used = torch.arange(max_parts - 1, device=total.device) < (parts - 1)[:, None]
    cuts = torch.where(used, cuts, total[:, None]).sort(dim=1).values
    bounds = torch.cat([torch.zeros_like(total)[:, None], cuts, total[:, None]], dim=1)
    return bounds.diff(dim=1)


def complementary_patch_mask(batch: int, n_samples: int, ratio: float = 0.5,
                             n_patches: tuple[int, int] = (15, 30),
                             generator: torch.Generator | None = None,
                             device: torch.device | str | None = None) -> Tensor:
    """NERULA's temporal mask: exactly ``round(ratio * n_samples)`` samples hidden, in a number
    of contiguous patches drawn uniformly from ``n_patches`` (inclusive) per sample.

    The hidden total is split into that many patches of random lengths and the visible rest
    into the gaps around them (uniform random compositions; the gaps between patches are at
    least one sample, the two ends may be empty), so a sample has exactly that many separate
    patches. Returns ``(B, n_samples)`` bool, True = hidden in the first view; the second view
    is its complement, so the two views x * ~mask and x * mask partition the signal.
    """
    low, high = (int(n) for n in n_patches)
    hidden = int(round(ratio * n_samples))
    visible = n_samples - hidden
    if not 1 <= low <= high:
        raise ValueError(f"n_patches must satisfy 1 <= low <= high, got {n_patches}")
    if hidden < high or visible < high - 1:
        raise ValueError(f"{n_samples} samples at ratio {ratio} cannot hold {high} separate "
                         f"patches ({hidden} hidden, {visible} visible samples)")
    g_device = generator.device if generator is not None else torch.device(device or "cpu")
    counts = torch.randint(low, high + 1, (batch,), generator=generator, device=g_device)
    full = lambda n: torch.full((batch,), n, dtype=torch.int64, device=g_device)  # noqa: E731
    patches = random_composition(full(hidden), counts, high, generator)  # (B, high)
    # counts + 1 gaps around the patches: split visible + 2 into positive parts, then take one
    # sample back from each end so that only the inner gaps must be non-empty.
    gaps = random_composition(full(visible + 2), counts + 1, high + 1, generator)  # (B, high+1)
    gaps[:, 0] -= 1
    gaps.scatter_add_(1, counts[:, None], torch.full_like(counts[:, None], -1))
    segments = torch.zeros(batch, 2 * high + 1, dtype=torch.int64, device=g_device)
    segments[:, 0::2], segments[:, 1::2] = gaps, patches  # gap, patch, gap, ..., patch, gap
    ends = segments.cumsum(dim=1)
    starts = ends - segments
    edges = torch.zeros(batch, n_samples + 1, dtype=torch.int64, device=g_device)
    edges.scatter_add_(1, starts[:, 1::2], torch.ones_like(patches))
    edges.scatter_add_(1, ends[:, 1::2], -torch.ones_like(patches))
    mask = edges.cumsum(dim=1)[:, :n_samples] > 0
    return mask.to(device) if device is not None else mask


def resize_mask(mask: Tensor, length: int) -> Tensor:
    """A (B, T) bool mask at another resolution, (B, length), as NERULA's latent masking needs
    it at every layer: position i covers the samples adaptive average pooling gives it
    (floor(i T / L) to ceil((i + 1) T / L)) and is True where most of them are; an exact half
    goes to its centre sample.

    Two guarantees, both exact (integer counts, sign-symmetric rounding): complements stay
    complementary, resize_mask(~m) == ~resize_mask(m); and at ``length`` >= 2 a row holding
    both values keeps both (a row that would come out all False gets its most-covered
    position, one that would come out all True loses its least-covered one), so neither of two
    complementary views is ever entirely hidden at any layer.
    """
    n = mask.shape[-1]
    if n == length:
        return mask
    i = torch.arange(int(length), device=mask.device)
    start, end = (i * n) // length, -((-(i + 1) * n) // length)  # adaptive pooling's spans
    centre = mask[:, ((2 * i + 1) * n) // (2 * length)]  # (B, L)
    counts = torch.cat([torch.zeros_like(mask[:, :1], dtype=torch.int32),
                        mask.to(torch.int32).cumsum(dim=1, dtype=torch.int32)], dim=1)
    excess = 2 * (counts[:, end] - counts[:, start]) - (end - start)  # True minus False samples
    out = (excess > 0) | ((excess == 0) & centre)
    if length >= 2:
        mixed = mask.any(dim=1) & ~mask.all(dim=1)
        none, every = mixed & ~out.any(dim=1), mixed & out.all(dim=1)
        # excess per sample of span, nudged by +-1/(4T) towards the centre sample: never 0, and
        # exactly negated for ~mask, so both fix-ups choose the same position. Every row is
        # scored and only the rows in need change (no data-dependent branch: no host sync).
        score = excess.double() / (end - start).double() + (centre.double() * 2 - 1) / (4 * n)
        for rows, pick, value in ((none, torch.argmax, True), (every, torch.argmin, False)):
            out = torch.where(rows[:, None] & (i == pick(score, dim=1, keepdim=True)), value, out)
    return out
