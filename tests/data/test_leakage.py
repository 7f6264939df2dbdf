"""The leakage guard: real CinC 2021 and PTB-XL samples, planted overlaps, the runner and CLI path.

The PTB-XL sample in ../shared/data holds ecg_id 1-300, not the 6000-6009 of the CinC 2021
sample's HR records, so the PTB-XL side of the real check is metadata-level: the guard excludes
the 10 HR records because CinC 2021 declares them PTB-XL records whose PTB-XL split the loaded
subset cannot tell. Planted overlaps use small in-memory Recordings named after the datasets
whose declarations they borrow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.contracts import STANDARD_LEADS, Recordings
from ecgbench.data import leakage
from ecgbench.data.datasets import cinc2021, ptbxl

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SAMPLES, PTBXL = SHARED / "cinc2021-samples", SHARED / "ptb-xl"
HR = [f"HR0600{i}" for i in range(10)]
needs_data = pytest.mark.skipif(not (SAMPLES.is_dir() and PTBXL.is_dir()),
                                reason="shared CinC 2021 / PTB-XL samples absent")


def toy(name: str, record_id: list, patient_id: list, split: list, **columns) -> Recordings:
    meta = pd.DataFrame({"record_id": record_id, "patient_id": patient_id, "split": split, **columns})
    return Recordings(name, "toy", np.zeros((len(meta), 12, 4), np.float32), meta, 500, STANDARD_LEADS)


@pytest.fixture(scope="module")
def cinc(tmp_path_factory):
    return cinc2021.load(SAMPLES, cache_dir=tmp_path_factory.mktemp("cinc"))


@pytest.fixture(scope="module")
def ptb(tmp_path_factory):
    return ptbxl.load(PTBXL, fs=100, allow_subset=True, cache_dir=tmp_path_factory.mktemp("ptbxl"))


def held_out_hr(cinc) -> list[str]:
    meta = cinc.meta[cinc.meta["source"] == "ptb-xl"]
    return meta.loc[meta["split"] != "train", "record_id"].tolist()


# ----- the real samples ------------------------------------------------------------------------
@needs_data
def test_finds_the_10_ptbxl_records_when_a_ptbxl_task_is_evaluated(cinc, ptb):
    assert not set(range(6000, 6010)) & set(ptb.meta["record_id"])  # metadata-level, see above
    selection = leakage.select_pretraining(cinc, {"cinc2021": cinc, "ptbxl": ptb},
                                           {"ptbxl": ["ptbxl-sex"], "cinc2021": ["cinc2021-sex"]})
    assert selection.excluded == {"ptbxl": HR}
    used = set(cinc.meta["record_id"][selection.indices])
    assert not used & set(HR)
    assert used == set(cinc.meta.loc[(cinc.meta["split"] == "train") & (cinc.meta["source"] != "ptb-xl"), "record_id"])
    assert selection.key.startswith("-minus-ptbxl:10:")
    record = selection.record()
    assert record["excluded"]["ptbxl"] == {"records": 10, "ids": HR}
    assert record["pretrain_records"] == len(used)


@needs_data
def test_nothing_excluded_without_a_ptbxl_task(cinc):
    selection = leakage.select_pretraining(cinc, {"cinc2021": cinc})
    assert selection.excluded == {} and selection.key == ""  # run ids of such runs do not change
    assert (selection.indices == cinc.indices("train")).all()


@needs_data
def test_refuses_hr_records_that_are_ptbxl_test_records(cinc):
    """Planted: a PTB-XL whose test fold holds ecg_id 6000 and a test patient with 6001."""
    train_hr = [r for r in HR if r not in held_out_hr(cinc)]
    ids = [int(r[2:]) for r in train_hr]
    fake = toy("ptbxl", ids + [7000], list(range(len(ids))) + [1],
               ["test"] + ["train"] * (len(ids) - 1) + ["test"])  # ids[1] shares patient 1 with 7000
    with pytest.raises(leakage.LeakageError) as error:
        leakage.check(cinc, cinc.indices("train"), {"ptbxl": fake}, {"ptbxl": ["ptbxl-sex"]})
    message = str(error.value)
    assert f"1 record ({train_hr[0]}={ids[0]})" in message and f"1 patient ({train_hr[1]}->1)" in message
    assert "val/test splits of ptbxl (tasks ptbxl-sex)" in message and "\n" not in message
    # the guard excludes exactly those two; the rest map to PTB-XL training records and stay
    selection = leakage.select_pretraining(cinc, {"ptbxl": fake})
    assert selection.excluded == {"ptbxl": sorted(held_out_hr(cinc) + train_hr[:2])}
    assert set(train_hr[2:]) <= set(cinc.meta["record_id"][selection.indices])


@needs_data
def test_pretraining_on_ptbxl_drops_what_cinc2021_holds_out(cinc):
    """Planted PTB-XL pretraining set with ecg_id 6000-6009 all in training; 6100 is another
    record of 6002's patient."""
    ids = list(range(6000, 6010)) + [6100]
    fake = toy("ptbxl", ids, list(range(10)) + [2], ["train"] * 11)
    held = held_out_hr(cinc)
    selection = leakage.select_pretraining(fake, {"cinc2021": cinc})
    dropped = {int(r[2:]) for r in held} | ({6100} if "HR06002" in held else set())
    assert set(map(int, selection.excluded["cinc2021"])) == dropped
    with pytest.raises(leakage.LeakageError, match=rf"{int(held[0][2:])}={held[0]}"):
        leakage.check(fake, np.arange(11), {"cinc2021": cinc})


