"""``--set eval.cv=K`` and ``--limit N`` end to end on the real CinC 2017 sample: one pretraining per fold on that
fold's training split only, every record tested once in the pooled result, pooled numbers equal
to the metric on the concatenated fold predictions, and a rerun that resumes to the same numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ecgbench.cli import main
from ecgbench.core.store import ResultStore
from ecgbench.data.folds import is_fold_result

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def cinc(tmp_path_factory):
    if not (SHARED_DATA / "cinc2017").is_dir():
        pytest.skip("shared CinC 2017 sample not found")
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(SHARED_DATA / "cinc2017", root / "cinc2017")
    return root


@pytest.mark.slow
def test_three_fold_cross_validation_tests_every_record_once(cinc, tmp_path, one_torch_thread):
    from ecgbench.evaluation.metrics import metric_value

    results = tmp_path / "results"
    args = ["run", "--methods", "random-init-lead2,simclr-lead2", "--tasks", "cinc2017-af", "--probes", "lr",
            "--preset", "smoke", "--seeds", "0", "--data-root", str(cinc), "--results-dir", str(results),
            "--no-tracking", "--set", "eval.cv=3", "--set", "simclr-lead2.max_steps=2"]
    assert main(args) == 0
    stored = list(ResultStore(results).results())
    pooled = [r for r in stored if not is_fold_result(r)]
    assert sorted(r["method"] for r in pooled) == ["random-init-lead2", "simclr-lead2"]
    assert len([r for r in stored if is_fold_result(r)]) == 6  # 2 methods x 3 folds

    runs = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("simclr-lead2-*/run.json"))]
    assert sorted(r["run_config"]["pretrain_data"].split("-cv3.")[1] for r in runs) == ["0:train", "1:train",
                                                                                       "2:train"]
    for record in pooled:
        assert record["protocol"] == "frozen-probe-cv3" and record["n"]["test"] == 200  # all 200 recordings
        with np.load(results / "runs" / record["run_id"] / record["task_key"] / record["predictions"]) as arrays:
            assert sorted(arrays["test_indices"].tolist()) == list(range(200))
            expected = metric_value("multiclass", "macro_f1", arrays["y_true"], arrays["y_pred"], arrays["scores"])
        assert record["metrics"]["macro_f1"] == pytest.approx(expected)
        folds = [r for r in stored if r["key"] in record["cv"]["results"]]
        assert record["val_score"] == pytest.approx(np.mean([r["val_score"] for r in folds]))
        for fold in folds:  # pretraining and probes saw only that fold's training split
            assert fold["n"]["test"] + fold["n"]["val"] + fold["n"]["train"] == 200

    assert main(args) == 0  # everything cached: the same pooled numbers
    again = {r["key"]: r["metrics"] for r in ResultStore(results).results() if not is_fold_result(r)}
    assert again == {r["key"]: r["metrics"] for r in pooled}


def test_limit_runs_a_real_task_on_the_first_patients_and_says_so_in_every_key(cinc, tmp_path):
    results = tmp_path / "results"
    assert main(["run", "--methods", "random-init-lead2", "--tasks", "cinc2017-af", "--probes", "lr", "--preset",
                 "smoke", "--data-root", str(cinc), "--results-dir", str(results), "--no-tracking", "--limit", "6"]) == 0
    (record,) = ResultStore(results).results()
    assert record["n"] == {"train": 6, "val": 6, "test": 6}  # CinC 2017: one recording per patient
    assert record["adaptation"]["dataset"].endswith("-limit6")
    assert record["run_config"]["pretrain_data"].endswith("-limit6:train")
