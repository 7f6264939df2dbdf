"""Statistics across results: seeds, paired bootstrap between methods, Holm correction.

Seeds. A replicate seed ``s`` (``--seeds``) is the only seed a user picks. Every stage draws
its own independent stream from it with :func:`ecgbench.core.config.derive_seed` (NumPy
``SeedSequence`` of ``s`` and the stage name): ``init`` and ``pretrain`` for the encoder,
``probe/<task>/<probe>`` for the probe's ``random_state``, ``bootstrap/<task>/<probe>`` for the
confidence interval, ``label-subset/<task>`` for label-efficiency subsets. So pretraining and
probe randomness are kept apart (changing a probe or its seed never changes the encoder, and
two probes never share a stream), while one replicate reruns everything. Both seeds are stored
in every result (``seed``, ``probe_seed``). Consequences for the numbers:

* mean +- std over replicate seeds (:func:`ecgbench.reporting.tables.cell`, summarised by
  :func:`seed_summary`) covers pretraining *and* probe randomness together;
* the patient-level bootstrap CI of one result (:func:`ecgbench.evaluation.metrics.bootstrap_ci`) covers
  test-set sampling only;
* the paired bootstrap here compares two methods on the *same* test records: each resample
  draws patients with replacement once and scores both methods on it, so the patient-to-patient
  variation common to both cancels. With several seeds per method, each method's value on a
  resample is the mean over its seeds (the seeds are fixed, not resampled), so the test answers
  "is the seed-averaged difference larger than test-set sampling explains?";
* with ``resample_seeds=True`` (:func:`compare_methods`; the audit's control comparison) each
  resample also draws every method's seeds with replacement, independently per method (a
  hierarchical bootstrap: seeds, then patients shared by both methods), so the test asks whether
  the difference exceeds test-set sampling *and* seed-to-seed variation. It is the stricter of
  the two; with one seed it equals the fixed-seed test, and with n seeds the bootstrap's seed
  variance is (n - 1) / n of the sample variance, so with three seeds it is still mild.

Per-record test predictions come from the ``.npz`` the runner stores next to each result
(:func:`write_predictions`, referenced by the result's ``"predictions"`` field). Results
written before predictions were stored cannot enter a paired test; :func:`compare_methods`
lists them as skipped with that reason.

P-values are two-sided percentile-bootstrap p-values, ``min(1, 2 min(P(d* <= 0), P(d* >= 0)))``
with the add-one correction, so a p-value is never exactly 0 and p < alpha agrees with the
(1 - alpha) percentile CI excluding 0 up to the correction. :data:`PAIRED_RESAMPLES` is 20,000
because Holm over a task's 28 comparisons asks whether the smallest raw p is below 0.05 / 28 = 0.0018: with
2,000 resamples the add-one floor is 0.001 and a margin near it came out significant under one
bootstrap seed and not under another (st-mem vs random-init on synth-sex@v3: Holm p 0.028 / 0.056);
with 20,000 both seeds agree (0.022 / 0.028). Holm-Bonferroni (:func:`holm`) is
implemented here (statsmodels is not a dependency) and tested against hand-computed values.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.contracts import HIGHER_IS_BETTER
from ecgbench.core.rows import label_configs, row_of

PREDICTION_FIELDS = ("test_indices", "patient_ids", "y_true", "y_pred", "scores")
PAIRED_RESAMPLES = 20_000  # why so many: the module docstring


def bootstrap_cache_dir() -> Path:
    """Where compare_methods keeps each prediction set's resample values: the user's cache
    (``$ECGBENCH_CACHE``, else ``$XDG_CACHE_HOME/ecgbench``, else ``~/.cache/ecgbench``), never the
    results folder, so reading a checkout's results writes nothing into it."""
    import os

    root = os.environ.get("ECGBENCH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ecgbench"
    return Path(root) / "bootstrap"


# ----- stored per-record predictions ------------------------------------------------------------
def write_predictions(
    path: Path, test_indices, patient_ids, y_true, y_pred, scores
) -> None:
    """Test-split predictions of one result as a compressed ``.npz``, written atomically."""
    from ecgbench.core.store import atomic_write

    arrays = {"test_indices": np.asarray(test_indices, dtype=np.int64),
              "patient_ids": np.asarray(patient_ids), "y_true": np.asarray(y_true),
              "y_pred": np.asarray(y_pred)}
    if scores is not None:
        arrays["scores"] = np.asarray(scores, dtype=np.float32)

    def dump(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle, so numpy does not append ".npz"
            np.savez_compressed(handle, **arrays)

    atomic_write(path, dump)


def predictions_path(result: dict[str, Any], results_dir: Path) -> Path | None:
    """Where the result's predictions are, or None if it has none stored."""
    name = result.get("predictions")
    if not name:
        return None
    return Path(results_dir) / "runs" / result["run_id"] / result["task_key"] / name


def load_predictions(result: dict[str, Any], results_dir: Path) -> dict[str, np.ndarray]:
    """The arrays of :func:`write_predictions` for one stored result (``scores`` may be None)."""
    path = predictions_path(result, results_dir)
    if path is None:
        raise ValueError(f"result {result.get('key', '?')} has no stored test predictions")
    if not path.exists():
        raise ValueError(f"{path}: predictions file named by result {result.get('key', '?')} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable predictions file ({error})") from None
    missing = set(PREDICTION_FIELDS) - {"scores"} - set(arrays)  # regression stores no scores
    if missing:
        raise ValueError(f"{path}: predictions file lacks {sorted(missing)}")
    arrays.setdefault("scores", None)
    return arrays


# ----- seeds -------------------------------------------------------------------------------------
def seed_summary(records: Sequence[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Mean and sample std (ddof=1, as in the tables) of ``metric`` over replicate seeds."""
    seeds = [r["seed"] for r in records]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"duplicate replicate seeds {sorted(seeds)}: pass one result per seed")
    values = np.array([_metric(r, metric) for r in records], dtype=float)
    finite = values[np.isfinite(values)]
    return {
        "metric": metric,
        "mean": float(finite.mean()) if len(finite) else math.nan,
        "std": float(finite.std(ddof=1)) if len(finite) > 1 else math.nan,
        "n": len(finite),
        "seeds": sorted(seeds),
        "probe_seeds": [r.get("probe_seed") for r in sorted(records, key=lambda r: r["seed"])],
    }


def _metric(result: dict[str, Any], metric: str) -> float:
    value = result.get("metrics", {}).get(metric)
    return math.nan if value is None else float(value)


# ----- paired bootstrap and Holm ---------------------------------------------------------------
@dataclass
class PairedTest:
    """``difference`` is a - b in the metric's units (positive = a higher)."""

    metric: str
    value_a: float
    value_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    resamples: int  # resamples where both values were defined
    level: float = 0.95


def paired_bootstrap(
    kind: str, metric: str, y_true, groups,
    a: Sequence[tuple[Any, Any]], b: Sequence[tuple[Any, Any]],
    n_resamples: int = PAIRED_RESAMPLES, seed: int = 0, level: float = 0.95,
) -> PairedTest:
    """Paired patient-level bootstrap of ``metric(a) - metric(b)`` on the same test rows.

    ``a`` and ``b`` are lists of ``(y_pred, scores)``, one per seed of each method, all aligned
    with ``y_true`` and ``groups`` (patient ids). Every resample draws patients with
    replacement once (the same weights for every prediction set: :func:`bootstrap_values`
    with one seed and the same groups), and each method's value is its mean over seeds.
    """
    draws_a = seed_mean_draws(kind, metric, y_true, groups, a, n_resamples, seed)
    draws_b = seed_mean_draws(kind, metric, y_true, groups, b, n_resamples, seed)
    return paired_test(metric, draws_a, draws_b, level)


def seed_mean_draws(kind: str, metric: str, y_true, groups, sets: Sequence[tuple[Any, Any]],
                    n_resamples: int = PAIRED_RESAMPLES, seed: int = 0) -> tuple[float, np.ndarray]:
    """One method's metric on the test rows and on each patient-level resample (the resamples
    of ``seed``, shared by every method), both averaged over its seeds' prediction sets."""
    from ecgbench.evaluation.metrics import check_metric

    check_metric(kind, metric)
    if not sets:
        raise ValueError("a paired bootstrap needs at least one prediction set per method")
    for y_pred, _ in sets:
        if len(y_pred) != len(y_true):
            raise ValueError(f"predictions for {len(y_pred)} rows, truth for {len(y_true)}")
    point, per_seed = seed_draws(kind, metric, y_true, groups, sets, n_resamples, seed)
    return point, per_seed.mean(axis=0)


def seed_draws(kind: str, metric: str, y_true, groups, sets: Sequence[tuple[Any, Any]],
               n_resamples: int = PAIRED_RESAMPLES, seed: int = 0,
               cache_dir: Path | None = None) -> tuple[float, np.ndarray]:
    """As :func:`seed_mean_draws`, but the resample values per seed: ``(seeds, n_resamples)``.
    With ``cache_dir``, each seed's resample values are read from / written to
    :func:`cached_bootstrap_values`."""
    from ecgbench.evaluation.metrics import bootstrap_values, metric_value

    y_true, groups = np.asarray(y_true), np.asarray(groups)
    point = np.mean([metric_value(kind, metric, y_true, p, s) for p, s in sets])
    if cache_dir is None:
        per_seed = [bootstrap_values(kind, metric, y_true, p, s, groups, n_resamples, seed) for p, s in sets]
    else:
        per_seed = [cached_bootstrap_values(cache_dir, kind, metric, y_true, p, s, groups, n_resamples, seed)
                    for p, s in sets]
    return float(point), np.stack(per_seed)


def cached_bootstrap_values(cache_dir: Path, kind: str, metric: str, y_true, y_pred, scores, groups,
                            n_resamples: int, seed: int) -> np.ndarray:
    """:func:`ecgbench.evaluation.metrics.bootstrap_values`, kept in ``cache_dir`` under a hash of
    everything it is computed from: the arrays, the metric, the resample count and seed, and the
    source of ``ecgbench.evaluation.metrics`` (so a changed metric is never read from an old cache). The
    leaderboard, the audit and the report test the same prediction sets; this computes each
    once. A cache that cannot be written costs only the time (a warning says so)."""
    from ecgbench.core.store import StoreError, cached_array, warn, write_npy
    from ecgbench.evaluation.metrics import bootstrap_values

    arrays = [np.asarray(a) for a in (y_true, y_pred, groups)] + ([] if scores is None else [np.asarray(scores)])
    path = Path(cache_dir) / f"{_bootstrap_key(kind, metric, n_resamples, seed, arrays)}.npy"
    values = cached_array(path, (n_resamples,))
    if values is not None:
        return values
    values = bootstrap_values(kind, metric, y_true, y_pred, scores, groups, n_resamples, seed)
    try:
        write_npy(path, values)
    except StoreError as error:
        warn(f"{error} (bootstrap cache; the values are recomputed next time)")
    return values


def _bootstrap_key(kind: str, metric: str, n_resamples: int, seed: int, arrays: list[np.ndarray]) -> str:
    import hashlib

    import ecgbench.evaluation.metrics

    digest = hashlib.sha256(Path(ecgbench.evaluation.metrics.__file__).read_bytes())
    digest.update(repr((kind, metric, int(n_resamples), int(seed), len(arrays))).encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(repr((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    return digest.hexdigest()[:40]


def seed_resampled_draws(per_seed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each resample's value with the seeds drawn with replacement as well: row ``r`` averages
    ``len(per_seed)`` draws of ``per_seed[:, r]`` (the hierarchical bootstrap's seed level)."""
    n_seeds, n_resamples = per_seed.shape
    picks = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    return per_seed[picks, np.arange(n_resamples)[:, None]].mean(axis=1)


def paired_test(metric: str, a: tuple[float, np.ndarray], b: tuple[float, np.ndarray],
                level: float = 0.95) -> PairedTest:
    """The percentile CI and two-sided p-value of a - b from two methods' :func:`seed_mean_draws`."""
    (point_a, draws_a), (point_b, draws_b) = a, b
    diffs = draws_a - draws_b
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) == 0:
        return PairedTest(metric, point_a, point_b, point_a - point_b, math.nan, math.nan, math.nan, 0, level)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    count = len(diffs)
    below = (np.sum(diffs <= 0) + 1) / (count + 1)
    above = (np.sum(diffs >= 0) + 1) / (count + 1)
    p_value = min(1.0, 2 * min(below, above))
    return PairedTest(metric, point_a, point_b, point_a - point_b, float(low), float(high),
                      float(p_value), int(count), level)


def holm(p_values: Sequence[float], alpha: float = 0.05) -> tuple[list[bool], list[float]]:
    """Holm-Bonferroni step-down: (reject, adjusted p-values), in the input order.

    Adjusted ``p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`` over the ascending p-values;
    reject where the adjusted value is <= ``alpha``. NaN p-values (a comparison that could not
    be made) are not counted in ``m``, are never rejected and stay NaN.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(p), math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    reject = [bool(np.isfinite(v) and v <= alpha) for v in adjusted]
    return reject, [float(v) for v in adjusted]


# ----- comparing the methods of one task -----------------------------------------------------------
@dataclass
class Comparison:
    """All pairwise tests of one task and preset; ``rows`` as dicts for tables."""

    task_key: str
    preset: str
    metric: str
    higher_is_better: bool
    reference: str | None  # the method compared against (best on validation, or named), else None
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it is not compared
    alpha: float = 0.05

    def significant(self, method: str) -> bool | None:
        """Against the reference: is ``method``'s difference significant after Holm?"""
        for row in self.rows:
            if method in (row["method_a"], row["method_b"]) and self.reference in (row["method_a"], row["method_b"]):
                return row["significant"]
        return None


def compare_methods(
    results: Iterable[dict[str, Any]], task: str, results_dir: str | Path, *,
    preset: str | None = None, protocol: str = "frozen-probe", probe: str | None = None,
    reference: str = "best", n_resamples: int = PAIRED_RESAMPLES, seed: int = 0, alpha: float = 0.05,
    resample_seeds: bool = False, methods: Collection[str] | None = None, cache_dir: Path | None = None,
) -> Comparison:
    """Paired bootstrap tests between the methods of one task, Holm-corrected.

    ``results``: result records (e.g. ``ResultStore(results_dir).results()``); ``task``: a
    task name (``synth-superclass``) or key (``synth-superclass@v1``); ``results_dir``: the
    store root the records came from (predictions are read from there). ``preset`` is needed
    when the records hold several presets (numbers of two presets are never compared).
    ``probe``: one probe for every method, or None for each method's probe with the best mean
    *validation* score over seeds (never chosen on test). ``reference``: ``"best"`` tests every
    method against the one with the best mean *validation* score (m - 1 tests; never the best on
    test, :func:`reference_on_validation`), ``"all"`` tests every
    pair (m (m - 1) / 2 tests), or a method name tests every method against that one. The
    family for Holm is all the tests made. Methods without stored predictions, or whose test
    rows differ from the others', are listed in ``skipped`` with the reason. ``resample_seeds``
    adds the hierarchical test (seeds drawn too; module docstring) to every row as
    ``ci_low_seeds``, ``ci_high_seeds``, ``p_value_seeds``, ``p_holm_seeds`` and
    ``significant_seeds``, Holm-corrected as a family of its own. Each prediction set's resample
    values are cached under ``cache_dir`` (default :func:`bootstrap_cache_dir`; :func:`cached_bootstrap_values`).
    ``methods``: compare only these (and a named reference); None: every method stored.
    """
    if methods is not None:
        keep = set(methods) | {reference}
        results = [r for r in results if r.get("method") in keep or r.get("row") in keep]
    chosen, skipped, meta = select_records(results, task, preset, protocol, probe)
    metric, kind, higher = meta["metric"], meta["kind"], HIGHER_IS_BETTER[meta["metric"]]
    loaded, truth = load_sets(chosen, Path(results_dir), skipped)
    comparison = Comparison(meta["task_key"], meta["preset"], metric, higher, None, [], skipped, alpha)
    if len(loaded) < 2:
        return comparison
    means = {m: float(np.nanmean([_metric(r, metric) for r in chosen[m]])) for m in loaded}
    if reference == "best":  # the best on validation: a reference chosen by its test score would be a choice by test
        reference = reference_on_validation({m: chosen[m] for m in loaded if math.isfinite(means[m])}, higher) or "best"
    pairs = _pairs(list(loaded), means, higher, reference, comparison)
    cache = bootstrap_cache_dir() if cache_dir is None else cache_dir
    per_seed = {m: seed_draws(kind, metric, truth["y_true"], truth["patient_ids"], loaded[m], n_resamples, seed, cache)
                for m in sorted({m for pair in pairs for m in pair})}  # once per method: the reference enters every pair
    draws = {m: (point, values.mean(axis=0)) for m, (point, values) in per_seed.items()}
    for first, second in pairs:
        test = paired_test(metric, draws[first], draws[second])
        comparison.rows.append({
            "method_a": first, "method_b": second,
            "probe_a": chosen[first][0]["probe"], "probe_b": chosen[second][0]["probe"],
            "seeds_a": len(loaded[first]), "seeds_b": len(loaded[second]),
            "value_a": test.value_a, "value_b": test.value_b, "difference": test.difference,
            "ci_low": test.ci_low, "ci_high": test.ci_high, "p_value": test.p_value,
            "resamples": test.resamples,
        })
    _add_holm(comparison.rows, "", alpha)
    if resample_seeds:
        _add_seed_resampled_tests(comparison.rows, metric, per_seed, seed, alpha)
    return comparison


def _add_holm(rows: list[dict[str, Any]], suffix: str, alpha: float) -> None:
    reject, adjusted = holm([row["p_value" + suffix] for row in rows], alpha)
    for row, significant, p_holm in zip(rows, reject, adjusted):
        row["p_holm" + suffix], row["significant" + suffix] = p_holm, significant


def _add_seed_resampled_tests(rows: list[dict[str, Any]], metric: str, per_seed: dict[str, tuple[float, np.ndarray]],
                              seed: int, alpha: float) -> None:
    """Each method's seeds drawn with replacement per resample, from a stream of its own."""
    from ecgbench.core.config import derive_seed

    draws = {m: (point, seed_resampled_draws(values, np.random.default_rng(derive_seed(seed, f"seeds/{m}"))))
             for m, (point, values) in per_seed.items()}
    for row in rows:
        test = paired_test(metric, draws[row["method_a"]], draws[row["method_b"]])
        row["ci_low_seeds"], row["ci_high_seeds"], row["p_value_seeds"] = test.ci_low, test.ci_high, test.p_value
    _add_holm(rows, "_seeds", alpha)


def select_records(results, task: str, preset, protocol: str, probe) -> tuple[dict, dict, dict]:
    """method -> the records (one per seed) of its chosen probe; skipped methods; task facts."""
    records = [r for r in results if task in (r.get("task"), r.get("task_key"))
               and r.get("protocol") == protocol and r.get("status") in (None, "ok")
               and "metrics" in r]
    presets = sorted({r["preset"] for r in records})
    if preset is None and len(presets) > 1:
        raise ValueError(f"results for {task} come from several presets ({', '.join(presets)}); pass preset=")
    records = [r for r in records if preset is None or r["preset"] == preset]
    if not records:
        raise ValueError(f"no {protocol} results for task {task!r}"
                         + (f" with preset {preset!r}" if preset else ""))
    keys = {r["task_key"] for r in records}
    if len(keys) > 1:
        raise ValueError(f"{task!r} matches several task versions ({', '.join(sorted(keys))}); pass the task key")
    first = records[0]
    meta = {"metric": first["main_metric"], "kind": first["task_kind"], "task_key": first["task_key"],
            "preset": first["preset"]}
    higher = HIGHER_IS_BETTER[meta["metric"]]
    by_method: dict[str, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in label_configs(records):  # one config, one compared row (ecgbench.core.rows)
        seen = by_method[row_of(r)][r["probe"]]
        if r["seed"] in seen:
            raise ValueError(f"two results for {row_of(r)} / {r['probe']} / seed {r['seed']} on "
                             f"{meta['task_key']}: {seen[r['seed']].get('key')} and {r.get('key')}")
        seen[r["seed"]] = r
    chosen, skipped = {}, {}
    for method, probes in sorted(by_method.items()):
        if probe is not None:
            if probe not in probes:
                skipped[method] = f"no {probe} results"
                continue
            name = probe
        else:
            name = _best_on_validation(probes, higher)
        chosen[method] = [probes[name][s] for s in sorted(probes[name])]
    return chosen, skipped, meta


def _best_on_validation(probes: dict[str, dict[int, dict]], higher: bool) -> str:
    """The probe :mod:`ecgbench.evaluation.selection` chooses (the tables' rule); the first in
    registry order when no probe has a validation score."""
    from ecgbench.evaluation.selection import best_on_validation, candidate_order

    scores = {name: [r.get("val_score") for r in probes[name].values()] for name in probes}
    return best_on_validation(scores, higher) or candidate_order(probes)[0]


def load_sets(chosen: dict, results_dir: Path, skipped: dict) -> tuple[dict, dict | None]:
    """method -> [(y_pred, scores) per seed], with every method on the same test rows."""
    loaded, truth = {}, None
    for method, records in chosen.items():
        if any(not r.get("predictions") for r in records):
            skipped[method] = "no stored test predictions (result written before they were stored)"
            continue
        sets = []
        for record in records:
            try:
                arrays = load_predictions(record, results_dir)
            except ValueError as error:  # e.g. a results copy without its .npz files
                skipped[method] = str(error)
                break
            if truth is None:
                truth = arrays
            elif not np.array_equal(arrays["test_indices"], truth["test_indices"]):
                skipped[method] = f"test rows differ from the other methods' ({record.get('key')})"
                break
            sets.append((arrays["y_pred"], arrays["scores"]))
        else:
            loaded[method] = sets
    return loaded, truth


def reference_on_validation(chosen: dict[str, list[dict[str, Any]]], higher: bool) -> str | None:
    """The method (row) whose chosen probe has the best mean validation score over seeds, by the
    selection rule of :mod:`ecgbench.evaluation.selection` (ties: its order)."""
    from ecgbench.evaluation.selection import best_on_validation

    return best_on_validation({m: [r.get("val_score") for r in records] for m, records in chosen.items()}, higher)


def _pairs(methods: list[str], means: dict[str, float], higher: bool, reference: str,
           comparison: Comparison) -> list[tuple[str, str]]:
    if reference == "all":
        return [(a, b) for i, a in enumerate(methods) for b in methods[i + 1:]]
    if reference == "best":  # no method with a finite test value
        return []
    if reference not in methods:
        raise ValueError(f"reference method {reference!r} has no comparable results "
                         f"(have: {', '.join(methods)})")
    comparison.reference = reference
    return [(reference, m) for m in methods if m != reference]
