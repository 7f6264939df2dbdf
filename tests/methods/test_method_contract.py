"""The Method contract, for every method in the registry (a new method is covered for free).

Each method is built with its smoke preset, the configuration the CI grid runs.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import io
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgbench.core.registry import METHODS
from ecgbench.models.method import Method, MethodConfig

NAMES = METHODS.names()
BATCH = 8
STEPS = 24
N_CLASSES = 3  # label-using methods are set up for a multiclass task in these tests


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(name: str, seed: int = 0, with_base: bool = True) -> Method:
    """The smoke-size method, prepared as the runner prepares it: ``setup_task`` for methods
    with labels, ``init_from_base`` (from a fresh base) for frozen-encoder variants unless
    ``with_base`` is False (the runner reloads a variant's checkpoint without its base)."""
    cls = METHODS.get(name)
    config = dataclasses.replace(cls.Config(), **cls.preset_overrides("smoke"))
    base = build(cls.base_method, seed) if cls.base_method and with_base else None
    torch.manual_seed(seed)
    method = cls(config)
    if cls.uses_labels:
        method.setup_task("multiclass", N_CLASSES)
    if base is not None:
        method.init_from_base(base)
    return method


def random_signal(method: Method, seed: int = 0) -> torch.Tensor:
    spec = method.input_spec
    g = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, len(spec.leads), spec.n_samples, generator=g)  # (B, leads, T)


def random_batch(method: Method, seed: int = 0, device: str = "cpu") -> dict[str, torch.Tensor]:
    batch = {
        "signal": random_signal(method, seed).to(device),
        "patient_id": torch.arange(BATCH, device=device) // 2,
        "record_index": torch.arange(BATCH, device=device),
    }
    if method.uses_labels:
        batch["label"] = torch.arange(BATCH, device=device) % N_CLASSES  # (B,) int64, multiclass
    if method.derived_input:  # as the runner adds it: each window gets its record's row
        table = derived_table(method.name, seed)
        batch[method.derived_input] = torch.from_numpy(table)[batch["record_index"].cpu()].to(device)
    return batch


def derived(method: Method, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword ``embed`` takes the derived input as (none for most methods)."""
    return {method.derived_input: batch[method.derived_input]} if method.derived_input else {}


@functools.cache
def derived_table(name: str, seed: int) -> np.ndarray:
    """``derive_inputs`` on recordings made of the seed's random windows, one record each
    (once per method and seed: extractors such as neurokit2's delineation are slow)."""
    import pandas as pd

    from ecgbench.core.contracts import Recordings

    method = build(name, with_base=False)
    spec = method.input_spec
    meta = pd.DataFrame({"record_id": [f"r{i}" for i in range(BATCH)], "patient_id": range(BATCH),
                         "split": "train"})
    data = Recordings("contract", "1", random_signal(method, seed).numpy(), meta, spec.fs, tuple(spec.leads))
    with tempfile.TemporaryDirectory() as cache:
        table = method.derive_inputs(data, Path(cache))
    assert table.shape[0] == BATCH and table.dtype == np.float32
    return table


def encoder_grads(method: Method) -> list[torch.Tensor]:
    return [p.grad for p in method.encoder.parameters() if p.grad is not None]


@pytest.mark.parametrize("name", NAMES)
def test_declares_config_presets_and_docs(name):
    entry = METHODS.entry(name)
    cls = METHODS.get(name)
    assert issubclass(cls, Method) and cls.name == name
    assert dataclasses.is_dataclass(cls.Config) and issubclass(cls.Config, MethodConfig)
    assert entry.description, f"{name}: the class docstring needs a one-line description"
    assert {"smoke", "cpu"} <= set(cls.presets)
    for preset in ("smoke", "cpu", "paper"):
        dataclasses.replace(cls.Config(), **cls.preset_overrides(preset))  # fields exist
    module_doc = ast.get_docstring(ast.parse(entry.path.read_text()))
    assert module_doc and "Departures:" in module_doc, f"{name}: module docstring needs Departures:"


@pytest.mark.parametrize("name", NAMES)
def test_training_step_gives_a_finite_scalar_loss_with_encoder_gradients(name):
    method = build(name).train()
    outputs = method.training_step(random_batch(method))
    loss = outputs["loss"]
    assert loss.ndim == 0 and math.isfinite(loss.item())
    assert all(v.ndim == 0 for v in outputs.values()), "extra outputs must be scalars"
    if not method.needs_training:
        return
    loss.backward()
    if method.base_method:  # a frozen-encoder variant trains its own parts only
        grads = [p.grad for p in method.trainable_parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)
        return
    grads = encoder_grads(method)
    assert grads and any(g.abs().sum() > 0 for g in grads)
    trainable = {id(p) for p in method.trainable_parameters()}
    assert all(id(p) in trainable for p in method.encoder.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_loss_falls_on_one_fixed_batch(name):
    method = build(name).train()
    if not method.needs_training:
        pytest.skip(f"{name} is a control without training")
    optimizer = method.configure_optimizer()
    batch = random_batch(method)
    losses = []
    for step in range(STEPS):
        torch.manual_seed(0)  # the same augmentations (and dropout) every step: a fixed problem
        loss = method.training_step(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        method.on_train_step_end(step, STEPS)
        losses.append(loss.item())
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first, f"{name}: loss did not fall ({first:.4f} -> {last:.4f}): {losses}"


@pytest.mark.parametrize("name", NAMES)
def test_embed_shape(name):
    method = build(name).eval()
    batch = random_batch(method)
    features = method.embed(batch["signal"], **derived(method, batch))
    assert features.shape == (BATCH, method.embedding_dim)
    assert torch.isfinite(features).all() and not features.requires_grad


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_gives_identical_embeddings(name):
    trained = build(name, seed=0).train()
    if trained.needs_training:  # move away from the initialisation first
        optimizer = trained.configure_optimizer()
        trained.training_step(random_batch(trained))["loss"].backward()
        optimizer.step()
        trained.on_train_step_end(0, 10)
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    restored = build(name, seed=1, with_base=False)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    batch = random_batch(trained, seed=3)
    x, extra = batch["signal"], derived(trained, batch)
    assert torch.equal(trained.eval().embed(x, **extra), restored.eval().embed(x, **extra))


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
