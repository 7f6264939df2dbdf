"""What a task's test split can tell apart: the methods not significantly below the best, rank
intervals, and the smallest difference the test could detect.

For one task (one preset and protocol), with each method's probe chosen on validation
(:mod:`ecgbench.evaluation.selection`):

* **the reference** is the method with the best mean *validation* score over seeds (ties: the
  selection rule's order), never the best on test: choosing the reference by its test score
  would make every "vs best" difference a winner's-curse comparison;
* **tests against the reference**: the paired patient-level bootstrap of
  :mod:`ecgbench.evaluation.stats` (seeds fixed, each method's value the mean over its seeds,
  the same resamples for every method), Holm-corrected over the task's comparisons;
* **the top group**: the reference and every method not significantly below it. A method
  significantly *above* the validation-chosen reference is in the group too and is named in
  ``above_reference`` (validation and test disagreed);
* **rank intervals**: on each bootstrap resample every method gets the rank ``1 + (methods
  strictly better on that resample)``; the interval is the 2.5-97.5 % range of those ranks. Two
  methods whose intervals overlap are not told apart by this test split;
* **the classical baseline**: every method against ``ecg-features`` (else ``ecg-features-lead2``),
  Holm-corrected as a family of its own; ``beat_baseline`` names those significantly better;
* **the minimum detectable difference**: ``(z_{1-a/2} + z_power) * SE`` with SE the median
  bootstrap standard error of the paired differences against the reference (normal
  approximation), at ``a`` = 0.05 and at Holm's first step ``a / comparisons`` (the smallest
  p-value must clear that for anything to be significant).

This replaces bare ranks and the mean rank over tasks (:mod:`ecgbench.reporting.leaderboard`):
a rank difference that no test supports is not printed as one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.contracts import HIGHER_IS_BETTER
from ecgbench.evaluation.stats import (
    PAIRED_RESAMPLES,
    bootstrap_cache_dir,
    holm,
    load_sets,
    paired_test,
    reference_on_validation,
    seed_draws,
    select_records,
)

POWER = 0.8
BASELINES = ("ecg-features", "ecg-features-lead2")  # the first present is the one to beat
RANK_LEVEL = 0.95
# Bump when what a Separation holds or how it is computed changes: stored separations
# (:mod:`ecgbench.reporting.leaderboard.tested`) of another version are recomputed.
VERSION = 1


@dataclass
class Separation:
    """One task's separation of its methods (see the module docstring); JSON-friendly."""

    task_key: str
    preset: str
    metric: str
    higher_is_better: bool
    reference: str | None = None
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> test against the reference
    rank_intervals: dict[str, list[int]] = field(default_factory=dict)
    top_group: list[str] = field(default_factory=list)
    above_reference: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it is not tested
    baseline: str | None = None  # the classical baseline tested against, when it ran
    beat_baseline: list[str] = field(default_factory=list)  # significantly better than it (Holm)
    standard_error: float | None = None
    detectable: float | None = None  # minimum detectable difference at alpha
    detectable_holm: float | None = None  # ... at Holm's first step
    alpha: float = 0.05
    power: float = POWER
    resamples: int = PAIRED_RESAMPLES

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Separation:
        return cls(**data)


def separate(results: list[dict[str, Any]], task: str, results_dir: str | Path, *, preset: str | None = None,
             protocol: str = "frozen-probe", n_resamples: int = PAIRED_RESAMPLES, seed: int = 0,
             alpha: float = 0.05, power: float = POWER, cache_dir: Path | None = None) -> Separation:
    """The :class:`Separation` of one task's methods from their stored test predictions."""
    chosen, skipped, meta = select_records(results, task, preset, protocol, None)
    higher = HIGHER_IS_BETTER[meta["metric"]]
    found = Separation(meta["task_key"], meta["preset"], meta["metric"], higher, skipped=skipped,
                       alpha=alpha, power=power, resamples=n_resamples)
    loaded, truth = load_sets(chosen, Path(results_dir), skipped)
    if len(loaded) < 2:
        return found
    found.reference = reference_on_validation({m: chosen[m] for m in loaded}, higher)
    cache = bootstrap_cache_dir() if cache_dir is None else cache_dir
    draws = {}
    for method in sorted(loaded):
        point, per_seed = seed_draws(meta["kind"], meta["metric"], truth["y_true"], truth["patient_ids"],
                                     loaded[method], n_resamples, seed, cache)
        draws[method] = (point, per_seed.mean(axis=0))
    _test_against_reference(found, draws)
    _test_against_baseline(found, draws)
    found.rank_intervals = rank_intervals({m: d for m, (_, d) in draws.items()}, higher)
    return found


