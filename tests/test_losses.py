"""Losses alone: known values, a naive re-implementation, and independent libraries."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ecgbench.losses import byol_loss, multitask_bce, negative_cosine, nt_xent


def _pairs(n: int = 6, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


def _naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """Chen et al. eq. 1 written out with loops."""
    z = torch.cat([z1, z2]).tolist()
    n = len(z1)

    def sim(a, b):
        return sum(x * y for x, y in zip(a, b)) / (math.dist(a, [0] * len(a)) * math.dist(b, [0] * len(b)))

    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(math.exp(sim(z[i], z[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(sim(z[i], z[j]) / t) / denominator)
    return total / (2 * n)


# ----- NT-Xent -----------------------------------------------------------------------------------
def test_nt_xent_identical_orthogonal_views_hand_computed():
    # Two samples e1, e2, each view identical to its pair: for every anchor the positive has
    # cosine 1 and the two negatives cosine 0, so the loss is log(1 + 2 exp(-1/t)).
    e = torch.eye(2)
    for t in (0.1, 0.5, 1.0):
        expected = math.log(1 + 2 * math.exp(-1 / t))
        assert nt_xent(e, e.clone(), t).item() == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_nt_xent_matches_naive_loops_and_ignores_norms():
    z1, z2 = _pairs()
    expected = _naive_nt_xent(z1, z2, 0.5)
    assert nt_xent(z1, z2, 0.5).item() == pytest.approx(expected, rel=1e-5)
    assert nt_xent(3 * z1, 0.2 * z2, 0.5).item() == pytest.approx(expected, rel=1e-5)


def test_nt_xent_lower_for_aligned_than_for_random_pairs():
    z1, z2 = _pairs()
    assert nt_xent(z1, z1 + 0.01 * z2, 0.1) < nt_xent(z1, z2, 0.1)


def test_nt_xent_matches_lightly():
    lightly_loss = pytest.importorskip("lightly.loss")
    z1, z2 = _pairs(n=8, d=16)
    for t in (0.1, 0.5):
        reference = lightly_loss.NTXentLoss(temperature=t, memory_bank_size=0)(z1, z2)
        assert nt_xent(z1, z2, t).item() == pytest.approx(reference.item(), rel=1e-5)


def test_nt_xent_matches_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    z1, z2 = _pairs(n=8, d=16)
    # Row i of both views shares label i: one positive per anchor, the other 2N - 2 negatives;
    # pml averages over the 2N ordered positive pairs, as SimCLR averages over the 2N anchors.
    labels = torch.arange(8).repeat(2)
    for t in (0.1, 0.5):
        reference = pml.NTXentLoss(temperature=t)(torch.cat([z1, z2]), labels)
        assert nt_xent(z1, z2, t).item() == pytest.approx(reference.item(), rel=1e-5)


def test_nt_xent_gradients_flow_to_both_views():
    z1, z2 = (z.requires_grad_() for z in _pairs())
    nt_xent(z1, z2, 0.5).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


# ----- BYOL / negative cosine --------------------------------------------------------------------
def test_byol_loss_known_values():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert byol_loss(p, 5 * p).item() == pytest.approx(0.0, abs=1e-6)  # identical directions
    assert byol_loss(p, -p).item() == pytest.approx(4.0)  # opposite
    assert byol_loss(p, p.flip(1)).item() == pytest.approx(2.0)  # orthogonal


def test_byol_loss_is_normalized_mse():
    p, z = _pairs()
    mse = (F.normalize(p, dim=1) - F.normalize(z, dim=1)).pow(2).sum(dim=1).mean()
    assert byol_loss(p, z).item() == pytest.approx(mse.item(), rel=1e-5)


def test_byol_loss_matches_lightly_negative_cosine():
    lightly_loss = pytest.importorskip("lightly.loss")
    p, z = _pairs(n=8, d=16)
    reference = 2 + 2 * lightly_loss.NegativeCosineSimilarity()(p, z)
    assert byol_loss(p, z).item() == pytest.approx(reference.item(), rel=1e-5)
    assert negative_cosine(p, z).item() == pytest.approx(
        lightly_loss.NegativeCosineSimilarity()(p, z).item(), rel=1e-5
    )


def test_negative_cosine_known_values():
    p = torch.tensor([[1.0, 1.0]])
    assert negative_cosine(p, 2 * p).item() == pytest.approx(-1.0)
    assert negative_cosine(p, torch.tensor([[1.0, -1.0]])).item() == pytest.approx(0.0, abs=1e-7)


# ----- multi-task BCE ----------------------------------------------------------------------------
def test_multitask_bce_per_task_and_weights():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(10, 3, generator=g)
    targets = (torch.rand(10, 3, generator=g) > 0.5).float()
    loss, per_task = multitask_bce(logits, targets, weights=(0.5, 0.25, 0.25))
    for k in range(3):
        expected = F.binary_cross_entropy_with_logits(logits[:, k], targets[:, k])
        assert per_task[k].item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() == pytest.approx((0.5 * per_task[0] + 0.25 * per_task[1:].sum()).item(), rel=1e-6)
    assert multitask_bce(logits, targets)[0].item() == pytest.approx(per_task.mean().item(), rel=1e-6)
    # Confident, correct logits give a loss near 0.
    assert multitask_bce(20 * (2 * targets - 1), targets)[0].item() < 1e-6


def test_multitask_bce_rejects_wrong_number_of_weights():
    with pytest.raises(ValueError, match="2 loss weights for 3 tasks"):
        multitask_bce(torch.zeros(4, 3), torch.zeros(4, 3), weights=(1.0, 1.0))
