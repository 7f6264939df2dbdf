"""Probes: scikit-learn estimators fitted on frozen embeddings, tuned on the validation split.

Every probe is ``Pipeline(StandardScaler, estimator)`` seeded through ``random_state`` (an
RBF SVC chosen from a grid has its kernel as a step of its own: :func:`_svc_on_shared_kernel`).
:func:`fit_probe` fits one candidate per grid point on train, scores it on validation with the
task's main metric and keeps the best (ties go to the earlier candidate). The kept model is
the one fitted on train only: refitting on train + validation would change the model after
it was chosen, and the caller scores exactly the chosen model on test. The test split never
enters this module.

Grids (``"small"`` for smoke runs and CI, ``"full"`` for real runs) are in :data:`GRIDS`.
Every grid value is recorded in ``ProbeFit.params`` and so in the result key.

This module is imported by the CLI to list probes, so scikit-learn is imported inside
functions only.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecgbench.core.contracts import HIGHER_IS_BETTER
from ecgbench.core.registry import did_you_mean

PROBES: dict[str, str] = {
    "svc": "RBF support vector machine: SVC (one-vs-rest if multilabel); SVR for regression",
    "rf": "random forest: RandomForestClassifier; RandomForestRegressor for regression",
    "lr": "linear: LogisticRegression (one-vs-rest if multilabel); Ridge for regression",
    "mlp": "one hidden layer, early stopping: MLPClassifier; MLPRegressor for regression",
    "knn": "k nearest neighbours: KNeighborsClassifier; KNeighborsRegressor for regression",
}
KINDS = ("multiclass", "multilabel", "binary", "regression")

# probe (or "ridge" for lr on regression) -> grid name -> parameter -> candidate values
GRIDS: dict[str, dict[str, dict[str, tuple]]] = {
    "svc": {"small": {"C": (1.0,)}, "full": {"C": (0.1, 1.0, 10.0)}},
    "rf": {
        "small": {"n_estimators": (100,), "max_depth": (None,)},
        "full": {"n_estimators": (200,), "max_depth": (None, 12, 6)},
    },
    "lr": {"small": {"C": (0.1,)}, "full": {"C": (0.001, 0.01, 0.1, 1.0, 10.0)}},
    "ridge": {"small": {"alpha": (10.0,)}, "full": {"alpha": (0.1, 1.0, 10.0, 100.0, 1000.0)}},
    "mlp": {
        "small": {"hidden_layer_sizes": ((128,),), "alpha": (1e-3,)},
        "full": {"hidden_layer_sizes": ((256,),), "alpha": (1e-4, 1e-2, 1.0)},
    },
    "knn": {"small": {"n_neighbors": (15,)}, "full": {"n_neighbors": (5, 15, 31)}},
}
N_JOBS = 2  # threads per forest / per one-vs-rest fit; the harness runs on small machines


@dataclass
class ProbeFit:
    """The chosen model and how it was chosen. ``fit_seconds`` covers the whole grid."""

    estimator: Any  # fitted sklearn Pipeline
    params: dict[str, Any]
    val_score: float
    candidates: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    fit_seconds: float = 0.0
    n_classes: int | None = None  # score columns for multiclass, even for classes unseen in train


@dataclass
class Prediction:
    y_pred: np.ndarray
    scores: np.ndarray | None  # (N, C) multiclass/multilabel, (N,) binary, None for regression


def check_probe(probe: str) -> None:
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}.{did_you_mean(probe, list(PROBES))}"
                         f" Probes: {', '.join(PROBES)}.")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}.{did_you_mean(kind, list(KINDS))}")


def candidate_params(probe: str, kind: str, grid: str = "full", n_train: int | None = None
                     ) -> list[dict[str, Any]]:
    """The grid points tried, in order (the first wins ties)."""
    check_probe(probe)
    _check_kind(kind)
    key = "ridge" if (probe, kind) == ("lr", "regression") else probe
    if grid not in GRIDS[key]:
        raise ValueError(f"unknown probe grid {grid!r}.{did_you_mean(grid, list(GRIDS[key]))}")
    space = GRIDS[key][grid]
    points = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    if n_train is not None and probe == "knn":  # k cannot exceed the training set
        points = [{**p, "n_neighbors": min(p["n_neighbors"], n_train)} for p in points]
    unique: dict[str, dict[str, Any]] = {}
    for point in points:
        unique.setdefault(repr(sorted(point.items())), point)
    return list(unique.values())


def make_estimator(probe: str, kind: str, params: dict[str, Any], seed: int) -> Any:
    """An unfitted ``Pipeline(StandardScaler, estimator)`` for one grid point."""
    check_probe(probe)
    _check_kind(kind)
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = _BUILDERS[probe](kind, params, int(seed))
    return Pipeline([("scale", StandardScaler()), ("model", model)])


def _svc(kind: str, params: dict, seed: int, kernel: str = "rbf") -> Any:
    from sklearn.svm import SVC, SVR

    gamma = "scale" if kernel == "rbf" else "auto"  # a precomputed kernel ignores gamma
    if kind == "regression":
        return _scaled_target(SVR(kernel=kernel, gamma=gamma, **params))
    svc = SVC(kernel=kernel, gamma=gamma, random_state=seed, **params)
    return _one_vs_rest(kind, svc, n_jobs=N_JOBS)


def _rf(kind: str, params: dict, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if kind == "regression" else RandomForestClassifier
    # sqrt features per split for regression too: scikit-learn's default there (all
    # features) is ~10x slower on 512-d embeddings for little gain
    return cls(max_features="sqrt", n_jobs=N_JOBS, random_state=seed, **params)


def _lr(kind: str, params: dict, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if kind == "regression":
        return Ridge(random_state=seed, **params)
    return _one_vs_rest(kind, LogisticRegression(max_iter=2000, random_state=seed, **params))


def _mlp(kind: str, params: dict, seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    settings = dict(early_stopping=True, max_iter=300, random_state=seed, **params)
    if kind == "regression":
        return _scaled_target(MLPRegressor(**settings))
    return MLPClassifier(**settings)  # handles indicator matrices natively


def _knn(kind: str, params: dict, seed: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    return (KNeighborsRegressor if kind == "regression" else KNeighborsClassifier)(**params)


def _one_vs_rest(kind: str, model: Any, n_jobs: int | None = None) -> Any:
    if kind != "multilabel":
        return model
    from sklearn.multiclass import OneVsRestClassifier

    return OneVsRestClassifier(model, n_jobs=n_jobs)


def _scaled_target(model: Any) -> Any:
    """Standardise y too: SVR's epsilon and the MLP's initial scale assume unit-scale targets."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    return TransformedTargetRegressor(regressor=model, transformer=StandardScaler())


