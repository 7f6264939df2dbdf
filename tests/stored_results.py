"""Stored results with test predictions, in the runner's format, for the tests of the paired
tests and of everything that reads them (imported by name: tests/ is on sys.path under pytest)."""

from __future__ import annotations

import numpy as np

from ecgbench.core.store import ResultStore, write_json
from ecgbench.evaluation.metrics import metric_value
from ecgbench.evaluation.stats import write_predictions


def binary_case(n: int = 240, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    groups = np.repeat(np.arange(n // 2), 2)  # two records per patient
    good = y + rng.normal(0, 0.5, n)  # AUROC ~0.92
    noise = rng.normal(0, 1, n)  # AUROC ~0.5
    return y, groups, good, noise


def store_result(root, method, seed, probe, val, y, groups, y_pred, scores, preset="smoke", predictions=True):
    run_id, task_key, name = f"{method}-{seed:012d}", "synth-sex@v1", f"frozen-probe-{probe}-00000000"
    path = ResultStore(root).result_path(run_id, task_key, name)
    result = {
        "key": f"{run_id}/{task_key}/{name}", "run_id": run_id, "method": method, "task": "synth-sex",
        "task_key": task_key, "task_kind": "binary", "main_metric": "macro_auroc", "probe": probe,
        "protocol": "frozen-probe", "preset": preset, "seed": seed, "val_score": val,
        "metrics": {"macro_auroc": metric_value("binary", "macro_auroc", y, y_pred, scores)},
    }
    if predictions:
        write_predictions(path.with_suffix(".npz"), np.arange(len(y)) * 3, groups, y, y_pred, scores)
        result["predictions"] = path.with_suffix(".npz").name
    write_json(path, result)
