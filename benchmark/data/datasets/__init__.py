"""Source datasets: one module per dataset, each with ``NAME``, ``VERSION`` and ``load()``.

``load(root, options) -> Recordings`` returns the whole dataset with a patient-wise ``split``
column. ``VERSION`` covers both the source version and our preprocessing; it is part of every
cache key built on the dataset, so a change of preprocessing never reuses stale embeddings.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from ecgbench.core.contracts import Recordings

GENERIC_OPTIONS = ("limit", "cv_folds", "cv_fold")  # load options of every dataset (load_dataset)
DEFAULT_DATA_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecgbench" / "data"


def data_root(explicit: str | Path | None = None) -> Path:
    """``--data-root``, else ``$ECGBENCH_DATA``, else ``~/.cache/ecgbench/data``."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("ECGBENCH_DATA"):
        return Path(os.environ["ECGBENCH_DATA"]).expanduser()
    return DEFAULT_DATA_ROOT


def dataset_module(name: str) -> Any:
    try:
        return importlib.import_module(f"ecgbench.data.datasets.{name}")
    except ModuleNotFoundError as error:
        if error.name == f"ecgbench.data.datasets.{name}":
            raise ValueError(f"unknown dataset {name!r}") from None
        raise


def load_dataset(name: str, root: str | Path | None = None, options: dict[str, Any] | None = None) -> Recordings:
    """The dataset's loader with ``options``. Every dataset also takes :data:`GENERIC_OPTIONS`:
    ``limit`` keeps the first N patients per split (:mod:`ecgbench.data.subset`), then
    ``cv_folds`` and ``cv_fold`` select one fold of a patient-wise cross-validation
    (:mod:`ecgbench.data.folds`)."""
    from ecgbench.data.folds import cross_validation_fold
    from ecgbench.data.subset import first_patients

    options = dict(options or {})
    generic = {key: options.pop(key) for key in GENERIC_OPTIONS if key in options}
    recordings = dataset_module(name).load(data_root(root), **options)
    if "limit" in generic:
        recordings = first_patients(recordings, generic["limit"])
    if "cv_folds" in generic or "cv_fold" in generic:
        recordings = cross_validation_fold(recordings, generic.get("cv_folds"), generic.get("cv_fold"))
    return recordings
