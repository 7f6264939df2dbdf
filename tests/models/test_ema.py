"""EMA targets and momentum schedules (ecgbench.models.ema)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecgbench.models.ema import cosine_tau, ema_update, linear_tau


def test_ema_update_moves_the_target_by_one_minus_tau_and_copies_buffers():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    target = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    online[1].running_mean.fill_(2.0)
    before = [p.detach().clone() for p in target.parameters()]
    ema_update(online, target, tau=0.9)
    for old, p_o, p_t in zip(before, online.parameters(), target.parameters()):
        assert torch.allclose(p_t, 0.9 * old + 0.1 * p_o)
    assert torch.equal(target[1].running_mean, torch.full((4,), 2.0))


def test_ema_update_refuses_networks_of_different_layout():
    with pytest.raises(ValueError):
        ema_update(nn.Linear(3, 4), nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4)), 0.5)


def test_momentum_schedules():
    assert cosine_tau(0, 100, 0.996) == pytest.approx(0.996)
    assert cosine_tau(100, 100, 0.996) == pytest.approx(1.0)
    assert linear_tau(0, 100, 0.996, 1.0) == pytest.approx(0.996)
    assert linear_tau(50, 100, 0.996, 1.0) == pytest.approx(0.998)
    assert linear_tau(200, 100, 0.996, 1.0) == pytest.approx(1.0)
