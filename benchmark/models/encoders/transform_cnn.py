"""The signal-transformation recognition CNN of Sarkar & Etemad (2020), with optional residual
connections (the residual ablation of the seed report)."""

from __future__ import annotations

from torch import Tensor, nn


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
