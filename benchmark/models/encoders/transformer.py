"""Pre-norm transformer blocks over token sequences and sinusoidal positions, shared by the
masked-modelling methods (Ti-MAE, ...)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_positions(n_positions: int, dim: int, device: torch.device | str | None = None
                         ) -> Tensor:
    """Fixed sine/cosine position table (Vaswani et al. 2017): (n_positions, dim).

    Column 2i is sin(pos / 10000^(2i/dim)), column 2i+1 the cosine; an odd ``dim`` drops the
    last cosine column.
    """
    position = torch.arange(n_positions, dtype=torch.float32, device=device)[:, None]
    half = (dim + 1) // 2
    frequency = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32,
                                                            device=device) * 2 / dim)
    table = torch.zeros(n_positions, 2 * half, device=device)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table[:, :dim]


class TransformerEncoder1d(nn.Module):
    """A stack of pre-norm transformer layers over token sequences, with a final LayerNorm.

    ``(B, N, dim) -> (B, N, dim)``: a sequence model, not an encoder in the contract's sense
    (methods put a tokenizer in front and a pooling behind it). Layers are
    ``torch.nn.TransformerEncoderLayer(batch_first=True, norm_first=True)`` with GELU, as in
    ViT/MAE; ``key_padding_mask`` (B, N), True = ignore, and ``attn_mask`` pass through.
    """

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"TransformerEncoder1d: dim {dim} is not divisible by {heads} heads")
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim, heads, dim_feedforward=int(round(dim * mlp_ratio)), dropout=dropout,
                activation="gelu", batch_first=True, norm_first=True,
            )
            for _ in range(int(depth))
        )
        self.norm = nn.LayerNorm(dim)
        self.dim = int(dim)
        self.apply(_init_transformer_weights)

    def forward(self, tokens: Tensor, key_padding_mask: Tensor | None = None,
                attn_mask: Tensor | None = None, readd: Tensor | None = None,
                normalize: bool = True) -> Tensor:
        """``attn_mask`` (N, N) bool, True = query i may not attend to key j (e.g. ECG-JEPA's
        cross-pattern attention). ``readd`` (N, dim): added again before every layer after the
        first (ECG-JEPA's code re-adds its positions so). ``normalize=False`` leaves out the
        final LayerNorm (for a caller that normalises after pooling)."""
        for i, layer in enumerate(self.layers):
            if readd is not None and i > 0:
                tokens = tokens + readd.to(tokens.dtype)
            tokens = layer(tokens, src_mask=attn_mask,
                           src_key_padding_mask=key_padding_mask)  # (B, N, dim)
        return self.norm(tokens) if normalize else tokens


def _init_transformer_weights(m: nn.Module) -> None:
    """MAE's initialisation: Xavier-uniform linear weights, zero biases, unit LayerNorms."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
