"""The Method contract as plain checks, for ``ecgbench check-method`` on a file of one's own.

Each check builds the method at its smoke preset (as the CI grid runs it) and raises
``AssertionError`` with a one-line reason when the method breaks the contract: a Config
dataclass with presets and documentation, a finite scalar loss whose gradients reach the
encoder, a loss that falls on one fixed batch, embeddings of shape (B, D), and a state dict that
restores identical embeddings. tests/methods/test_method_contract.py runs these same checks on
every registered method.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import io
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ecgbench.core.registry import METHODS
from ecgbench.models.method import Method, MethodConfig

BATCH = 8
STEPS = 24
N_CLASSES = 3  # label-using methods are set up for a multiclass task


def build(cls: type[Method], seed: int = 0, with_base: bool = True) -> Method:
    """The smoke-size method, prepared as the runner prepares it: ``setup_task`` for methods
    with labels, ``init_from_base`` (from a fresh base) for frozen-encoder variants unless
    ``with_base`` is False (the runner reloads a variant's checkpoint without its base)."""
    config = dataclasses.replace(cls.Config(), **cls.preset_overrides("smoke"))
    base = build(METHODS.get(cls.base_method), seed) if cls.base_method and with_base else None
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
        table = derived_table(type(method), seed)
        batch[method.derived_input] = torch.from_numpy(table)[batch["record_index"].cpu()].to(device)
    return batch


@functools.cache
def derived_table(cls: type[Method], seed: int) -> np.ndarray:
    """``derive_inputs`` on recordings made of the seed's random windows, one record each
    (once per method and seed: extractors such as neurokit2's delineation are slow)."""
    import pandas as pd

    from ecgbench.core.contracts import Recordings

    method = build(cls, with_base=False)
    spec = method.input_spec
    meta = pd.DataFrame({"record_id": [f"r{i}" for i in range(BATCH)], "patient_id": range(BATCH), "split": "train"})
    data = Recordings("contract", "1", random_signal(method, seed).numpy(), meta, spec.fs, tuple(spec.leads))
    with tempfile.TemporaryDirectory() as cache:
        table = method.derive_inputs(data, Path(cache))
    assert table.shape[0] == BATCH and table.dtype == np.float32, \
        f"{cls.name}: derive_inputs must give one float32 row per record"
    return table


def derived(method: Method, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword ``embed`` takes the derived input as (none for most methods)."""
    return {method.derived_input: batch[method.derived_input]} if method.derived_input else {}


def check_declarations(cls: type[Method], name: str, description: str, source: Path) -> None:
    assert isinstance(cls, type) and issubclass(cls, Method), f"{name}: the class must subclass ecgbench's Method"
    assert cls.name == name, f"{name}: class attribute name is {cls.name!r}"
    assert dataclasses.is_dataclass(cls.Config) and issubclass(cls.Config, MethodConfig), \
        f"{name}: Config must be a @dataclass subclassing MethodConfig"
    assert description, f"{name}: the class docstring needs a one-line description"
    missing = {"smoke", "cpu"} - set(cls.presets)
    assert not missing, f"{name}: presets lack {', '.join(sorted(missing))}"
    for preset in ("smoke", "cpu", "paper"):
        dataclasses.replace(cls.Config(), **cls.preset_overrides(preset))  # TypeError names a missing field
    module_doc = ast.get_docstring(ast.parse(source.read_text(encoding="utf-8")))
    assert module_doc and "Departures:" in module_doc, f"{name}: the module docstring needs a 'Departures:' section"


def check_training_step(cls: type[Method]) -> None:
    method = build(cls).train()
    outputs = method.training_step(random_batch(method))
    loss = outputs["loss"]
    assert loss.ndim == 0 and math.isfinite(loss.item()), f"{cls.name}: the loss must be a finite scalar"
    assert all(v.ndim == 0 for v in outputs.values()), f"{cls.name}: extra outputs must be scalars"
    if not method.needs_training:
        return
    loss.backward()
    params = method.trainable_parameters() if method.base_method else method.encoder.parameters()
    grads = [p.grad for p in params if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads), f"{cls.name}: no gradient reaches the trained parameters"
    if not method.base_method:  # a frozen-encoder variant trains its own parts only
        trainable = {id(p) for p in method.trainable_parameters()}
        assert all(id(p) in trainable for p in method.encoder.parameters()), \
            f"{cls.name}: trainable_parameters() leaves out encoder parameters"


def check_loss_falls(cls: type[Method]) -> None:
    method = build(cls).train()
    if not method.needs_training:
        return
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
    assert last < first, f"{cls.name}: the loss did not fall on one fixed batch ({first:.4f} -> {last:.4f})"


def check_embed(cls: type[Method]) -> None:
    method = build(cls).eval()
    batch = random_batch(method)
    features = method.embed(batch["signal"], **derived(method, batch))
    assert features.shape == (BATCH, method.embedding_dim), \
        f"{cls.name}: embed gave {tuple(features.shape)}, expected ({BATCH}, {method.embedding_dim})"
    assert torch.isfinite(features).all() and not features.requires_grad, \
        f"{cls.name}: embeddings must be finite and detached"


def check_state_dict(cls: type[Method]) -> None:
    trained = build(cls, seed=0).train()
    if trained.needs_training:  # move away from the initialisation first
        optimizer = trained.configure_optimizer()
        trained.training_step(random_batch(trained))["loss"].backward()
        optimizer.step()
        trained.on_train_step_end(0, 10)
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    restored = build(cls, seed=1, with_base=False)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    batch = random_batch(trained, seed=3)
    x, extra = batch["signal"], derived(trained, batch)
    assert torch.equal(trained.eval().embed(x, **extra), restored.eval().embed(x, **extra)), \
        f"{cls.name}: a reloaded state dict gives other embeddings"


def run_checks(cls: type[Method], name: str, description: str, source: Path) -> list[tuple[str, str | None]]:
    """(check, failure or None) of every contract check on ``cls``; never raises."""
    checks: list[tuple[str, Callable[[], None]]] = [
        ("declarations", lambda: check_declarations(cls, name, description, source)),
        ("training step", lambda: check_training_step(cls)),
        ("loss falls", lambda: check_loss_falls(cls)),
        ("embed shape", lambda: check_embed(cls)),
        ("state dict", lambda: check_state_dict(cls)),
    ]
    outcomes = []
    for label, check in checks:
        try:
            check()
            outcomes.append((label, None))
        except Exception as error:  # noqa: BLE001 - every failure is reported, one line each
            outcomes.append((label, f"{type(error).__name__}: {error}".splitlines()[0]))
    return outcomes
