"""Every task of tasks/ptbxl.py: contract, labels match kind, splits disjoint by patient.

Labels are checked on the real PTB-XL subset in ../shared/data/ptb-xl (loaded with each task's
own ``dataset_options``; all 300 database rows have 100 Hz records there) and on a hand-made
metadata frame that runs without the shared data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.contracts import HIGHER_IS_BETTER, Task
from ecgbench.core.registry import TASKS
from ecgbench.data.datasets import dataset_module, load_dataset, ptbxl
from ecgbench.tasks import ptbxl as ptbxl_tasks

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EXPECTED = ("ptbxl-superclass", "ptbxl-superclass-single", "ptbxl-sex", "ptbxl-age")
NAMES = [e.name for e in TASKS.entries.values() if e.module == "ecgbench.tasks.ptbxl"]
# usable records of each task on the shared subset (SOURCE.md: 8 without a superclass,
# 249 with exactly one, 3 without age)
USABLE = {"ptbxl-superclass": 292, "ptbxl-superclass-single": 249, "ptbxl-sex": 300,
          "ptbxl-age": 297}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    if not (SHARED_DATA / "ptb-xl").is_dir():
        pytest.skip("shared PTB-XL subset absent")
    options = {**ptbxl_tasks.PTBXL_SUPERCLASS.dataset_options,
               "cache_dir": tmp_path_factory.mktemp("ptbxl-cache")}
    return load_dataset("ptbxl", SHARED_DATA, options)


def test_registry_finds_the_four_tasks():
    assert set(NAMES) == set(EXPECTED)
    assert TASKS.get("ptbxl-age") is ptbxl_tasks.PTBXL_AGE


def test_classes_match_the_dataset():
    assert ptbxl_tasks.SUPERCLASSES == ptbxl.SUPERCLASSES


@pytest.mark.parametrize("name", EXPECTED)
def test_task_contract(name):
    task = TASKS.get(name)
    assert isinstance(task, Task)
    assert task.name == name and task.version == 1 and task.dataset == "ptbxl"
    assert task.description == TASKS.entry(name).description
    assert task.main_metric in HIGHER_IS_BETTER
    assert "Wagner" in task.citation and "Strodthoff" in task.citation
    assert task.dataset_options == {"fs": 100}
    assert dataset_module(task.dataset) is ptbxl
    if task.kind in ("multiclass", "multilabel"):
        assert task.classes == ptbxl.SUPERCLASSES


@pytest.mark.parametrize("name", EXPECTED)
def test_labels_match_kind(name, recordings):
    task = TASKS.get(name)
    y, usable = task.labels(recordings.meta)
    n = len(recordings)
    assert usable.shape == (n,) and usable.dtype == bool
    assert usable.sum() == USABLE[name]
    if task.kind == "multilabel":
        assert y.shape == (n, 5) and set(np.unique(y)) == {0, 1}
        assert (y[usable].sum(1) > 0).all()
    elif task.kind == "multiclass":
        assert y.shape == (n,) and np.issubdtype(y.dtype, np.integer)
        assert np.bincount(y[usable], minlength=5).tolist() == [182, 18, 24, 21, 4]
    elif task.kind == "binary":
        assert y.shape == (n,) and np.issubdtype(y.dtype, np.integer)
        assert set(y[usable]) == {0, 1}
    else:
        assert y.shape == (n,) and np.issubdtype(y.dtype, np.floating)
        assert np.isfinite(y[usable]).all() and not np.isfinite(y[~usable]).any()


@pytest.mark.parametrize("name", EXPECTED)
def test_splits_disjoint_by_patient(name, recordings):
    _, usable = TASKS.get(name).labels(recordings.meta)
    meta = recordings.meta[usable]
    owners = meta.groupby("patient_id")["split"].nunique()
    assert (owners == 1).all()
    assert set(meta["split"]) == {"train", "val", "test"}


def test_labels_on_a_hand_made_frame():
    meta = pd.DataFrame({
        "NORM": [1, 0, 0, 0], "MI": [0, 1, 0, 0], "STTC": [0, 1, 0, 0], "CD": [0, 0, 0, 1],
        "HYP": [0, 0, 0, 0], "sex": [0, 1, np.nan, 1], "age": [50.0, np.nan, 70.0, 30.0],
    })
    y, usable = ptbxl_tasks.superclass_labels(meta)
    assert usable.tolist() == [True, True, False, True]
    y, usable = ptbxl_tasks.single_superclass_labels(meta)
    assert usable.tolist() == [True, False, False, True] and y[usable].tolist() == [0, 3]
    y, usable = ptbxl_tasks.sex_labels(meta)
    assert usable.tolist() == [True, True, False, True] and y[usable].tolist() == [0, 1, 1]
    y, usable = ptbxl_tasks.age_labels(meta)
    assert usable.tolist() == [True, False, True, True]
