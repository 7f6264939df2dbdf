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


class ResNet1d(nn.Module):
    """A standard 1-D ResNet (He et al. 2016, BasicBlock), global average pooling at the end.

    Stem: conv k=15 stride 2 + BN + ReLU + max-pool 3/2. Four stages of ``blocks`` BasicBlocks
    with widths (64, 128, 256, 512) x ``width``; stages 2-4 halve the time axis. With the
    defaults this is a 1-D ResNet-18; ``embedding_dim`` is the last stage's width.
    """

    def __init__(
        self,
        in_leads: int = 12,
        width: float = 1.0,
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        kernel_size: int = 7,
        stem_kernel: int = 15,
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
        stages, c_in = [], widths[0]
        for i, (c_out, n) in enumerate(zip(widths, blocks)):
            layers = [BasicBlock1d(c_in if j == 0 else c_out, c_out, 2 if (i > 0 and j == 0) else 1,
                                   kernel_size) for j in range(int(n))]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
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


if __name__ == "__main__":  # python -m ecgbench.encoders
    for name, n in paper_sizes().items():
        print(f"{name}: {n:,}")
    print(TransformCNN()(torch.zeros(2, 1, 2560)).shape)
