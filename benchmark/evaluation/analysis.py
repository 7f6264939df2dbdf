"""Analysis extras: clustering quality, embedding plots, label-efficiency subsets.

The runner calls these through a small hook, switched by :class:`ecgbench.core.config.EvalSettings`
fields (``clustering``, ``embedding_plot``, ``label_fractions``), so the smoke grid stays fast.

Clustering quality (:func:`clustering_quality`) follows the embeddings report among the seed
papers: Davies-Bouldin (lower is better), silhouette and Calinski-Harabasz (higher is better),
from scikit-learn, on the frozen test-split embeddings as they are (no scaling: the geometry of
the representation is what is measured), with the task's labels as the clusters:

* multiclass / binary: the label;
* multilabel: the records with exactly one positive label, labelled by it (a record with
  several labels belongs to no single cluster); how many records that kept is stored;
* regression: not computed (a continuous target defines no clusters); the reason is stored.

Silhouette is O(n^2): above :data:`SILHOUETTE_SAMPLE` records it uses a seeded sample
(scikit-learn's ``sample_size``), recorded with the result.

Embedding plots (:func:`embedding_plot`): scikit-learn t-SNE of the test embeddings (a seeded
sample of at most :data:`PLOT_SAMPLE` records), drawn with matplotlib's Agg backend, coloured
by label as above (multilabel records with several labels in grey; regression on a colour
scale). UMAP is not a dependency of the harness, so t-SNE it is.

Label efficiency (:func:`label_subset`): a fraction of the *training patients* (all of each
kept patient's records), drawn by one seeded permutation of the patients, so the 1% subset is
inside the 10% subset which is inside 100%, and every method sees the same labelled records
for a given replicate seed and task.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

SILHOUETTE_SAMPLE = 5000
PLOT_SAMPLE = 2000
MIN_CLUSTER_RECORDS = 2  # every cluster metric needs >= 2 clusters and more records than clusters


def cluster_labels(kind: str, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, keep)``: one integer cluster per kept record (see the module docstring)."""
    y = np.asarray(y)
    if kind == "regression":
        raise ValueError("clustering quality needs class labels; a regression target has none")
    if kind == "multilabel":
        keep = y.sum(axis=1) == 1
        return np.argmax(y, axis=1), keep
    return y.astype(int), np.ones(len(y), dtype=bool)


def clustering_quality(
    embeddings: np.ndarray, y: np.ndarray, kind: str, seed: int = 0
) -> dict[str, Any]:
    """Davies-Bouldin, silhouette and Calinski-Harabasz of ``embeddings`` grouped by label.

    Returns the three scores, the number of records and clusters used, and how the labels were
    formed; for regression (or fewer than two non-empty clusters) the scores are None and
    ``"skipped"`` says why.
    """
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    embeddings = np.asarray(embeddings, dtype=float)
    if kind == "regression":
        return _skipped("regression target: no clusters", len(embeddings))
    labels, keep = cluster_labels(kind, y)
    x, labels = embeddings[keep], labels[keep]
    n_clusters = len(np.unique(labels))
    if n_clusters < 2 or len(x) <= n_clusters or len(x) < MIN_CLUSTER_RECORDS:
        return _skipped(f"{n_clusters} cluster(s) among {len(x)} records", len(x))
    sample = SILHOUETTE_SAMPLE if len(x) > SILHOUETTE_SAMPLE else None
    return {
        "davies_bouldin": float(davies_bouldin_score(x, labels)),
        "silhouette": float(silhouette_score(x, labels, sample_size=sample, random_state=seed)),
        "calinski_harabasz": float(calinski_harabasz_score(x, labels)),
        "n_records": int(len(x)),
        "n_clusters": int(n_clusters),
        "labels": "single-positive records, by label" if kind == "multilabel" else "class label",
        "silhouette_sample": sample,
        "split": "test",
    }


def _skipped(reason: str, n: int) -> dict[str, Any]:
    return {"davies_bouldin": None, "silhouette": None, "calinski_harabasz": None,
            "n_records": int(n), "skipped": reason, "split": "test"}