def _test_against_reference(found: Separation, draws: dict[str, tuple[float, np.ndarray]]) -> None:
    reference = found.reference
    if reference is None:
        return
    others = [m for m in sorted(draws) if m != reference]
    tests = {m: paired_test(found.metric, draws[m], draws[reference]) for m in others}
    reject, adjusted = holm([tests[m].p_value for m in others], found.alpha)
    sign = 1 if found.higher_is_better else -1
    errors = []
    for method, significant, p_holm in zip(others, reject, adjusted):
        test = tests[method]
        found.tests[method] = {"difference": test.difference, "ci_low": test.ci_low, "ci_high": test.ci_high,
                               "p_value": test.p_value, "p_holm": p_holm, "significant": significant}
        below = significant and sign * test.difference < 0
        if not below:
            found.top_group.append(method)
        if significant and sign * test.difference > 0:
            found.above_reference.append(method)
        diffs = draws[method][1] - draws[reference][1]
        diffs = diffs[np.isfinite(diffs)]
        if len(diffs) > 1:
            errors.append(float(np.std(diffs, ddof=1)))
    found.top_group = [reference, *found.top_group]
    if errors:
        found.standard_error, found.detectable, found.detectable_holm = detectable_difference(
            errors, found.alpha, found.power, len(others))


def _test_against_baseline(found: Separation, draws: dict[str, tuple[float, np.ndarray]]) -> None:
    found.baseline = next((b for b in BASELINES if b in draws), None)
    if found.baseline is None:
        return
    others = [m for m in sorted(draws) if m != found.baseline]
    tests = [paired_test(found.metric, draws[m], draws[found.baseline]) for m in others]
    reject, _ = holm([t.p_value for t in tests], found.alpha)
    sign = 1 if found.higher_is_better else -1
    found.beat_baseline = [m for m, t, r in zip(others, tests, reject) if r and sign * t.difference > 0]


def detectable_difference(errors: list[float], alpha: float, power: float,
                          comparisons: int) -> tuple[float, float, float]:
    """(median SE, minimum detectable difference at ``alpha``, at ``alpha / comparisons``)."""
    from scipy.stats import norm

    se = float(np.median(errors))
    beta = norm.ppf(power)
    return (se, float((norm.ppf(1 - alpha / 2) + beta) * se),
            float((norm.ppf(1 - alpha / (2 * max(1, comparisons))) + beta) * se))


def rank_intervals(draws: dict[str, np.ndarray], higher: bool, level: float = RANK_LEVEL) -> dict[str, list[int]]:
    """method -> [low, high]: the central ``level`` range of its rank over the resamples, where a
    method's rank on a resample is 1 + the number of methods strictly better on it (undefined
    values count as worst)."""
    methods = sorted(draws)
    values = np.stack([draws[m] for m in methods])  # (methods, resamples)
    worst = -math.inf if higher else math.inf
    values = np.where(np.isfinite(values), values, worst)
    if not higher:
        values = -values
    ranks = 1 + (values[None, :, :] > values[:, None, :]).sum(axis=1)  # [m, r]: methods better than m
    tail = (1 - level) / 2
    low = np.quantile(ranks, tail, axis=1, method="inverted_cdf")
    high = np.quantile(ranks, 1 - tail, axis=1, method="inverted_cdf")
    return {m: [int(lo), int(hi)] for m, lo, hi in zip(methods, low, high)}
