"""The shortcut audit: the harness's lr probe on trivial features (heart rate, each lead's
amplitude and standard deviation) and on the generator's exact intervals, per synthetic task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.contracts import Recordings, Task
from ecgbench.reporting.audit.realism import r_peaks


def trivial_features(recordings: Recordings) -> tuple[np.ndarray, list[str]]:
    """Heart rate plus each lead's robust amplitude (1st to 99th percentile) and standard
    deviation: what a model can learn without looking at a waveform's shape. The heart rate is
    the metadata's ``heart_rate`` where a dataset records it (the synthetic suite measures it on
    the generated beats: an upper bound on what a detector would find), else detected on lead II."""
    x = np.asarray(recordings.signals, dtype=np.float32)
    low, high = np.percentile(x, [1, 99], axis=2)
    if "heart_rate" in recordings.meta:
        rate = recordings.meta["heart_rate"].to_numpy(dtype=float)
    else:
        ii = recordings.lead_names.index("II") if "II" in recordings.lead_names else 0
        rate = np.array([_heart_rate(np.asarray(record[ii], dtype=np.float64), recordings.fs) for record in x])
    names = recordings.lead_names
    columns = ["heart_rate"] + [f"amplitude_{n}" for n in names] + [f"std_{n}" for n in names]
    return np.nan_to_num(np.column_stack([rate, high - low, x.std(axis=2)])), columns


INTERVALS = ("heart_rate", "rr_cv", "pr_ms", "qrs_ms", "qtc_ms")


def interval_features(recordings: Recordings) -> tuple[np.ndarray, list[str]] | None:
    """The generator-truth rate and intervals of each record (the synthetic suite stores them in
    its metadata), or None for a dataset that lacks them."""
    if not set(INTERVALS) <= set(recordings.meta.columns):
        return None
    return recordings.meta[list(INTERVALS)].to_numpy(dtype=float), list(INTERVALS)


def _heart_rate(lead: np.ndarray, fs: int) -> float:
    peaks = r_peaks(lead, fs)
    return 60.0 * fs / np.median(np.diff(peaks)) if len(peaks) > 2 else float("nan")


def shortcut_audit(task: Task, recordings: Recordings, features: np.ndarray, bootstrap: int = 1000,
                   seed: int = 0, grid: str = "full") -> dict[str, Any]:
    """The ``lr`` probe of :mod:`ecgbench.evaluation.probes` on ``features``, on the task's own splits, scored
    as the runner scores probes: C (alpha) chosen on validation by the main metric, the test
    main metric with a patient-level bootstrap 95% CI."""
    from ecgbench.evaluation import metrics, probes

    y, usable = task.labels(recordings.meta)
    split = {s: recordings.indices(s) for s in ("train", "val", "test")}
    split = {s: idx[usable[idx]] for s, idx in split.items()}
    fit = probes.fit_probe("lr", task.kind, features[split["train"]], y[split["train"]],
                           features[split["val"]], y[split["val"]], task.main_metric, seed, grid,
                           n_classes=len(task.classes) if task.kind == "multiclass" else None)
    test = split["test"]
    prediction = probes.predict(fit, features[test], task.kind)
    value = metrics.metric_value(task.kind, task.main_metric, y[test], prediction.y_pred, prediction.scores)
    low, high = metrics.bootstrap_ci(task.kind, task.main_metric, y[test], prediction.y_pred,
                                     prediction.scores, recordings.meta["patient_id"].to_numpy()[test],
                                     bootstrap, seed)
    return {"task": task.name, "task_key": task.key, "metric": task.main_metric, "value": value,
            "ci": [low, high], "probe_params": fit.params, "n_features": int(features.shape[1]),
            "n_test": int(len(test))}


# Gradient-boosted trees' grid, chosen on validation by the main metric (sklearn's histogram
# boosting: fast on a few thousand rows, deterministic for a fixed random_state).
BOOSTING_GRID = [{"learning_rate": lr, "max_leaf_nodes": leaves} for lr in (0.05, 0.1) for leaves in (15, 31)]


def boosted_audit(task: Task, recordings: Recordings, features: np.ndarray, bootstrap: int = 1000,
                  seed: int = 0) -> dict[str, Any]:
    """As :func:`shortcut_audit` with gradient-boosted trees instead of the linear probe: each
    :data:`BOOSTING_GRID` setting fitted on train (one model per label for multilabel), the best
    on validation scored once on test."""
    from ecgbench.evaluation import metrics

    y, usable = task.labels(recordings.meta)
    split = {s: recordings.indices(s) for s in ("train", "val", "test")}
    split = {s: idx[usable[idx]] for s, idx in split.items()}
    higher = metrics_direction(task.main_metric)
    best = None
    for params in BOOSTING_GRID:
        model = _boosted(task.kind, params, seed).fit(features[split["train"]], y[split["train"]])
        y_pred, scores = _boosted_predict(model, task.kind, features[split["val"]])
        value = metrics.metric_value(task.kind, task.main_metric, y[split["val"]], y_pred, scores)
        if best is None or (value > best[0] if higher else value < best[0]):
            best = (value, params, model)
    _, params, model = best
    test = split["test"]
    y_pred, scores = _boosted_predict(model, task.kind, features[test])
    value = metrics.metric_value(task.kind, task.main_metric, y[test], y_pred, scores)
    low, high = metrics.bootstrap_ci(task.kind, task.main_metric, y[test], y_pred, scores,
                                     recordings.meta["patient_id"].to_numpy()[test], bootstrap, seed)
    return {"task": task.name, "task_key": task.key, "metric": task.main_metric, "value": value, "ci": [low, high],
            "probe_params": params, "n_features": int(features.shape[1]), "n_test": int(len(test))}


def metrics_direction(metric: str) -> bool:
    from ecgbench.core.contracts import HIGHER_IS_BETTER

    return HIGHER_IS_BETTER.get(metric, True)


def _boosted(kind: str, params: dict[str, Any], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.multioutput import MultiOutputClassifier

    settings = {**params, "max_iter": 200, "early_stopping": False, "random_state": seed}
    if kind == "regression":
        return HistGradientBoostingRegressor(**settings)
    model = HistGradientBoostingClassifier(**settings)
    return MultiOutputClassifier(model) if kind == "multilabel" else model


def _boosted_predict(model: Any, kind: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(y_pred, scores) in the metrics' format: binary scores the positive class, multiclass and
    multilabel (N, C) probabilities."""
    if kind == "regression":
        return model.predict(x), None
    if kind == "multilabel":
        scores = np.column_stack([p[:, 1] for p in model.predict_proba(x)])
        return (scores >= 0.5).astype(int), scores
    proba = model.predict_proba(x)
    if kind == "binary":
        return proba.argmax(axis=1), proba[:, 1]
    full = np.zeros((len(x), int(model.classes_.max()) + 1))
    full[:, model.classes_] = proba  # a class absent from training gets probability 0
    return full.argmax(axis=1), full