def embedding_plot(
    path: Path, embeddings: np.ndarray, y: np.ndarray, kind: str, classes: tuple[str, ...],
    title: str, seed: int = 0,
) -> Path:
    """A t-SNE scatter plot of ``embeddings`` coloured by label, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    from ecgbench.core.store import atomic_write

    rng = np.random.default_rng(seed)
    embeddings, y = np.asarray(embeddings, dtype=float), np.asarray(y)
    rows = np.sort(rng.permutation(len(embeddings))[:PLOT_SAMPLE])
    x = embeddings[rows]
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    # one OpenMP thread: on a busy 2-core machine spin-waiting threads made t-SNE of 322
    # points take 69 s instead of 3 s (measured once during development)
    with threadpool_limits(limits=1):
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    figure, axes = plt.subplots(figsize=(6, 5), dpi=100)
    try:
        _scatter(axes, figure, points, y[rows], kind, classes)
        axes.set_title(title, fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])
        figure.tight_layout()
        atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
    finally:
        plt.close(figure)
    return path


def _scatter(axes, figure, points: np.ndarray, y: np.ndarray, kind: str, classes: tuple[str, ...]) -> None:
    if kind == "regression":
        drawn = axes.scatter(points[:, 0], points[:, 1], c=y, s=6, cmap="viridis")
        figure.colorbar(drawn, ax=axes)
        return
    labels, single = cluster_labels(kind, y)
    if kind == "multilabel" and (~single).any():
        axes.scatter(points[~single, 0], points[~single, 1], s=5, c="lightgrey", label="several labels")
    names = list(classes) if classes else []
    for c in np.unique(labels[single]):
        mask = single & (labels == c)
        name = names[c] if c < len(names) else str(c)
        axes.scatter(points[mask, 0], points[mask, 1], s=6, label=name)
    axes.legend(fontsize=7, markerscale=2, loc="best")


def label_subset(
    train_indices: np.ndarray, patient_ids: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """The training rows of a seeded ``fraction`` of the training patients (sorted).

    ``patient_ids`` is aligned with ``train_indices``. At least one patient is kept; the
    subsets for growing fractions with the same seed are nested.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"a label fraction must be in (0, 1], got {fraction}")
    train_indices, patient_ids = np.asarray(train_indices), np.asarray(patient_ids)
    if len(train_indices) != len(patient_ids):
        raise ValueError(f"{len(train_indices)} training rows but {len(patient_ids)} patient ids")
    if fraction == 1:
        return np.sort(train_indices)
    patients = np.unique(patient_ids)
    order = np.random.default_rng(seed).permutation(len(patients))
    kept = patients[order[: max(1, math.ceil(fraction * len(patients)))]]
    return np.sort(train_indices[np.isin(patient_ids, kept)])


def fraction_label(fraction: float) -> str:
    """``0.01 -> "1%"``, as used in protocol names and tables."""
    return f"{fraction * 100:g}%"


def analyse(
    settings, task, recordings, embeddings: np.ndarray, seed: int, plot_path: Path, title: str
) -> tuple[dict[str, Any], Path | None]:
    """The runner's hook, once per (pretraining run, task): what ``settings`` switches on.

    Returns the fields to add to each of the task's results (``{"clustering": {...}}`` or
    nothing) and the plot's path (None if no plot). A plot already on disk is reused.
    """
    extras: dict[str, Any] = {}
    if not (settings.clustering or settings.embedding_plot):
        return extras, None
    y, usable = task.labels(recordings.meta)
    test = recordings.indices("test")
    test = test[usable[test]]
    if settings.clustering:
        extras["clustering"] = clustering_quality(embeddings[test], y[test], task.kind, seed)
    plot = None
    if settings.embedding_plot:
        plot = plot_path if plot_path.exists() else embedding_plot(
            plot_path, embeddings[test], y[test], task.kind, task.classes, title, seed)
    return extras, plot
