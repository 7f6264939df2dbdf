"""The trained protocols' epoch loop: the best validation epoch is kept, patience stops it,
a killed run resumes from its partial checkpoint to the same end; targets per task kind."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ecgbench.evaluation.protocols import LinearSettings
from ecgbench.evaluation.protocols.training import Targets, fit_epochs, make_optimizer


class Scripted:
    """An 'epoch' writes its number into the weight; validation reads back a scripted score."""

    def __init__(self, scores):
        self.scores, self.model = list(scores), nn.Linear(1, 1)
        self.optimizer = make_optimizer([{"params": self.model.parameters(), "lr": 0.1, "weight_decay": 0.0}], "adam")
        self.trained: list[int] = []

    def train_epoch(self, epoch: int) -> float:
        with torch.no_grad():
            self.model.weight.fill_(epoch + 1)
        self.trained.append(epoch + 1)
        return 1.0 / (epoch + 1)

    def val_outputs(self) -> np.ndarray:
        return np.array([self.model.weight.item()])

    def score(self, outputs: np.ndarray) -> float:
        return self.scores[int(outputs[0]) - 1]

    def fit(self, metric="macro_auroc", patience=3, max_epochs=20, **kwargs):
        settings = LinearSettings(max_epochs=max_epochs, patience=patience)
        return fit_epochs(self.model, self.optimizer, self.train_epoch, self.val_outputs, self.score,
                          settings, metric, **kwargs)


def test_early_stopping_keeps_the_best_validation_epoch_and_stops_after_patience():
    run = Scripted([0.5, 0.7, 0.9, 0.6, 0.9, 0.8, 0.95, 0.1])
    best_epoch, best_score, history = run.fit(patience=3)
    assert (best_epoch, best_score) == (3, 0.9)  # the tie at epoch 5 goes to the earlier epoch
    assert run.trained == [1, 2, 3, 4, 5, 6]  # three epochs without a better score, then stop
    assert run.model.weight.item() == 3  # the weights of epoch 3 are back in the model
    assert [h["val_score"] for h in history] == [0.5, 0.7, 0.9, 0.6, 0.9, 0.8]


def test_lower_is_better_metrics_and_undefined_scores():
    run = Scripted([5.0, 3.0, math.nan, 4.0, 3.5, 9.0])
    best_epoch, best_score, _ = run.fit(metric="mae", patience=4)
    assert (best_epoch, best_score) == (2, 3.0) and run.model.weight.item() == 2


def test_the_epoch_limit_ends_training():
    run = Scripted(np.linspace(0, 1, 10))
    assert run.fit(max_epochs=4)[0] == 4 and run.trained == [1, 2, 3, 4]


class Killed(Exception):
    pass


def test_a_killed_run_resumes_from_its_partial_checkpoint_to_the_same_end(tmp_path):
    scores = [0.5, 0.7, 0.9, 0.6, 0.95, 0.8, 0.7, 0.6, 0.5]
    whole = Scripted(scores).fit(patience=3)

    def kill_after_two(log):
        if log.epoch == 2:
            raise Killed

    partial = tmp_path / "partial.pt"
    first = Scripted(scores)
    with pytest.raises(Killed):
        first.fit(patience=3, partial=partial, on_epoch=kill_after_two)
    assert partial.exists()
    resumed = Scripted(scores)
    assert resumed.fit(patience=3, partial=partial) == whole
    assert resumed.trained == [3, 4, 5, 6, 7, 8]  # epochs 1-2 were not run again
    assert resumed.model.weight.item() == 5


@pytest.mark.parametrize("kind,y,outputs,expected", [
    ("multiclass", [0, 2], [[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]], [0, 2]),
    ("binary", [0, 1], [[-1.0], [2.0]], [0, 1]),
    ("multilabel", [[0, 1], [1, 1]], [[-1.0, 1.0], [1.0, 1.0]], [[0, 1], [1, 1]]),
])
def test_targets_turn_outputs_into_labels_and_scores(kind, y, outputs, expected):
    targets = Targets(kind, np.array(y), n_classes=3 if kind == "multiclass" else None)
    y_pred, scores = targets.predictions(np.array(outputs))
    assert np.array_equal(y_pred, np.array(expected))
    loss = targets.loss(torch.tensor(outputs), targets.tensor(np.array(y)))
    assert loss.ndim == 0 and math.isfinite(float(loss))


def test_regression_targets_are_standardised_and_mapped_back():
    targets = Targets("regression", np.array([10.0, 20.0, 30.0]))
    assert np.allclose(targets.tensor(np.array([20.0, 30.0])).numpy(), [0.0, 1.2247449], atol=1e-6)
    y_pred, scores = targets.predictions(np.array([[0.0], [1.2247449]]))
    assert scores is None and np.allclose(y_pred, [20.0, 30.0], atol=1e-5)
