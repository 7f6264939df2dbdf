"""What makes a probe's predictions say little (a constant prediction, classes the training
labels lack): named in one warning line per cell by the runner. Kept out of
:mod:`ecgbench.evaluation.metrics`, whose source keys every cached bootstrap and stored test."""

from __future__ import annotations

import numpy as np


def degenerate(kind: str, y_train, y_test, y_pred, classes: tuple[str, ...] = ()) -> list[str]:
    """Why a probe's test predictions say little, one phrase each: a constant prediction, or test
    classes the training split never showed it (empty when neither); classes by name where given."""
    y_train, y_test, y_pred = np.asarray(y_train), np.asarray(y_test), np.asarray(y_pred)
    reasons = []
    if kind == "regression":
        if len(y_pred) > 1 and float(np.ptp(y_pred)) <= 1e-12 * max(1.0, float(np.abs(y_pred).max())):
            reasons.append(f"every test prediction is {float(y_pred[0]):.4g}")
        return reasons
    if kind == "multilabel":
        constant = [c for c in range(y_pred.shape[1]) if len(np.unique(y_pred[:, c])) == 1]
        if len(constant) == y_pred.shape[1]:
            reasons.append("the same label set predicted for every test record")
        unseen = [c for c in range(y_train.shape[1]) if y_train[:, c].max(initial=0) == 0 and y_test[:, c].max(initial=0) > 0]
    else:
        if len(y_pred) > 1 and len(np.unique(y_pred)) == 1:
            reasons.append(f"every test record predicted as class {y_pred[0]}")
        unseen = sorted(set(np.unique(y_test).tolist()) - set(np.unique(y_train).tolist()))
    if unseen:
        names = [classes[int(c)] if classes and 0 <= int(c) < len(classes) else str(c) for c in unseen]
        reasons.append(f"test classes missing from the training labels: {', '.join(names)}")
    return reasons
