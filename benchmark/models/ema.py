"""Exponential moving averages of networks (BYOL targets, JEPA target encoders).

xi <- tau * xi + (1 - tau) * theta for every parameter of the target network; the schedules
give tau at a training step as a function of the step alone, so a resumed run continues the
same schedule. Tested in tests/models/test_ema.py.
"""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, tau: float, copy_buffers: bool = True
               ) -> None:
    """Move ``target``'s parameters towards ``online``'s; buffers (batch-norm running
    statistics) are copied when ``copy_buffers``. The two modules must have the same layout.

    One multi-tensor ``lerp`` for all parameters (as timm's EMA): a ViT-B target is one kernel
    launch per step on CUDA, not one per tensor; ``tau`` stays a Python float, so no host sync."""
    targets, onlines = _paired(target.parameters(), online.parameters())
    if targets:
        torch._foreach_lerp_(targets, [p.detach() for p in onlines], 1.0 - tau)
    if copy_buffers:
        targets, onlines = _paired(target.buffers(), online.buffers())
        if targets:
            torch._foreach_copy_(targets, onlines)


def _paired(targets, onlines) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    pairs = list(zip(targets, onlines, strict=True))  # ValueError when the layouts differ
    return [t for t, _ in pairs], [o for _, o in pairs]


def cosine_tau(step: int, max_steps: int, tau_base: float) -> float:
    """BYOL's target decay: tau_base at step 0, rising to 1 at max_steps on a cosine."""
    progress = min(max(step / max(max_steps, 1), 0.0), 1.0)
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def linear_tau(step: int, max_steps: int, start: float, end: float = 1.0) -> float:
    """I-JEPA's (and ECG-JEPA's) momentum: linear from ``start`` at step 0 to ``end``."""
    progress = min(max(step / max(max_steps, 1), 0.0), 1.0)
    return start + (end - start) * progress
