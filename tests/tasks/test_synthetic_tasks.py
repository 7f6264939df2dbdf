"""Every task of tasks/synthetic.py: labels match its kind, and the registry finds it."""

from __future__ import annotations

import numpy as np
import pytest

from ecgbench.core.contracts import HIGHER_IS_BETTER, Task
from ecgbench.core.registry import TASKS
from ecgbench.data.datasets import dataset_module, synthetic
from ecgbench.tasks import synthetic as synthetic_tasks

EXPECTED = ("synth-superclass", "synth-rhythm", "synth-sex", "synth-age")
NAMES = [e.name for e in TASKS.entries.values() if e.module == "ecgbench.tasks.synthetic"]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    return synthetic.load(tmp_path_factory.mktemp("synthetic"), n_patients=30)


def test_registry_finds_the_four_tasks():
    assert set(EXPECTED) <= set(TASKS.names())
    assert set(NAMES) == set(EXPECTED)
    assert TASKS.get("synth-age") is synthetic_tasks.SYNTH_AGE


def test_classes_and_version_match_the_dataset():
    assert synthetic_tasks.SUPERCLASSES == synthetic.SUPERCLASSES
    assert synthetic_tasks.RHYTHMS == synthetic.RHYTHMS
    assert str(synthetic_tasks.SUITE_VERSION) == synthetic.VERSION


@pytest.mark.parametrize("name", NAMES)
def test_the_suite_version_is_the_task_version(name):
    task = TASKS.get(name)
    assert task.key == f"{name}@v{synthetic.VERSION}"
    assert task.dataset_options == {"version": synthetic_tasks.SUITE_VERSION}
    old = task.at_data_options({"version": "1"})  # --set data.version=1
    assert old.key == f"{name}@v1" and old.dataset_options == {"version": 1}
    assert task.at_data_options({"n_patients": "300"}) is task


@pytest.mark.parametrize("name", NAMES)
def test_task_contract(name):
    task = TASKS.get(name)
    assert isinstance(task, Task)
    assert task.name == name and task.version == synthetic_tasks.SUITE_VERSION
    assert task.description == TASKS.entry(name).description
    assert task.main_metric in HIGHER_IS_BETTER
    assert task.citation
    assert dataset_module(task.dataset) is synthetic
    if task.kind in ("multiclass", "multilabel"):
        assert len(task.classes) >= 2


@pytest.mark.parametrize("name", NAMES)
def test_labels_match_kind(name, recordings):
    task = TASKS.get(name)
    y, usable = task.labels(recordings.meta)
    n = len(recordings)
    assert usable.shape == (n,) and usable.dtype == bool and usable.all()
    if task.kind == "multilabel":
        assert y.shape == (n, len(task.classes))
        assert set(np.unique(y)) == {0, 1}
    elif task.kind == "multiclass":
        assert y.shape == (n,) and np.issubdtype(y.dtype, np.integer)
        assert set(y[usable]) <= set(range(len(task.classes)))
        assert len(set(y[usable])) > 1
    elif task.kind == "binary":
        assert y.shape == (n,) and np.issubdtype(y.dtype, np.integer)
        assert set(y[usable]) == {0, 1}
    else:
        assert task.kind == "regression"
        assert y.shape == (n,) and np.issubdtype(y.dtype, np.floating)
        assert np.isfinite(y[usable]).all()


def test_unusable_rows_are_masked(recordings):
    meta = recordings.meta.copy()
    meta.loc[0, "rhythm"] = "VT"
    meta["sex"] = meta["sex"].astype(float)
    meta.loc[1, "sex"] = np.nan
    meta.loc[2, "age"] = np.nan
    assert not synthetic_tasks.rhythm_labels(meta)[1][0]
    assert not synthetic_tasks.sex_labels(meta)[1][1]
    assert not synthetic_tasks.age_labels(meta)[1][2]


@pytest.mark.parametrize("key", ["data.version", "data.synthetic.version"])
def test_a_run_on_the_old_suite_keys_its_tasks_at_v1(key):
    from ecgbench.running.plan import RunRequest, resolve

    request = RunRequest(methods=["random-init"], tasks=["synth-superclass", "synth-age"], probes=["lr"],
                         seeds=[0], overrides={key: "1"})
    assert [t.key for t in resolve(request).tasks] == ["synth-superclass@v1", "synth-age@v1"]
    default = resolve(RunRequest(methods=["random-init"], tasks=["synth-age"], probes=["lr"], seeds=[0]))
    assert [t.key for t in default.tasks] == [f"synth-age@v{synthetic.VERSION}"]


def test_every_suite_version_keys_its_tasks():
    from ecgbench.running.plan import RunRequest, resolve

    for version in synthetic.VERSIONS:
        request = RunRequest(methods=["random-init"], tasks=["synth-sex"], probes=["lr"], seeds=[0],
                             overrides={"data.version": version})
        assert [t.key for t in resolve(request).tasks] == [f"synth-sex@v{version}"]