# ----- planted overlaps without real data ------------------------------------------------------
def test_same_dataset_records_and_patients_are_refused():
    data = toy("toy", ["a", "b", "c", "d"], [1, 2, 2, 3], ["train", "train", "test", "val"])
    leakage.check(data, np.array([0]), {"toy": data})  # record a: patient 1 only in training
    with pytest.raises(leakage.LeakageError, match=r"1 patient \(2\) of the val/test splits of toy"):
        leakage.check(data, np.array([0, 1]), {"toy": data})
    with pytest.raises(leakage.LeakageError, match=r"2 records \(c, d\) and 2 patients \(2, 3\)"):
        leakage.check(data, np.arange(4), {"toy": data})
    with pytest.raises(leakage.LeakageError, match="1 patient"):  # the runner's path refuses too
        leakage.select_pretraining(data, {"toy": data})


def test_ptb_records_may_share_patients_and_are_excluded_or_refused():
    cinc = toy("cinc2021", ["S0001", "E00001"], [4000001, 6000001], ["train", "train"],
               source=["ptb", "georgia"], source_record_id=["", ""])
    ptb = toy("ptbxl", [1], [1], ["test"])
    selection = leakage.select_pretraining(cinc, {"ptbxl": ptb})
    assert selection.excluded == {"ptbxl": ["S0001"]} and selection.indices.tolist() == [1]
    with pytest.raises(leakage.LeakageError, match=r"S0001 \(may share patients\)"):
        leakage.check(cinc, np.arange(2), {"ptbxl": ptb})
    held = toy("cinc2021", ["S0001"], [4000001], ["test"], source=["ptb"], source_record_id=[""])
    reverse = leakage.select_pretraining(toy("ptbxl", [1, 2], [1, 2], ["train"] * 2), {"cinc2021": held})
    assert reverse.excluded == {} and "may share patients with ptbxl" in reverse.notes[0]


def test_everything_excluded_is_one_clear_error():
    cinc = toy("cinc2021", ["HR00001"], [5000001], ["train"], source=["ptb-xl"],
               source_record_id=["1"])
    with pytest.raises(leakage.LeakageError, match="no training record of cinc2021 is left"):
        leakage.select_pretraining(cinc, {"ptbxl": toy("ptbxl", [2], [2], ["test"])})


