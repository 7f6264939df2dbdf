"""Paired bootstrap, Holm correction, stored predictions and compare_methods (ecgbench.evaluation.stats)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from stored_results import binary_case, store_result

from ecgbench.core.store import ResultStore, write_json
from ecgbench.evaluation.metrics import metric_value
from ecgbench.evaluation.stats import (
    compare_methods,
    holm,
    load_predictions,
    paired_bootstrap,
    seed_resampled_draws,
    seed_summary,
    write_predictions,
)


def test_identical_methods_give_p_one_and_a_zero_interval():
    y, groups, good, _ = binary_case()
    pred = (good > 0.5).astype(int)
    test = paired_bootstrap("binary", "macro_auroc", y, groups, [(pred, good)], [(pred, good.copy())],
                            n_resamples=300, seed=1)
    assert test.difference == 0 and test.ci_low == 0 and test.ci_high == 0
    assert test.p_value == 1.0 and test.resamples == 300


def test_a_clearly_better_method_has_a_small_p_and_a_positive_interval():
    y, groups, good, noise = binary_case()
    better = [((good > 0.5).astype(int), good)]
    worse = [((noise > 0).astype(int), noise)]
    test = paired_bootstrap("binary", "macro_auroc", y, groups, better, worse, n_resamples=500, seed=2)
    assert test.value_a == pytest.approx(metric_value("binary", "macro_auroc", y, None, good))
    assert test.difference > 0.3 and test.ci_low > 0.2
    assert test.p_value == pytest.approx(2 / 501)  # no resample favours the worse one: add-one floor
    reverse = paired_bootstrap("binary", "macro_auroc", y, groups, worse, better, n_resamples=500, seed=2)
    assert reverse.difference == pytest.approx(-test.difference)
    assert (reverse.ci_low, reverse.ci_high) == pytest.approx((-test.ci_high, -test.ci_low))


def test_pairing_removes_the_shared_patient_variation():
    """Two methods that differ by a small, consistent margin on every record: the paired CI
    of the difference is far narrower than each method's own CI."""
    from ecgbench.evaluation.metrics import bootstrap_ci

    rng = np.random.default_rng(3)
    n = 300
    y = rng.normal(50, 10, n)
    groups = np.arange(n)
    base = y + rng.normal(0, 8, n)
    a = y + 0.9 * (base - y)  # every error shrunk by 10%
    test = paired_bootstrap("regression", "mae", y, groups, [(a, None)], [(base, None)], 1000, 4)
    low, high = bootstrap_ci("regression", "mae", y, base, None, groups, 1000, 4)
    assert test.ci_high < 0 and test.p_value < 0.01
    assert (test.ci_high - test.ci_low) < 0.3 * (high - low)


def test_several_seeds_are_averaged_per_method():
    y, groups, good, noise = binary_case()
    sets = [((good > 0.5).astype(int), good), ((noise > 0).astype(int), noise)]
    test = paired_bootstrap("binary", "accuracy", y, groups, sets, sets[:1], n_resamples=100, seed=0)
    expected = np.mean([metric_value("binary", "accuracy", y, p, s) for p, s in sets])
    assert test.value_a == pytest.approx(expected)


def test_seed_resampled_draws_average_seeds_drawn_with_replacement():
    """Against a plain loop: resample r averages per_seed[k, r] over the seeds k drawn for it."""
    per_seed = np.random.default_rng(0).normal(size=(3, 50))
    drawn = seed_resampled_draws(per_seed, np.random.default_rng(7))
    picks = np.random.default_rng(7).integers(0, 3, size=(50, 3))
    assert drawn == pytest.approx([np.mean([per_seed[k, r] for k in picks[r]]) for r in range(50)])
    one = per_seed[:1]
    assert np.array_equal(seed_resampled_draws(one, np.random.default_rng(1)), one[0])  # one seed: nothing to draw


