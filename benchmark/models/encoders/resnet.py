"""A standard 1-D ResNet (BasicBlocks or Bottlenecks), used by SimCLR, BYOL, the supervised
references and the random-init control, with its config and presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn


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