_BUILDERS = {"svc": _svc, "rf": _rf, "lr": _lr, "mlp": _mlp, "knn": _knn}


def fit_probe(
    probe: str, kind: str, x_train, y_train, x_val, y_val, main_metric: str, seed: int,
    grid: str = "full", n_classes: int | None = None,
) -> ProbeFit:
    """Fit every grid point on train, keep the one best on validation by ``main_metric``.

    ``n_classes`` (multiclass only) fixes the width of the score matrix when a class is
    missing from train; by default it is inferred from the train and validation labels.

    Selects what fitting each :func:`make_estimator` pipeline on train and scoring it on
    validation would select (tests/evaluation/test_probes.py compares the two); only the work differs:
    the scaler is fitted once and shared, single-threaded candidates run in parallel, the RBF
    SVC grid shares one precomputed kernel (:func:`_svc_on_shared_kernel`) and keeps the
    winner as fitted on it, a forest grid fits one forest per depth, at its largest
    ``n_estimators`` (:func:`_forest_prefixes`).
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ecgbench.evaluation.metrics import check_metric

    check_probe(probe)
    check_metric(kind, main_metric)
    x_train, y_train, x_val, y_val = (np.asarray(a) for a in (x_train, y_train, x_val, y_val))
    _check_shapes(kind, x_train, y_train, x_val, y_val)
    if kind == "multiclass" and n_classes is None:
        n_classes = int(max(y_train.max(), y_val.max())) + 1
    points = candidate_params(probe, kind, grid, n_train=len(x_train))
    start = time.perf_counter()
    with _thread_settings():
        scaler = StandardScaler().fit(x_train)
        search = _Search(probe, kind, seed, scaler.transform(x_train), y_train,
                         scaler.transform(x_val), y_val, main_metric, n_classes)
        strategy = _SHARED_WORK.get(probe, _fit_each) if len(points) > 1 else _fit_each
        outcomes = strategy(search, points)
    higher = HIGHER_IS_BETTER[main_metric]
    best = None
    for index, (value, _) in enumerate(outcomes):
        if best is None or _better(value, outcomes[best][0], higher):
            best = index
    model = outcomes[best][1]
    steps = model.steps if isinstance(model, Pipeline) else [("model", model)]
    estimator = Pipeline([("scale", scaler), *steps])
    candidates = [(params, value) for params, (value, _) in zip(points, outcomes)]
    return ProbeFit(estimator, points[best], outcomes[best][0], candidates,
                    time.perf_counter() - start, n_classes)


@dataclass
class _Search:
    """One probe search: the scaled train/val copies every candidate shares, and the scoring."""

    probe: str
    kind: str
    seed: int
    x_train: np.ndarray  # scaled with the train-fitted scaler
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    metric: str
    n_classes: int | None

    def build(self, params: dict[str, Any], **options: Any) -> Any:
        return _BUILDERS[self.probe](self.kind, params, self.seed, **options)

    def score(self, model: Any, x_val: np.ndarray | None = None) -> float:
        from ecgbench.evaluation.metrics import metric_value

        prediction = predict(model, self.x_val if x_val is None else x_val, self.kind,
                             n_classes=self.n_classes)
        return metric_value(self.kind, self.metric, self.y_val, prediction.y_pred, prediction.scores)


# (validation score, model fitted on train) per candidate, in candidate order
Outcomes = list[tuple[float, Any]]


def _fit_each(search: _Search, points: list[dict[str, Any]]) -> Outcomes:
    """Fit and score every candidate; in parallel threads unless the model is parallel inside."""
    from joblib import Parallel, delayed

    def one(params: dict[str, Any]) -> tuple[float, Any]:
        model = search.build(params).fit(search.x_train, search.y_train)
        return search.score(model), model

    inside = search.probe == "rf" or (search.kind == "multilabel" and search.probe == "svc")
    n_jobs = 1 if inside or len(points) == 1 else N_JOBS
    return Parallel(n_jobs=n_jobs, backend="threading")(delayed(one)(p) for p in points)


def _svc_on_shared_kernel(search: _Search, points: list[dict[str, Any]]) -> Outcomes:
    """Fit every C on one precomputed RBF kernel; each model is the plain RBF SVC in effect.

    libsvm spends almost all its time on kernel rows (n x features each); the grid differs
    only in C, so the train x train kernel is computed once (with ``gamma="scale"``'s value,
    its upper half mirrored: :func:`_rbf_train_kernel`) and each candidate's solver only looks
    entries up. A kept model is
    ``Pipeline(kernel rows against the training rows, SVC(kernel="precomputed"))``: same
    support vectors and decision values within ~1e-13 of :func:`make_estimator`'s RBF SVC
    (tests/evaluation/test_probes.py compares predictions), without refitting the winner (a plain RBF
    refit cost more than the whole grid on the kernel). The C values fit concurrently, each
    one-vs-rest on its own threads too: libsvm releases the GIL and the fits differ in length.
    Falls back to :func:`_fit_each` when the train kernel would not fit in :data:`KERNEL_BYTES`.
    """
    from sklearn import config_context
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils.parallel import Parallel, delayed

    if len(search.x_train) ** 2 * 8 > KERNEL_BYTES:
        return _fit_each(search, points)
    rows = np.asarray(search.x_train, dtype=np.float64)
    variance = rows.var()
    gamma = 1.0 / (rows.shape[1] * variance) if variance != 0 else 1.0  # SVC's "scale"
    kernel_rows = FunctionTransformer(_rbf_kernel_rows, kw_args={"rows": rows, "gamma": gamma})
    kernel = _rbf_train_kernel(rows, gamma)
    np.fill_diagonal(kernel, 1.0)  # as libsvm's RBF gives exactly; block products leave ~1e-16
    kernel_val = kernel_rows.transform(search.x_val)

    def one(params: dict[str, Any]) -> tuple[float, Any]:
        model = search.build(params, kernel="precomputed").fit(kernel, search.y_train)
        return search.score(model, kernel_val), Pipeline([("kernel", kernel_rows), ("model", model)])

    with config_context(assume_finite=True):  # the kernel is finite; skip a full scan per fit
        return Parallel(n_jobs=len(points), backend="threading")(delayed(one)(p) for p in points)


def _forest_prefixes(search: _Search, points: list[dict[str, Any]]) -> Outcomes:
    """One forest per setting of the other parameters, at its largest ``n_estimators``; each
    smaller ``n_estimators`` candidate is its first trees.

    A forest draws its trees' seeds one after another from ``random_state``, so its first n
    trees are, node for node, the trees of the same forest fitted with n (``warm_start``
    rests on this; tests/evaluation/test_probes.py checks it). Each candidate is scored as the
    plain search scores it. Depths share nothing: a depth-limited tree is not a pruned deeper
    one, since the nodes below the limit draw from the same random stream as the nodes after
    them.
    """
    outcomes: dict[int, tuple[float, Any]] = {}
    for indices in _groups_apart_from(points, "n_estimators"):
        largest = max(points[i]["n_estimators"] for i in indices)
        forest = search.build({**points[indices[0]], "n_estimators": largest})
        forest.fit(search.x_train, search.y_train)
        for i in indices:
            model = _first_trees(forest, points[i]["n_estimators"])
            outcomes[i] = search.score(model), model
    return [outcomes[i] for i in range(len(points))]


def _groups_apart_from(points: list[dict[str, Any]], name: str) -> list[list[int]]:
    """Indices of the points, grouped by their values of every parameter but ``name``."""
    groups: dict[str, list[int]] = {}
    for index, point in enumerate(points):
        rest = sorted((k, v) for k, v in point.items() if k != name)
        groups.setdefault(repr(rest), []).append(index)
    return list(groups.values())


def _first_trees(forest: Any, n: int) -> Any:
    """The fitted forest of ``forest``'s first ``n`` trees."""
    if n == len(forest.estimators_):
        return forest
    prefix = copy.copy(forest)
    prefix.estimators_ = forest.estimators_[:n]
    prefix.n_estimators = n
    return prefix