def test_resampling_seeds_catches_a_gain_carried_by_one_seed(tmp_path):
    """A method better than the control on one of its three seeds only is significant with the
    seeds held fixed (its seed mean beats the control on almost every patient resample) but not
    with the seeds resampled; one better on all three seeds is significant either way."""
    rng = np.random.default_rng(5)
    n = 400
    y, groups = rng.normal(50, 10, n), np.arange(n)
    control = y + rng.normal(0, 8, n)
    shrunk = y + 0.5 * (control - y)
    steady = y + 0.83 * (control - y)
    sets = {"random-init": [control] * 3, "one-seed": [shrunk, control, control], "steady": [steady] * 3}
    for method, seeds in sets.items():
        for seed, y_pred in enumerate(seeds):
            path = ResultStore(tmp_path).result_path(f"{method}-{seed}", "synth-age@v4", "frozen-probe-lr-0")
            write_predictions(path.with_suffix(".npz"), np.arange(n), groups, y, y_pred, None)
            write_json(path, {"key": f"{method}-{seed}/synth-age@v4/frozen-probe-lr-0", "run_id": f"{method}-{seed}",
                              "method": method, "task": "synth-age", "task_key": "synth-age@v4",
                              "task_kind": "regression", "main_metric": "mae", "probe": "lr",
                              "protocol": "frozen-probe", "preset": "cpu", "seed": seed, "val_score": 1.0,
                              "predictions": path.with_suffix(".npz").name,
                              "metrics": {"mae": metric_value("regression", "mae", y, y_pred, None)}})
    results = list(ResultStore(tmp_path).results())
    comparison = compare_methods(results, "synth-age", tmp_path, reference="random-init", n_resamples=2000,
                                 resample_seeds=True)
    rows = {row["method_b"]: row for row in comparison.rows}
    assert rows["one-seed"]["significant"] and not rows["one-seed"]["significant_seeds"]
    assert rows["one-seed"]["p_value_seeds"] > 0.3  # all three draws are a control-equal seed in (2/3)^3 of resamples
    assert rows["steady"]["significant"] and rows["steady"]["significant_seeds"]
    assert rows["steady"]["ci_low_seeds"] == pytest.approx(rows["steady"]["ci_low"])  # identical seeds: no seed noise
    plain = compare_methods(results, "synth-age", tmp_path, reference="random-init", n_resamples=2000)
    assert [r["p_value"] for r in plain.rows] == [r["p_value"] for r in comparison.rows]
    assert "p_value_seeds" not in plain.rows[0]


def test_paired_bootstrap_rejects_misaligned_predictions():
    y, groups, _, _ = binary_case()
    with pytest.raises(ValueError, match="rows"):
        paired_bootstrap("binary", "accuracy", y, groups, [(np.zeros(10, int), None)], [(y, None)], 10, 0)


def test_holm_against_hand_computed_values():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.06, 0.04*1) = 0.06
    reject, adjusted = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert reject == [True, False, False, True]
    assert holm([0.5, 0.6])[1] == [1.0, 1.0]  # capped at 1, monotone
    reject, adjusted = holm([math.nan, 0.01, 0.02])  # a comparison that could not be made
    assert math.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.02, 0.02])
    assert reject == [False, True, True]
    assert holm([]) == ([], [])


def test_holm_matches_statsmodels():
    from statsmodels.stats import multitest
    p = np.random.default_rng(0).uniform(0, 0.1, 12)
    reject, adjusted = holm(p, 0.05)
    expected_reject, expected, _, _ = multitest.multipletests(p, 0.05, method="holm")
    assert adjusted == pytest.approx(expected) and reject == list(expected_reject)


