"""What the trained protocols share: targets and losses per task kind, outputs turned into
predictions, optimisers, and the epoch loop with early stopping on the validation split.

The loop keeps the weights of the epoch with the best validation score (ties go to the earlier
epoch) and stops after ``patience`` epochs without a better one. With a ``partial`` path it
saves everything needed to go on (weights, optimiser, best weights so far, history, torch RNG)
after every epoch, atomically; a killed run resumes from the last finished epoch and ends with
the same weights as an uninterrupted one, since each epoch's shuffle is seeded by its number.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ecgbench.core.contracts import HIGHER_IS_BETTER
from ecgbench.core.store import atomic_write
from ecgbench.evaluation.probes import _better  # the probes' NaN-safe "better on validation", shared


@dataclass
class EpochLog:
    """One finished epoch, for progress displays and the result's history."""

    epoch: int  # 1-based
    max_epochs: int
    train_loss: float
    val_score: float
    best_epoch: int
    best_score: float
    metric: str


class Targets:
    """Labels as a loss wants them, and model outputs back in label space.

    Regression targets are standardised with the training split's mean and standard deviation
    (one learning rate fits every scale); predictions are mapped back before scoring.
    """

    def __init__(self, kind: str, y_train: np.ndarray, n_classes: int | None = None):
        self.kind = kind
        self.n_classes = n_classes
        y_train = np.asarray(y_train)
        self.mean = float(y_train.mean()) if kind == "regression" else 0.0
        self.std = float(y_train.std() or 1.0) if kind == "regression" else 1.0
        self.width = y_train.shape[1] if kind == "multilabel" else (n_classes if kind == "multiclass" else 1)

    def tensor(self, y: np.ndarray) -> Tensor:
        if self.kind == "multiclass":
            return torch.as_tensor(np.asarray(y), dtype=torch.int64)
        if self.kind == "regression":
            return torch.as_tensor((np.asarray(y, dtype=np.float64) - self.mean) / self.std, dtype=torch.float32)
        return torch.as_tensor(np.asarray(y), dtype=torch.float32)

    def loss(self, outputs: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy (multiclass), binary cross-entropy on logits (binary, multilabel), MSE
        on standardised targets (regression)."""
        if self.kind == "multiclass":
            return F.cross_entropy(outputs, target)
        if self.kind == "multilabel":
            return F.binary_cross_entropy_with_logits(outputs, target)
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(outputs.squeeze(-1), target)
        return F.mse_loss(outputs.squeeze(-1), target)

    def predictions(self, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(y_pred, scores) in the form :mod:`ecgbench.evaluation.metrics` scores."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if self.kind == "multiclass":
            scores = _softmax(outputs)
            return scores.argmax(axis=1), scores
        if self.kind == "multilabel":
            scores = 1 / (1 + np.exp(-outputs))
            return (scores >= 0.5).astype(int), scores
        if self.kind == "binary":
            scores = 1 / (1 + np.exp(-outputs[:, 0]))
            return (scores >= 0.5).astype(int), scores
        return outputs[:, 0] * self.std + self.mean, None


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def val_metric(targets: Targets, task, y_val: np.ndarray) -> Callable[[np.ndarray], float]:
    """outputs on the validation rows -> the task's main metric."""
    from ecgbench.evaluation.metrics import metric_value

    def score(outputs: np.ndarray) -> float:
        y_pred, scores = targets.predictions(outputs)
        return metric_value(task.kind, task.main_metric, y_val, y_pred, scores)

    return score


def parameter_groups(module: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """L2 on weight matrices and kernels only, not on biases or norm scales (seed 004 names L2 on
    its dense layers' weights). ``weight_decay`` w adds w * p to the gradient, i.e. w/2 * sum(p^2)
    in the loss: half of what Keras' ``l2(w)`` adds."""
    params = [p for p in module.parameters() if p.requires_grad]
    decayed = [p for p in params if p.ndim > 1]
    plain = [p for p in params if p.ndim <= 1]
    return [g for g in ({"params": decayed, "lr": lr, "weight_decay": weight_decay},
                        {"params": plain, "lr": lr, "weight_decay": 0.0}) if g["params"]]


def make_optimizer(groups: list[dict[str, Any]], name: str) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum 0.9; ``weight_decay`` adds L2 to the gradient (not decoupled),
    the same as an L2 term in the loss."""
    if name == "sgd":
        return torch.optim.SGD(groups, momentum=0.9)
    return torch.optim.Adam(groups)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread for small CPU matrices: with any other load on a 2-core machine two
    spin-waiting threads made a 64-unit head's step 40x slower (82 ms vs 2 ms, measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_epoch: Callable[[int], float],
    val_outputs: Callable[[], np.ndarray],
    score: Callable[[np.ndarray], float],
    settings,
    metric: str,
    on_epoch: Callable[[EpochLog], None] | None = None,
    partial: Path | None = None,
) -> tuple[int, float, list[dict[str, Any]]]:
    """Train ``model`` epoch by epoch with early stopping on the validation ``score``; leaves
    the best epoch's weights in ``model``. Returns (best epoch, its score, history).

    ``train_epoch(epoch)`` runs one epoch (0-based) and returns its mean loss;
    ``val_outputs()`` gives the model's outputs on the validation rows.
    """
    higher = HIGHER_IS_BETTER[metric]
    state = {"epoch": 0, "best_epoch": 0, "best_score": math.nan, "best_model": None, "history": []}
    if partial is not None and partial.exists():
        state = _resume(model, optimizer, partial)
    for epoch in range(state["epoch"], settings.max_epochs):
        if epoch - state["best_epoch"] >= settings.patience and state["best_epoch"] > 0:
            break
        model.train()
        loss = train_epoch(epoch)
        model.eval()
        with torch.no_grad():
            value = float(score(val_outputs()))
        if state["best_model"] is None or _better(value, state["best_score"], higher):
            state.update(best_epoch=epoch + 1, best_score=value, best_model=copy.deepcopy(model.state_dict()))
        state["epoch"] = epoch + 1
        state["history"].append({"epoch": epoch + 1, "train_loss": loss, "val_score": value})
        if partial is not None:
            _save(model, optimizer, state, partial)
        if on_epoch:
            on_epoch(EpochLog(epoch + 1, settings.max_epochs, loss, value, state["best_epoch"],
                              state["best_score"], metric))
    model.load_state_dict(state["best_model"])
    model.eval()
    return state["best_epoch"], state["best_score"], state["history"]


def _save(model: nn.Module, optimizer, state: dict[str, Any], path: Path) -> None:
    checkpoint = {**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "torch_rng": torch.get_rng_state()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def _resume(model: nn.Module, optimizer, path: Path) -> dict[str, Any]:
    from ecgbench.core.config import RunFailed

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(checkpoint.pop("model"))
        optimizer.load_state_dict(checkpoint.pop("optimizer"))
    except Exception as error:  # a corrupt cache must name the file, not fail deep in torch
        raise RunFailed(f"{path}: unreadable partial checkpoint ({error}); delete it to start over") from None
    torch.set_rng_state(checkpoint.pop("torch_rng"))
    return checkpoint


def check_finite(loss: float, name: str, epoch: int) -> float:
    """A non-finite epoch loss stops the run with one line (as pretraining does)."""
    from ecgbench.models.train import TrainingDiverged

    if not math.isfinite(loss):
        raise TrainingDiverged(f"{name}: loss became {loss} in epoch {epoch + 1}; lower the learning "
                               f"rate (--set eval.{name}.lr=...)")
    return loss
