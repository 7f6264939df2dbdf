"""One trial of ``ecgbench tune``, run in a Ray worker: pretrain (or fine-tune) the method with one
configuration and report the validation score at each milestone (:func:`run_trial`), from the
:class:`TrialData` that the driver puts once into Ray's object store. A trial whose record says
it finished (before a kill) replays its last report instead of running again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.config import apply_overrides, derive_seed, short_hash
from ecgbench.core.contracts import Task
from ecgbench.core.registry import METHODS
from ecgbench.core.store import read_json

FINISHED = ("completed", "pruned")  # trial statuses that a resumed search never runs again


@dataclass
class TrialData:
    """What every trial needs, put once into Ray's object store."""

    method: str
    base_config: Any  # what a trial's config overrides: the method's Config or the protocol's settings
    protocol: str | None
    task: Task
    pretrained: Any  # the pretrained ecgbench.models.method.Method that finetune trials start from
    uses_labels: bool
    task_kind: str
    n_outputs: int
    metric: str
    n_classes: int | None
    probe: str
    probe_grid: str
    seed: int
    milestones: tuple[int, ...]
    windows: Any  # ecgbench.models.train.WindowDataset: what pretraining sees (None for finetune)
    probe_windows: np.ndarray  # (N, W, leads, T): the task's usable train + val records
    probe_valid: np.ndarray  # (N, W)
    probe_y: np.ndarray
    probe_is_train: np.ndarray  # (N,) bool; the rest is validation
    probe_derived: dict[str, np.ndarray]  # the method's per-record derived input, if any
    folder: str


def trial_key(trial_id: str, config: dict[str, Any]) -> str:
    """A trial's file name: its Ray id and its config (a reused id never meets another's files)."""
    return f"{trial_id}-{short_hash(config, 8)}"


def run_trial(config: dict[str, Any], data: TrialData) -> None:
    """Pretrain (or fine-tune) with ``config``, reporting the validation score at each milestone."""
    import ray
    import torch
    from ray import tune

    from ecgbench.models.train import resolve_device

    folder = Path(data.folder)
    key = trial_key(tune.get_context().get_trial_id(), config)
    record = folder / "trials" / f"{key}.json"
    stored = read_json(record) if record.exists() else {}
    if stored.get("status") in FINISHED:
        # finished before a kill that Ray's experiment state did not see: its last report
        # again, so that the trial ends where it ended (the record keeps the others)
        tune.report(stored["reports"][-1])
        return
    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    attempt = {"node_id": ray.get_runtime_context().get_node_id(), "attempt": uuid.uuid4().hex[:8]}
    partial = folder / "partial" / f"{key}.pt"
    partial.parent.mkdir(parents=True, exist_ok=True)
    trial = finetune_trial if data.protocol == "finetune" else pretrain_trial
    trial(config, data, resolve_device("auto"), partial, lambda report: tune.report({**report, **attempt}))
    partial.unlink(missing_ok=True)


def pretrain_trial(config: dict[str, Any], data: TrialData, device, partial: Path, report) -> None:
    """Pretrain with ``config``; at each milestone, the probe's validation score."""
    import torch

    from ecgbench.models.train import pretrain

    cls = METHODS.get(data.method)
    torch.manual_seed(derive_seed(data.seed, "init"))
    method = cls(apply_overrides(data.base_config, config, data.method))
    if data.uses_labels:
        method.setup_task(data.task_kind, data.n_outputs)

    def on_step(step: int, loss: float) -> None:
        if step in data.milestones:
            score = validation_score(method, data, device)
            method.train()
            report({"score": score, "step": step, "loss": loss})

    every = data.milestones[0] if len(data.milestones) > 1 else max(data.milestones)
    pretrain(method, data.windows, derive_seed(data.seed, "pretrain"), device, partial,
             on_step=on_step, checkpoint_every=every)


def finetune_trial(config: dict[str, Any], data: TrialData, device, partial: Path, report) -> None:
    """Fine-tune the pretrained encoder with ``config`` on the training records; after each
    epoch, the best validation score so far (the model early stopping keeps). A trial that
    early stopping ends before ``max_epochs`` says so in its last report."""
    from ecgbench.data.adapt import Adapted
    from ecgbench.evaluation.protocols import EvalInputs
    from ecgbench.evaluation.protocols.finetune import fit

    rows = np.arange(len(data.probe_y))
    last: dict[str, Any] = {}

    def on_epoch(log) -> None:
        last.update(score=log.best_score, step=log.epoch, loss=log.train_loss)
        report(dict(last))

    inputs = EvalInputs(
        data.task, data.probe_y, {"train": rows[data.probe_is_train], "val": rows[~data.probe_is_train]},
        patients=None, seed=derive_seed(data.seed, f"probe/{data.task.key}/finetune"),  # as run's finetune
        method=data.pretrained, windows=Adapted(data.probe_windows, {}, data.probe_valid), device=device,
        partial_checkpoint=partial, on_epoch=on_epoch)
    fit(inputs, apply_overrides(data.base_config, config, "eval.finetune"))
    if last and last["step"] < data.milestones[-1]:
        report({**last, "stopped_early": True})


def validation_score(method, data: TrialData, device) -> float:
    """Embed the probe records with the current encoder, fit the probe on train, score on val."""
    from ecgbench.evaluation import probes
    from ecgbench.evaluation.embedding import embed_windows

    embeddings = embed_windows(method, data.probe_windows, device, valid=data.probe_valid,
                               derived=data.probe_derived)
    train = data.probe_is_train
    fit = probes.fit_probe(data.probe, data.task_kind, embeddings[train], data.probe_y[train],
                           embeddings[~train], data.probe_y[~train], data.metric,
                           derive_seed(data.seed, f"tune-probe/{data.probe}"), data.probe_grid,
                           n_classes=data.n_classes)
    return float(fit.val_score)
