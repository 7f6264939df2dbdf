"""Self-supervised losses: pure functions on tensors, tested alone (tests/test_losses.py)
against hand-computed values and against independent implementations (lightly,
pytorch-metric-learning)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's normalized temperature-scaled cross entropy (Chen et al., ICML 2020, eq. 1).

    ``z1``, ``z2``: (N, D) projections of two views; row i of each is a positive pair. Every
    one of the 2N anchors has one positive and 2N - 2 negatives (all other views in the batch);
    the loss is the mean over the 2N anchors.
    """
    n = z1.shape[0]
    with _full_precision(z1):
        z = F.normalize(torch.cat([z1, z2], dim=0).float(), dim=1)  # (2N, D)
        logits = z @ z.T / temperature  # (2N, 2N) cosine similarities / tau
        self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_mask, float("-inf"))  # not its own negative
        positive = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
        return F.cross_entropy(logits, positive)


def _full_precision(t: Tensor) -> torch.autocast:
    """Losses compute in float32 even inside the trainer's bf16 autocast region: similarities
    divided by a small temperature lose too much in bf16."""
    return torch.autocast(t.device.type, enabled=False)


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """Mean negative cosine similarity between rows of ``p`` and ``z`` (SimSiam's D)."""
    with _full_precision(p):
        return -F.cosine_similarity(p.float(), z.float(), dim=-1).mean()


def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """BYOL's normalized MSE (Grill et al., NeurIPS 2020, eq. 2): ||p/|p| - z/|z| ||^2 = 2 - 2cos.

    ``p``: online predictions, ``z``: target projections (the caller computes them without
    gradient); mean over the batch. The method symmetrises it over the two views.
    """
    return 2.0 + 2.0 * negative_cosine(p, z)


def multitask_bce(logits: Tensor, targets: Tensor, weights: Sequence[float] | Tensor | None = None
                  ) -> tuple[Tensor, Tensor]:
    """Weighted sum of per-task binary cross entropies (one sigmoid head per task).

    ``logits``, ``targets``: (N, K). Returns ``(loss, per_task)`` where ``per_task`` is the (K,)
    mean BCE of each head and ``loss = sum_k weights[k] * per_task[k]`` (weights default to 1/K).
    """
    per_task = F.binary_cross_entropy_with_logits(
        logits, targets.to(logits.dtype), reduction="none"
    ).mean(dim=0)  # (K,)
    if weights is None:
        return per_task.mean(), per_task
    w = torch.as_tensor(weights, dtype=per_task.dtype, device=per_task.device)
    if w.shape != per_task.shape:
        raise ValueError(f"{w.numel()} loss weights for {per_task.numel()} tasks")
    return (w * per_task).sum(), per_task
