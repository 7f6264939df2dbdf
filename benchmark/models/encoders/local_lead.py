"""LocalLead encoder (NERULA).

Written after the Local-Lead Attention model of Manimaran et al. (CinC 2023; BSD-2 code in
github.com/cph-cachet/LocalLeadAttention, model/blocks.py, read, not copied), the encoder of
NERULA: a depthwise-separable convolution stem, a 1x1 projection, then a convolutional
transformer (ActionFormer-style masked convolutions and local windowed self-attention).
Every module takes the input-resolution keep mask (B, T) bool, True = visible, resizes it to
its own output length (ecgbench.models.masking.resize_mask) and zeroes the hidden positions of its
output: NERULA's latent masking, applied at every layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ecgbench.models.masking import resize_mask


def _apply_keep(x: Tensor, keep: Tensor) -> Tensor:
    """Zero ``x`` (B, C, L) where ``keep`` (B, T), resized to L, is False."""
    return x * resize_mask(keep, x.shape[-1])[:, None].to(x.dtype)


class DepthwiseSeparableConv1d(nn.Module):
    """Depthwise conv (groups = c_in, channel multiplier c_out / c_in) -> LeakyReLU -> BatchNorm
    -> pointwise 1x1 conv, the LLA repository's order."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        if c_out % c_in:
            raise ValueError(f"depthwise conv: {c_out} output channels are not a multiple of {c_in}")
        self.depthwise = nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=padding, groups=c_in)
        self.act = nn.LeakyReLU()
        self.norm = nn.BatchNorm1d(c_out)
        self.pointwise = nn.Conv1d(c_out, c_out, 1)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        return _apply_keep(self.pointwise(self.norm(self.act(self.depthwise(x)))), keep)


class LocalLeadStemBlock(nn.Module):
    """Two valid (unpadded) k-wide convs, the second strided, then ``depth`` padded convs with a
    residual connection around them; all depthwise-separable."""

    def __init__(self, c_in: int, c_out: int, stride: int, depth: int, kernel: int = 9):
        super().__init__()
        self.entry = DepthwiseSeparableConv1d(c_in, c_out, kernel)
        self.down = DepthwiseSeparableConv1d(c_out, c_out, kernel, stride=stride)
        self.body = nn.ModuleList(DepthwiseSeparableConv1d(c_out, c_out, kernel, padding=kernel // 2)
                                  for _ in range(int(depth)))

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        x = self.down(self.entry(x, keep), keep)
        y = x
        for layer in self.body:
            y = layer(y, keep)
        return x + y


class MaskedConv1d(nn.Module):
    """A 'same' conv (optionally + batch norm + ReLU) whose output is zero at hidden positions."""

    def __init__(self, c_in: int, c_out: int, kernel: int, norm: bool = True):
        super().__init__()
        conv = nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=not norm)
        self.layers = nn.Sequential(conv, nn.BatchNorm1d(c_out), nn.ReLU()) if norm else conv

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        return _apply_keep(self.layers(x), keep)


