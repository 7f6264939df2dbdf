"""``--set eval.cv=K``: the grid once per fold of a patient-wise K-fold cross-validation, then each
method's K test predictions pooled into one result in which every record is tested once.

Fold ``k`` is an ordinary run on the datasets' fold ``k`` (``data.<dataset>.cv_folds=K`` and
``cv_fold=k``, :mod:`ecgbench.data.folds`): its own pretraining on that fold's training split
(so pretraining never sees the fold's test records, and the leakage guard runs as for any
run), probes fitted on the training split and chosen on the fold's validation group. Every fold
result is stored and resumable like any other. The pooled result (:func:`pool`) concatenates
the K folds' test predictions; its metrics and patient-level bootstrap CI are computed on all of
them, its ``val_score`` is the mean of the folds' (what a table may choose a probe by), its
protocol is ``<protocol>-cv<K>`` (so it is never compared with single-split results), and it
names the fold results it pools. Tables, the leaderboard and the report show pooled results
only; the fold results are their inputs (:func:`ecgbench.data.folds.fold_of`).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.config import ConfigError, derive_seed, short_hash
from ecgbench.core.store import ResultStore, write_json
from ecgbench.data.folds import OPTIONS, fold_of, without_fold
from ecgbench.running.plan import RunRequest


def fold_requests(request: RunRequest, folds: int, datasets: list[str]) -> list[RunRequest]:
    """One request per fold: every dataset the run loads cut to that fold."""
    set_already = [k for k in request.overrides if k.startswith("data.") and k.rsplit(".", 1)[-1] in OPTIONS]
    if set_already:
        raise ConfigError(f"--set {set_already[0]}: eval.cv sets every dataset's fold itself; drop it")
    return [dataclasses.replace(request, overrides={
        **request.overrides,
        **{f"data.{name}.cv_folds": str(folds) for name in datasets},
        **{f"data.{name}.cv_fold": str(fold) for name in datasets},
    }) for fold in range(folds)]


def is_fold_run(request: RunRequest) -> bool:
    return any(k.startswith("data.") and k.endswith(".cv_fold") for k in request.overrides)


def pool(fold_results: list[dict[str, Any]], results_dir: str | Path, folds: int) -> list[dict[str, Any]]:
    """One pooled result per (method config, task, protocol, probe, seed) that has all ``folds``
    fold results, written to the store; incomplete groups are left out (a rerun completes them)."""
    groups: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for record in fold_results:
        position = _fold_position(record)
        if position and position[0] == folds:
            groups[_pool_key(record)][position[1]] = record
    store = ResultStore(results_dir)
    pooled = []
    for by_fold in groups.values():
        records = [by_fold[k] for k in range(folds) if k in by_fold]
        if any(r.get("status") == "not_applicable" for r in records):
            pooled.append(_write_not_applicable(next(r for r in records if r.get("status") == "not_applicable"),
                                                store, folds))
        elif len(records) == folds and all("metrics" in r for r in records):
            pooled.append(_write_pooled(records, store, folds))
    return pooled


def _fold_position(record: dict[str, Any]) -> tuple[int, int] | None:
    """The fold a result was scored on; a not-applicable record read no data, so its run's
    pretraining data names the fold."""
    return (fold_of((record.get("adaptation") or {}).get("dataset", ""))
            or fold_of((record.get("run_config") or {}).get("pretrain_data", "")))


def _write_not_applicable(record: dict[str, Any], store: ResultStore, k: int) -> dict[str, Any]:
    """The method cannot run on the task in any fold: one pooled record saying why."""
    run_id = f"{record['method']}-cv{k}-{short_hash(record['run_config'].get('method_config'))}"
    protocol = f"{record['protocol']}-cv{k}"
    name = f"{protocol}-{record['probe']}"
    out = {**record, "run_id": run_id, "protocol": protocol, "key": f"{run_id}/{record['task_key']}/{name}",
           "run_config": {**record["run_config"],
                          "pretrain_data": without_fold(record["run_config"].get("pretrain_data", ""))}}
    write_json(store.result_path(run_id, record["task_key"], name), out)
    return out


def _pool_key(record: dict[str, Any]) -> tuple:
    config = {k: v for k, v in (record.get("run_config") or {}).items() if k not in ("pretrain_data", "base_run_id")}
    spec = dict(record.get("probe_spec") or {})
    spec.pop("data", None)  # the evaluated fold's tag
    return (short_hash(config), record["task_key"], record["protocol"], record["probe"], record["seed"], short_hash(spec))


def _write_pooled(folds: list[dict[str, Any]], store: ResultStore, k: int) -> dict[str, Any]:
    from ecgbench.core.registry import TASKS
    from ecgbench.evaluation import metrics
    from ecgbench.evaluation.stats import load_predictions, write_predictions

    arrays = [load_predictions(r, store.root) for r in folds]
    joined = {name: _concatenate([a.get(name) for a in arrays], name) for name in ("test_indices", "patient_ids",
                                                                                  "y_true", "y_pred", "scores")}
    if len(set(joined["test_indices"].tolist())) != len(joined["test_indices"]):
        raise ConfigError(f"{folds[0]['key']}: the folds' test records overlap; every record must be tested once")
    first = folds[0]
    task = TASKS.get(first["task"])
    kind, metric = first["task_kind"], first["main_metric"]
    resamples = int((first.get("eval_settings") or {}).get("bootstrap", 1000))
    low, high = metrics.bootstrap_ci(kind, metric, joined["y_true"], joined["y_pred"], joined["scores"],
                                     joined["patient_ids"], resamples,
                                     derive_seed(first["seed"], f"bootstrap/{first['task_key']}/{first['probe']}/cv{k}"))
    runs = [r["run_id"] for r in folds]
    run_id = f"{first['method']}-cv{k}-{short_hash(runs)}"
    protocol = f"{first['protocol']}-cv{k}"
    name = f"{protocol}-{first['probe']}-{short_hash([r['key'] for r in folds], 8)}"
    path = store.result_path(run_id, first["task_key"], name)
    record = {
        **{key: value for key, value in first.items() if key not in ("probe_params", "history", "clustering")},
        "key": f"{run_id}/{first['task_key']}/{name}", "run_id": run_id, "protocol": protocol,
        "metrics": metrics.score(kind, joined["y_true"], joined["y_pred"], joined["scores"], task.classes),
        "ci": {"metric": metric, "low": low, "high": high, "level": 0.95, "resamples": resamples, "unit": "patient"},
        "val_score": _mean([r.get("val_score") for r in folds]),
        "n": {"test": len(joined["y_true"]), "train": round(_mean([r["n"]["train"] for r in folds])),
              "val": round(_mean([r["n"]["val"] for r in folds]))},  # train and val: the folds' mean
        "n_patients": {"test": len(set(joined["patient_ids"].tolist()))},
        "adaptation": {**first["adaptation"], "dataset": without_fold(first["adaptation"]["dataset"])},
        "run_config": {**first["run_config"], "pretrain_data": without_fold(first["run_config"]["pretrain_data"])
                       + f" (cv{k}: each fold's own split)"},
        "cv": {"folds": k, "results": [r["key"] for r in folds], "probe_params": [r.get("probe_params") for r in folds],
               "val_scores": [r.get("val_score") for r in folds]},
        "timings": {"probe_seconds": round(sum(r["timings"].get("probe_seconds", 0) for r in folds), 3),
                    "pretrain_seconds": round(sum(r["timings"].get("pretrain_seconds", 0) for r in folds), 3)},
        "predictions": path.with_suffix(".npz").name,
    }
    write_predictions(path.with_suffix(".npz"), **joined)
    write_json(path, record)
    return record


def _concatenate(parts: list[Any], name: str) -> np.ndarray | None:
    if any(p is None for p in parts):
        if all(p is None for p in parts):
            return None
        raise ConfigError(f"some folds stored {name} and some did not; rerun the folds")
    return np.concatenate(parts)


def _mean(values: list[Any]) -> float | None:
    finite = [float(v) for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None
