"""Patient-wise K-fold cross-validation (ecgbench.data.folds): every record tested once, patients
never split, the dataset's own folds used where it has them, one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgbench.data.datasets import load_dataset
from ecgbench.data.folds import (
    FoldError,
    check_fold,
    fold_groups,
    fold_of,
    fold_split,
    is_fold_result,
    without_fold,
)

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_every_record_is_tested_once_and_validates_once():
    groups = np.array([0, 1, 2, 3, 4] * 4)
    tested = np.zeros(len(groups), int)
    validated = np.zeros(len(groups), int)
    for fold in range(5):
        split = fold_split(groups, 5, fold)
        tested += split == "test"
        validated += split == "val"
        assert set(split) == {"train", "val", "test"} and (split == "train").sum() == 12
    assert (tested == 1).all() and (validated == 1).all()


def test_the_datasets_own_folds_are_grouped_round_robin():
    meta = pd.DataFrame({"patient_id": [1, 1, 2, 3, 4, 5], "fold": [1, 1, 6, 2, 7, 10]})
    assert fold_groups(meta, 5).tolist() == [1, 1, 1, 2, 2, 0]  # folds 1 + 6, 2 + 7, ..., 5 + 10
    with pytest.raises(FoldError, match="patient 1 has records in two of the dataset's folds"):
        fold_groups(pd.DataFrame({"patient_id": [1, 1], "fold": [1, 2]}), 5)


def test_without_folds_patients_are_dealt_within_each_label():
    meta = pd.DataFrame({"patient_id": list(range(30)) + [0], "label": ["A"] * 10 + ["N"] * 20 + ["A"]})
    groups = fold_groups(meta, 5, seed=3)
    assert groups[0] == groups[-1]  # one patient, one group
    for label, size in (("A", 10), ("N", 20)):
        per_group = np.bincount(groups[:30][meta["label"][:30] == label], minlength=5)
        assert per_group.tolist() == [size // 5] * 5  # stratified
    assert fold_groups(meta, 5, seed=3).tolist() == groups.tolist()
    assert fold_groups(meta, 5, seed=4).tolist() != groups.tolist()


@pytest.mark.parametrize("folds, fold, message", [(2, 0, "at least 3 folds"), (5, 5, "must be 0 .. 4"),
                                                  ("five", 0, "must be integers")])
def test_bad_fold_settings_are_one_line(folds, fold, message):
    with pytest.raises(FoldError, match=message):
        check_fold(folds, fold, "ptbxl")


def test_fold_names_read_back():
    assert fold_of("ptbxl@1.0.3-p1-100-abc-cv5.2") == (5, 2) and fold_of("ptbxl@1.0.3-p1-100-abc") is None
    assert without_fold("ptbxl@1.0.3-abc-cv5.2:train") == "ptbxl@1.0.3-abc:train"
    assert is_fold_result({"adaptation": {"dataset": "cinc2017@1.0.0-x-cv3.0"}})


@pytest.fixture(scope="module")
def real_copy(tmp_path_factory):
    if not (SHARED_DATA / "ptb-xl").is_dir() or not (SHARED_DATA / "cinc2017").is_dir():
        pytest.skip("shared PTB-XL / CinC 2017 samples not found")
    root = tmp_path_factory.mktemp("real")
    for name in ("ptb-xl", "cinc2017"):
        shutil.copytree(SHARED_DATA / name, root / name)
    return root


@pytest.mark.parametrize("dataset, options", [("ptbxl", {"allow_subset": True}), ("cinc2017", {})])
def test_folds_of_the_real_samples(real_copy, dataset, options):
    whole = load_dataset(dataset, real_copy, options)
    tested = []
    for fold in range(5):
        cut = load_dataset(dataset, real_copy, {**options, "cv_folds": 5, "cv_fold": fold})
        assert cut.version == f"{whole.version}-cv5.{fold}" and cut.fingerprint not in ("", whole.fingerprint)
        assert np.shares_memory(cut.signals, whole.signals) or cut.signals.shape == whole.signals.shape
        split = cut.meta["split"].to_numpy()
        patients = cut.meta["patient_id"].to_numpy()
        assert not set(patients[split == "test"]) & set(patients[split != "test"])  # patient-wise
        tested += cut.meta["record_id"][split == "test"].tolist()
    assert sorted(tested) == sorted(whole.meta["record_id"].tolist())  # every record tested exactly once
