"""``linear`` and ``head``: a small network trained in torch on frozen embeddings.

``head`` is the emotion network of seed 004 (Sarkar & Etemad's, as that report describes it):
the pretext network's convolutional layers are frozen and two dense layers of 64 hidden units
with a sigmoid activation are trained on the labels; dropout (60 %) and L2 regularisation
(beta = 1e-4, on kernels only) as on the seed's dense layers. The output layer and the loss
follow the task kind (softmax cross-entropy, or binary cross-entropy on one logit per label,
or mean squared error on standardised targets). ``linear`` is one linear layer, the same loop.

Departures:
- Trained on the cached record embeddings (mean of window features), not per window, so every frozen protocol sees the same input.
- Embeddings standardised with the training rows' mean and std first (as the probes); seed 004 does not.
- Dropout 0.6 and L2 1e-4 are carried over from seed 004's pretext dense layers; seed 004 gives none for the emotion network.
- L2 as torch ``weight_decay`` 1e-4, i.e. ``1e-4 * sum(w**2) / 2`` in the loss (``tf.nn.l2_loss``, as the released code); a Keras ``l2(1e-4)`` would be twice as strong.
- Adam, lr 1e-3, 32 rows per batch (we pick); seed 004 names SGD with categorical cross-entropy only for its fine-tuning and no optimiser for this network.
- Loss by task kind (binary cross-entropy, mean squared error) where seed 004 has categorical cross-entropy for its classes only.
- Up to 100 epochs with early stopping on validation (patience 20, we pick); seed 004 gives no stopping rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

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

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}


def dense_head(d_in: int, d_out: int, hidden: tuple[int, ...] = (), activation: str = "sigmoid",
               dropout: float = 0.0) -> nn.Sequential:
    """``len(hidden)`` x (Linear -> activation -> Dropout), then a Linear to ``d_out`` outputs;
    with no hidden layers, one Linear layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(d_in, width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
        d_in = width
    return nn.Sequential(*layers, nn.Linear(d_in, d_out))


def standardise(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Embeddings scaled with the training rows' mean and standard deviation (as the probes'
    StandardScaler); constant features stay centred."""
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    return ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def fit_on_embeddings(inputs: EvalInputs, settings, name: str, hidden: tuple[int, ...] = (),
                      activation: str = "sigmoid", dropout: float = 0.0) -> Outcome:
    """Train a :func:`dense_head` on the training rows, early-stop on validation, predict test."""
    task, split = inputs.task, inputs.split
    torch.manual_seed(inputs.seed)
    x = torch.from_numpy(standardise(np.asarray(inputs.embeddings, dtype=np.float32), split["train"]))
    targets = Targets(task.kind, inputs.y[split["train"]], inputs.n_classes)
    y_train = targets.tensor(inputs.y[split["train"]])
    x_train, x_val = x[split["train"]], x[split["val"]]
    model = dense_head(x.shape[1], targets.width, hidden, activation, dropout)
    optimizer = make_optimizer(parameter_groups(model, settings.lr, settings.weight_decay), settings.optimizer)

    def train_epoch(epoch: int) -> float:
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(inputs.seed + epoch))
        total = 0.0
        for start in range(0, len(order), settings.batch_size):
            rows = order[start:start + settings.batch_size]
            loss = targets.loss(model(x_train[rows]), y_train[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        return check_finite(total / len(order), name, epoch)

    with one_thread():
        best_epoch, best_score, history = fit_epochs(
            model, optimizer, train_epoch, lambda: model(x_val).numpy(),
            val_metric(targets, task, inputs.y[split["val"]]), settings, task.main_metric, inputs.on_epoch,
        )
    with torch.no_grad():
        y_pred, scores = targets.predictions(model(x[split["test"]]).numpy())
    return Outcome(y_pred, scores, {"best_epoch": best_epoch, "epochs_run": len(history)}, best_score, history)


class LinearProtocol:
    name = "linear"
    needs_windows = False

    @staticmethod
    def fit_predict(inputs: EvalInputs, probe: str, settings: Any, eval_settings: Any) -> Outcome:
        return fit_on_embeddings(inputs, settings, "linear")


class HeadProtocol:
    name = "head"
    needs_windows = False

    @staticmethod
    def fit_predict(inputs: EvalInputs, probe: str, settings: Any, eval_settings: Any) -> Outcome:
        return fit_on_embeddings(inputs, settings, "head", settings.hidden, settings.activation, settings.dropout)
