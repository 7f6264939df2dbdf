"""Metrics on hand-computed cases and against scikit-learn; the patient-level bootstrap."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, roc_auc_score

from ecgbench.evaluation import metrics
from ecgbench.evaluation.metrics import bootstrap_ci, bootstrap_values, main_value, resample_weights, score


# ----- hand-computed cases -------------------------------------------------------------------
def test_multiclass_by_hand():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    scores = np.eye(3)[y_pred]
    result = score("multiclass", y_true, y_pred, scores, ("a", "b", "c"))
    assert result["accuracy"] == pytest.approx(0.6)
    # F1: a = 2*1/(2+1+1) = 0.5, b = 2*2/(4+1+0) = 0.8, c = 0
    assert result["per_class_f1"] == pytest.approx({"a": 0.5, "b": 0.8, "c": 0.0})
    assert result["macro_f1"] == pytest.approx(1.3 / 3)


def test_macro_auroc_skips_class_missing_from_truth():
    y_true = np.array([0, 0, 1, 1])
    scores = np.array([
        [0.9, 0.1, 0.0],
        [0.6, 0.5, 0.7],
        [0.4, 0.3, 0.2],
        [0.1, 0.8, 0.9],
    ])  # fmt: skip
    result = score("multiclass", y_true, scores.argmax(1), scores, ("a", "b", "c"))
    # class a: positives 0.9, 0.6 beat both negatives -> 1.0;
    # class b: positives 0.3, 0.8 vs negatives 0.1, 0.5 -> 3 of 4 pairs -> 0.75; c: no positives
    assert result["macro_auroc"] == pytest.approx(0.875)
    assert result["macro_auroc_classes"] == 2


def test_binary_by_hand_with_ties():
    y_true = np.array([0, 0, 1, 1])
    scores = np.array([0.2, 0.5, 0.5, 0.9])  # one tied pair counts half: (3 + 0.5) / 4
    y_pred = np.array([0, 0, 1, 1])
    result = score("binary", y_true, y_pred, scores, ("normal", "af"))
    assert result["macro_auroc"] == pytest.approx(0.875)
    assert result["accuracy"] == 1.0
    assert result["per_class_f1"] == {"normal": 1.0, "af": 1.0}
    one_name = score("binary", y_true, 1 - y_pred, scores, ("af",))
    assert one_name["per_class_f1"] == {"not af": 0.0, "af": 0.0}
    assert one_name["macro_f1"] == 0.0  # zero division handled silently


def test_regression_by_hand():
    result = score("regression", [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0], None, ())
    assert result["mae"] == pytest.approx(0.25)
    assert result["r2"] == pytest.approx(1 - 1 / 5)  # ss_tot = 2.25 + 0.25 + 0.25 + 2.25
    assert math.isnan(score("regression", [2.0, 2.0], [1.0, 3.0], None, ())["r2"])


def test_multilabel_by_hand():
    y_true = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    y_pred = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0]])
    scores = np.array([[0.9, 0.2, 0.1], [0.3, 0.4, 0.1], [0.8, 0.6, 0.3]])
    result = score("multilabel", y_true, y_pred, scores, ("a", "b", "c"))
    assert result["accuracy"] == pytest.approx(2 / 3)  # subset accuracy
    # label c is absent from truth and predictions: left out of the F1 and AUROC averages
    assert result["per_class_f1"] == pytest.approx({"a": 1.0, "b": 2 / 3})
    assert result["macro_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert result["macro_auroc"] == pytest.approx(1.0)
    assert result["macro_auroc_classes"] == 2


def test_undefined_auroc_is_nan():
    result = score("binary", [1, 1, 1], [1, 0, 1], [0.2, 0.3, 0.4], ("x", "y"))
    assert math.isnan(result["macro_auroc"]) and result["macro_auroc_classes"] == 0


# ----- against scikit-learn ------------------------------------------------------------------
def _probabilities(rng, n, c):
    logits = rng.normal(size=(n, c))
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


def test_multiclass_matches_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 200)
    proba = _probabilities(rng, 200, 4)
    proba[np.arange(200), y_true] += 0.3
    y_pred = proba.argmax(1)
    result = score("multiclass", y_true, y_pred, proba, ("a", "b", "c", "d"))
    assert result["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert result["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    expected = roc_auc_score(y_true, proba / proba.sum(1, keepdims=True), multi_class="ovr")
    assert result["macro_auroc"] == pytest.approx(expected)


def test_binary_multilabel_regression_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 150)
    s = y + rng.normal(size=150)
    yp = (s > 0.5).astype(int)
    binary = score("binary", y, yp, s, ("neg", "pos"))
    assert binary["macro_auroc"] == pytest.approx(roc_auc_score(y, s))
    assert binary["macro_f1"] == pytest.approx(f1_score(y, yp, average="macro"))

    Y = rng.integers(0, 2, (150, 4))
    S = Y + rng.normal(size=(150, 4))
    Yp = (S > 0.5).astype(int)
    multilabel = score("multilabel", Y, Yp, S, ("a", "b", "c", "d"))
    assert multilabel["accuracy"] == pytest.approx(accuracy_score(Y, Yp))
    assert multilabel["macro_f1"] == pytest.approx(f1_score(Y, Yp, average="macro"))
    assert multilabel["macro_auroc"] == pytest.approx(roc_auc_score(Y, S, average="macro"))

    t = rng.normal(size=100)
    p = t + rng.normal(size=100)
    regression = score("regression", t, p, None, ())
    assert regression["mae"] == pytest.approx(mean_absolute_error(t, p))
    assert regression["r2"] == pytest.approx(r2_score(t, p))


def test_errors_and_main_value():
    with pytest.raises(ValueError, match="Did you mean 'macro_auroc'"):
        metrics.metric_value("multiclass", "macro_aurc", [0], [0], [[1.0]])
    with pytest.raises(ValueError, match="not defined for regression"):
        metrics.check_metric("regression", "accuracy")
    result = score("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0], None, ())
    assert main_value(result, "mae") == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="Did you mean 'r2'"):
        main_value(result, "r3")


# ----- bootstrap -----------------------------------------------------------------------------
def _multiclass_case(n_patients, rows_per_patient=3, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_patients), rows_per_patient)
    n = len(groups)
    y = rng.integers(0, 5, n)
    scores = rng.normal(size=(n, 5)) + 1.5 * np.eye(5)[y]
    return y, scores.argmax(1), np.round(scores, 2), groups


def test_ci_contains_point_estimate_and_is_deterministic():
    y, yp, s, g = _multiclass_case(100)
    point = score("multiclass", y, yp, s, tuple("abcde"))["macro_auroc"]
    low, high = bootstrap_ci("multiclass", "macro_auroc", y, yp, s, g, 500, seed=3)
    assert low < point < high and high - low < 0.2
    assert bootstrap_ci("multiclass", "macro_auroc", y, yp, s, g, 500, seed=3) == (low, high)
    assert bootstrap_ci("multiclass", "macro_auroc", y, yp, s, g, 500, seed=4) != (low, high)


def test_ci_narrows_with_more_patients():
    widths = []
    for n_patients in (30, 600):
        y, yp, s, g = _multiclass_case(n_patients)
        low, high = bootstrap_ci("multiclass", "accuracy", y, yp, s, g, 300, seed=0)
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(20) in theory


@pytest.mark.parametrize("kind,metric", [
    ("multiclass", "accuracy"), ("multiclass", "macro_f1"), ("multiclass", "macro_auroc"),
    ("binary", "macro_f1"), ("binary", "macro_auroc"),
    ("multilabel", "accuracy"), ("multilabel", "macro_f1"), ("multilabel", "macro_auroc"),
    ("regression", "mae"), ("regression", "r2"),
])  # fmt: skip
def test_vectorised_resamples_equal_metric_on_replicated_rows(kind, metric):
    rng = np.random.default_rng(5)
    n = 60
    groups = rng.integers(0, 15, n)
    if kind == "regression":
        y = rng.normal(size=n)
        yp, s = y + rng.normal(size=n), None
    elif kind == "multilabel":
        y = rng.integers(0, 2, (n, 3))
        y[:, 2] = rng.random(n) < 0.08  # a rare label, often absent from a resample
        s = np.round(y + rng.normal(size=(n, 3)), 1)
        yp = (s > 0.5).astype(int)
    elif kind == "binary":
        y = (rng.random(n) < 0.2).astype(int)
        s = np.round(y + rng.normal(size=n), 1)  # rounding makes ties
        yp = (s > 0.5).astype(int)
    else:
        y = rng.integers(0, 4, n)
        s = np.round(rng.normal(size=(n, 4)) + np.eye(4)[y], 1)
        yp = s.argmax(1)
    values = bootstrap_values(kind, metric, y, yp, s, groups, 20, seed=7)
    weights = resample_weights(groups, 20, np.random.default_rng(7))
    for value, w in zip(values, weights.astype(int)):
        rows = np.repeat(np.arange(n), w)
        expected = metrics.metric_value(kind, metric, y[rows], yp[rows],
                                        None if s is None else s[rows])
        assert value == pytest.approx(expected, nan_ok=True)


def test_resamples_patients_not_rows():
    groups = np.array(["p1"] * 7 + ["p2"] * 13)
    weights = resample_weights(groups, 200, np.random.default_rng(0))
    assert set(weights.sum(1)) <= {14.0, 20.0, 26.0}  # 2x7, 7+13, 2x13 rows
    assert (weights[:, :7] == weights[:, [0]]).all() and (weights[:, 7:] == weights[:, [7]]).all()

    # one patient all right, one all wrong: a patient-level resample can only give 0, 1/2 or 1
    # (a row-level bootstrap would give values spread around 0.5)
    groups = np.repeat([0, 1], 100)
    y = np.zeros(200, dtype=int)
    yp = np.r_[np.zeros(100, dtype=int), np.ones(100, dtype=int)]
    values = bootstrap_values("multiclass", "accuracy", y, yp, None, groups, 200, seed=1)
    assert set(np.round(values, 9)) == {0.0, 0.5, 1.0}


def test_undefined_resamples_are_skipped():
    groups = np.repeat([0, 1], 10)
    y = np.repeat([0, 1], 10)  # each patient has one class: half the resamples lack a class
    s = np.linspace(0, 1, 20)
    yp = (s > 0.5).astype(int)
    values = bootstrap_values("binary", "macro_auroc", y, yp, s, groups, 100, 0)
    assert np.isnan(values).any() and np.isfinite(values).any()
    assert bootstrap_ci("binary", "macro_auroc", y, yp, s, groups, 100, 0) == (1.0, 1.0)
    one_patient = bootstrap_ci("binary", "macro_auroc", y[:10], y[:10], s[:10], groups[:10], 50, 0)
    assert all(math.isnan(v) for v in one_patient)


def test_bootstrap_is_fast():
    y, yp, s, g = _multiclass_case(100)  # 300 rows, 5 classes
    start = time.perf_counter()
    bootstrap_ci("multiclass", "macro_auroc", y, yp, s, g, 1000, seed=0)
    assert time.perf_counter() - start < 2.0


def test_resample_weights_are_reused_only_for_the_same_patients_and_seed():
    y, yp, s, g = _multiclass_case(100)
    by_name = np.array([f"p{i}" for i in g], dtype=object)
    regrouped = np.array([f"p{i % 7}" for i in g], dtype=object)  # same shape, other patients

    def fresh(groups, seed):
        metrics._last_weights.clear()
        return bootstrap_values("multiclass", "macro_auroc", y, yp, s, groups, 300, seed)

    expected = {(name, seed): fresh(groups, seed) for name, groups in
                (("by_name", by_name), ("regrouped", regrouped)) for seed in (0, 1)}
    for name, groups in (("by_name", by_name), ("regrouped", regrouped), ("by_name", by_name)):
        for seed in (0, 1, 0):
            values = bootstrap_values("multiclass", "macro_auroc", y, yp, s, groups, 300, seed)
            np.testing.assert_array_equal(values, expected[name, seed])
    assert not np.array_equal(expected["by_name", 0], expected["regrouped", 0])
    assert not np.array_equal(expected["by_name", 0], expected["by_name", 1])


def test_degenerate_predictions_are_named():
    from ecgbench.evaluation.diagnostics import degenerate

    assert degenerate("multiclass", [0, 1, 2], [0, 1, 2], [1, 1, 1]) == ["every test record predicted as class 1"]
    assert degenerate("multiclass", [0, 1], [0, 2], [0, 1]) == ["test classes missing from the training labels: 2"]
    assert degenerate("binary", [0, 1], [0, 1], [0, 1]) == []
    assert degenerate("regression", [1.0, 2.0], [1.0, 2.0], [3.0, 3.0]) == ["every test prediction is 3"]
    labels = np.array([[1, 0], [0, 1]])
    assert degenerate("multilabel", labels, labels, np.array([[1, 0], [1, 0]])) == [
        "the same label set predicted for every test record"]
    assert degenerate("multilabel", np.array([[1, 0], [1, 0]]), labels, labels, ("NORM", "MI")) == [
        "test classes missing from the training labels: MI"]
