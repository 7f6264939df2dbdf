"""supervised-resnet: one label head per task kind, the right loss for each, lead-II input."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.core.registry import METHODS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(name: str = "supervised-resnet"):
    cls = METHODS.get(name)
    torch.manual_seed(0)
    return cls(dataclasses.replace(cls.Config(), **cls.preset_overrides("smoke")))


def signal(method, batch: int = 6) -> torch.Tensor:
    return torch.randn(batch, len(method.config.leads), method.config.n_samples)  # (B, leads, T)


def test_flags_and_inputs():
    for name, leads in [("supervised-resnet", ("II",)), ("supervised-resnet-12lead", STANDARD_LEADS)]:
        cls = METHODS.get(name)
        assert cls.uses_labels and cls.needs_training and cls.base_method is None
        assert cls.Config().leads == leads and cls.Config().fs == 100 and cls.Config().n_samples == 1000


def test_training_needs_setup_task_first():
    method = build()
    with pytest.raises(RuntimeError, match="setup_task"):
        method.training_step({"signal": signal(method), "label": torch.zeros(6, dtype=torch.long)})
    with pytest.raises(ValueError, match="unknown task kind"):
        method.setup_task("ranking", 3)


@pytest.mark.parametrize("kind, n_outputs, label, expected", [
    ("multiclass", 4, torch.tensor([0, 1, 2, 3, 0, 1]), math.log(4)),
    ("multilabel", 5, torch.ones(6, 5), math.log(2)),
    ("binary", 1, torch.tensor([0, 1, 1, 0, 1, 0]), math.log(2)),
    ("regression", 1, torch.tensor([1.0, -1.0, 2.0, 0.0, 0.5, -0.5]), (1 + 1 + 4 + 0 + 0.25 + 0.25) / 6),
])
def test_loss_per_task_kind_on_known_values(kind, n_outputs, label, expected):
    method = build()
    method.setup_task(kind, n_outputs)
    assert method.head.out_features == n_outputs
    torch.nn.init.zeros_(method.head.weight)
    torch.nn.init.zeros_(method.head.bias)  # zero logits: CE = log C, BCE = log 2, MSE = mean y^2
    loss = method.training_step({"signal": signal(method), "label": label})["loss"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_losses_match_torch_on_random_heads():
    method = build()
    x = signal(method)
    method.setup_task("multilabel", 3)
    y = torch.randint(0, 2, (6, 3)).float()
    logits = method.head(method.encoder(x))
    assert method.training_step({"signal": x, "label": y})["loss"].item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, y).item(), rel=1e-5)


def test_learns_a_label_carried_by_lead_two():
    """A few steps on a fixed batch whose class is the sign of lead II: training accuracy rises."""
    method = build().train()
    method.setup_task("multiclass", 2)
    torch.manual_seed(1)
    label = torch.arange(16) % 2
    x = torch.randn(16, 1, 1000) * 0.1 + (label.float() * 2 - 1)[:, None, None]
    optimizer = method.configure_optimizer()
    for _ in range(15):
        loss = method.training_step({"signal": x, "label": label})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    method.eval()
    with torch.no_grad():
        accuracy = (method.head(method.encoder(x)).argmax(1) == label).float().mean().item()
    assert accuracy == 1.0