def _rbf_kernel_rows(x: np.ndarray, rows: np.ndarray, gamma: float) -> np.ndarray:
    """scikit-learn's ``rbf_kernel(x, rows, gamma)``, in blocks of x's rows on N_JOBS threads.

    One call on 17,000 rows holds three full-size temporaries and runs its element-wise
    passes on one core; blocks keep the temporaries small, use both cores, and share the
    rows' norms. Each block is ``rbf_kernel``'s own arithmetic.
    """
    from joblib import Parallel, delayed
    from sklearn.metrics.pairwise import euclidean_distances
    from sklearn.utils.extmath import row_norms

    x = np.asarray(x, dtype=np.float64)
    out = np.empty((len(x), len(rows)))
    rows_squared = row_norms(rows, squared=True)[np.newaxis, :]

    def block(start: int) -> None:
        part = slice(start, start + KERNEL_BLOCK_ROWS)
        squared = euclidean_distances(x[part], rows, Y_norm_squared=rows_squared, squared=True)
        squared *= -gamma
        np.exp(squared, out=out[part])

    Parallel(n_jobs=N_JOBS, backend="threading")(
        delayed(block)(start) for start in range(0, len(x), KERNEL_BLOCK_ROWS))
    return out


def _rbf_train_kernel(rows: np.ndarray, gamma: float) -> np.ndarray:
    """``rbf_kernel(rows, rows, gamma)``: each block row from the diagonal on, mirrored below it.

    The kernel is symmetric, so half the products and exponentials suffice; it comes out
    exactly symmetric, as libsvm's own RBF kernel is (entry i, j and entry j, i are the same
    sum there), where the full product differs from its transpose in the last bit.
    """
    from joblib import Parallel, delayed
    from sklearn.metrics.pairwise import euclidean_distances
    from sklearn.utils.extmath import row_norms

    out = np.empty((len(rows), len(rows)))
    squared_norms = row_norms(rows, squared=True)

    def block(start: int) -> None:
        part = slice(start, start + KERNEL_BLOCK_ROWS)
        upper = euclidean_distances(rows[part], rows[start:], squared=True,
                                    Y_norm_squared=squared_norms[np.newaxis, start:])
        upper *= -gamma
        np.exp(upper, out=upper)
        diagonal = upper[:, :len(upper)]
        diagonal[...] = np.triu(diagonal) + np.triu(diagonal, 1).T
        out[part, start:] = upper
        out[start:, part] = upper.T

    # widest blocks first; the blocks write disjoint strips of ``out``
    Parallel(n_jobs=N_JOBS, backend="threading")(
        delayed(block)(start) for start in range(0, len(rows), KERNEL_BLOCK_ROWS))
    return out