def local_window_attention(q: Tensor, k: Tensor, v: Tensor, radius: int,
                           key_keep: Tensor | None = None) -> Tensor:
    """Self-attention of every position to the keys within ``radius`` steps (a window of
    2 * radius + 1), computed block-wise: queries in blocks of ``radius``, each against the
    3 * radius keys around its block, so memory grows with T * radius, not T^2.

    ``q``, ``k``, ``v``: (B, H, T, d), ``q`` already scaled; ``key_keep`` (B, T) bool, False =
    the key is ignored. A query with no visible key in its window gets a uniform average (its
    output is meant to be masked by the caller). Returns (B, H, T, d).
    """
    b, h, t, d = q.shape
    r = int(radius)
    n_blocks = -(-t // r)
    pad = n_blocks * r - t
    keep = torch.ones(b, t, dtype=torch.bool, device=q.device) if key_keep is None else key_keep
    q_blocks = F.pad(q, (0, 0, 0, pad)).reshape(b, h, n_blocks, r, d)
    k_blocks = F.pad(k, (0, 0, r, r + pad)).unfold(2, 3 * r, r).transpose(-1, -2)  # (B,H,n,3r,d)
    v_blocks = F.pad(v, (0, 0, r, r + pad)).unfold(2, 3 * r, r).transpose(-1, -2)
    keep_blocks = F.pad(keep, (r, r + pad)).unfold(1, 3 * r, r)  # (B, n, 3r), padding False
    offset = torch.arange(3 * r, device=q.device)[None, :] - r - torch.arange(r, device=q.device)[:, None]
    band = offset.abs() <= r  # (r, 3r): key j of the block's window is within radius of query i
    valid = band[None, None] & keep_blocks[:, :, None, :]  # (B, n, r, 3r)
    valid = valid | ~valid.any(dim=-1, keepdim=True)  # no visible key: uniform, masked later
    scores = torch.einsum("bhnid,bhnjd->bhnij", q_blocks, k_blocks)
    scores = scores.masked_fill(~valid[:, None], float("-inf"))
    out = torch.einsum("bhnij,bhnjd->bhnid", scores.softmax(dim=-1), v_blocks)
    return out.reshape(b, h, n_blocks * r, d)[:, :, :t]


class ConvAttention(nn.Module):
    """Multi-head self-attention whose queries, keys and values first pass a depthwise conv
    (kernel 3, or stride + 1 when downsampling) with batch norm, then 1x1 projections; local
    (``window`` > 1, odd) or global (``window`` <= 1). Hidden keys are never attended to."""

    def __init__(self, dim: int, heads: int, stride: int = 1, window: int = 19):
        super().__init__()
        if dim % heads:
            raise ValueError(f"ConvAttention: dim {dim} is not divisible by {heads} heads")
        if window > 1 and window % 2 == 0:
            raise ValueError(f"ConvAttention: the local window must be odd, got {window}")
        kernel = stride + 1 if stride > 1 else 3
        def depthwise() -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(dim, dim, kernel, stride=stride, padding=kernel // 2,
                                           groups=dim, bias=False), nn.BatchNorm1d(dim))
        self.q_conv, self.k_conv, self.v_conv = depthwise(), depthwise(), depthwise()
        self.q, self.k, self.v = (nn.Conv1d(dim, dim, 1) for _ in range(3))
        self.proj = nn.Conv1d(dim, dim, 1)
        self.heads, self.window = int(heads), int(window)

    def forward(self, x: Tensor, keep_out: Tensor) -> Tensor:
        """(B, C, T) -> (B, C, T_out); ``keep_out`` (B, T_out) marks the visible keys."""
        def split(t: Tensor) -> Tensor:  # (B, C, T') -> (B, H, T', C / H)
            return t.reshape(t.shape[0], self.heads, -1, t.shape[-1]).transpose(-1, -2)
        q = split(self.q(self.q_conv(x)))
        k, v = split(self.k(self.k_conv(x))), split(self.v(self.v_conv(x)))
        if self.window > 1:
            out = local_window_attention(q * q.shape[-1] ** -0.5, k, v, self.window // 2, keep_out)
        else:
            keys = keep_out | ~keep_out.any(dim=-1, keepdim=True)  # all hidden: attend anyway
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys[:, None, None, :])
        b, h, t, d = out.shape
        return self.proj(out.transpose(-1, -2).reshape(b, h * d, t))


