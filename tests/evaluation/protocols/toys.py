"""Toy problems for the protocol tests: tasks of every kind and labels with a known signal."""

from __future__ import annotations

import numpy as np

from ecgbench.core.contracts import Task

METRIC = {"multiclass": "macro_auroc", "binary": "macro_auroc", "multilabel": "macro_auroc", "regression": "r2"}
CLASSES = {"multiclass": ("a", "b", "c"), "binary": ("no", "yes"), "multilabel": ("x", "y"), "regression": ()}


def toy_task(kind: str, channels: str = "select") -> Task:
    return Task(name=f"toy-{kind}", version=1, dataset="toy", kind=kind, labels=lambda meta: (None, None),
                main_metric=METRIC[kind], description="toy", classes=CLASSES[kind], channels=channels)


def toy_labels(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Targets and a 2-d signal that determines them (the toy's ground truth)."""
    z = rng.normal(size=(n, 2))
    if kind == "multiclass":
        y = np.digitize(z[:, 0], [-0.5, 0.5])
    elif kind == "binary":
        y = (z[:, 0] > 0).astype(int)
    elif kind == "multilabel":
        y = (z > 0).astype(int)
    else:
        y = 3.0 * z[:, 0] + 50.0
    return y, z


def toy_split(n: int) -> dict[str, np.ndarray]:
    rows = np.arange(n)
    return {"train": rows[: n // 2], "val": rows[n // 2: 3 * n // 4], "test": rows[3 * n // 4:]}
