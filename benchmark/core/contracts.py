"""The contracts every part of ecgbench lives with: Recordings, Task, InputSpec, Method.

This module is imported by the CLI, so it must stay light: no torch, sklearn or mlflow at
import time. The Method base class lives in :mod:`ecgbench.models.method` because it needs torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Literal

import numpy as np

STANDARD_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip

TaskKind = Literal["multiclass", "multilabel", "binary", "regression"]
CLASSIFICATION: tuple[str, ...] = ("multiclass", "multilabel", "binary")
KINDS: tuple[str, ...] = (*CLASSIFICATION, "regression")
SPLITS = ("train", "val", "test")


class NotApplicable(ValueError):
    """A method cannot run on a task by design (e.g. a 12-lead encoder on a single-lead dataset).

    The runner records such a cell as ``"status": "not_applicable"`` with this message as the
    reason and goes on; any other exception is a real failure and stops the run.
    """


@dataclass(frozen=True)
class InputSpec:
    """What an encoder consumes: which leads, at which rate, how many samples per window.

    The harness adapts every record to this (lead selection, scipy.signal resampling,
    non-overlapping windows or zero padding) and records what it did with each result.
    """

    leads: tuple[str, ...]
    fs: int
    n_samples: int

    @property
    def seconds(self) -> float:
        return self.n_samples / self.fs


@dataclass
class Recordings:
    """A dataset in memory: multi-lead signals plus one metadata row per record.

    ``signals`` is ``(N, leads, T)`` float32, usually a read-only ``np.memmap``. Records of
    different lengths are zero-padded at the end to ``T`` and the optional integer column
    ``n_samples`` gives each record's true length; without it every record is ``T`` long.
    ``meta`` is a pandas DataFrame with at least the columns ``record_id``, ``patient_id``
    and ``split`` (one of train / val / test, patient-wise), plus whatever label columns the
    dataset provides. Dataset-specific label columns are documented by each dataset module.
    """

    name: str
    version: str  # dataset + preprocessing version; part of every cache key that uses it
    signals: np.ndarray  # (N, leads, T)
    meta: "pandas.DataFrame"  # noqa: F821  (pandas imported lazily by datasets)
    fs: int
    lead_names: tuple[str, ...]
    # Short hash of the prepared signals and metadata as loaded (split options included): a
    # changed source file changes it, a copied tree keeps it. "" where a loader computes none.
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.signals.ndim != 3:
            raise ValueError(f"{self.name}: signals must be (N, leads, T), got {self.signals.shape}")
        if len(self.meta) != len(self.signals):
            raise ValueError(
                f"{self.name}: {len(self.signals)} signals but {len(self.meta)} metadata rows"
            )
        if len(self.lead_names) != self.signals.shape[1]:
            raise ValueError(f"{self.name}: {len(self.lead_names)} lead names for "
                             f"{self.signals.shape[1]} leads")
        missing = {"record_id", "patient_id", "split"} - set(self.meta.columns)
        if missing:
            raise ValueError(f"{self.name}: metadata lacks columns {sorted(missing)}")

    def __len__(self) -> int:
        return len(self.signals)

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.meta["split"].to_numpy() == split)


@dataclass(frozen=True)
class Task:
    """A downstream evaluation: a dataset, a label function, a kind, a main metric, a split.

    ``labels(meta)`` returns ``(y, usable)``: targets for every row and a boolean mask of rows
    that carry a valid target (e.g. records without any superclass, or masked ages). ``y`` is
    ``(N,)`` int for multiclass/binary, ``(N, C)`` 0/1 for multilabel, ``(N,)`` float for
    regression. Splits come from the dataset's patient-wise ``split`` column, so a patient never
    appears in two of train / val / test.
    """

    name: str
    version: int
    dataset: str
    kind: TaskKind
    labels: Callable[["pandas.DataFrame"], tuple[np.ndarray, np.ndarray]]  # noqa: F821
    main_metric: str
    description: str
    classes: tuple[str, ...] = ()
    citation: str = ""
    aggregate: Literal["mean"] = "mean"  # how window embeddings pool into one per record
    dataset_options: dict = field(default_factory=dict)
    # "select": the encoder's leads are picked from the dataset by name. "each": every channel
    # of the dataset is fed on its own as the one lead of a single-lead encoder and the
    # per-channel embeddings are concatenated (NERULA's per-axis HAR evaluation); a multi-lead
    # encoder is then not applicable.
    channels: Literal["select", "each"] = "select"
    # A dataset option that is this task's version (the synthetic suite's "version"): loading the
    # dataset with another value (--set data.version=1) evaluates the task at that version.
    version_option: str = ""
    # Content hash of the file of a task from outside the package (set by the registry), so an
    # edited task file gets a new key; empty for built-in tasks, whose keys stay as they were.
    source_hash: str = ""

    @property
    def key(self) -> str:
        source = f"#{self.source_hash}" if self.source_hash else ""
        return f"{self.name}{source}@v{self.version}"

    def at_data_options(self, options: dict) -> "Task":
        """This task on its dataset loaded with ``options``; unchanged unless they set its
        ``version_option`` (a value the dataset rejects is left for its loader to name)."""
        value = str(options.get(self.version_option, "")).strip().lstrip("v")
        if not self.version_option or not value.isdigit():
            return self
        version = int(value)
        return replace(self, version=version, dataset_options={**self.dataset_options, self.version_option: version})


# Direction of every metric the harness reports; model selection and ranks use it.
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "macro_f1": True,
    "macro_auroc": True,
    "mae": False,
    "r2": True,
}
