"""Choosing on validation, by one rule everywhere: the tables, the leaderboard, the report, the
layouts and the significance tests all take the same probe for a method.

The candidate with the best mean validation score over seeds (the task's main metric; lower is
better for errors) wins; missing or non-finite scores are ignored, and a candidate with none
never wins. Ties go to the first candidate in :data:`ecgbench.evaluation.probes.PROBES` order
(svc, rf, lr, mlp, knn), then by name. The test split never takes part.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from ecgbench.evaluation.probes import PROBES


def best_on_validation(scores: Mapping[str, Iterable[float | None]], higher_is_better: bool = True) -> str | None:
    """The candidate (probe) whose validation scores have the best finite mean; None if none has one."""
    best, best_value = None, -math.inf
    for name in candidate_order(scores):
        values = [float(v) for v in scores[name] if isinstance(v, (int, float)) and math.isfinite(v)]
        if not values:
            continue
        value = sum(values) / len(values) * (1 if higher_is_better else -1)
        if best is None or value > best_value:  # strictly better: a tie keeps the earlier candidate
            best, best_value = name, value
    return best


def candidate_order(names: Iterable[str]) -> list[str]:
    """The probes in their registry order, then any other candidate by name."""
    names = set(names)
    return [p for p in PROBES if p in names] + sorted(names - set(PROBES))
