"""Probes: every probe x kind learns, selection uses validation only, seeds fix results."""

from __future__ import annotations

import inspect
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression

from ecgbench.evaluation import probes
from ecgbench.evaluation.metrics import metric_value, score
from ecgbench.evaluation.probes import (
    PROBES,
    ProbeFit,
    candidate_params,
    fit_probe,
    make_estimator,
    predict,
)  # fmt: skip

KINDS = ("multiclass", "multilabel", "binary", "regression")
MAIN = {"multiclass": "macro_auroc", "multilabel": "macro_auroc", "binary": "macro_auroc",
        "regression": "mae"}
N_TRAIN, N_VAL, N_TEST = 400, 200, 400


def _informative(kind: str, seed: int = 0):
    n = N_TRAIN + N_VAL + N_TEST
    if kind == "multiclass":
        return make_classification(n, 20, n_informative=8, n_classes=3, random_state=seed)
    if kind == "binary":
        return make_classification(n, 20, n_informative=8, random_state=seed)
    if kind == "multilabel":
        return make_multilabel_classification(n, 20, n_classes=4, random_state=seed)
    return make_regression(n, 20, n_informative=8, noise=5.0, random_state=seed)


def _noise(kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_VAL + N_TEST
    x = rng.normal(size=(n, 20))
    if kind == "multiclass":
        return x, rng.integers(0, 3, n)
    if kind == "binary":
        return x, rng.integers(0, 2, n)
    if kind == "multilabel":
        return x, (rng.random((n, 4)) < 0.4).astype(int)
    return x, rng.normal(size=n)


def _split(x, y):
    a, b = N_TRAIN, N_TRAIN + N_VAL
    return x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:]


