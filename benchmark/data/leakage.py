"""The leakage guard: pretraining never sees a validation or test record, or patient, of a task.

A pretraining corpus declares what it contains: its metadata's ``record_id`` and
``patient_id`` columns, and, through its dataset module's optional ``overlaps(meta, dataset)``,
which of its records are also records of another ecgbench dataset (their id there, or "" when
only patients may be shared and no mapping is published). CinC 2020/2021 declare their PTB-XL
records (``HR06000`` is PTB-XL ecg_id 6000) and PTB Diagnostic records; the Chapman loader
declares its records inside CinC 2021.

:func:`select_pretraining` runs once per run, before any pretraining:

1. it starts from the pretraining dataset's training split;
2. for every other dataset a task of the run evaluates, it drops the records known or possibly
   shared with it, in both directions: pretraining records declared to be in the task's
   dataset, unless they map to a training record there whose patient has no val/test record
   (a mapped record absent from a loaded subset has an unknown split and is dropped); and
   pretraining records, with all records of their patients, that the task dataset's held-out
   records declare to be in the pretraining set. The drop is logged and recorded in the run
   record, and becomes part of the run key, so checkpoints never mix;
3. it checks what remains against every evaluated dataset's val and test splits, by record and
   by patient (mapped through the declarations across datasets), and refuses with one line
   naming the overlap when anything is left.

A held-out task record that may share patients with the pretraining corpus without a known
mapping (a CinC 2021 test record from PTB while pretraining on PTB-XL) cannot be dropped
record by record; it is reported in the record's ``notes`` rather than refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ecgbench.core.config import ConfigError, RunFailed, short_hash
from ecgbench.core.contracts import Recordings

HELD_OUT = ("val", "test")
_SHOWN = 5  # ids named in a message


class LeakageError(RunFailed):
    """Pretraining would see held-out records or patients of an evaluated task."""


@dataclass(frozen=True)
class Selection:
    """The rows of the pretraining dataset that pretraining may see, and why others went."""

    dataset: str
    indices: np.ndarray  # rows of the pretraining dataset
    # evaluated dataset -> records of the pretraining dataset known or possibly in it (any split)
    excluded: dict[str, list[str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Appended to the run's ``pretrain_data``: empty when nothing was excluded, so runs
        without overlaps keep their ids."""
        parts = [f"{name}:{len(ids)}:{short_hash(sorted(ids), 8)}"
                 for name, ids in sorted(self.excluded.items()) if ids]
        return f"-minus-{','.join(parts)}" if parts else ""

    def record(self) -> dict[str, Any]:
        return {"pretrain_dataset": self.dataset, "pretrain_records": int(len(self.indices)),
                "excluded": {name: {"records": len(ids), "ids": sorted(ids)}
                             for name, ids in sorted(self.excluded.items()) if ids},
                "notes": list(self.notes)}


def default_pretraining(tasks: list[str]) -> str:
    """The corpus a run pretrains on when ``--pretrain-data`` is not given: the dataset its
    tasks evaluate (its training split, e.g. PTB-XL folds 1-8 for PTB-XL tasks), never the
    synthetic suite for a real task. Tasks on several datasets have no single expected corpus,
    so that is refused in one line naming the choices."""
    from ecgbench.core.registry import TASKS

    datasets = list(dict.fromkeys(TASKS.get(task).dataset for task in tasks))
    if len(datasets) == 1:
        return datasets[0]
    raise ConfigError(f"--pretrain-data: the tasks evaluate {', '.join(datasets)}; pass --pretrain-data "
                       f"NAME (one of them, or a corpus such as cinc2021) or run each dataset's tasks "
                       "separately")


def declared_overlaps(recordings: Recordings, dataset: str) -> pd.Series | None:
    """The dataset module's ``overlaps(meta, dataset)``, or None when it declares none."""
    from ecgbench.data.datasets import dataset_module

    try:
        module = dataset_module(recordings.name)
    except ValueError:  # an in-memory corpus without a module declares nothing
        return None
    declare = getattr(module, "overlaps", None)
    return None if declare is None else declare(recordings.meta, dataset)


def select_pretraining(pretrain: Recordings, evaluated: dict[str, Recordings],
                       tasks: dict[str, list[str]] | None = None) -> Selection:
    """Training rows of ``pretrain`` minus known overlaps with ``evaluated`` datasets, checked.

    ``tasks`` (dataset -> task names) only makes the messages name the tasks.
    """
    keep = np.zeros(len(pretrain), dtype=bool)
    keep[pretrain.indices("train")] = True
    excluded: dict[str, list[str]] = {}
    notes: list[str] = []
    for name, data in sorted(evaluated.items()):
        if name == pretrain.name:
            continue
        drop = _declared_into(pretrain, data) | _declared_from(pretrain, data, notes)
        if drop.any():  # recorded whatever their split; only training rows were candidates
            excluded[name] = _ids(pretrain.meta["record_id"][drop])
            keep &= ~drop
    if not keep.any():
        raise LeakageError(f"leakage: no training record of {pretrain.name} is left to pretrain "
                           f"on once the records in {', '.join(excluded)} are excluded")
    selection = Selection(pretrain.name, np.flatnonzero(keep), excluded, tuple(notes))
    check(pretrain, selection.indices, evaluated, tasks)
    return selection