def test_seed_summary_matches_the_table_convention():
    records = [{"seed": s, "probe_seed": 10 + s, "metrics": {"mae": v}} for s, v in [(0, 1.0), (1, 2.0), (2, 4.0)]]
    summary = seed_summary(records, "mae")
    assert summary["mean"] == pytest.approx(7 / 3) and summary["std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert summary["seeds"] == [0, 1, 2] and summary["probe_seeds"] == [10, 11, 12]
    with pytest.raises(ValueError, match="duplicate"):
        seed_summary(records + records[:1], "mae")


# ----- compare_methods on stored results ---------------------------------------------------------
@pytest.fixture
def stored(tmp_path):
    y, groups, good, noise = binary_case()
    root = tmp_path / "results"
    for seed in (0, 1):
        shift = 0.01 * seed
        store_result(root, "strong", seed, "lr", 0.9, y, groups, (good > 0.5).astype(int), good + shift)
        # a better test score but a worse validation score: must not be chosen
        store_result(root, "strong", seed, "knn", 0.5, y, groups, y, y + 0.0)
        store_result(root, "twin", seed, "lr", 0.9, y, groups, (good > 0.5).astype(int), good + shift)
        store_result(root, "weak", seed, "lr", 0.6, y, groups, (noise > 0).astype(int), noise)
    store_result(root, "old", 0, "lr", 0.9, y, groups, y, good, predictions=False)
    return root


def test_compare_methods_against_the_best(stored):
    results = list(ResultStore(stored).results())
    comparison = compare_methods(results, "synth-sex", stored, n_resamples=300, seed=0)
    assert comparison.metric == "macro_auroc" and comparison.higher_is_better
    assert comparison.skipped == {"old": "no stored test predictions (result written before they were stored)"}
    assert comparison.reference == "strong"  # tie with its twin goes to the first name
    rows = {row["method_b"]: row for row in comparison.rows}
    assert set(rows) == {"twin", "weak"} and all(r["probe_a"] == "lr" for r in rows.values())
    assert rows["twin"]["p_value"] == 1.0 and not rows["twin"]["significant"]
    assert rows["weak"]["significant"] and rows["weak"]["difference"] > 0.3
    assert rows["weak"]["p_holm"] == pytest.approx(min(1, 2 * rows["weak"]["p_value"]))
    assert rows["weak"]["seeds_a"] == 2 and comparison.significant("weak") is True
    assert comparison.significant("twin") is False


def test_compare_methods_matches_one_paired_bootstrap_per_pair(stored):
    """Each method's resample draws are computed once per task; the rows must equal the
    pair-by-pair test."""
    from ecgbench.evaluation.stats import load_predictions

    results = list(ResultStore(stored).results())
    comparison = compare_methods(results, "synth-sex", stored, n_resamples=300, seed=3)

    def sets(method):
        chosen = sorted((r for r in results if r["method"] == method and r["probe"] == "lr"), key=lambda r: r["seed"])
        arrays = [load_predictions(r, stored) for r in chosen]
        return arrays[0], [(a["y_pred"], a["scores"]) for a in arrays]

    truth, strong = sets("strong")
    for row in comparison.rows:
        alone = paired_bootstrap("binary", "macro_auroc", truth["y_true"], truth["patient_ids"],
                                 strong, sets(row["method_b"])[1], n_resamples=300, seed=3)
        assert (row["difference"], row["ci_low"], row["ci_high"], row["p_value"]) == pytest.approx(
            (alone.difference, alone.ci_low, alone.ci_high, alone.p_value))


def test_compare_all_pairs_and_a_fixed_probe(stored):
    results = list(ResultStore(stored).results())
    comparison = compare_methods(results, "synth-sex@v1", stored, reference="all", probe="lr", n_resamples=200)
    pairs = {(r["method_a"], r["method_b"]) for r in comparison.rows}
    assert pairs == {("strong", "twin"), ("strong", "weak"), ("twin", "weak")}
    assert comparison.reference is None


def test_compare_methods_refuses_to_mix_presets(stored):
    y, groups, good, _ = binary_case()
    store_result(stored, "strong", 0, "lr", 0.9, y, groups, y, good, preset="cpu")
    results = list(ResultStore(stored).results())
    with pytest.raises(ValueError, match="several presets"):
        compare_methods(results, "synth-sex", stored)
    assert compare_methods(results, "synth-sex", stored, preset="cpu").rows == []
    with pytest.raises(ValueError, match="no frozen-probe results"):
        compare_methods(results, "synth-age", stored)


def test_predictions_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "runs" / "m-1" / "t@v1" / "r.npz"
    write_predictions(path, [4, 7], [1, 1], np.array([[0, 1], [1, 0]]), np.array([[0, 1], [0, 0]]),
                      np.array([[0.1, 0.9], [0.4, 0.2]]))
    result = {"run_id": "m-1", "task_key": "t@v1", "predictions": "r.npz", "key": "m-1/t@v1/r"}
    arrays = load_predictions(result, tmp_path)
    assert arrays["test_indices"].tolist() == [4, 7] and arrays["scores"].shape == (2, 2)
    path.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="r.npz: not a readable predictions file"):
        load_predictions(result, tmp_path)
    with pytest.raises(ValueError, match="missing"):
        load_predictions({**result, "predictions": "gone.npz"}, tmp_path)