def baseline_audit(root: str | Path, version: int | None = None, bootstrap: int = 1000, seed: int = 0,
                   **options: Any) -> list[dict[str, Any]]:
    """The classical baseline on every synthetic task: the registered ``ecg-features`` table (its
    171 measurements at the 12-lead encoders' input) under the linear probe and under
    gradient-boosted trees, on the leaderboard's splits."""
    from ecgbench.core.registry import METHODS, TASKS
    from ecgbench.data.datasets import synthetic
    from ecgbench.data.ecg_features import record_features

    recordings = synthetic.load(root, **options, **({} if version is None else {"version": version}))
    method = METHODS.get("ecg-features")
    spec = method(method.Config()).input_spec
    features = np.nan_to_num(record_features(recordings, spec, Path(root) / "derived"))
    version = recordings.version.split("-")[0]
    names = [e.name for e in TASKS.entries.values() if e.module == "ecgbench.tasks.synthetic"]
    rows = []
    for name in sorted(names):
        task = TASKS.get(name).at_data_options({"version": version})
        rows.append({**shortcut_audit(task, recordings, features, bootstrap, seed),
                     "boosted": boosted_audit(task, recordings, features, bootstrap, seed)})
    return rows


def suite_audit(root: str | Path, version: int | None = None, bootstrap: int = 1000, seed: int = 0,
                **options: Any) -> list[dict[str, Any]]:
    """The shortcut audit of every synthetic task on one suite version (default: the current),
    each task at that version (its key says which); each row also holds, under ``intervals``, the
    same probe on the generator-truth intervals (:func:`interval_features`)."""
    from ecgbench.core.registry import TASKS
    from ecgbench.data.datasets import synthetic

    recordings = synthetic.load(root, **options, **({} if version is None else {"version": version}))
    version = recordings.version.split("-")[0]
    features, _ = trivial_features(recordings)
    intervals, _ = interval_features(recordings)
    names = [e.name for e in TASKS.entries.values() if e.module == "ecgbench.tasks.synthetic"]
    rows = []
    for name in sorted(names):
        task = TASKS.get(name).at_data_options({"version": version})
        row = shortcut_audit(task, recordings, features, bootstrap, seed)
        row["intervals"] = shortcut_audit(task, recordings, intervals, bootstrap, seed)
        rows.append(row)
    return rows


def audit_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per task of :func:`suite_audit`."""
    from tabulate import tabulate

    def cell(result: dict[str, Any] | None, metric: str) -> str:
        if result is None:
            return "–"
        d = 2 if metric == "mae" else 3
        return f"{result['value']:.{d}f} [{result['ci'][0]:.{d}f}, {result['ci'][1]:.{d}f}]"

    body = [[r["task_key"], r["metric"], cell(r, r["metric"]), cell(r.get("intervals"), r["metric"]), r["n_test"]]
            for r in rows]
    return tabulate(body, headers=["task", "metric", "trivial features: test [95% CI]",
                                   "generator-truth intervals: test [95% CI]", "test records"],
                    tablefmt="github", disable_numparse=True)


def baseline_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per task the trivial features (lr) beside ``ecg-features`` under lr and under
    gradient-boosted trees (each chosen on validation), test main metric [95% CI]."""
    from tabulate import tabulate

    def cell(result: dict[str, Any]) -> str:
        d = 2 if result["metric"] == "mae" else 3
        return f"{result['value']:.{d}f} [{result['ci'][0]:.{d}f}, {result['ci'][1]:.{d}f}]"

    body = [[r["task_key"], r["metric"], cell(r["trivial"]), cell(r), cell(r["boosted"]),
             ", ".join(f"{k}={v}" for k, v in r["boosted"]["probe_params"].items()), r["n_test"]] for r in rows]
    return tabulate(body, headers=["task", "metric", "25 trivial features, lr", f"ecg-features ({rows[0]['n_features']}), lr",
                                   "ecg-features, gradient-boosted trees", "trees chosen on validation", "test records"],
                    tablefmt="github", disable_numparse=True)
