"""Patient-wise K-fold cross-validation of a dataset, for samples too small for one test split.

Fold ``k`` of ``K`` is the dataset with its ``split`` column reassigned: the records of fold
group ``k`` are the test split, those of group ``(k + 1) mod K`` the validation split (the
probes' inner selection), every other record trains (pretraining and probe fitting). Across
the K folds every record is a test record exactly once, and a run on fold ``k`` never sees its
test records: pretraining reads that fold's training split, as for any dataset.

Groups are patient-wise and come from the dataset's own folds where it has them (PTB-XL's
``fold`` column, the official stratified folds 1-10: fold ``f`` goes to group ``f mod K``, so
K = 5 pairs folds 1+6, 2+7, ...); otherwise patients are dealt round-robin to the K groups
in a seeded order within each ``label`` (a class-stratified, patient-wise split; CinC 2017).

A fold's :class:`~ecgbench.core.contracts.Recordings` ends its version with ``-cv<K>.<k>``
(:func:`fold_version`), so every cache, run id and result built on it names its fold, and
:func:`fold_of` reads it back from a result's ``adaptation.dataset``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from ecgbench.core.config import ConfigError, short_hash
from ecgbench.core.contracts import Recordings

OPTIONS = ("cv_folds", "cv_fold")  # load options every dataset takes (ecgbench.data.datasets.load_dataset)
_SUFFIX = re.compile(r"-cv(\d+)\.(\d+)(?=$|:)")  # at the end of a version, or before ":train"


class FoldError(ConfigError):
    """A cross-validation setting that cannot be applied; one line for the user."""


def fold_groups(meta: Any, folds: int, seed: int = 0) -> np.ndarray:
    """Each record's fold group ``0 .. folds - 1``; all records of a patient share one."""
    patients = meta["patient_id"].to_numpy()
    if "fold" in meta.columns:
        own = meta["fold"].tolist()
        if all(isinstance(f, (int, np.integer)) for f in own):
            groups = np.array([int(f) % folds for f in own])
        else:
            order = {f: i for i, f in enumerate(sorted(set(own)))}
            groups = np.array([order[f] % folds for f in own])
    else:
        groups = _dealt(patients, meta["label"].astype(str).to_numpy() if "label" in meta.columns else None,
                        folds, seed)
    _check_patient_wise(patients, groups)
    return groups


def _dealt(patients: np.ndarray, labels: np.ndarray | None, folds: int, seed: int) -> np.ndarray:
    """Patients dealt round-robin to the groups in a seeded order, one label after another."""
    first = {}
    for patient, label in zip(patients.tolist(), (labels if labels is not None else [""] * len(patients))):
        first.setdefault(patient, label)  # a patient's stratum: its first record's label
    rng = np.random.default_rng(seed)
    group_of: dict[Any, int] = {}
    dealt = 0
    for label in sorted(set(first.values())):
        members = sorted(p for p, lab in first.items() if lab == label)
        for patient in rng.permutation(np.array(members, dtype=object)).tolist():
            group_of[patient] = dealt % folds
            dealt += 1
    return np.array([group_of[p] for p in patients.tolist()])


def _check_patient_wise(patients: np.ndarray, groups: np.ndarray) -> None:
    seen: dict[Any, int] = {}
    for patient, group in zip(patients.tolist(), groups.tolist()):
        if seen.setdefault(patient, group) != group:
            raise FoldError(f"patient {patient} has records in two of the dataset's folds: a patient-wise "
                            "cross-validation needs each patient in one fold")


def fold_split(groups: np.ndarray, folds: int, fold: int) -> np.ndarray:
    """The ``split`` column of fold ``fold``: test = its group, val = the next, train = the rest."""
    split = np.full(len(groups), "train", dtype=object)
    split[groups == (fold + 1) % folds] = "val"
    split[groups == fold] = "test"
    return split


def fold_version(version: str, folds: int, fold: int) -> str:
    return f"{version}-cv{folds}.{fold}"


def fold_of(dataset: str) -> tuple[int, int] | None:
    """(folds, fold) of a ``name@version`` (or version) built by :func:`cross_validation_fold`."""
    match = _SUFFIX.search(str(dataset))
    return (int(match.group(1)), int(match.group(2))) if match else None


def is_fold_result(record: dict[str, Any]) -> bool:
    """A result of one fold (scored on it, or a not-applicable record of a run pretrained on it):
    an input of a pooled cross-validation result, not shown itself."""
    return (fold_of((record.get("adaptation") or {}).get("dataset", "")) is not None
            or fold_of((record.get("run_config") or {}).get("pretrain_data", "")) is not None)


def without_fold(dataset: str) -> str:
    """``name@version`` without its fold suffix (the dataset every fold was cut from)."""
    return _SUFFIX.sub("", str(dataset))


def check_fold(folds: Any, fold: Any, name: str = "dataset") -> tuple[int, int]:
    """The options as integers, or one line saying what would be valid."""
    try:
        folds, fold = int(folds), int(fold)
    except (TypeError, ValueError):
        raise FoldError(f"{name}: cv_folds and cv_fold must be integers (got {folds!r}, {fold!r})") from None
    if folds < 3:
        raise FoldError(f"{name}: cv_folds={folds}: need at least 3 folds (one tests, one validates, the rest train)")
    if not 0 <= fold < folds:
        raise FoldError(f"{name}: cv_fold={fold}: must be 0 .. {folds - 1} for cv_folds={folds}")
    return folds, fold


def cross_validation_fold(recordings: Recordings, folds: int, fold: int, seed: int = 0) -> Recordings:
    """Fold ``fold`` of ``folds`` of ``recordings`` (module docstring)."""
    folds, fold = check_fold(folds, fold, recordings.name)
    groups = fold_groups(recordings.meta, folds, seed)
    if len(set(groups.tolist())) < folds:
        raise FoldError(f"{recordings.name}: {len(set(groups.tolist()))} fold groups for cv_folds={folds} "
                        "(fewer patients or folds than that)")
    meta = recordings.meta.copy()
    meta["split"] = fold_split(groups, folds, fold)
    fingerprint = short_hash({"data": recordings.fingerprint or recordings.version, "folds": folds, "fold": fold,
                              "seed": seed})
    return dataclasses.replace(recordings, meta=meta, version=fold_version(recordings.version, folds, fold),
                               fingerprint=fingerprint)
