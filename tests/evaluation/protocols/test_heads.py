"""linear and head protocols: seed 004's head shape, kernels-only L2, separable toys learnt."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from ecgbench.evaluation.metrics import metric_value
from ecgbench.evaluation.protocols import HeadSettings, LinearSettings
from ecgbench.evaluation.protocols.heads import HeadProtocol, LinearProtocol, dense_head, standardise
from ecgbench.evaluation.protocols.training import parameter_groups

KINDS = ("multiclass", "binary", "multilabel", "regression")


def test_head_is_seed_004s_two_dense_layers_of_64_sigmoid_units_with_dropout():
    settings = HeadSettings()
    assert (settings.hidden, settings.activation, settings.dropout, settings.weight_decay) == ((64, 64), "sigmoid", 0.6, 1e-4)
    head = dense_head(128, 3, settings.hidden, settings.activation, settings.dropout)
    linears = [m for m in head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 64), (64, 64), (64, 3)]
    assert sum(isinstance(m, nn.Sigmoid) for m in head) == 2
    assert [m.p for m in head if isinstance(m, nn.Dropout)] == [0.6, 0.6]
    assert [type(m) for m in dense_head(128, 1)] == [nn.Linear]


def test_l2_falls_on_kernels_only():
    groups = parameter_groups(dense_head(8, 2, (4,)), lr=0.1, weight_decay=1e-4)
    decayed, plain = groups
    assert decayed["weight_decay"] == 1e-4 and all(p.ndim == 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.ndim == 1 for p in plain["params"])


def test_standardise_uses_training_rows_only():
    x = np.array([[0.0], [2.0], [100.0]])
    assert np.allclose(standardise(x, np.array([0, 1]))[:, 0], [-1.0, 1.0, 99.0])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("protocol,settings", [(HeadProtocol, HeadSettings(lr=1e-2, max_epochs=40)),
                                               (LinearProtocol, LinearSettings(lr=1e-2, max_epochs=40))])
def test_a_head_learns_a_separable_toy_problem(separable, kind, protocol, settings):
    inputs = separable(kind)
    outcome = protocol.fit_predict(inputs, protocol.name, settings, None)
    test = inputs.split["test"]
    value = metric_value(kind, inputs.task.main_metric, inputs.y[test], outcome.y_pred, outcome.scores)
    assert value > (0.9 if kind != "regression" else 0.8), value
    assert 1 <= outcome.params["best_epoch"] <= outcome.params["epochs_run"] == len(outcome.history)
    assert outcome.val_score == max(h["val_score"] for h in outcome.history)
    if kind == "multiclass":
        assert outcome.scores.shape == (len(test), 3) and np.allclose(outcome.scores.sum(axis=1), 1)
    elif kind == "binary":
        assert outcome.scores.shape == (len(test),) and set(np.unique(outcome.y_pred)) <= {0, 1}
    elif kind == "regression":
        assert outcome.scores is None and abs(outcome.y_pred.mean() - 50) < 2  # back in label units


def test_same_seed_same_predictions_and_a_shuffled_label_head_stays_at_chance(separable):
    inputs = separable("binary")
    first = HeadProtocol.fit_predict(inputs, "head", HeadSettings(max_epochs=5), None)
    again = HeadProtocol.fit_predict(inputs, "head", HeadSettings(max_epochs=5), None)
    assert np.array_equal(first.scores, again.scores)
    inputs.y = np.random.default_rng(1).permutation(inputs.y)
    shuffled = HeadProtocol.fit_predict(inputs, "head", HeadSettings(max_epochs=10), None)
    test = inputs.split["test"]
    assert metric_value("binary", "macro_auroc", inputs.y[test], shuffled.y_pred, shuffled.scores) < 0.7