def _declared_into(pretrain: Recordings, data: Recordings) -> np.ndarray:
    """Pretraining rows declared to be (or to share patients with) records of ``data``, except
    those known safe: mapped to a training record of ``data`` whose patient has no val/test
    record. A mapped record absent from ``data`` (a subset is loaded) has an unknown split and
    goes, as does a row whose id there is unknown."""
    mapped = declared_overlaps(pretrain, data.name)
    if mapped is None:
        return np.zeros(len(pretrain), bool)
    meta = data.meta
    held_patients = set(_ids(meta["patient_id"][_held_out(data)]))
    safe_rows = (meta["split"] == "train").to_numpy() & ~meta["patient_id"].map(_id).isin(held_patients).to_numpy()
    safe = set(_ids(meta["record_id"][safe_rows]))
    named = mapped.notna() & (mapped != "")
    return (mapped.notna() & ~(named & mapped.map(_id, na_action="ignore").isin(safe))).to_numpy()


def _declared_from(pretrain: Recordings, data: Recordings, notes: list[str]) -> np.ndarray:
    """Pretraining rows that held-out rows of ``data`` declare to be theirs, with every other
    record of the same patients."""
    mapped = declared_overlaps(data, pretrain.name)
    if mapped is None:
        return np.zeros(len(pretrain), bool)
    held = _held_out(data) & mapped.notna().to_numpy()
    unknown = held & (mapped == "").to_numpy()
    if unknown.any():
        notes.append(f"{int(unknown.sum())} held-out records of {data.name} may share patients "
                     f"with {pretrain.name} (no mapping published), e.g. "
                     f"{', '.join(_ids(data.meta['record_id'][unknown])[:_SHOWN])}")
    ids = set(_ids(mapped[held & ~unknown]))
    hit = pretrain.meta["record_id"].map(_id).isin(ids).to_numpy()
    return pretrain.meta["patient_id"].isin(pretrain.meta["patient_id"][hit]).to_numpy()


def check(pretrain: Recordings, rows: np.ndarray, evaluated: dict[str, Recordings],
          tasks: dict[str, list[str]] | None = None) -> None:
    """Refuse (one line, naming the overlap) if pretraining ``rows`` meet any evaluated
    dataset's val/test records or patients."""
    seen = pretrain.meta.iloc[rows]
    for name, data in sorted(evaluated.items()):
        held = data.meta[_held_out(data)]
        if name == pretrain.name:
            records = _common(seen["record_id"], held["record_id"])
            patients = _common(seen["patient_id"], held["patient_id"])
        else:
            records, patients = _across(pretrain, rows, data, held)
        if records or patients:
            which = f" (tasks {', '.join(tasks[name])})" if tasks and name in tasks else ""
            raise LeakageError(
                f"leakage: pretraining on {pretrain.name} would see {_listing(records, 'record')}"
                f"{' and ' if records and patients else ''}{_listing(patients, 'patient')} of "
                f"the val/test splits of {name}{which}; pretrain on other data or evaluate "
                "other tasks"
            )


def _across(pretrain: Recordings, rows: np.ndarray, data: Recordings,
            held: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Overlaps between two datasets through what either declares about the other."""
    records: list[str] = []
    patients: list[str] = []
    into = declared_overlaps(pretrain, data.name)
    if into is not None:
        mapped = into.iloc[rows]
        unknown = mapped == ""
        records += [f"{r} (may share patients)" for r in
                    _ids(pretrain.meta["record_id"].iloc[rows][unknown.to_numpy()])]
        named = mapped[mapped.notna() & ~unknown]
        by_id = pd.Series(pretrain.meta["record_id"].iloc[rows].to_numpy(), index=mapped.index)
        held_ids = set(_ids(held["record_id"]))
        records += [f"{by_id[i]}={_id(v)}" for i, v in named.items() if _id(v) in held_ids]
        patient_of = dict(zip(data.meta["record_id"].map(_id), data.meta["patient_id"].map(_id)))
        held_patients = set(_ids(held["patient_id"]))
        patients += [f"{by_id[i]}->{patient_of[_id(v)]}" for i, v in named.items()
                     if patient_of.get(_id(v)) in held_patients and _id(v) not in held_ids]
    back = declared_overlaps(data, pretrain.name)
    if back is not None:
        mapped = back[held.index]
        named = mapped[mapped.notna() & (mapped != "")]
        seen = set(_ids(pretrain.meta["record_id"].iloc[rows]))
        records += [f"{_id(v)}={data.meta['record_id'][i]}" for i, v in named.items()
                    if _id(v) in seen]
        patient_of = dict(zip(pretrain.meta["record_id"].map(_id), pretrain.meta["patient_id"].map(_id)))
        seen_patients = set(_ids(pretrain.meta["patient_id"].iloc[rows]))
        patients += [f"{data.meta['record_id'][i]}->{patient_of[_id(v)]}" for i, v in named.items()
                     if _id(v) not in seen and patient_of.get(_id(v)) in seen_patients]
    return sorted(set(records)), sorted(set(patients))


def _held_out(data: Recordings) -> np.ndarray:
    return data.meta["split"].isin(HELD_OUT).to_numpy()


def _id(value: Any) -> str:
    """Ids compare as text; 6000, 6000.0 and "6000" are one id."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _ids(values: pd.Series) -> list[str]:
    return [_id(v) for v in values]


def _common(a: pd.Series, b: pd.Series) -> list[str]:
    return sorted(set(_ids(a)) & set(_ids(b)))


def _listing(ids: list[str], what: str) -> str:
    if not ids:
        return ""
    more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
    return f"{len(ids)} {what}{'s' if len(ids) != 1 else ''} ({', '.join(ids[:_SHOWN])}{more})"
