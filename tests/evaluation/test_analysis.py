"""Clustering quality, embedding plots, label-efficiency subsets, and the runner's analysis hook."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from ecgbench.evaluation.analysis import clustering_quality, embedding_plot, fraction_label, label_subset


def blobs(n_per: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [4, 0, 0], [0, 4, 0]], dtype=float)
    x = np.concatenate([c + rng.normal(0, 1, (n_per, 3)) for c in centres])
    return x, np.repeat(np.arange(3), n_per)


def test_clustering_quality_equals_sklearn_for_class_labels():
    x, y = blobs()
    quality = clustering_quality(x, y, "multiclass")
    assert quality["davies_bouldin"] == pytest.approx(davies_bouldin_score(x, y))
    assert quality["silhouette"] == pytest.approx(silhouette_score(x, y))
    assert quality["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(x, y))
    assert quality["n_records"] == 90 and quality["n_clusters"] == 3
    scrambled = clustering_quality(x, np.random.default_rng(1).permutation(y), "multiclass")
    assert scrambled["silhouette"] < quality["silhouette"] and scrambled["davies_bouldin"] > quality["davies_bouldin"]


def test_multilabel_uses_the_single_positive_records():
    x, y = blobs()
    onehot = np.eye(3, dtype=int)[y]
    onehot[:5] = [1, 1, 0]  # five records with two labels are left out
    quality = clustering_quality(x, onehot, "multilabel")
    assert quality["n_records"] == 85 and "single-positive" in quality["labels"]
    assert quality["silhouette"] == pytest.approx(silhouette_score(x[5:], y[5:]))


def test_clustering_is_skipped_with_a_reason_where_undefined():
    x, y = blobs()
    assert "regression" in clustering_quality(x, y.astype(float), "regression")["skipped"]
    single = clustering_quality(x, np.zeros(len(x), int), "binary")
    assert single["silhouette"] is None and "1 cluster" in single["skipped"]


def test_embedding_plot_writes_a_png(tmp_path):
    x, y = blobs(15)
    path = embedding_plot(tmp_path / "plots" / "p.png", x, y, "multiclass", ("a", "b", "c"), "title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reg = embedding_plot(tmp_path / "r.png", x, y.astype(float), "regression", (), "age")
    assert reg.stat().st_size > 1000
    assert not list(tmp_path.rglob("*.tmp"))


def test_label_subsets_are_patient_wise_nested_and_seeded():
    rng = np.random.default_rng(0)
    train = np.sort(rng.choice(5000, 1200, replace=False))
    patients = rng.integers(0, 400, len(train))
    subsets = {f: label_subset(train, patients, f, seed=7) for f in (0.01, 0.1, 0.5, 1.0)}
    assert np.array_equal(subsets[1.0], train)
    n_patients = len(np.unique(patients))
    for small, large in [(0.01, 0.1), (0.1, 0.5), (0.5, 1.0)]:
        assert set(subsets[small]) <= set(subsets[large])
    for fraction, rows in subsets.items():
        kept = np.unique(patients[np.isin(train, rows)])
        assert len(kept) == int(np.ceil(fraction * n_patients))
        # patient-wise: every record of a kept patient is in, every other record out
        assert np.array_equal(np.sort(train[np.isin(patients, kept)]), rows)
    assert np.array_equal(label_subset(train, patients, 0.1, seed=7), subsets[0.1])
    assert not np.array_equal(label_subset(train, patients, 0.1, seed=8), subsets[0.1])
    with pytest.raises(ValueError, match="fraction"):
        label_subset(train, patients, 0.0, seed=0)
    assert fraction_label(0.01) == "1%" and fraction_label(0.1) == "10%"


@pytest.mark.slow
def test_runner_hook_stores_predictions_clustering_plots_and_label_fractions(tmp_path, one_torch_thread):
    from ecgbench.core.store import ResultStore
    from ecgbench.evaluation.stats import load_predictions
    from ecgbench.running.runner import Runner, RunRequest, resolve

    overrides = {"data.n_patients": "90", "eval.bootstrap": "20", "eval.clustering": "true",
                 "eval.embedding_plot": "true", "eval.label_fractions": "0.25,1"}
    request = RunRequest(methods=["random-init"], tasks=["synth-superclass"], probes=["lr"], seeds=[0],
                         preset="smoke", results_dir=tmp_path / "results", data_root=tmp_path / "data",
                         overrides=overrides, track=False)
    results = Runner(resolve(request)).run()
    assert len(results) == 2
    by_fraction = {r["label_fraction"]: r for r in results}
    full, part = by_fraction[1.0], by_fraction[0.25]
    assert full["protocol"] == "frozen-probe" and part["protocol"] == "frozen-probe-25%-labels"
    assert "label_fraction" not in full["probe_spec"] and part["probe_spec"]["label_fraction"] == 0.25
    assert 0 < part["n"]["train"] < full["n"]["train"] and part["n"]["test"] == full["n"]["test"]
    assert full["timings"]["pretrain_seconds"] == 0.0 and full["timings"]["probe_seconds"] > 0
    assert full["clustering"] == part["clustering"] and full["clustering"]["n_clusters"] >= 2
    arrays = load_predictions(full, tmp_path / "results")
    assert len(arrays["test_indices"]) == full["n"]["test"] and arrays["scores"].shape[1] == 5
    assert list((tmp_path / "results" / "plots").rglob("*.png"))
    assert len(list(ResultStore(tmp_path / "results").results())) == 2  # npz/png are not results
