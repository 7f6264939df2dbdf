"""Bad input, planted one at a time: settings, command line, data, result and cache files.

Each must give ONE line naming the setting or file and what would be valid (exit code 2 when it
is found before any work), or a warning naming the file where the file is skipped or recomputed.
The CLI runs in-process (``benchmark.cli.main``) so the whole file takes seconds.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from ecgbench.cli import main
from ecgbench.core.store import (
    FILE_MODE,
    ResultStore,
    StoreError,
    atomic_write,
    cached_array,
    cached_record,
    write_json,
    write_npy,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
REFERENCE = PROJECT_ROOT / "results" / "reference"
FOUND_BEFORE_WORK_SECONDS = 5.0


@pytest.fixture(scope="module", autouse=True)
def imported():
    """Import what a run imports once, so the timings below measure the checks, not torch's
    import (seconds on a loaded machine, paid by any command that builds a method)."""
    from ecgbench.core.registry import METHODS

    METHODS.get("simclr")  # imports torch


def _run(argv, capsys):
    clock = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - clock
    out, err = capsys.readouterr()
    return code, out, err, seconds


def _assert_one_line(err: str, *named: str) -> None:
    assert err.startswith("ecgbench: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in named:
        assert text in err, err


# ----- settings and command line: found before any work ---------------------------------------
SETTINGS = [
    (["--set", "lr=-1"], "lr=-1.0", "> 0"),
    (["--set", "lr=0"], "lr=0.0", "> 0"),
    (["--set", "lr=nan"], "lr=nan", "finite"),
    (["--set", "lr=inf"], "lr=inf", "finite"),
    (["--set", "lr=fast"], "lr='fast'", "expected a float"),
    (["--set", "simclr.batch_size=0"], "batch_size=0", "> 0"),
    (["--set", "batch_size=2.5"], "batch_size", "expected a int"),
    (["--set", "max_steps=-1"], "max_steps=-1", ">= 0"),
    (["--set", "warmup_steps=-2"], "warmup_steps=-2", ">= 0"),
    (["--set", "weight_decay=-0.1"], "weight_decay=-0.1", ">= 0"),
    (["--set", "grad_clip=-1"], "grad_clip=-1.0", ">= 0"),
    (["--set", "betas=0.9"], "betas=(0.9,)", "two numbers in [0, 1)"),
    (["--set", "betas=0.9,1.5"], "betas=(0.9, 1.5)", "two numbers in [0, 1)"),
    (["--set", "optimizer=adamx"], "optimizer='adamx'", "adam, adamw, sgd"),
    (["--set", "fs=0"], "fs=0", "> 0"),
    (["--set", "n_samples=-5"], "n_samples=-5", "> 0"),
    (["--set", "leads="], "leads=()", "at least one lead"),
    (["--set", "eval.bootstrap=-5"], "eval.bootstrap=-5", ">= 1"),
    (["--set", "eval.bootstrap=0"], "eval.bootstrap=0", ">= 1"),
    (["--set", "eval.bootstrap=many"], "eval.bootstrap", "expected a int"),
    (["--set", "eval.probe_grid=huge"], "eval.probe_grid='huge'", "full, small"),
    (["--set", "eval.label_fractions=2"], "eval.label_fractions=(2.0,)", "(0, 1]"),
    (["--set", "eval.label_fractions=0"], "eval.label_fractions=(0.0,)", "(0, 1]"),
    (["--set", "eval.label_fractions=0.5,0.5"], "eval.label_fractions=(0.5, 0.5)", "distinct"),
    (["--set", "eval.label_fractions="], "eval.label_fractions=()", "(0, 1]"),
    (["--set", "eval.embed_batch_size=0"], "eval.embed_batch_size=0", ">= 1"),
    (["--set", "eval.clustering=maybe"], "eval.clustering", "expected true or false"),
    (["--set", "eval.bootstrp=3"], "eval.bootstrp", "Did you mean 'bootstrap'"),
    (["--set", "learning_rate=0.1"], "learning_rate", "Did you mean 'lr'?"),
    (["--set", "wd=0.1"], "'wd'", "Did you mean 'weight_decay'?"),
    (["--set", "simclr.temprature=2"], "temprature", "Did you mean 'temperature'"),
    (["--set", "simclrr.lr=2"], "simclrr", "Did you mean 'simclr'"),
    (["--set", "lr"], "lr", "key=value"),
]

COMMAND_LINE = [
    (["--probes", ","], "--probes", "svc"),
    (["--probes", "svm"], "unknown probe 'svm'", "Did you mean"),
    (["--probes", "lr,lr"], "--probes", "twice"),
    (["--seeds", "0,0"], "--seeds 0,0", "twice"),
    (["--seeds", "-1"], "--seeds", "non-negative"),
    (["--shard", "2/2"], "--shard 2/2", "0 <= i < n"),
    (["--tracking-uri", "foo://bar"], "--tracking-uri foo://bar", "sqlite://"),
    (["--tracking-uri", "ftp://host/x"], "'ftp'", "http://"),
    (["--tasks", "synth-agee"], "synth-agee", "Did you mean 'synth-age'"),
    (["--pretrain-data", "ptbx"], "--pretrain-data", "Did you mean 'ptbxl'"),
]

DATA_OPTIONS = [
    (["--set", "data.n_patient=3"], "n_patient", "Did you mean 'n_patients'"),
    (["--set", "data.n_patients=abc"], "data.n_patients", "expected a int"),
    (["--set", "data.ptbx.fs=500"], "'ptbx' is not a dataset", "Did you mean 'ptbxl'"),
    (["--set", "data.ptbxl.fss=500"], "data.ptbxl.fss", "Did you mean 'fs'"),
    (["--set", "data.cinc2017.label=v3"], "data.cinc2017.label", "Did you mean 'labels'"),
]


@pytest.mark.parametrize("extra, key, valid", SETTINGS + COMMAND_LINE + DATA_OPTIONS,
                         ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_request_is_one_line_before_any_work(extra, key, valid, capsys, tmp_path):
    argv = ["run", "--methods", "simclr", "--tasks", "synth-superclass", "--pretrain-data", "synthetic",
            "--results-dir", str(tmp_path / "results"), "--data-root", str(tmp_path / "data"), "--no-tracking"]
    code, out, err, seconds = _run(argv + extra, capsys)
    assert code == 2 and out == ""
    _assert_one_line(err, key, valid)
    assert seconds < FOUND_BEFORE_WORK_SECONDS
    assert not (tmp_path / "data").exists(), "nothing generated before the error"


def test_option_of_a_dataset_the_run_does_not_load_is_a_warning(capsys):
    """One --set may serve several runs (``run --layout``), so it is not an error."""
    from ecgbench.running.validate import check_data_options

    check_data_options({"ptbxl.fs": "500", "n_patients": "40"}, ["synthetic"])
    err = capsys.readouterr().err
    assert err == ("ecgbench: warning: --set data.ptbxl.fs: this run loads no ptbxl (it loads synthetic); "
                   "ignored\n")


def _run_request(extra, capsys, tmp_path, tracking=False):
    argv = ["run", "--methods", "simclr", "--results-dir", str(tmp_path / "results"), *extra]
    return _run(argv + ([] if tracking else ["--no-tracking"]), capsys)


@pytest.mark.parametrize("extra", [["--tasks", "ptbxl-superclass"], ["--set", "eval.probe_grid=huge"],
                                   ["--probes", ","], ["--tracking-uri", "foo://bar"]])
def test_request_errors_need_no_torch_from_a_fresh_process(extra, tmp_path):
    """Found before the methods' code (and torch) is imported: about a second, even cold."""
    import subprocess
    import sys

    code = ("import sys, time\nclock = time.perf_counter()\nfrom ecgbench.cli import main\n"
            f"status = main({['run', '--results-dir', str(tmp_path / 'r'), '--data-root', str(tmp_path), *extra]!r})\n"
            "print(status, 'torch' in sys.modules, time.perf_counter() - clock)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    status, torch_imported, seconds = done.stdout.split()
    assert status == "2" and torch_imported == "False" and done.stderr.count("\n") == 1, done.stderr
    assert float(seconds) < FOUND_BEFORE_WORK_SECONDS


def test_results_dir_that_is_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err, seconds = _run(["run", "--methods", "simclr", "--results-dir", str(tmp_path / "file")], capsys)
    assert code == 2 and seconds < FOUND_BEFORE_WORK_SECONDS
    _assert_one_line(err, f"--results-dir {tmp_path / 'file'}", "not a folder")


def test_results_dir_below_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err, _ = _run(["run", "--methods", "simclr", "--results-dir", str(tmp_path / "file" / "r")], capsys)
    assert code == 2
    _assert_one_line(err, str(tmp_path / "file" / "r"), "not writable")


def test_results_dir_not_writable(capsys, tmp_path):
    """/proc refuses new folders even to root (a chmod'ed folder would not stop root)."""
    code, _, err, seconds = _run(["run", "--methods", "simclr", "--results-dir", "/proc/ecgbench-results"], capsys)
    assert code == 2 and seconds < FOUND_BEFORE_WORK_SECONDS
    _assert_one_line(err, "--results-dir /proc/ecgbench-results", "not writable")


def test_data_root_that_is_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err, _ = _run_request(["--data-root", str(tmp_path / "file")], capsys, tmp_path)
    assert code == 2
    _assert_one_line(err, f"--data-root {tmp_path / 'file'}", "is a file")


def test_cuda_without_cuda(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    code, _, err, seconds = _run_request(["--device", "cuda"], capsys, tmp_path)
    assert code == 2 and seconds < FOUND_BEFORE_WORK_SECONDS
    _assert_one_line(err, "--device cuda", "--device cpu")


def test_tracking_uri_checked_when_tracking(capsys, tmp_path):
    code, _, err, _ = _run_request(["--tracking-uri", "foo://bar"], capsys, tmp_path, tracking=True)
    assert code == 2
    _assert_one_line(err, "foo://bar")


@pytest.mark.parametrize("uri", ["sqlite:////proc/ecgbench/mlflow.db", "file:///proc/ecgbench-runs", "/proc/ecgbench-runs"])
def test_local_tracking_store_that_cannot_be_written(uri, capsys, tmp_path):
    """Found at once, instead of minutes of sqlite retries."""
    code, _, err, seconds = _run_request(["--tracking-uri", uri], capsys, tmp_path, tracking=True)
    assert code == 2 and seconds < FOUND_BEFORE_WORK_SECONDS
    _assert_one_line(err, f"--tracking-uri {uri}", "not writable")


@pytest.mark.parametrize("task, pretrain, missing", [
    ("ptbxl-superclass", "synthetic", "ptbxl_database.csv"),
    ("cinc2017-af", "synthetic", "cinc2017"),
    ("cinc2021-sex", "synthetic", "cinc2021"),
    ("har", "synthetic", "UCI HAR"),
    ("dreamer-valence", "synthetic", "DREAMER"),
    ("synth-superclass", "ptbxl", "ptbxl_database.csv"),
])
def test_missing_dataset_is_reported_before_the_synthetic_suite(task, pretrain, missing, capsys, tmp_path):
    data = tmp_path / "data"
    code, _, err, seconds = _run_request(["--tasks", task, "--pretrain-data", pretrain, "--data-root", str(data)],
                                         capsys, tmp_path)
    assert code == 2 and seconds < FOUND_BEFORE_WORK_SECONDS
    _assert_one_line(err, missing, "ecgbench data download")
    assert not any(data.glob("synthetic-*")), "the synthetic suite was generated first"


def test_data_option_typo_found_before_the_dataset_loads(capsys, tmp_path):
    """PTB-XL is present (read only): the typo is found before anything is read or prepared."""
    if not (SHARED_DATA / "ptb-xl" / "ptbxl_database.csv").is_file():
        pytest.skip("the shared PTB-XL sample is not here")
    code, _, err, seconds = _run_request(["--tasks", "ptbxl-sex", "--pretrain-data", "ptbxl", "--data-root",
                                          str(SHARED_DATA), "--set", "data.ptbxl.fss=500"], capsys, tmp_path)
    assert code == 2 and seconds < FOUND_BEFORE_WORK_SECONDS
    _assert_one_line(err, "data.ptbxl.fss", "Did you mean 'fs'", "allow_subset")


# ----- result and run files: tables and leaderboard skip them with a warning -------------------
def _reference_result() -> tuple[Path, dict]:
    path = next(iter(sorted(REFERENCE.glob("runs/*/*/*.json"))))
    return path, json.loads(path.read_text())


BAD_FILES = {
    "corrupt": "{\"method\": ",
    "empty object": "{}",
    "a list": "[1, 2]",
    "not utf-8": b"\xff\xfe\x00garbage",
    "empty": "",
}


def _plant(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


@pytest.mark.parametrize("kind", BAD_FILES)
def test_table_skips_a_bad_result_file_with_a_warning(kind, capsys, tmp_path):
    source, record = _reference_result()
    store = ResultStore(tmp_path)
    write_json(store.result_path(record["run_id"], record["task_key"], source.stem), record)
    bad = store.result_path("foreign-1", "t@v1", "frozen-probe-lr-0")
    _plant(bad, BAD_FILES[kind])
    code, out, err, _ = _run(["table", "--results-dir", str(tmp_path)], capsys)
    assert code == 0 and record["task_key"] in out
    assert err.count("\n") == 1 and err.startswith("ecgbench: warning: ") and str(bad) in err
    assert "delete it" in err


def test_leaderboard_skips_a_bad_result_file_with_a_warning(capsys, tmp_path):
    source, record = _reference_result()
    store = ResultStore(tmp_path / "results")
    write_json(store.result_path(record["run_id"], record["task_key"], source.stem), record)
    bad = store.result_path(record["run_id"], record["task_key"], "frozen-probe-lr-broken")
    _plant(bad, "{}")
    board = tmp_path / "BENCHMARK.md"
    shutil.copyfile(PROJECT_ROOT / "BENCHMARK.md", board)
    code, _, err, _ = _run(["leaderboard", "--results-dir", str(store.root), "--file", str(board)], capsys)
    assert code == 0 and "Traceback" not in err
    assert f"ecgbench: warning: {bad}" in err


def test_bad_run_record_is_skipped_with_a_warning(capsys, tmp_path):
    store = ResultStore(tmp_path)
    _plant(store.run_record("simclr-0"), "{\"run_id\": ")
    assert list(store.runs()) == []
    assert str(store.run_record("simclr-0")) in capsys.readouterr().err


# ----- cache files: treated as missing, with a warning naming the file -------------------------
@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_cached_record_is_recomputed(kind, capsys, tmp_path):
    path = tmp_path / "run.json"
    _plant(path, BAD_FILES[kind])
    assert cached_record(path, ("run_id",)) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "recomputing" in err


def test_truncated_embeddings_are_recomputed(capsys, tmp_path):
    path = tmp_path / "e.npy"
    write_npy(path, np.ones((20, 8), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:200])
    assert cached_array(path, (20, 8)) is None
    err = capsys.readouterr().err
    assert str(path) in err and "recomputing" in err and err.count("\n") == 1


def test_wrong_shape_embeddings_are_recomputed(capsys, tmp_path):
    path = tmp_path / "e.npy"
    write_npy(path, np.ones((20, 8), dtype=np.float32))
    assert cached_array(path, (21, 8)) is None
    assert "shape (20, 8), expected (21, 8)" in capsys.readouterr().err
    assert cached_array(path, (20, 8)).shape == (20, 8)


def test_foreign_npy_is_recomputed(capsys, tmp_path):
    path = tmp_path / "e.npy"
    path.write_text("not an array")
    assert cached_array(path) is None
    assert str(path) in capsys.readouterr().err


# ----- writing: disk full names the file; files readable as the umask allows -----------------
def test_disk_full_names_the_file(tmp_path):
    def full(tmp):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    target = tmp_path / "runs" / "r.json"
    with pytest.raises(StoreError, match=f"{target}: cannot write .*free space"):
        atomic_write(target, full)
    assert list(target.parent.iterdir()) == [], "no temp file left behind"


def test_disk_full_while_torch_saves_names_the_file(tmp_path, monkeypatch):
    """torch.save on a full disk raises a RuntimeError without an errno; the free space says why."""
    import shutil as shell

    import torch

    monkeypatch.setattr(shell, "disk_usage", lambda folder: shell._ntuple_diskusage(10**9, 10**9, 0))
    target = tmp_path / "cache" / "checkpoints" / "m.pt"

    def save(tmp):
        torch.save({"model": {}}, tmp)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    with pytest.raises(StoreError, match=f"{target}: cannot write \\(No space left on device\\)"):
        atomic_write(target, save)


def test_disk_full_on_the_command_line_is_one_line(capsys, tmp_path, monkeypatch):
    source, record = _reference_result()
    store = ResultStore(tmp_path)
    write_json(store.result_path(record["run_id"], record["task_key"], source.stem), record)

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    out = tmp_path / "table.md"
    code, _, err, _ = _run(["table", "--results-dir", str(tmp_path), "--out", str(out)], capsys)
    assert code == 1
    _assert_one_line(err, str(out), "No space left")


def test_written_files_are_readable_as_the_umask_allows(tmp_path):
    write_json(tmp_path / "r.json", {"a": 1})
    write_npy(tmp_path / "e.npy", np.zeros(3))
    plain = tmp_path / "plain"
    plain.write_text("x")
    for name in ("r.json", "e.npy"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == FILE_MODE == stat.S_IMODE(plain.stat().st_mode), oct(mode)


# ----- a real (tiny) run: damaged caches are recomputed, keys name the data --------------------
TINY = ["--methods", "random-init", "--probes", "lr", "--set", "data.n_patients=40", "--set", "eval.bootstrap=20",
        "--no-tracking"]


def _scores(results_dir: Path) -> dict[str, dict]:
    return {r["key"]: r["metrics"] for r in ResultStore(results_dir).results()}


def test_run_recomputes_damaged_caches_with_a_warning_each(capsys, tmp_path, one_torch_thread):
    argv = ["run", *TINY, "--tasks", "synth-sex", "--results-dir", str(tmp_path / "r"),
            "--data-root", str(tmp_path / "data")]
    assert main(argv) == 0
    capsys.readouterr()
    store = ResultStore(tmp_path / "r")
    first = _scores(store.root)
    (result,) = store.root.glob("runs/*/*/*.json")
    (run_record,) = store.root.glob("runs/*/run.json")
    (embeddings,) = store.root.glob("cache/embeddings/*/*.npy")
    (checkpoint,) = store.root.glob("cache/checkpoints/*.pt")
    result.write_text("{}")
    run_record.write_text('{"run_id": ')
    embeddings.write_bytes(embeddings.read_bytes()[:100])
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for damaged in (result, run_record, embeddings):
        assert f"ecgbench: warning: {damaged}" in err, damaged
    assert "1 new" in err and _scores(store.root) == first, "recomputed, to the same numbers"
    checkpoint.write_bytes(b"not a checkpoint")  # with an intact run record
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"ecgbench: warning: {checkpoint}: unreadable checkpoint" in err and "retraining" in err
    assert _scores(store.root) == first


def test_result_keys_name_the_data_they_were_scored_on(capsys, tmp_path, one_torch_thread):
    """Rerun against a smaller PTB-XL tree (a copy of the shared sample) into the same results
    folder: the numbers are scored again, not reused."""
    source = SHARED_DATA / "ptb-xl"
    if not (source / "ptbxl_database.csv").is_file():
        pytest.skip("the shared PTB-XL sample is not here")
    tree = tmp_path / "data" / "ptb-xl"
    tree.mkdir(parents=True)
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        shutil.copyfile(source / name, tree / name)
    shutil.copytree(source / "records100", tree / "records100")
    argv = ["run", *TINY, "--tasks", "ptbxl-sex", "--pretrain-data", "synthetic", "--set",
            "data.ptbxl.allow_subset=true", "--results-dir", str(tmp_path / "r"), "--data-root", str(tmp_path / "data")]
    assert main(argv) == 0
    first = _scores(tmp_path / "r")
    for header in sorted(tree.glob("records100/*/*.hea"))[::3]:  # a third of the records go
        header.unlink()
        header.with_suffix(".dat").unlink()
    capsys.readouterr()
    assert main(argv) == 0
    assert "1 new" in capsys.readouterr().err
    second = _scores(tmp_path / "r")
    assert len(second) == 2 and set(first) < set(second)
    tags = {r["probe_spec"]["data"] for r in ResultStore(tmp_path / "r").results()}
    assert len(tags) == 2 and all(tag.startswith("ptbxl@") for tag in tags)


def test_synthetic_keys_stay_where_the_run_names_the_data():
    """Pretrained on the very dataset version it is scored on: the run id names the data, so the
    key is unchanged (the committed reference grid stays valid)."""
    import pandas as pd

    from ecgbench.core.config import RunConfig
    from ecgbench.running.stages.evaluate import data_tag

    class Data:
        def __init__(self, name, version, ids):
            self.name, self.version = name, version
            self.meta = pd.DataFrame({"record_id": ids, "patient_id": ids, "split": "train"})

    config = RunConfig("simclr", 1, {}, "smoke", "synthetic@1-abc:train", 0)
    assert data_tag(config, Data("synthetic", "1-abc", ["a", "b"])) is None
    tag = data_tag(config, Data("ptbxl", "1-100-x", ["a", "b"]))
    assert tag.startswith("ptbxl@1-100-x#")
    assert data_tag(config, Data("ptbxl", "1-100-x", ["a", "c"])) != tag, "the fingerprint follows the records"
