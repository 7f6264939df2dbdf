"""What a task's test can tell apart (ecgbench.evaluation.separation): the reference chosen on
validation even when test disagrees, the top group, rank intervals, the minimum detectable
difference, and agreement with compare_methods' paired tests."""

from __future__ import annotations

import numpy as np
import pytest
from stored_results import binary_case, store_result

from ecgbench.core.store import ResultStore
from ecgbench.evaluation.separation import detectable_difference, rank_intervals, separate
from ecgbench.evaluation.stats import compare_methods


@pytest.fixture
def disagreeing(tmp_path, monkeypatch):
    """'chosen' is best on validation but middling on test; 'test-best' is far better on test
    with a poor validation score; 'weak' is near chance; 'twin' equals 'chosen'."""
    monkeypatch.setenv("ECGBENCH_CACHE", str(tmp_path / "cache"))
    y, groups, good, noise = binary_case(n=400)
    root = tmp_path / "results"
    rng = np.random.default_rng(5)
    middling = y + rng.normal(0, 1.2, y.size)
    for seed in (0, 1):
        store_result(root, "chosen", seed, "lr", 0.95, y, groups, (middling > 0.5).astype(int), middling + 0.01 * seed)
        store_result(root, "twin", seed, "lr", 0.90, y, groups, (middling > 0.5).astype(int), middling + 0.01 * seed)
        store_result(root, "test-best", seed, "lr", 0.60, y, groups, y, y + 0.01 * rng.normal(size=y.size))
        store_result(root, "weak", seed, "lr", 0.55, y, groups, (noise > 0).astype(int), noise)
    return root


def test_the_reference_is_chosen_on_validation_even_when_test_disagrees(disagreeing):
    results = list(ResultStore(disagreeing).results())
    found = separate(results, "synth-sex", disagreeing, n_resamples=2000)
    assert found.reference == "chosen"  # the best on test is 'test-best'; validation chooses
    assert found.above_reference == ["test-best"]
    assert set(found.top_group) == {"chosen", "twin", "test-best"} and found.top_group[0] == "chosen"
    assert found.tests["weak"]["significant"] and found.tests["weak"]["difference"] < 0
    assert found.tests["twin"]["p_value"] == 1.0
    assert found.rank_intervals["test-best"] == [1, 1] and found.rank_intervals["weak"] == [4, 4]
    assert found.rank_intervals["chosen"] == found.rank_intervals["twin"] == [2, 2]  # identical: tied, both 2nd
    assert found.baseline is None  # no ecg-features row here


def test_methods_that_beat_the_classical_baseline_are_named(disagreeing):
    results = [{**r, "method": "ecg-features"} if r["method"] == "chosen" else r
               for r in ResultStore(disagreeing).results()]
    found = separate(results, "synth-sex", disagreeing, n_resamples=1000)
    assert found.baseline == "ecg-features" and found.beat_baseline == ["test-best"]


def test_tests_equal_compare_methods_against_the_same_reference(disagreeing):
    results = list(ResultStore(disagreeing).results())
    found = separate(results, "synth-sex", disagreeing, n_resamples=1000, seed=4)
    comparison = compare_methods(results, "synth-sex", disagreeing, reference="chosen", n_resamples=1000, seed=4)
    for row in comparison.rows:
        test = found.tests[row["method_b"]]
        assert test["p_value"] == row["p_value"] and test["p_holm"] == row["p_holm"]
        assert test["difference"] == pytest.approx(-row["difference"])  # other minus reference here


def test_lower_is_better_and_undefined_values_rank_last():
    draws = {"a": np.array([1.0, 2.0, 3.0, 1.0]), "b": np.array([2.0, 1.0, np.nan, 2.0]), "c": np.full(4, 5.0)}
    low = rank_intervals(draws, higher=False, level=0.5)
    assert low == {"a": [1, 1], "b": [1, 2], "c": [2, 3]}  # ranks a 1,2,1,1; b 2,1,3,2; c 3,3,2,3
    high = rank_intervals(draws, higher=True, level=1.0)
    assert high["c"] == [1, 1] and high["b"][1] == 3  # the NaN resample puts b last


def test_minimum_detectable_difference_by_hand():
    se, at_alpha, at_holm = detectable_difference([0.01, 0.03, 0.02], alpha=0.05, power=0.8, comparisons=4)
    assert se == pytest.approx(0.02)
    assert at_alpha == pytest.approx((1.959964 + 0.841621) * 0.02, rel=1e-5)
    assert at_holm == pytest.approx((2.497705 + 0.841621) * 0.02, rel=1e-5)  # z at 1 - 0.05 / 8


def test_fewer_than_two_tested_methods_have_no_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGBENCH_CACHE", str(tmp_path / "cache"))
    y, groups, good, _ = binary_case()
    store_result(tmp_path, "only", 0, "lr", 0.9, y, groups, (good > 0.5).astype(int), good)
    store_result(tmp_path, "old", 0, "lr", 0.9, y, groups, y, good, predictions=False)
    found = separate(list(ResultStore(tmp_path).results()), "synth-sex", tmp_path, n_resamples=100)
    assert found.reference is None and found.top_group == [] and "old" in found.skipped
