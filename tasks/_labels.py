"""Label functions shared by task files (skipped by the registry scan: the name starts with _).

Each takes a dataset's metadata table and returns ``(y, usable)`` as ``Task.labels`` does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sex_labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """0 male / 1 female from a ``sex`` column; anything else (unknown, NaN) is not usable."""
    sex = pd.to_numeric(meta["sex"], errors="coerce")
    usable = sex.isin([0, 1]).to_numpy()
    return sex.where(usable, -1).to_numpy(dtype=int), usable


def age_labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Age in years from an ``age`` column; missing (NaN) ages are not usable."""
    age = pd.to_numeric(meta["age"], errors="coerce").to_numpy(dtype=float)
    return age, np.isfinite(age)


def present_columns(meta: pd.DataFrame, columns: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Multilabel 0/1 targets from one column per class; rows with no class are not usable."""
    y = meta[list(columns)].to_numpy(dtype=int)
    return y, y.sum(1) > 0
