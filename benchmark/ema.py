"""Exponential moving averages of networks (BYOL targets, JEPA target encoders).

xi <- tau * xi + (1 - tau) * theta for every parameter of the target network; the schedules
give tau at a training step as a function of the step alone, so a resumed run continues the
same schedule. Tested in tests/test_ema.py.
"""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, tau: float, copy_buffers: bool = True
               ) -> None:
    """Move ``target``'s parameters towards ``online``'s; buffers (batch-norm running
    statistics) are copied when ``copy_buffers``. The two modules must have the same layout."""
    for p_o, p_t in zip(online.parameters(), target.parameters(), strict=True):
        p_t.lerp_(p_o.detach(), 1.0 - tau)
    if copy_buffers:
        for b_o, b_t in zip(online.buffers(), target.buffers(), strict=True):
            b_t.copy_(b_o)


def cosine_tau(step: int, max_steps: int, tau_base: float) -> float:
    """BYOL's target decay: tau_base at step 0, rising to 1 at max_steps on a cosine."""
    progress = min(max(step / max(max_steps, 1), 0.0), 1.0)
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def linear_tau(step: int, max_steps: int, start: float, end: float = 1.0) -> float:
    """I-JEPA's (and ECG-JEPA's) momentum: linear from ``start`` at step 0 to ``end``."""
    progress = min(max(step / max(max_steps, 1), 0.0), 1.0)
    return start + (end - start) * progress