KERNEL_BLOCK_ROWS = 512  # 512 x 17,000 float64 kernel entries are 70 MB
KERNEL_BYTES = 4 * 2**30  # largest precomputed train kernel (float64) the SVC search builds
_SHARED_WORK = {"svc": _svc_on_shared_kernel, "rf": _forest_prefixes}


@contextlib.contextmanager
def _thread_settings() -> Iterator[None]:
    """Single-threaded BLAS and OpenMP; joblib (forests, one-vs-rest) on threads.

    On a 2-core machine with any other load, two spin-waiting OpenBLAS / OpenMP threads made
    MLP fits and kNN queries up to 10x slower (MLP 0.6 s -> 6 s, kNN 0.03 s -> 0.3 s,
    measured); one thread is as fast on these small matrices. libsvm releases the GIL, so
    threads parallelise one-vs-rest SVC without the start-up cost of joblib's default process
    pool (which was slower than serial on 2 cores).
    """
    from joblib import parallel_config
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), parallel_config(backend="threading"):
        yield


def _better(value: float, incumbent: float, higher: bool) -> bool:
    if math.isnan(value):
        return False
    if math.isnan(incumbent):
        return True
    return value > incumbent if higher else value < incumbent


def _check_shapes(kind: str, x_train, y_train, x_val, y_val) -> None:
    for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ValueError(f"{split}: need a non-empty (N, D) feature matrix and N targets, "
                             f"got {x.shape} and {y.shape}")
        if (y.ndim == 2) != (kind == "multilabel"):
            raise ValueError(f"{split}: {kind} targets must be "
                             f"{'(N, C)' if kind == 'multilabel' else '(N,)'}, got {y.shape}")
    if x_train.shape[1] != x_val.shape[1]:
        raise ValueError(f"train has {x_train.shape[1]} features, val {x_val.shape[1]}")


