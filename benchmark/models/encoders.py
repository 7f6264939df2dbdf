"""Shared backbones. Every method builds its encoder from here, never from a private copy.

Encoder contract: an ``nn.Module`` with an int attribute ``embedding_dim`` whose
``forward(x)`` maps ``(B, leads, T)`` to pooled features ``(B, embedding_dim)``. Heads,
projectors and predictors belong to the methods; an encoder ends at its global pooling.

* :class:`TransformCNN`: the signal-transformation recognition CNN of Sarkar & Etemad (2020),
  with optional residual connections (the residual ablation of the seed report).
* :class:`ResNet1d`: a standard 1-D ResNet with BasicBlocks, used by SimCLR, BYOL and the
  random-init control.
* :class:`ClocsCNN`: the 3-layer CNN of CLOCS (Kiyasseh et al. 2021), single-lead segments.
* :class:`TransformerEncoder1d` and :func:`sinusoidal_positions`: pre-norm transformer blocks
  over token sequences, shared by the masked-modelling methods (Ti-MAE, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----- Sarkar & Etemad transformation-recognition CNN ------------------------------------------
class TransformCNN(nn.Module):
    """Sarkar & Etemad's signal-transformation recognition CNN (IEEE TAC 2020).

    Three conv blocks, each two Conv1d layers with 'same' padding and stride 1, filters
    32/64/128 with kernel sizes 32/16/8; max pooling (size 8, stride 2, no padding) after blocks
    1 and 2; global max pooling over time at the end -> 128-d. On (B, 1, 2560) the feature
    maps are 2560 -> 1277 -> 635 samples long.

    Checked against the authors' released TensorFlow code (github.com/pritamqu/SSL-ECG,
    ``implementation/model.py``): the paper's "max-pool 8" is ``max_pooling1d(pool_size=8,
    strides=2, padding='valid')`` there, so stride 2 here; the activation is
    ``tf.nn.leaky_relu`` with TensorFlow's default slope 0.2 (not ReLU), so ``negative_slope``
    defaults to 0.2; no batch normalisation and no dropout in the conv layers.

    ``residual_blocks`` (1-based) adds each listed block's input to its output (after the
    block's second activation, before pooling), through a 1x1 conv projection where the channel
    counts differ: ``(1,)`` = res1, ``(1, 2)`` = res12, ``(1, 2, 3)`` = res123. Not in the paper.
    """

    def __init__(
        self,
        in_leads: int = 1,
        channels: tuple[int, ...] = (32, 64, 128),
        kernels: tuple[int, ...] = (32, 16, 8),
        residual_blocks: tuple[int, ...] = (),
        pool_size: int = 8,
        pool_stride: int = 2,
        negative_slope: float = 0.2,
    ):
        super().__init__()
        if len(channels) != len(kernels):
            raise ValueError(f"channels {channels} and kernels {kernels} differ in length")
        residual = {int(b) for b in residual_blocks}  # ints even when --set passed strings
        if not residual <= set(range(1, len(channels) + 1)):
            raise ValueError(f"residual_blocks {sorted(residual)} outside 1..{len(channels)}")
        self.residual_blocks = tuple(sorted(residual))
        self.blocks = nn.ModuleList()
        self.shortcuts = nn.ModuleDict()  # key: 1-based block number
        c_in = in_leads
        for i, (c_out, k) in enumerate(zip(channels, kernels), start=1):
            self.blocks.append(self._conv_block(c_in, c_out, k, negative_slope))
            if i in residual:
                projection = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
                self.shortcuts[str(i)] = projection
            c_in = c_out
        self.pool = nn.MaxPool1d(pool_size, pool_stride)
        self.embedding_dim = int(channels[-1])

    @staticmethod
    def _conv_block(c_in: int, c_out: int, kernel: int, slope: float) -> nn.Sequential:
        # TensorFlow 'same' padding: the extra zero of an even kernel goes on the right. Explicit
        # padding avoids the copy (and warning) of torch's padding="same" for even kernels.
        same = ((kernel - 1) // 2, kernel // 2)
        return nn.Sequential(
            nn.ConstantPad1d(same, 0.0),
            nn.Conv1d(c_in, c_out, kernel),
            nn.LeakyReLU(slope),
            nn.ConstantPad1d(same, 0.0),
            nn.Conv1d(c_out, c_out, kernel),
            nn.LeakyReLU(slope),
        )

    def forward(self, x: Tensor) -> Tensor:
        for i, block in enumerate(self.blocks, start=1):
            y = block(x)  # (B, C_i, T_i)
            if str(i) in self.shortcuts:
                y = y + self.shortcuts[str(i)](x)
            x = self.pool(y) if i < len(self.blocks) else y
        return x.amax(dim=-1)  # global max pooling -> (B, C_last)


# ----- 1-D ResNet -------------------------------------------------------------------------------
class BasicBlock1d(nn.Module):
    """Two k-wide convs with batch norm; identity or 1x1-conv shortcut; ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class Bottleneck1d(nn.Module):
    """ResNet-50's block in 1-D: 1x1 reduce -> k-wide conv (carries the stride) -> 1x1 expand
    to 4x the stage width, batch norm after each; identity or 1x1-conv shortcut; ReLU after the
    sum (He et al. 2016, the torchvision v1.5 placement of the stride)."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int, kernel: int):
        super().__init__()
        c_out = width * self.expansion
        self.branch = nn.Sequential(
            nn.Conv1d(c_in, width, 1, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
            nn.Conv1d(width, width, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm1d(width), nn.ReLU(inplace=True),
            nn.Conv1d(width, c_out, 1, bias=False), nn.BatchNorm1d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


class ResNet1d(nn.Module):
    """A standard 1-D ResNet (He et al. 2016), global average pooling at the end.

    Stem: conv k=15 stride 2 + BN + ReLU + max-pool 3/2. Four stages of ``blocks`` blocks with
    widths (64, 128, 256, 512) x ``width``; stages 2-4 halve the time axis. With the defaults
    this is a 1-D ResNet-18 (BasicBlocks); ``bottleneck=True`` with blocks (3, 4, 6, 3) is a
    1-D ResNet-50 (:class:`Bottleneck1d`, stage outputs 4x wider). ``embedding_dim`` is the
    last stage's output width.
    """

    def __init__(
        self,
        in_leads: int = 12,
        width: float = 1.0,
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        kernel_size: int = 7,
        stem_kernel: int = 15,
        bottleneck: bool = False,
    ):
        super().__init__()
        widths = [max(4, int(round(w * width))) for w in (64, 128, 256, 512)][: len(blocks)]
        self.stem = nn.Sequential(
            nn.Conv1d(in_leads, widths[0], stem_kernel, stride=2, padding=stem_kernel // 2,
                      bias=False),
            nn.BatchNorm1d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(3, stride=2, padding=1),
        )
        block, expansion = (Bottleneck1d, Bottleneck1d.expansion) if bottleneck else (BasicBlock1d, 1)
        stages, c_in = [], widths[0]
        for i, (c_width, n) in enumerate(zip(widths, blocks)):
            layers = []
            for j in range(int(n)):
                layers.append(block(c_in, c_width, 2 if (i > 0 and j == 0) else 1, kernel_size))
                c_in = c_width * expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.embedding_dim = int(c_in)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's ResNet init; no zero-init of the last BN (the random-init control
        # should see every residual branch).
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))  # (B, C, T / 32)
        return x.mean(dim=-1)  # global average pooling -> (B, C)


@dataclass
class ResNet1dConfig:
    """Encoder fields of every method on the ResNet1d backbone; mixed into their ``Config``:
    ``class Config(MethodConfig, ResNet1dConfig)``."""

    width: float = 1.0  # stage widths (64, 128, 256, 512) x width
    blocks: tuple[int, ...] = (2, 2, 2, 2)  # BasicBlocks per stage: ResNet-18
    kernel_size: int = 7


# Encoder sizes for every method on the ResNet1d backbone, per preset, so that SimCLR, BYOL and
# the random-init control compare like for like. ``paper`` is the class defaults.
RESNET1D_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"width": 0.125, "blocks": (1, 1, 1, 1)},
    "cpu": {"width": 0.25, "blocks": (2, 2, 2, 2)},
    "paper": {},
}


def resnet1d_from_config(config: ResNet1dConfig, in_leads: int) -> ResNet1d:
    """The ResNet1d a method config describes."""
    return ResNet1d(
        in_leads=in_leads,
        width=float(config.width),
        blocks=tuple(int(b) for b in config.blocks),
        kernel_size=int(config.kernel_size),
    )


# ----- CLOCS CNN -------------------------------------------------------------------------------
class ClocsCNN(nn.Module):
    """The 3-layer 1-D CNN of CLOCS (Kiyasseh, Zhu & Clifton, ICML 2021, appendix).

    Three blocks Conv1d(kernel 7, stride 3, no padding) -> BatchNorm -> ReLU -> MaxPool(2) ->
    Dropout(0.1), channels 1 -> 4 -> 16 -> 32, then the flattened feature map goes through one
    linear layer to ``embedding_dim`` (256). On a 2,500-sample segment the map is 32 x 10 = 320
    wide (2500 -> 832 -> 416 -> 137 -> 68 -> 21 -> 10), the paper's network. Other segment
    lengths get the linear layer their flattened width needs (``segment_samples`` >= 388).

    A single-lead network (``in_leads`` = 1): CLOCS encodes every lead and segment separately
    with the same weights; :class:`ecgbench.methods.clocs.SegmentLeadEncoder` does that.
    """

    def __init__(
        self,
        segment_samples: int = 2500,
        in_leads: int = 1,
        channels: tuple[int, ...] = (4, 16, 32),
        kernel_size: int = 7,
        stride: int = 3,
        pool: int = 2,
        dropout: float = 0.1,
        embedding_dim: int = 256,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, length = in_leads, int(segment_samples)
        for c_out in channels:
            layers += [nn.Conv1d(c_in, c_out, kernel_size, stride=stride), nn.BatchNorm1d(c_out),
                       nn.ReLU(inplace=True), nn.MaxPool1d(pool), nn.Dropout(dropout)]
            length = ((length - kernel_size) // stride + 1) // pool
            c_in = c_out
        if length < 1:
            raise ValueError(f"ClocsCNN: {segment_samples} samples are too short for "
                             f"{len(channels)} blocks of kernel {kernel_size}, stride {stride}")
        self.features = nn.Sequential(*layers)
        self.flat_dim = int(c_in * length)
        self.head = nn.Linear(self.flat_dim, embedding_dim)
        self.segment_samples = int(segment_samples)
        self.embedding_dim = int(embedding_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))  # (B, C, T') -> (B, embedding_dim)


# ----- Transformer blocks ------------------------------------------------------------------------
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
                attn_mask: Tensor | None = None) -> Tensor:
        """``attn_mask`` (N, N) bool, True = query i may not attend to key j (e.g. ECG-JEPA's
        cross-pattern attention)."""
        for layer in self.layers:
            tokens = layer(tokens, src_mask=attn_mask,
                           src_key_padding_mask=key_padding_mask)  # (B, N, dim)
        return self.norm(tokens)


def _init_transformer_weights(m: nn.Module) -> None:
    """MAE's initialisation: Xavier-uniform linear weights, zero biases, unit LayerNorms."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def paper_sizes() -> dict[str, int]:
    """Parameter counts of the paper-size encoders (for docs and reports)."""
    return {
        "TransformCNN": count_parameters(TransformCNN()),
        "TransformCNN-res123": count_parameters(TransformCNN(residual_blocks=(1, 2, 3))),
        "ResNet1d(12 leads)": count_parameters(ResNet1d()),
    }


if __name__ == "__main__":  # python -m ecgbench.models.encoders
    for name, n in paper_sizes().items():
        print(f"{name}: {n:,}")
    print(TransformCNN()(torch.zeros(2, 1, 2560)).shape)


# ===== LocalLead encoder (NERULA) ===============================================================
# Written after the Local-Lead Attention model of Manimaran et al. (CinC 2023; BSD-2 code in
# github.com/cph-cachet/LocalLeadAttention, model/blocks.py, read, not copied), the encoder of
# NERULA: a depthwise-separable convolution stem, a 1x1 projection, then a convolutional
# transformer (ActionFormer-style masked convolutions and local windowed self-attention).
# Every module takes the input-resolution keep mask (B, T) bool, True = visible, resizes it to
# its own output length (ecgbench.models.masking.resize_mask) and zeroes the hidden positions of its
# output: NERULA's latent masking, applied at every layer.
from torch.nn import functional as F  # noqa: E402

from ecgbench.models.masking import resize_mask  # noqa: E402


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