# ----- through the runner and the CLI ----------------------------------------------------------
@pytest.fixture
def data_root(tmp_path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    (root / "cinc2021").symlink_to(SAMPLES, target_is_directory=True)
    (root / "ptb-xl").symlink_to(PTBXL, target_is_directory=True)
    return root


@needs_data
def test_runner_excludes_logs_and_keys_the_pretraining_data(tmp_path, data_root, one_torch_thread):
    from ecgbench.running.runner import Runner, RunRequest, resolve

    def runner(tasks):
        request = RunRequest(methods=["simclr"], tasks=tasks, probes=["lr"], seeds=[0],
                             results_dir=tmp_path / "results", data_root=data_root,
                             pretrain_dataset="cinc2021", track=False, device="cpu")
        return Runner(resolve(request))

    both = runner(["cinc2021-sex", "ptbxl-sex"])
    assert both.pretraining.excluded == {"ptbxl": HR}
    config = both.run_config("simclr", 0)
    assert config.pretrain_data.endswith(":train" + both.pretraining.key)
    alone = runner(["cinc2021-sex"]).run_config("simclr", 0)
    assert alone.pretrain_data.endswith(":train") and alone.run_id != config.run_id


@needs_data
def test_cli_refuses_an_unknown_pretraining_dataset(capsys):
    from ecgbench.cli import main

    assert main(["run", "--pretrain-data", "cinc2012", "--tasks", "cinc2021-sex"]) == 2
    assert "unknown dataset 'cinc2012'. Did you mean 'cinc2021'" in capsys.readouterr().err


@pytest.mark.slow
@needs_data
def test_end_to_end_pretraining_on_real_cinc2021(tmp_path, data_root, capsys, one_torch_thread):
    """The issue's command: random-init and SimCLR pretrained on the real CinC 2021 sample,
    probed for sex on it (about 20 s; the numbers mean little at 50 records)."""
    from ecgbench.cli import main

    results = tmp_path / "results"
    code = main(["run", "--methods", "random-init,simclr", "--pretrain-data", "cinc2021",
                 "--tasks", "cinc2021-sex", "--preset", "smoke", "--seeds", "0",
                 "--data-root", str(data_root), "--results-dir", str(results), "--no-tracking"])
    assert code == 0
    table = capsys.readouterr().out
    assert "cinc2021-sex@v1" in table and "simclr" in table and "random-init" in table
    records = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*/run.json"))]
    assert {r["method"] for r in records} == {"random-init", "simclr"}
    trained = next(r for r in records if r["method"] == "simclr")
    assert trained["run_config"]["pretrain_data"].startswith("cinc2021@1.0.3-p1-")
    assert trained["leakage"]["pretrain_records"] == 39 and trained["leakage"]["excluded"] == {}
    assert trained["train"]["steps"] > 0 and np.isfinite(trained["train"]["final_loss"])
    scores = [json.loads(p.read_text()) for p in (results / "runs").glob("*/cinc2021-sex@v1/*.json")]
    assert len(scores) == 10 and all(s["n"]["test"] == 8 for s in scores)


# ----- pretraining follows the task ------------------------------------------------------------
def test_pretraining_follows_the_task_unless_the_user_names_a_corpus():
    from ecgbench.core.config import ConfigError

    assert leakage.default_pretraining(["ptbxl-superclass", "ptbxl-sex"]) == "ptbxl"
    assert leakage.default_pretraining(["cinc2017-af"]) == "cinc2017"
    assert leakage.default_pretraining(["synth-superclass", "synth-age"]) == "synthetic"  # synth-* keep the suite
    with pytest.raises(ConfigError, match=r"^--pretrain-data: the tasks evaluate ptbxl, cinc2017; pass "
                                          r"--pretrain-data NAME \(one of them"):
        leakage.default_pretraining(["ptbxl-sex", "cinc2017-af"])


@needs_data
def test_tasks_on_several_datasets_without_a_corpus_are_refused_in_one_line(tmp_path, capsys):
    from ecgbench.cli import main

    root = tmp_path / "data"
    root.mkdir()
    (root / "ptb-xl").symlink_to(PTBXL, target_is_directory=True)
    (root / "cinc2017").symlink_to(SHARED / "cinc2017", target_is_directory=True)
    assert main(["run", "--methods", "simclr", "--tasks", "ptbxl-sex,cinc2017-af", "--no-tracking",
                 "--data-root", str(root), "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --pretrain-data NAME" in err
    assert not (tmp_path / "results" / "runs").exists()  # before any work


@pytest.mark.slow
@needs_data
def test_a_ptbxl_task_pretrains_on_ptbxl_training_folds(tmp_path, data_root, one_torch_thread):
    """The issue's command without --pretrain-data: SimCLR pretrains on PTB-XL's folds 1-8 (the
    300-record sample's), never on synthetic signals, and its run record says so."""
    from ecgbench.cli import main

    results = tmp_path / "results"
    assert main(["run", "--methods", "random-init,simclr", "--tasks", "ptbxl-superclass", "--preset", "smoke",
                 "--set", "data.ptbxl.allow_subset=true", "--data-root", str(data_root),
                 "--results-dir", str(results), "--no-tracking", "--probes", "lr"]) == 0
    records = {r["method"]: r for r in (json.loads(p.read_text()) for p in (results / "runs").glob("*/run.json"))}
    simclr = records["simclr"]
    assert simclr["run_config"]["pretrain_data"].startswith("ptbxl@") and simclr["run_config"]["pretrain_data"].endswith(":train")
    assert simclr["leakage"]["pretrain_dataset"] == "ptbxl" and simclr["leakage"]["excluded"] == {}
    meta = ptbxl.load(data_root, allow_subset=True, fs=100, cache_dir=tmp_path / "cache").meta
    folds = pd.read_csv(PTBXL / "ptbxl_database.csv", index_col="ecg_id")["strat_fold"]
    assert simclr["leakage"]["pretrain_records"] == int((meta["split"] == "train").sum())
    assert set(folds[meta["record_id"][meta["split"] == "train"].astype(int)]) <= set(range(1, 9))
