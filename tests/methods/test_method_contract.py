"""The Method contract, for every method in the registry (a new method is covered for free).

Each method is built with its smoke preset, the configuration the CI grid runs. The checks live
in :mod:`ecgbench.models.contract`, where ``ecgbench check-method FILE`` runs them on a file
outside the package.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from ecgbench.core.registry import METHODS
from ecgbench.models import contract
from ecgbench.models.contract import BATCH, derived, random_batch
from ecgbench.models.method import Method

NAMES = METHODS.names()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(name: str, seed: int = 0, with_base: bool = True) -> Method:
    return contract.build(METHODS.get(name), seed, with_base)


def encoder_grads(method: Method) -> list[torch.Tensor]:
    return [p.grad for p in method.encoder.parameters() if p.grad is not None]


@pytest.mark.parametrize("name", NAMES)
def test_declares_config_presets_and_docs(name):
    entry = METHODS.entry(name)
    contract.check_declarations(METHODS.get(name), name, entry.description, entry.path)


@pytest.mark.parametrize("name", NAMES)
def test_training_step_gives_a_finite_scalar_loss_with_encoder_gradients(name):
    contract.check_training_step(METHODS.get(name))


@pytest.mark.parametrize("name", NAMES)
def test_loss_falls_on_one_fixed_batch(name):
    if not METHODS.get(name).needs_training:
        pytest.skip(f"{name} is a control without training")
    contract.check_loss_falls(METHODS.get(name))


@pytest.mark.parametrize("name", NAMES)
def test_embed_shape(name):
    contract.check_embed(METHODS.get(name))


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_gives_identical_embeddings(name):
    contract.check_state_dict(METHODS.get(name))


def test_byol_target_is_an_ema_without_gradients():
    if "byol" not in NAMES:
        pytest.skip("byol not registered")
    method = build("byol").train()
    targets = [method.target_encoder, method.target_projector]
    target_params = [p for m in targets for p in m.parameters()]
    assert target_params and all(not p.requires_grad for p in target_params)
    trainable = {id(p) for p in method.trainable_parameters()}
    assert not any(id(p) in trainable for p in target_params)
    before = [p.detach().clone() for p in target_params]

    optimizer = method.configure_optimizer()
    method.training_step(random_batch(method))["loss"].backward()
    assert all(p.grad is None for p in target_params)
    optimizer.step()
    method.on_train_step_end(0, 100)

    moved = [not torch.equal(b, p) for b, p in zip(before, target_params)]
    assert any(moved)
    # xi <- tau xi + (1 - tau) theta with tau = tau_base at step 0.
    tau = method.config.tau_base
    online = torch.cat([p.detach().flatten() for p in method.encoder.parameters()])
    old = torch.cat([b.flatten() for b in before[: len(list(method.encoder.parameters()))]])
    new = torch.cat([p.detach().flatten() for p in method.target_encoder.parameters()])
    assert torch.allclose(new, tau * old + (1 - tau) * online, atol=1e-6)


def test_byol_tau_follows_the_cosine_schedule():
    if "byol" not in NAMES:
        pytest.skip("byol not registered")
    from ecgbench.methods.byol import cosine_tau

    assert cosine_tau(0, 100, 0.996) == pytest.approx(0.996)
    assert cosine_tau(50, 100, 0.996) == pytest.approx(0.998)
    assert cosine_tau(100, 100, 0.996) == pytest.approx(1.0)


def test_transform_cnn_targets_and_residual_defaults():
    if "transform-cnn" not in NAMES:
        pytest.skip("transform-cnn not registered")
    method = build("transform-cnn")
    x = random_batch(method)["signal"]
    signals, targets = method.transformed_batch(x)
    assert signals.shape == (7 * BATCH, *x.shape[1:]) and targets.shape == (7 * BATCH, 7)
    assert torch.equal(targets.sum(dim=1), torch.ones(7 * BATCH))
    assert torch.equal(signals[:BATCH], x)  # task 0: the original
    assert torch.equal(signals[3 * BATCH: 4 * BATCH], -x)  # task 3: negation
    assert torch.equal(signals[4 * BATCH: 5 * BATCH], x.flip(-1))  # task 4: horizontal flip
    for name, blocks in [("transform-cnn", ()), ("transform-cnn-res1", (1,)),
                         ("transform-cnn-res12", (1, 2)), ("transform-cnn-res123", (1, 2, 3))]:
        assert METHODS.get(name).Config().residual_blocks == blocks
        assert build(name).encoder.residual_blocks == blocks


@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
def test_training_step_and_embed_on_cuda(name):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    method = build(name).cuda().train()
    batch = random_batch(method, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):  # as the trainer runs it
        outputs = method.training_step(batch)
    assert outputs["loss"].device.type == "cuda" and math.isfinite(outputs["loss"].item())
    if method.needs_training:
        outputs["loss"].backward()
        method.on_train_step_end(0, 10)
    assert method.eval().embed(batch["signal"], **derived(method, batch)).shape == (BATCH, method.embedding_dim)


def test_template_is_a_working_method():
    """methods/_template.py is skipped by discovery; keep it runnable so copies start green."""
    from ecgbench.methods._template import TemplateMethod

    assert "template" not in NAMES
    config = dataclasses.replace(TemplateMethod.Config(), **TemplateMethod.preset_overrides("smoke"))
    method = TemplateMethod(config).train()
    loss = method.training_step(random_batch(method))["loss"]
    loss.backward()
    assert math.isfinite(loss.item()) and encoder_grads(method)
    assert method.eval().embed(random_batch(method)["signal"]).shape == (BATCH, method.embedding_dim)