class LocalLeadTransformerLayer(nn.Module):
    """Pre-norm block (batch norm, as in the LLA code): x' = skip(x) + attn(norm(x)),
    out = x' + MLP(norm(x')); ``stride`` 2 halves the length (max-pooled skip, strided q/k/v
    convs). The keep mask zeroes hidden positions of every branch."""

    def __init__(self, dim: int, heads: int, stride: int = 1, window: int = 19,
                 mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1, self.norm2 = nn.BatchNorm1d(dim), nn.BatchNorm1d(dim)
        self.attn = ConvAttention(dim, heads, stride, window)
        self.skip = (nn.MaxPool1d(stride + 1, stride, (stride + 1) // 2) if stride > 1
                     else nn.Identity())
        hidden = int(round(dim * mlp_ratio))
        self.mlp = nn.Sequential(nn.Conv1d(dim, hidden, 1), nn.GELU(), nn.Conv1d(hidden, dim, 1))
        self.stride = int(stride)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        keep_out = resize_mask(keep, -(-x.shape[-1] // self.stride))
        m = keep_out[:, None].to(x.dtype)
        out = self.skip(x) * m + self.attn(self.norm1(x), keep_out) * m
        return out + self.mlp(self.norm2(out)) * m


class LocalLeadEncoder(nn.Module):
    """NERULA's encoder after the Local-Lead Attention model (Manimaran et al., CinC 2023).

    Stem: four blocks of depthwise-separable convs (kernel 9), channels 1 -> 24 -> 48 -> 96 ->
    96, strides 2, 2, 2, 1, with 4, 5, 6, 7 residual convs; a 1x1 conv to ``dim`` (128); the
    sequence resized (linear interpolation) to ``latent_len`` (1152, as the LLA code; 0 keeps
    its length). Backbone (the LLA code's ``arch`` (2, 2, 8)): 2 masked convs (kernel 5, batch
    norm, ReLU), 2 transformer layers at full length, 8 that each halve it; 4 heads at width
    128; the first 6 attention windows are local (19 steps), the last 3 global (``windows`` has
    one entry for the full-length layers, then one per halving layer). No position embedding
    (the depthwise q/k/v convs carry position, as in the LLA code).

    ``forward(x, keep=None)``: (B, leads, T) and an optional keep mask (B, T) bool (False =
    hidden) -> (B, dim) mean over the visible positions of the last layer.
    ``sequence(x, keep)``: the last layer's (B, dim, L) latents and their (B, L) keep mask.
    The leads are the stem's input channels (the LLA lead axis with shared weights is not
    modelled: NERULA uses one lead).
    """

    def __init__(self, in_leads: int = 1, stem_channels: tuple[int, ...] = (24, 48, 96, 96),
                 stem_strides: tuple[int, ...] = (2, 2, 2, 1),
                 stem_depths: tuple[int, ...] = (4, 5, 6, 7), kernel: int = 9, dim: int = 128,
                 heads: int = 4, arch: tuple[int, int, int] = (2, 2, 8),
                 windows: tuple[int, ...] = (19,) * 6 + (-1,) * 3, embed_kernel: int = 5,
                 latent_len: int = 1152, mlp_ratio: float = 4.0):
        super().__init__()
        if not len(stem_channels) == len(stem_strides) == len(stem_depths):
            raise ValueError("LocalLeadEncoder: stem_channels, stem_strides and stem_depths "
                             "differ in length")
        n_embed, n_full, n_down = (int(a) for a in arch)
        if len(windows) != 1 + n_down:
            raise ValueError(f"LocalLeadEncoder: windows needs 1 + {n_down} entries, got {len(windows)}")
        c_in, stem = in_leads, []
        for c_out, stride, depth in zip(stem_channels, stem_strides, stem_depths):
            stem.append(LocalLeadStemBlock(c_in, int(c_out), int(stride), int(depth), kernel))
            c_in = int(c_out)
        self.stem = nn.ModuleList(stem)
        self.project = MaskedConv1d(c_in, dim, 1, norm=False)
        self.embed = nn.ModuleList(MaskedConv1d(dim, dim, embed_kernel) for _ in range(n_embed))
        self.layers = nn.ModuleList(
            [LocalLeadTransformerLayer(dim, heads, 1, int(windows[0]), mlp_ratio)
             for _ in range(n_full)]
            + [LocalLeadTransformerLayer(dim, heads, 2, int(w), mlp_ratio) for w in windows[1:]])
        self.latent_len = int(latent_len)
        self.embedding_dim = int(dim)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():  # zero conv/linear biases, as the LLA code's backbone
            if isinstance(m, (nn.Conv1d, nn.Linear)) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def sequence(self, x: Tensor, keep: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if keep is None:
            keep = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool, device=x.device)
        h = x * keep[:, None].to(x.dtype)  # (B, leads, T)
        for block in self.stem:
            h = block(h, keep)
        h = self.project(h, keep)  # (B, dim, T')
        if self.latent_len and h.shape[-1] != self.latent_len:
            h = _apply_keep(F.interpolate(h, size=self.latent_len, mode="linear",
                                          align_corners=False), keep)
        for conv in self.embed:
            h = conv(h, keep)
        for layer in self.layers:
            h = layer(h, keep)
        return h, resize_mask(keep, h.shape[-1])  # (B, dim, L), (B, L)

    @staticmethod
    def pool(h: Tensor, keep: Tensor) -> Tensor:
        """Mean of (B, dim, L) latents over their visible positions (keep (B, L)) -> (B, dim)."""
        w = keep[:, None].to(h.dtype)
        return (h * w).sum(dim=-1) / w.sum(dim=-1).clamp_min(1.0)

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        return self.pool(*self.sequence(x, keep))


@dataclass
class LocalLeadConfig:
    """Encoder fields of the methods on the LocalLead backbone (NERULA and its ladder)."""

    stem_channels: tuple[int, ...] = (24, 48, 96, 96)
    stem_strides: tuple[int, ...] = (2, 2, 2, 1)
    stem_depths: tuple[int, ...] = (4, 5, 6, 7)
    stem_kernel: int = 9
    embed_dim: int = 128
    heads: int = 4
    arch: tuple[int, int, int] = (2, 2, 8)  # (masked convs, full-length layers, halving layers)
    windows: tuple[int, ...] = (19,) * 6 + (-1,) * 3  # -1: global attention
    latent_len: int = 1152


LOCAL_LEAD_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"stem_channels": (4, 8, 8, 8), "stem_depths": (1, 1, 1, 1), "embed_dim": 16,
              "heads": 2, "arch": (1, 1, 2), "windows": (9, 9, -1), "latent_len": 48},
    "cpu": {"stem_channels": (8, 16, 32, 32), "stem_depths": (1, 1, 2, 2), "embed_dim": 64,
            "heads": 4, "arch": (1, 2, 4), "windows": (19, 19, 19, -1, -1), "latent_len": 0},
    "paper": {},
}


def local_lead_from_config(config: LocalLeadConfig, in_leads: int) -> LocalLeadEncoder:
    """The LocalLeadEncoder a method config describes."""
    return LocalLeadEncoder(
        in_leads=in_leads, stem_channels=tuple(int(c) for c in config.stem_channels),
        stem_strides=tuple(int(s) for s in config.stem_strides),
        stem_depths=tuple(int(d) for d in config.stem_depths), kernel=int(config.stem_kernel),
        dim=int(config.embed_dim), heads=int(config.heads),
        arch=tuple(int(a) for a in config.arch), windows=tuple(int(w) for w in config.windows),
        latent_len=int(config.latent_len),
    )
