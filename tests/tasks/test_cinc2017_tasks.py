"""cinc2017-af: contract, labels on the 200 real recordings of ../shared/data/cinc2017, and a
smoke run of the grid end to end with a data root that links to the shared sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.contracts import HIGHER_IS_BETTER, Task
from ecgbench.core.registry import TASKS
from ecgbench.data.datasets import cinc2017, dataset_module, load_dataset
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


def test_three_class_variant_leaves_out_the_noisy_recordings(recordings):
    """cinc2017-af3, NERULA's "three classes": N, A, O; the noisy (~) recordings carry no label."""
    task = TASKS.get("cinc2017-af3")
    assert task is cinc2017_tasks.CINC2017_AF3 and task.classes == ("N", "A", "O")
    assert task.dataset == "cinc2017" and task.dataset_options == cinc2017_tasks.CINC2017_AF.dataset_options
    labels = recordings.meta["label"]
    y, usable = task.labels(recordings.meta)
    assert usable.tolist() == (labels != "~").tolist() and (labels == "~").sum() == 29  # v3 labels of the 200
    assert np.bincount(y[usable], minlength=3).tolist() == [int((labels == c).sum()) for c in "NAO"]
    assert (y[~usable] == -1).all()


@pytest.mark.slow
def test_smoke_run_end_to_end(tmp_path, capsys):
    """random-init (12 leads) is not applicable to a single-lead dataset; transform-cnn (lead II)
    gets the recordings' lead, windowed over each record's true length, and pretrains on CinC
    2017's training split (no --pretrain-data: the dataset the task evaluates)."""
    if not (SHARED / "validation").is_dir():
        pytest.skip("shared CinC 2017 sample absent")
    from ecgbench.cli import main

    root = tmp_path / "data"
    root.mkdir()
    (root / "cinc2017").symlink_to(SHARED)
    results = tmp_path / "results"
    argv = ["run", "--methods", "random-init,transform-cnn", "--tasks", "cinc2017-af", "--probes", "lr",
            "--preset", "smoke", "--seeds", "0", "--data-root", str(root), "--results-dir", str(results),
            "--no-tracking", "--set", "eval.bootstrap=50"]
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
    run = json.loads((results / "runs" / scored["run_id"] / "run.json").read_text())
    assert run["run_config"]["pretrain_data"].startswith("cinc2017@1.0.0-p1-v3-")
    assert run["run_config"]["pretrain_data"].endswith(":train")
    assert run["leakage"]["pretrain_dataset"] == "cinc2017" and run["leakage"]["pretrain_records"] == 139


def test_nerulas_preset_split_is_an_option_that_warns(tmp_path):
    """split=preset (fixture: the 200 shared records as training2017/, the first 50 of them listed
    as the challenge's validation/ set, as in the release where validation is a subset of
    training): the 50 are the test split and stay training records too, with a warning."""
    import shutil
    import warnings

    if not (SHARED / "validation").is_dir():
        pytest.skip("shared CinC 2017 sample absent")
    root = tmp_path / "cinc2017"
    shutil.copytree(SHARED / "validation", root / "training2017")
    shutil.copy(SHARED / "REFERENCE-v3.csv", root / "REFERENCE-v3.csv")
    names = (root / "training2017" / "RECORDS").read_text().split()
    (root / "validation").mkdir()
    (root / "validation" / "RECORDS").write_text("\n".join(names[:50]) + "\n")
    options = {**cinc2017_tasks.CINC2017_AF3.dataset_options, "cache_dir": tmp_path / "cache"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = load_dataset("cinc2017", tmp_path, options)  # the dataset-level split: no warning
    with pytest.warns(UserWarning, match=r"its 50 test records \(the challenge's validation set\) are "
                                         r"training records too"):
        preset = load_dataset("cinc2017", tmp_path, {**options, "split": "preset"})
    meta = preset.meta
    test = meta[meta["split"] == "test"]
    assert len(meta) == 250 and sorted(test["record_id"]) == sorted(names[:50])
    assert set(test["record_id"]) <= set(meta.loc[meta["split"] == "train", "record_id"])  # the paper's overlap
    assert not set(test["record_id"]) & set(meta.loc[meta["split"] == "val", "record_id"])
    assert (meta.loc[meta["split"] != "test", "record_id"] == default.meta["record_id"]).all()
    rows = test.index.to_numpy()
    originals = default.meta.index[default.meta["record_id"].isin(names[:50])].to_numpy()
    assert np.array_equal(np.asarray(preset.signals[rows]), np.asarray(default.signals[originals]))
    assert preset.version == f"{default.version}-preset" and default.meta["split"].isin(["test"]).any()
    with pytest.raises(cinc2017.Cinc2017Error, match="split must be one of dataset, preset"):
        load_dataset("cinc2017", tmp_path, {**options, "split": "paper"})
    shutil.rmtree(root / "validation")
    with pytest.raises(cinc2017.Cinc2017Error, match="split=preset needs training2017/"):
        load_dataset("cinc2017", tmp_path, {**options, "split": "preset"})