def test_bootstrap_cache_is_keyed_by_what_the_values_come_from(tmp_path):
    """A cache hit returns exactly the computed values; any change of predictions, truth,
    metric, resample count or seed is a different entry, never a stale read."""
    from ecgbench.evaluation.metrics import bootstrap_values
    from ecgbench.evaluation.stats import cached_bootstrap_values

    y, groups, good, bad = binary_case()
    pred = (good > 0.5).astype(int)
    args = ("binary", "macro_auroc", y, pred, good, groups, 200, 1)
    first = cached_bootstrap_values(tmp_path, *args)
    assert np.array_equal(first, bootstrap_values(*args), equal_nan=True)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    assert np.array_equal(cached_bootstrap_values(tmp_path, *args), first, equal_nan=True)
    variants = [("binary", "macro_auroc", y, pred, bad, groups, 200, 1),
                ("binary", "accuracy", y, pred, good, groups, 200, 1),
                ("binary", "macro_auroc", y, pred, good, groups, 200, 2),
                ("binary", "macro_auroc", y, pred, good, groups, 201, 1),
                ("binary", "macro_auroc", 1 - y, pred, good, groups, 200, 1),
                ("binary", "macro_auroc", y, pred, good, groups[::-1].copy(), 200, 1)]
    for variant in variants:
        assert np.array_equal(cached_bootstrap_values(tmp_path, *variant), bootstrap_values(*variant), equal_nan=True)
    assert len(list(tmp_path.glob("*.npy"))) == 1 + len(variants)


def test_a_damaged_bootstrap_cache_entry_is_recomputed(tmp_path, capsys):
    from ecgbench.evaluation.metrics import bootstrap_values
    from ecgbench.evaluation.stats import cached_bootstrap_values

    y, groups, good, _ = binary_case()
    args = ("binary", "macro_auroc", y, (good > 0.5).astype(int), good, groups, 100, 0)
    cached_bootstrap_values(tmp_path, *args)
    [entry] = tmp_path.glob("*.npy")
    entry.write_bytes(entry.read_bytes()[:40])  # a killed writer cannot do this (atomic), a full disk might
    again = cached_bootstrap_values(tmp_path, *args)
    assert f"{entry}: unreadable array" in capsys.readouterr().err
    assert np.array_equal(again, bootstrap_values(*args), equal_nan=True)


def test_compare_methods_reuses_its_cache_and_gives_the_same_rows(stored, tmp_path, monkeypatch):
    """The cache lives in the user's cache folder ($ECGBENCH_CACHE), never in the results folder."""
    monkeypatch.setenv("ECGBENCH_CACHE", str(tmp_path / "user-cache"))
    cache = tmp_path / "user-cache" / "bootstrap"
    results = list(ResultStore(stored).results())
    before = sorted(p.relative_to(stored) for p in stored.rglob("*"))
    first = compare_methods(results, "synth-sex", stored, n_resamples=300, seed=3, resample_seeds=True)
    entries = sorted(cache.glob("*.npy"))
    assert entries  # one per (method, seed) prediction set
    assert sorted(p.relative_to(stored) for p in stored.rglob("*")) == before  # nothing written beside the results
    stamps = [p.stat().st_mtime_ns for p in entries]
    second = compare_methods(results, "synth-sex", stored, n_resamples=300, seed=3, resample_seeds=True)
    assert second.rows == first.rows
    assert [p.stat().st_mtime_ns for p in sorted(cache.glob("*.npy"))] == stamps
