"""``ecgbench tune``: the search space, validation-only scoring, a whole search with ASHA pruning,
resume after kill -9, a two-node Ray cluster, and the best config fed back to ``run``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from netutil import free_port

from ecgbench.cli import main
from ecgbench.core.store import read_json
from ecgbench.tools.tune import (
    FINISHED,
    TuneRequest,
    covering_default,
    declared_space,
    is_default,
    milestones,
    ran_to_the_end,
    resolve_search,
    trial_data,
)

SMALL = ["--set", "data.n_patients=90"]
TASK = "synth-superclass"


def tune_argv(results: Path, trials: int, *extra: str) -> list[str]:
    return ["tune", "--method", "transform-cnn", "--task", TASK, "--trials", str(trials), "--preset", "smoke",
            "--results-dir", str(results), *SMALL, *extra]


def search_folder(results: Path) -> Path:
    (folder,) = (results / "tune").iterdir()
    return folder


def records(folder: Path) -> dict[str, dict]:
    return {path.stem: read_json(path) for path in sorted((folder / "trials").glob("*.json"))}


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "ECGBENCH_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}


# ----- fast: the space and what a trial may see ------------------------------------------------
def test_transform_cnn_space_follows_seed_004_and_covers_the_default():
    from ecgbench.core.registry import METHODS

    cls = METHODS.get("transform-cnn")
    config = cls.Config(max_steps=100)
    space = declared_space(cls, config, fixed=set())
    assert space == {"lr": ("loguniform", 1e-3, 4e-3), "batch_size": ("choice", (32, 64)),
                     "warmup_steps": ("int", 5, 8)}
    widened, notes = covering_default(space, {"lr": 1e-3, "batch_size": 128, "warmup_steps": 0})
    assert widened["batch_size"] == ("choice", (32, 64, 128)) and widened["warmup_steps"] == ("int", 0, 8)
    assert widened["lr"] == space["lr"] and len(notes) == 2
    assert "lr" not in declared_space(cls, config, fixed={"lr"})  # --set lr=... takes it out


def test_methods_without_a_declared_space_search_lr_and_batch_size():
    from ecgbench.core.registry import METHODS

    cls = METHODS.get("simclr")
    config = cls.Config(lr=1e-3, batch_size=64)
    assert declared_space(cls, config, fixed=set()) == {
        "lr": ("loguniform", 1e-4, 1e-2), "batch_size": ("choice", (32, 64, 128))}


def test_milestones_and_default_detection():
    assert milestones(12, 4) == (3, 6, 9, 12)
    assert milestones(5, 4) == (1, 2, 4, 5)
    assert is_default({"lr": 0.001, "batch_size": 16}, {"lr": 1e-3, "batch_size": 16})
    assert not is_default({"lr": 0.002, "batch_size": 16}, {"lr": 1e-3, "batch_size": 16})
    assert ran_to_the_end({"step": 2, "stopped_early": True}, 3) and not ran_to_the_end({"step": 2}, 3)


def test_trials_see_training_and_validation_records_only(tmp_path, monkeypatch):
    from ecgbench.running.stages.context import RunContext

    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    search = resolve_search(TuneRequest(method="transform-cnn", task=TASK, trials=2, results_dir=tmp_path,
                                        overrides={"data.n_patients": "90"}, track=False))
    ctx = RunContext(search.plan)
    data = trial_data(search, ctx)
    recordings = ctx.dataset("synthetic")
    split = recordings.meta["split"].to_numpy()
    assert set(split[data.windows.record_index]) == {"train"}
    n_train, n_val = int(data.probe_is_train.sum()), int((~data.probe_is_train).sum())
    assert n_train and n_val and n_val + n_train == len(data.probe_y)
    # the probe records are exactly the labelled train and val records, in that order
    y, usable = search.task.labels(recordings.meta)
    expected = np.concatenate([np.flatnonzero((split == s) & usable) for s in ("train", "val")])
    assert np.array_equal(data.probe_y, y[expected])
    assert not np.isin(expected, np.flatnonzero(split == "test")).any()


def test_run_config_files_are_set_keys_in_yaml_or_json(tmp_path):
    from ecgbench.cli import UsageError, _config_file

    (tmp_path / "best.yaml").write_text("transform-cnn.lr: '0.002'\ntransform-cnn.batch_size: 64\n")
    (tmp_path / "nested.json").write_text('{"transform-cnn": {"lr": 0.002, "channels": [4, 8, 16]}, "eval": {"bootstrap": 50}}')
    assert _config_file(str(tmp_path / "best.yaml")) == {"transform-cnn.lr": "0.002", "transform-cnn.batch_size": "64"}
    assert _config_file(str(tmp_path / "nested.json")) == {
        "transform-cnn.lr": "0.002", "transform-cnn.channels": "4,8,16", "eval.bootstrap": "50"}
    (tmp_path / "list.yaml").write_text("- lr\n")
    for bad in ("list.yaml", "missing.yaml"):
        with pytest.raises(UsageError, match=bad):
            _config_file(str(tmp_path / bad))


def test_bad_requests_are_one_line_before_any_work(tmp_path, capsys):
    for argv, message in [
        (["tune", "--method", "random-init", "--task", TASK, "--results-dir", str(tmp_path)], "nothing to tune"),
        (["tune", "--method", "transform-cnn", "--task", TASK, "--trials", "0", "--results-dir", str(tmp_path)],
         "at least one trial"),
        (["tune", "--method", "transform-cnn", "--task", TASK, "--resume", "--results-dir", str(tmp_path)],
         "no search to resume"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


# ----- slow: whole searches --------------------------------------------------------------------
@pytest.mark.slow
def test_search_prunes_trials_logs_them_and_its_best_config_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    results = tmp_path / "results"
    clock = time.perf_counter()
    assert main(tune_argv(results, 12)) == 0
    print(f"12-trial search: {time.perf_counter() - clock:.1f} s", file=sys.stderr)
    out = capsys.readouterr().out
    folder = search_folder(results)
    trials = records(folder)
    assert len(trials) == 12
    statuses = [t["status"] for t in trials.values()]
    assert statuses.count("pruned") >= 1 and statuses.count("completed") >= 1, statuses
    (default,) = [t for t in trials.values() if t["default"]]
    assert default["status"] == "completed"  # never pruned: the comparison is between complete runs
    for trial in trials.values():
        steps = [r["step"] for r in trial["reports"]]
        assert steps == [3, 6, 9, 12][: len(steps)] and len(trial["attempts"]) == 1
        if trial["status"] == "pruned":
            assert steps[-1] < 12
    summary = json.loads((folder / "search.json").read_text())
    assert summary["split"] == "val" and summary["counts"]["completed"] + summary["counts"]["pruned"] == 12
    best_score = summary["best"]["reports"][-1]["score"]
    completed = [t["reports"][-1]["score"] for t in trials.values() if t["status"] == "completed"]
    assert best_score == max(completed)
    assert "| default" in out and "| best" in out and "--set transform-cnn.lr=" in out
    assert (folder / "search.png").read_bytes()[:4] == b"\x89PNG"

    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "ecgbench"]
    logged = client.search_runs([experiment.experiment_id], "tags.`ecgbench.kind` = 'tune-trial'")
    assert len(logged) == 12 and all(r.data.tags.get("mlflow.parentRunId") for r in logged)

    # the best config as a file that run accepts, and the run really uses it
    best = summary["best"]["config"]
    assert main(["run", "--methods", "transform-cnn", "--tasks", TASK, "--probes", "lr", "--preset", "smoke",
                 "--results-dir", str(tmp_path / "run"), "--no-tracking", "--config", str(folder / "best.yaml"),
                 *SMALL]) == 0
    (run,) = [read_json(p) for p in (tmp_path / "run" / "runs").glob("*/run.json")]
    assert {k: run["run_config"]["method_config"][k] for k in best} == best


def test_finetune_search_sees_no_test_record_and_its_best_config_feeds_run(tmp_path, monkeypatch, capsys):
    from ecgbench.cli import _config_file
    from ecgbench.running.plan import RunRequest, resolve
    from ecgbench.running.stages.context import RunContext

    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    results = tmp_path / "results"
    overrides = {"data.n_patients": "90", "eval.finetune.max_epochs": "3"}
    search = resolve_search(TuneRequest(method="transform-cnn", task=TASK, trials=3, results_dir=results,
                                        protocol="finetune", overrides=overrides, track=False))
    assert search.milestones == (1, 2, 3) and search.prefix == "eval.finetune"
    assert set(search.space) == {"lr", "encoder_lr", "optimizer", "weight_decay"}
    ctx = RunContext(search.plan)
    data = trial_data(search, ctx)  # pretrains the encoder once, cached under results/
    recordings = ctx.dataset("synthetic")
    split = recordings.meta["split"].to_numpy()
    y, usable = search.task.labels(recordings.meta)
    expected = np.concatenate([np.flatnonzero((split == s) & usable) for s in ("train", "val")])
    assert data.windows is None and data.pretrained is not None
    assert np.array_equal(data.probe_y, y[expected]) and not np.isin(expected, np.flatnonzero(split == "test")).any()
    assert len(data.probe_windows) == len(expected)

    argv = ["tune", "--method", "transform-cnn", "--task", TASK, "--protocol", "finetune", "--trials", "3",
            "--preset", "smoke", "--results-dir", str(results), "--no-tracking",
            *(item for key, value in overrides.items() for item in ("--set", f"{key}={value}"))]
    assert main(argv) == 0
    assert "reusing pretrained" in capsys.readouterr().err  # pretrained once, by trial_data above
    folder = search_folder(results)
    assert folder == search.folder
    trials = records(folder)
    assert len(trials) == 3 and all(t["status"] in FINISHED for t in trials.values())
    for trial in trials.values():  # one report per epoch: the best validation score so far
        steps = [r["step"] for r in trial["reports"] if not r.get("stopped_early")]
        scores = [r["score"] for r in trial["reports"]]
        assert steps == [1, 2, 3][: len(steps)] and scores == sorted(scores)
    summary = read_json(folder / "search.json")
    assert summary["split"] == "val" and summary["protocol"] == "finetune"
    best = _config_file(str(folder / "best.yaml"))
    assert set(best) == {f"eval.finetune.{k}" for k in search.space}
    plan = resolve(RunRequest(methods=["transform-cnn"], tasks=[TASK], probes=["lr"], seeds=[0], protocols=["finetune"],
                              preset="smoke", overrides={**overrides, **best}, results_dir=tmp_path / "run",
                              track=False))
    chosen = plan.protocol_settings["finetune"]
    assert {k: getattr(chosen, k) for k in search.space} == pytest.approx(summary["best"]["config"])


def _wait_for(condition, timeout: float, what: str, process=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the search exited early ({process.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: timed out after {timeout} s")
        time.sleep(0.5)


@pytest.mark.slow
def test_search_killed_with_sigkill_resumes_without_losing_finished_trials(tmp_path):
    results = tmp_path / "results"
    command = [sys.executable, "-m", "ecgbench", *tune_argv(results, 12, "--no-tracking")]
    env = subprocess_env(tmp_path)
    log = open(tmp_path / "first.log", "wb")
    first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def finished() -> dict[str, dict]:
        folder = results / "tune"
        if not folder.exists() or not any(folder.iterdir()):
            return {}
        return {k: v for k, v in records(search_folder(results)).items() if v["status"] in FINISHED}

    try:
        _wait_for(lambda: len(finished()) >= 2, 300, "two finished trials", first)
        before = finished()
        os.kill(first.pid, signal.SIGKILL)  # the driver only, as a user would
        first.wait(timeout=30)
    finally:
        time.sleep(2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)  # whatever of its Ray instance outlived it
        log.close()
    assert first.returncode == -signal.SIGKILL
    assert not (search_folder(results) / "search.json").exists()

    second = subprocess.run(command + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    after = records(search_folder(results))
    for key, record in before.items():  # finished trials kept as they were, not run again
        assert after[key]["reports"] == record["reports"] and after[key]["attempts"] == record["attempts"]
        assert after[key]["status"] == record["status"]
    done = [r for r in after.values() if r["status"] in FINISHED]
    assert len(done) >= 12, {k: r["status"] for k, r in after.items()}
    assert (search_folder(results) / "best.yaml").exists()


@pytest.fixture
def ray_cluster(tmp_path):
    """A head and one worker node on 127.0.0.1, one CPU each (``ray start --block`` in their
    own process groups, so teardown stops exactly these processes)."""
    ray = Path(sys.executable).with_name("ray")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"}  # a private test cluster
    common = ["--num-cpus", "1", "--block", "--disable-usage-stats"]
    nodes = []
    try:
        nodes.append(subprocess.Popen(
            [str(ray), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
             "--include-dashboard", "false", *common],
            env=env, stdout=open(tmp_path / "head.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True))
        address = f"127.0.0.1:{port}"
        _wait_for(lambda: _connectable(port), 120, "ray head", nodes[0])
        nodes.append(subprocess.Popen(
            [str(ray), "start", "--address", address, "--node-ip-address", "127.0.0.1", *common],
            env=env, stdout=open(tmp_path / "worker.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for(lambda: _alive_nodes(ray, address, env) == 2, 120, "two ray nodes", nodes[1])
        yield address
    finally:
        for node in reversed(nodes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=5)
        time.sleep(3)  # the GCS server may outlive a SIGTERM: end the rest of each group
        for node in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)


def _connectable(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive_nodes(ray: Path, address: str, env) -> int:
    code = ("import ray; ray.init(address=%r, logging_level='ERROR');"
            "print(sum(n['Alive'] for n in ray.nodes()))" % address)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    try:
        return int(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0


@pytest.mark.slow
def test_search_on_a_two_node_cluster_runs_each_trial_once_across_both_nodes(tmp_path, ray_cluster):
    results = tmp_path / "results"
    command = [sys.executable, "-m", "ecgbench",
               *tune_argv(results, 4, "--no-tracking", "--ray-address", ray_cluster)]
    env = {**subprocess_env(tmp_path), "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = records(search_folder(results))
    assert len(trials) == 4 and all(t["status"] in FINISHED for t in trials.values())
    assert all(len(t["attempts"]) == 1 for t in trials.values()), "a trial ran twice"
    nodes = {node for t in trials.values() for node in t["attempts"].values()}
    assert len(nodes) == 2, nodes
    trial_dirs = list((search_folder(results) / "ray").glob("run_trial_*"))
    assert len(trial_dirs) == 4