def _fit_and_test(probe, kind, x, y, seed=0, grid="small"):
    xt, yt, xv, yv, xs, ys = _split(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and constant-label warnings
        fit = fit_probe(probe, kind, xt, yt, xv, yv, MAIN[kind], seed, grid)
    prediction = predict(fit, xs, kind)
    classes = tuple(f"c{i}" for i in range(4))
    return fit, prediction, score(kind, ys, prediction.y_pred, prediction.scores, classes)


def test_import_is_cheap():
    code = "import sys, ecgbench.evaluation.probes, ecgbench.evaluation.metrics; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_probe_names_and_errors():
    assert set(PROBES) == {"svc", "rf", "lr", "mlp", "knn"}
    assert all(isinstance(d, str) and d and "\n" not in d for d in PROBES.values())
    with pytest.raises(ValueError, match="Did you mean 'svc'"):
        fit_probe("svm", "binary", [[0.0]], [0], [[0.0]], [0], "accuracy", 0)
    with pytest.raises(ValueError, match="unknown probe grid"):
        candidate_params("lr", "binary", "huge")
    with pytest.raises(ValueError, match="not defined for regression"):
        fit_probe("lr", "regression", [[0.0]], [0.0], [[0.0]], [0.0], "macro_auroc", 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("probe", sorted(PROBES))
def test_beats_chance_on_signal_and_not_on_noise(probe, kind):
    fit, prediction, result = _fit_and_test(probe, kind, *_informative(kind))
    assert isinstance(fit, ProbeFit) and fit.params in [c[0] for c in fit.candidates]
    _check_shapes(kind, prediction)
    if kind == "regression":
        assert result["r2"] > 0.5
    else:
        assert result["macro_auroc"] > 0.75
    if kind == "multiclass":
        assert result["accuracy"] > 0.55  # chance is 1/3

    _, _, noise = _fit_and_test(probe, kind, *_noise(kind))
    if kind == "regression":
        assert noise["r2"] < 0.05
    else:
        assert abs(noise["macro_auroc"] - 0.5) < 0.08
    if kind == "multiclass":
        assert noise["accuracy"] < 0.42


def _check_shapes(kind, prediction):
    shapes = {"multiclass": ((N_TEST,), (N_TEST, 3)), "binary": ((N_TEST,), (N_TEST,)),
              "multilabel": ((N_TEST, 4), (N_TEST, 4)), "regression": ((N_TEST,), None)}
    y_shape, score_shape = shapes[kind]
    assert prediction.y_pred.shape == y_shape
    if score_shape is None:
        assert prediction.scores is None
    else:
        assert prediction.scores.shape == score_shape and np.isfinite(prediction.scores).all()


# ----- selection on validation ---------------------------------------------------------------
@pytest.mark.parametrize("probe,kind,metric", [("knn", "multiclass", "accuracy"),
                                               ("lr", "regression", "mae")])
@pytest.mark.parametrize("target", [0, 2])
def test_validation_alone_decides(probe, kind, metric, target):
    """Make the validation labels equal one candidate's predictions: that candidate must win."""
    x, y = _noise(kind, seed=1) if kind == "multiclass" else _informative(kind, seed=1)
    if kind == "regression":
        y = y + np.random.default_rng(0).normal(scale=200, size=len(y))  # let alpha matter
    xt, yt, xv, _, _, _ = _split(x, y)
    grid = candidate_params(probe, kind, "full", n_train=len(xt))
    favoured = make_estimator(probe, kind, grid[target], seed=0).fit(xt, yt)
    yv = predict(favoured, xv, kind).y_pred
    fit = fit_probe(probe, kind, xt, yt, xv, yv, metric, seed=0, grid="full")
    assert fit.params == grid[target]
    values = [v for _, v in fit.candidates]
    assert len(set(values)) == len(values)  # a strict win, not a tie


def test_candidate_scores_are_validation_scores():
    assert list(inspect.signature(fit_probe).parameters) == [
        "probe", "kind", "x_train", "y_train", "x_val", "y_val", "main_metric", "seed", "grid",
        "n_classes"]  # no test split can be passed
    x, y = _informative("multiclass")
    xt, yt, xv, yv, _, _ = _split(x, y)
    fit = fit_probe("svc", "multiclass", xt, yt, xv, yv, "macro_auroc", seed=0, grid="full")
    assert len(fit.candidates) == 3 and fit.fit_seconds > 0
    for params, value in fit.candidates:
        estimator = make_estimator("svc", "multiclass", params, seed=0).fit(xt, yt)
        p = predict(estimator, xv, "multiclass")
        assert value == metric_value("multiclass", "macro_auroc", yv, p.y_pred, p.scores)
    p = predict(fit, xv, "multiclass")
    assert fit.val_score == metric_value("multiclass", "macro_auroc", yv, p.y_pred, p.scores)
    assert fit.val_score == max(v for _, v in fit.candidates)


def test_ties_go_to_the_first_candidate():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    x = rng.normal(size=(200, 5)) + 20 * y[:, None]  # every k separates these perfectly
    fit = fit_probe("knn", "binary", x[::2], y[::2], x[1::2], y[1::2], "accuracy", 0, "full")
    assert [v for _, v in fit.candidates] == [1.0, 1.0, 1.0]
    assert fit.params == {"n_neighbors": 5}


# ----- determinism and awkward labels --------------------------------------------------------
@pytest.mark.parametrize("probe", ["rf", "mlp"])
def test_same_seed_same_predictions(probe):
    x, y = _informative("multiclass")
    _, first, _ = _fit_and_test(probe, "multiclass", x, y, seed=11)
    _, again, _ = _fit_and_test(probe, "multiclass", x, y, seed=11)
    _, other, _ = _fit_and_test(probe, "multiclass", x, y, seed=12)
    np.testing.assert_array_equal(first.y_pred, again.y_pred)
    np.testing.assert_array_equal(first.scores, again.scores)
    assert not np.array_equal(first.scores, other.scores)


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_multilabel_with_a_label_constant_in_train(probe):
    x, y = make_multilabel_classification(300, 10, n_classes=3, random_state=0)
    y[:200, 1] = 0  # never positive in train, sometimes positive in val/test
    y[:200, 2] = 1  # always positive in train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_probe(probe, "multilabel", x[:200], y[:200], x[200:250], y[200:250],
                        "macro_auroc", 0, "small")
    p = predict(fit, x[250:], "multilabel")
    assert p.y_pred.shape == p.scores.shape == (50, 3) and np.isfinite(p.scores).all()


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_multiclass_class_unseen_in_train(probe):
    x, y = make_classification(300, 10, n_informative=5, n_classes=3, random_state=0)
    train = y[:200] != 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_probe(probe, "multiclass", x[:200][train], y[:200][train], x[200:250],
                        y[200:250], "macro_auroc", 0, "small", n_classes=4)
    p = predict(fit, x[250:], "multiclass")
    assert p.scores.shape == (50, 4)
    assert (p.scores[:, 2] == p.scores[:, 2][0]).all()  # unseen class: constant, chance AUROC


# ----- the fast search selects what the exhaustive one selects -------------------------------
def _exhaustive(probe, kind, xt, yt, xv, yv, metric, seed):
    """The reference search: fit every make_estimator pipeline on train, score it on val."""
    higher = metric != "mae"
    best, values = None, []
    for params in candidate_params(probe, kind, "full", n_train=len(xt)):
        estimator = make_estimator(probe, kind, params, seed).fit(xt, yt)
        p = predict(estimator, xv, kind)
        values.append(metric_value(kind, metric, yv, p.y_pred, p.scores))
        if best is None or (values[-1] > values[best[0]] if higher else values[-1] < values[best[0]]):
            best = (len(values) - 1, params, estimator)
    return best, values


@pytest.mark.parametrize("probe,kind", [(probe, kind) for probe in sorted(PROBES) for kind in KINDS])
def test_search_selects_what_the_exhaustive_search_selects(probe, kind):
    _assert_search_is_exhaustive(probe, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_forest_sizes_share_one_forest_and_select_what_the_exhaustive_search_selects(kind, monkeypatch):
    """A grid of several n_estimators per depth: each depth's largest forest is fitted once."""
    monkeypatch.setitem(probes.GRIDS["rf"], "full", {"n_estimators": (4, 30, 12), "max_depth": (None, 3)})
    fits = []
    real_build = probes._Search.build
    monkeypatch.setattr(probes._Search, "build", lambda self, params, **options: fits.append(params)
                        or real_build(self, params, **options))
    _assert_search_is_exhaustive("rf", kind)
    assert fits == [{"n_estimators": 30, "max_depth": None}, {"n_estimators": 30, "max_depth": 3}]


def _assert_search_is_exhaustive(probe, kind):
    x, y = _informative(kind, seed=3)
    x = x + np.random.default_rng(3).normal(scale=2.0, size=x.shape)  # let the grid matter
    xt, yt, xv, yv, xs, _ = _split(x, y)
    if kind == "multilabel":
        yt = yt.copy()
        yt[:, 3] = 0  # a label never positive in train (a constant one-vs-rest problem)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (_, params, reference), values = _exhaustive(probe, kind, xt, yt, xv, yv, MAIN[kind], 0)
        fit = fit_probe(probe, kind, xt, yt, xv, yv, MAIN[kind], seed=0, grid="full")
    assert fit.params == params
    assert [v for _, v in fit.candidates] == pytest.approx(values, rel=1e-9, abs=1e-12)
    # the kept model is the same; a forest sums its trees' outputs in thread order (ulps), the
    # SVC's kernel entries are rounded differently from libsvm's (~1e-16)
    _assert_same_predictions(predict(fit, xs, kind), predict(reference, xs, kind), kind,
                             rtol=1e-12, atol=1e-15)


def _assert_same_predictions(ours, theirs, kind, rtol, atol):
    if kind == "regression":
        np.testing.assert_allclose(ours.y_pred, theirs.y_pred, rtol=rtol)
    else:
        np.testing.assert_array_equal(ours.y_pred, theirs.y_pred)
        np.testing.assert_allclose(ours.scores, theirs.scores, rtol=rtol, atol=atol)


# ----- exact shortcuts -----------------------------------------------------------------------
def test_kernel_rows_are_sklearns_rbf_kernel(monkeypatch):
    from sklearn.metrics.pairwise import rbf_kernel

    monkeypatch.setattr(probes, "KERNEL_BLOCK_ROWS", 7)  # several blocks and a ragged last one
    rng = np.random.default_rng(0)
    x, rows = rng.normal(size=(50, 6)), rng.normal(size=(30, 6))
    np.testing.assert_allclose(probes._rbf_kernel_rows(x, rows, 0.2), rbf_kernel(x, rows, gamma=0.2),
                               rtol=1e-12)


def test_train_kernel_is_sklearns_rbf_kernel_and_exactly_symmetric(monkeypatch):
    from sklearn.metrics.pairwise import rbf_kernel

    monkeypatch.setattr(probes, "KERNEL_BLOCK_ROWS", 7)  # several blocks and a ragged last one
    x = np.random.default_rng(0).normal(size=(50, 6))
    kernel = probes._rbf_train_kernel(x, 0.2)
    np.testing.assert_array_equal(kernel, kernel.T)
    np.testing.assert_allclose(kernel, rbf_kernel(x, x, gamma=0.2), rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_every_forest_candidate_is_the_forest_fitted_alone(kind, monkeypatch):
    """Tree seeds are drawn in turn from random_state: a forest's first n trees are the forest of n."""
    monkeypatch.setattr(probes, "N_JOBS", 1)  # trees' outputs summed in tree order: bit for bit
    xt, yt, xv, yv, xs, _ = _split(*_informative(kind, seed=4))
    points = [{"n_estimators": n, "max_depth": d} for n in (4, 30, 12) for d in (None, 3)]
    search = probes._Search("rf", kind, 7, xt, yt, xv, yv, MAIN[kind], 3 if kind == "multiclass" else None)
    for params, (value, model) in zip(points, probes._forest_prefixes(search, points), strict=True):
        alone = search.build(params).fit(xt, yt)
        assert model.get_params() == alone.get_params()
        for ours, theirs in zip(model.estimators_, alone.estimators_, strict=True):
            for array in ("children_left", "children_right", "feature", "threshold", "value",
                          "n_node_samples", "weighted_n_node_samples", "impurity"):
                np.testing.assert_array_equal(getattr(ours.tree_, array), getattr(theirs.tree_, array))
        assert value == search.score(alone)
        ours, theirs = predict(model, xs, kind), predict(alone, xs, kind)
        np.testing.assert_array_equal(ours.y_pred, theirs.y_pred)
        if kind != "regression":
            np.testing.assert_array_equal(ours.scores, theirs.scores)


@pytest.mark.parametrize("kind", KINDS)
def test_kept_svc_is_the_plain_rbf_svc(kind, monkeypatch):
    """The kept SVC (fitted on the shared precomputed kernel, no refit) is the plain RBF SVC."""
    monkeypatch.setattr(probes, "KERNEL_BLOCK_ROWS", 64)  # the train kernel in several blocks
    xt, yt, xv, yv, xs, _ = _split(*_informative(kind, seed=5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_probe("svc", kind, xt, yt, xv, yv, MAIN[kind], seed=0, grid="full")
    plain = make_estimator("svc", kind, fit.params, seed=0).fit(xt, yt)
    svc = fit.estimator[-1]
    for inner in ("estimator", "regressor"):  # one-vs-rest, target scaling
        svc = getattr(svc, inner, svc)
    assert svc.kernel == "precomputed"  # the shortcut was taken
    _assert_same_predictions(predict(fit, xs, kind), predict(plain, xs, kind), kind,
                             rtol=1e-10, atol=1e-12)
