"""One rule for choosing on validation (benchmark/evaluation/selection.py), used by the tables and
the significance tests alike."""

from __future__ import annotations

import math

from ecgbench.evaluation import stats
from ecgbench.evaluation.selection import best_on_validation, candidate_order
from ecgbench.reporting.layouts import best_probe_on_validation


def test_the_best_mean_wins_and_lower_is_better_for_errors():
    scores = {"lr": [0.70, 0.72], "knn": [0.80, 0.60], "svc": [0.69, 0.69]}
    assert best_on_validation(scores) == "lr"  # 0.71 > 0.70 > 0.69
    assert best_on_validation(scores, higher_is_better=False) == "svc"


def test_a_tie_goes_to_the_registry_order_and_missing_scores_never_win():
    assert best_on_validation({"knn": [0.5], "lr": [0.5]}) == "lr"  # lr before knn (svc, rf, lr, mlp, knn)
    assert best_on_validation({"zeta": [0.5], "alpha": [0.5], "mlp": [0.5]}) == "mlp"
    assert best_on_validation({"svc": [None, math.nan], "knn": [0.1]}) == "knn"
    assert best_on_validation({"svc": [None], "lr": []}) is None
    assert candidate_order(["knn", "b", "svc", "a"]) == ["svc", "knn", "a", "b"]


def test_the_tables_and_the_significance_test_take_the_same_probe_on_a_tie():
    """The case of ptbxl-sex / simclr-lead2: lr and knn tie on validation. The leaderboard, the
    layouts and the report show one probe; compare_methods must test that same one."""
    records = {probe: [{"probe": probe, "seed": seed, "val_score": 0.625, "main_metric": "macro_auroc"}
                       for seed in (0, 1)] for probe in ("knn", "lr")}
    shown = best_probe_on_validation(records)
    tested = stats._best_on_validation({p: {r["seed"]: r for r in rs} for p, rs in records.items()}, higher=True)
    assert shown == tested == "lr"
