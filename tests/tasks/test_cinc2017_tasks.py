"""cinc2017-af: contract, labels on the 200 real recordings of ../shared/data/cinc2017, and a
smoke run of the grid end to end with a data root that links to the shared sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgbench.api import HIGHER_IS_BETTER, Task
from ecgbench.datasets import cinc2017, dataset_module, load_dataset
from ecgbench.registry import TASKS
from ecgbench.tasks import cinc2017 as cinc2017_tasks

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cinc2017"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    if not (SHARED / "validation").is_dir():
        pytest.skip("shared CinC 2017 sample absent")
    options = {**cinc2017_tasks.CINC2017_AF.dataset_options,
               "cache_dir": tmp_path_factory.mktemp("cinc2017-cache")}
    return load_dataset("cinc2017", SHARED.parent, options)


def test_task_contract():
    task = TASKS.get("cinc2017-af")
    assert isinstance(task, Task) and task is cinc2017_tasks.CINC2017_AF
    assert task.version == 1 and task.dataset == "cinc2017" and task.kind == "multiclass"
    assert task.main_metric == "macro_f1" and task.main_metric in HIGHER_IS_BETTER
    assert task.classes == cinc2017.CLASSES
    assert "Clifford" in task.citation and task.description == TASKS.entry("cinc2017-af").description
    assert dataset_module(task.dataset) is cinc2017
    assert task.dataset_options == {"labels": "v3"}


def test_labels_on_the_real_sample(recordings):
    y, usable = cinc2017_tasks.rhythm_labels(recordings.meta)
    assert y.shape == (200,) and np.issubdtype(y.dtype, np.integer) and usable.all()
    expected = recordings.meta["label"].value_counts()
    assert np.bincount(y, minlength=4).tolist() == [int(expected.get(c, 0)) for c in cinc2017.CLASSES]
    for split in ("train", "val", "test"):  # every class in every split (stratified)
        assert set(y[recordings.indices(split)]) == {0, 1, 2, 3}


def test_unknown_label_is_not_usable():
    y, usable = cinc2017_tasks.rhythm_labels(pd.DataFrame({"label": ["N", "~", "X"]}))
    assert y.tolist() == [0, 3, -1] and usable.tolist() == [True, True, False]


@pytest.mark.slow
def test_smoke_run_end_to_end(tmp_path, capsys):
    """random-init (12 leads) is not applicable to a single-lead dataset; transform-cnn (lead II)
    gets the recordings' lead, windowed over each record's true length."""
    if not (SHARED / "validation").is_dir():
        pytest.skip("shared CinC 2017 sample absent")
    from ecgbench.cli import main

    root = tmp_path / "data"
    root.mkdir()
    (root / "cinc2017").symlink_to(SHARED)
    results = tmp_path / "results"
    argv = ["run", "--methods", "random-init,transform-cnn", "--tasks", "cinc2017-af", "--probes", "lr",
            "--preset", "smoke", "--seeds", "0", "--data-root", str(root), "--results-dir", str(results),
            "--no-tracking", "--set", "data.n_patients=60", "--set", "eval.bootstrap=50"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "cinc2017-af@v1" in table and "transform-cnn" in table
    records = [json.loads(p.read_text()) for p in results.glob("runs/*/cinc2017-af@v1/*.json")]
    by_method = {r["method"]: r for r in records}
    assert by_method["random-init"]["status"] == "not_applicable"
    scored = by_method["transform-cnn"]
    assert scored["n"] == {"train": 139, "val": 30, "test": 31}
    assert 0 <= scored["metrics"]["macro_f1"] <= 1
    adaptation = scored["adaptation"]
    assert adaptation["dataset"].startswith("cinc2017@1.0.0-p1-v3-")
    assert adaptation["lead_substitution"].startswith("the dataset's only lead I")
    assert adaptation["windows_per_record"]["min"] >= 1 and adaptation["valid_windows"] > 200
