"""``finetune``: the pretrained encoder unfrozen and trained with a linear head on task labels.

Seed 004 fine-tunes the whole pretrained model on the labelled emotion data with categorical
cross-entropy and SGD; seed 001 evaluates by linear probing and fine-tuning. Here a copy of the
encoder and one linear layer on its pooled features are trained on every valid window of the
training records (each window carries its record's label), the encoder with its own, lower
learning rate (:class:`ecgbench.evaluation.protocols.FinetuneSettings`). After every epoch the validation
records are predicted (window outputs averaged per record, as embeddings are) and the epoch
with the best main metric is kept (early stopping). The test records are predicted once, with
that model.

The fine-tuned model is cached (``cache/checkpoints/<run>-<task>-<protocol key>.pt``) with its
history, and a per-epoch partial checkpoint lets a killed run resume
(:func:`ecgbench.evaluation.protocols.training.fit_epochs`).

Departure: the loss follows the task kind (binary cross-entropy for binary and multilabel tasks, MSE for regression), not cross-entropy everywhere.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ecgbench.core.contracts import NotApplicable
from ecgbench.evaluation.protocols import EvalInputs, Outcome
from ecgbench.evaluation.protocols.training import (
    Targets,
    check_finite,
    fit_epochs,
    make_optimizer,
    one_thread,
    parameter_groups,
    val_metric,
)

PREDICT_BATCH = 256  # windows per forward pass when predicting (eval mode: the size changes no output)


class FineTuned(nn.Module):
    """A pretrained encoder (trainable) and a linear head on its pooled features."""

    def __init__(self, encoder: nn.Module, embedding_dim: int, n_outputs: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(embedding_dim, n_outputs)

    def forward(self, x: Tensor) -> Tensor:  # (B, leads, T) -> (B, outputs)
        return self.head(self.encoder(x))


def record_windows(valid: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position in ``rows``, window slot) of every valid window of ``rows``, record by record."""
    return np.nonzero(valid[rows])


def predict_records(model: nn.Module, windows: np.ndarray, valid: np.ndarray, rows: np.ndarray,
                    device: torch.device, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """(len(rows), outputs): the mean of each record's window outputs."""
    position, slot = record_windows(valid, rows)
    record = rows[position]
    parts = []
    with torch.no_grad():
        for start in range(0, len(record), batch_size):
            batch = np.ascontiguousarray(windows[record[start:start + batch_size], slot[start:start + batch_size]])
            parts.append(model(torch.from_numpy(batch).to(device)).float().cpu().numpy())
    outputs = np.concatenate(parts)
    sums = np.zeros((len(rows), outputs.shape[1]))
    np.add.at(sums, position, outputs)
    return sums / np.bincount(position, minlength=len(rows))[:, None]


def finetune_search_space(settings) -> dict[str, tuple]:
    """What ``ecgbench tune --protocol finetune`` searches around ``settings`` (``eval.finetune.*``),
    in :meth:`ecgbench.models.method.Method.search_space`'s domains: the head's and the encoder's
    learning rates, the optimiser and L2."""
    return {"lr": ("loguniform", settings.lr / 10, settings.lr * 10),
            "encoder_lr": ("loguniform", settings.encoder_lr / 10, settings.encoder_lr * 10),
            "optimizer": ("choice", ("sgd", "adam")),
            "weight_decay": ("choice", (0.0, 1e-5, 1e-4))}


def finetune(inputs: EvalInputs, settings) -> Outcome:
    """Fine-tune a copy of ``inputs.method``'s encoder; returns the test predictions."""
    device = inputs.device or torch.device("cpu")
    with one_thread() if device.type == "cpu" else contextlib.nullcontext():
        model, targets, cached = fit(inputs, settings)
        outputs = predict_records(model, inputs.windows.windows, inputs.windows.valid, inputs.split["test"], device)
    y_pred, scores = targets.predictions(outputs)
    return Outcome(y_pred, scores, cached["params"], cached["val_score"], cached["history"])


def fit(inputs: EvalInputs, settings) -> tuple[FineTuned, Targets, dict[str, Any]]:
    """The model chosen on validation (trained, or loaded from its cache), its targets and its
    record (params, val score, history); reads the training and validation rows only."""
    task, split, device = inputs.task, inputs.split, inputs.device or torch.device("cpu")
    if task.channels == "each":
        raise NotApplicable("finetune: per-channel tasks (channels='each') concatenate several encoder passes")
    targets = Targets(task.kind, inputs.y[split["train"]], inputs.n_classes)
    torch.manual_seed(inputs.seed)
    model = FineTuned(copy.deepcopy(inputs.method.encoder), inputs.method.embedding_dim, targets.width).to(device)
    cached = _load_cached(model, inputs)
    if cached is None:
        cached = _train(model, inputs, settings, targets, inputs.windows.windows, inputs.windows.valid)
    model.eval()
    return model, targets, cached


def _train(model: FineTuned, inputs: EvalInputs, settings, targets: Targets, windows, valid) -> dict[str, Any]:
    """Train on the training windows with early stopping on validation; cache the best model."""
    task, split, device = inputs.task, inputs.split, inputs.device or torch.device("cpu")
    position, slot = record_windows(valid, split["train"])
    record = split["train"][position]
    labels = targets.tensor(inputs.y[record])  # each window carries its record's label
    groups = (parameter_groups(model.encoder, settings.encoder_lr, settings.weight_decay)
              + parameter_groups(model.head, settings.lr, settings.weight_decay))
    optimizer = make_optimizer(groups, settings.optimizer)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def train_epoch(epoch: int) -> float:
        order = np.random.default_rng([inputs.seed, epoch]).permutation(len(record))
        total, seen = 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            rows = order[start:start + settings.batch_size]
            if len(rows) == 1 < len(order):  # batch norm cannot train on a batch of one
                continue
            x = torch.from_numpy(np.ascontiguousarray(windows[record[rows], slot[rows]])).to(device)
            with autocast:
                outputs = model(x).float()
            loss = targets.loss(outputs, labels[rows].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            total, seen = total + float(loss.detach()) * len(rows), seen + len(rows)
        return check_finite(total / seen, "finetune", epoch)

    best_epoch, best_score, history = fit_epochs(
        model, optimizer, train_epoch,
        lambda: predict_records(model, windows, valid, split["val"], device),
        val_metric(targets, task, inputs.y[split["val"]]), settings, task.main_metric,
        inputs.on_epoch, inputs.partial_checkpoint,
    )
    cached = {"params": {"best_epoch": best_epoch, "epochs_run": len(history), "train_windows": int(len(record))},
              "val_score": best_score, "history": history}
    if inputs.checkpoint is not None:
        from ecgbench.models.train import save_checkpoint

        inputs.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(model, inputs.checkpoint, cached)
        if inputs.partial_checkpoint is not None:
            inputs.partial_checkpoint.unlink(missing_ok=True)
    return cached


def _load_cached(model: FineTuned, inputs: EvalInputs) -> dict[str, Any] | None:
    """The cached fine-tuned model's record (weights loaded into ``model``), or None."""
    if inputs.checkpoint is None or not inputs.checkpoint.exists():
        return None
    from ecgbench.models.train import load_checkpoint

    state = load_checkpoint(model, inputs.checkpoint)
    return {key: state[key] for key in ("params", "val_score", "history")}


class FinetuneProtocol:
    name = "finetune"
    needs_windows = True

    @staticmethod
    def fit_predict(inputs: EvalInputs, probe: str, settings: Any, eval_settings: Any) -> Outcome:
        return finetune(inputs, settings)
