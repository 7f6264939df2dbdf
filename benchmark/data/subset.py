"""``--limit N``: a real task tried on the first N patients of each split, for trying things out.

The subset keeps, per split, every record of the first ``N`` patients in the dataset's own order
(patient-wise, so no patient is cut). Its version ends with ``-limit<N>`` (:func:`limited_version`),
so every cache, run id and result key built on it says so, and its results are never taken for a
full run's: they form their own rows (:mod:`ecgbench.core.rows`, via the pretraining data).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ecgbench.core.config import ConfigError, short_hash
from ecgbench.core.contracts import Recordings


class LimitError(ConfigError):
    """A limit that cannot be applied; one line for the user."""


def check_limit(value: Any, name: str = "dataset") -> int:
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise LimitError(f"{name}: limit must be a whole number of patients per split (got {value!r})") from None
    if limit < 1:
        raise LimitError(f"{name}: limit={limit}: must be at least 1 patient per split")
    return limit


def limited_version(version: str, limit: int) -> str:
    return f"{version}-limit{limit}"


def first_patients(recordings: Recordings, limit: Any) -> Recordings:
    """The records of the first ``limit`` patients of each split, in the dataset's order."""
    limit = check_limit(limit, recordings.name)
    meta = recordings.meta
    keep = np.zeros(len(meta), dtype=bool)
    for split in ("train", "val", "test"):
        rows = np.flatnonzero(meta["split"].to_numpy() == split)
        patients = list(dict.fromkeys(meta["patient_id"].to_numpy()[rows].tolist()))[:limit]
        keep[rows[np.isin(meta["patient_id"].to_numpy()[rows], patients)]] = True
    rows = np.flatnonzero(keep)
    return dataclasses.replace(
        recordings, signals=np.asarray(recordings.signals[rows]), meta=meta.iloc[rows].reset_index(drop=True),
        version=limited_version(recordings.version, limit),
        fingerprint=short_hash({"data": recordings.fingerprint or recordings.version, "limit": limit}))
