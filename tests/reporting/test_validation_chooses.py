"""No output chooses by test: a planted case where validation and test disagree, on probes and on
methods, checked in every output that picks one thing (the tables' probe, the leaderboard's
probe and reference, the report, the paired tests and the audit's validation means)."""

from __future__ import annotations

import numpy as np
import pytest
from stored_results import binary_case, store_result

from ecgbench.core.store import ResultStore


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """'steady': best on validation with lr (its svc is perfect on test but worst on validation);
    'lucky': the best test scores, a poor validation score; 'weak': below both."""
    monkeypatch.setenv("ECGBENCH_CACHE", str(tmp_path / "cache"))
    y, groups, good, noise = binary_case(n=300)
    rng = np.random.default_rng(1)
    middling = y + rng.normal(0, 0.9, y.size)
    root = tmp_path / "results"
    for seed in (0, 1):
        store_result(root, "steady", seed, "lr", 0.95, y, groups, (middling > 0.5).astype(int), middling, preset="cpu")
        store_result(root, "steady", seed, "svc", 0.40, y, groups, y, y + 0.0, preset="cpu")  # perfect on test
        store_result(root, "lucky", seed, "lr", 0.55, y, groups, y, y + 0.05 * rng.normal(size=y.size), preset="cpu")
        store_result(root, "weak", seed, "lr", 0.50, y, groups, (noise > 0).astype(int), noise, preset="cpu")
    return root


def test_every_output_follows_validation(planted):
    from ecgbench.evaluation.separation import separate
    from ecgbench.evaluation.stats import compare_methods
    from ecgbench.reporting.audit import validation_means
    from ecgbench.reporting.leaderboard import build, render_block, stats_significance
    from ecgbench.reporting.report import render

    results = list(ResultStore(planted).results())
    comparison = compare_methods(results, "synth-sex", planted, n_resamples=500)
    assert comparison.reference == "steady"  # lucky is best on test
    assert {r["probe_a"] for r in comparison.rows} == {"lr"}  # steady's svc is best on test, lr on validation

    found = separate(results, "synth-sex", planted, n_resamples=500)
    assert found.reference == "steady" and found.above_reference == ["lucky"]

    (board,) = build(results, stats_significance(planted)[0])
    entries = {e.method: e for e in board.tasks[0].entries}
    assert entries["steady"].probe == "lr" and board.tasks[0].separation.reference == "steady"

    block = render_block(results, planted, registered={})
    assert "Reference: steady (best mean validation score)" in block
    assert "| steady " in block and "| svc " not in block  # the test-best probe appears nowhere
    assert "Significantly above the validation-chosen reference on test" in block and "lucky" in block

    page = render(results, planted, samples=[])
    assert "Reference: steady (best mean validation score)" in page and ">svc<" not in page

    assert max(validation_means(results, "synth-sex@v1", "cpu", "lr").items(), key=lambda kv: kv[1])[0] == "steady"