def predict(fit_or_estimator, x, kind: str, n_classes: int | None = None) -> Prediction:
    """Predicted labels (or values) and continuous scores for AUROC."""
    _check_kind(kind)
    estimator = fit_or_estimator
    if isinstance(fit_or_estimator, ProbeFit):
        estimator = fit_or_estimator.estimator
        n_classes = fit_or_estimator.n_classes if n_classes is None else n_classes
    x = np.asarray(x)
    with _thread_settings():
        y_pred = np.asarray(estimator.predict(x))
        if kind == "regression":
            return Prediction(y_pred.astype(float), None)
        return Prediction(y_pred.astype(int), _scores(estimator, x, kind, n_classes))


def _scores(estimator: Any, x: np.ndarray, kind: str, n_classes: int | None) -> np.ndarray:
    model = estimator[-1] if hasattr(estimator, "steps") else estimator
    if _uses_decision_function(model):
        # SVC's probability=True runs an internal, slow and seed-dependent CV; margins suffice
        raw = np.asarray(estimator.decision_function(x), dtype=float)
        if kind == "multiclass" and raw.ndim == 1:  # only two classes were seen in train
            raw = np.stack([-raw, raw], axis=1)
    else:
        raw = estimator.predict_proba(x)
    if kind == "multilabel":
        return _multilabel_scores(model, raw)
    raw = np.asarray(raw, dtype=float)
    if kind == "binary":
        return raw if raw.ndim == 1 else _class_columns(raw, model.classes_, 2)[:, 1]
    return _class_columns(raw, model.classes_, n_classes)


def _uses_decision_function(model: Any) -> bool:
    from sklearn.svm import SVC

    return isinstance(model, SVC) or isinstance(getattr(model, "estimator", None), SVC)


def _class_columns(raw: np.ndarray, classes: np.ndarray, n_classes: int | None) -> np.ndarray:
    """Place the columns of the classes seen in train at their label index.

    Unseen classes get a constant column (the minimum score), i.e. chance-level AUROC.
    """
    classes = np.asarray(classes).astype(int)
    width = max(n_classes or 0, int(classes.max()) + 1)
    if raw.shape[1] == width and np.array_equal(classes, np.arange(width)):
        return raw
    out = np.full((len(raw), width), raw.min() if raw.size else 0.0)
    out[:, classes] = raw
    return out


def _multilabel_scores(model: Any, raw: Any) -> np.ndarray:
    """(N, C) positive-label scores; forests and kNN give one (N, values) array per label."""
    if not isinstance(raw, list):
        return np.asarray(raw, dtype=float)
    columns = []
    for proba, classes in zip(raw, model.classes_):
        positive = np.flatnonzero(np.asarray(classes) == 1)
        # a label constant in train has a single proba column, which may be the negative one
        columns.append(proba[:, positive[0]] if len(positive) else np.zeros(len(proba)))
    return np.stack(columns, axis=1).astype(float)
