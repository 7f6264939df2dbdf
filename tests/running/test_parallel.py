"""Worker processes for a grid's unfinished jobs on CPU (benchmark/parallel.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_runner import request

from ecgbench.core.store import ResultStore
from ecgbench.running import parallel
from ecgbench.running.runner import Runner, resolve


def test_worker_count_follows_cores_memory_and_jobs(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 8)
    assert parallel.worker_count(3, 10) == 3
    assert parallel.worker_count(3, 2) == 2  # never more workers than jobs
    assert parallel.worker_count(None, 1) == 1
    monkeypatch.setattr(parallel.os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096}.get(name, 2**30 // 4096 * 7))
    assert parallel.worker_count(None, 20) == 2  # 7 GiB: two 3-GiB workers


def _metrics(root) -> dict[str, float]:
    return {r["key"]: r["metrics"][r["main_metric"]] for r in ResultStore(root).results()}


def test_workers_store_the_same_results_as_a_serial_run_and_log_each_once(tmp_path, monkeypatch):
    """Two workers run the unfinished jobs; the serial pass then finds everything cached,
    writes the tables, and the MLflow view has every key exactly once, FINISHED, under this
    invocation. Results match the serial run's (one intra-op thread in both)."""
    import torch
    from mlflow.tracking import MlflowClient

    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    torch.set_num_threads(1)
    common = dict(methods=["random-init", "simclr", "clocs-cmsc"], tasks=["synth-sex"], probes=["lr"],
                  data_root=tmp_path / "data")
    serial = Runner(resolve(request(tmp_path / "serial", **common)))
    serial_results = serial.run()

    runner = Runner(resolve(request(tmp_path / "workers", jobs=2, track=True, **common)))
    assert not any(runner.job_complete(m, s) for m, s in runner.jobs())
    results = runner.run()
    assert runner.new_results == len(results) == len(serial_results) == 3
    assert all(runner.job_complete(m, s) for m, s in runner.jobs())
    workers, single = _metrics(tmp_path / "workers" / "results"), _metrics(tmp_path / "serial" / "results")
    assert workers.keys() == single.keys()
    for key, value in single.items():
        assert workers[key] == pytest.approx(value, abs=1e-6), key
    assert {r["threads"]["torch"] for r in ResultStore(tmp_path / "workers" / "results").results()} == {1}

    client = MlflowClient(runner.tracker.uri)
    runs = client.search_runs([runner.tracker.experiment_id])
    keys = [r.data.tags.get("ecgbench.key") for r in runs if r.data.tags.get("ecgbench.kind") == "result"]
    assert sorted(keys) == sorted(r["key"] for r in results)  # each once
    pretraining = {r.data.tags["ecgbench.key"]: r.info.run_id for r in runs if r.data.tags.get("ecgbench.kind") == "pretrain"}
    for run in (r for r in runs if r.data.tags.get("ecgbench.kind") == "result"):  # under its pretraining run
        result = next(x for x in results if x["key"] == run.data.tags["ecgbench.key"])
        assert run.data.tags["mlflow.parentRunId"] == pretraining[result["run_id"]]
    assert {r.data.tags["mlflow.parentRunId"] for r in runs if r.data.tags.get("ecgbench.kind") == "pretrain"} == {
        runner.tracker.parent_id}
    assert all(r.info.status == "FINISHED" for r in runs)

    again = Runner(resolve(request(tmp_path / "workers", jobs=2, track=True, **common)))
    assert len(again.run()) == 3 and again.new_results == 0  # nothing pending: no workers started


def test_a_terminated_run_stops_its_workers_and_resumes(tmp_path):
    """SIGTERM to the parent while workers run: the workers end with it (none left running),
    and the same command then finishes the grid."""
    import os
    import signal
    import subprocess
    import sys
    import time

    argv = [sys.executable, "-m", "ecgbench.cli", "run", "--methods", "random-init,simclr,byol", "--tasks",
            "synth-sex", "--probes", "lr", "--set", "data.n_patients=90", "--set", "eval.bootstrap=20",
            "--results-dir", str(tmp_path / "results"), "--no-tracking", "--jobs", "2"]
    env = {**os.environ, "ECGBENCH_DATA": str(tmp_path / "data")}
    process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    workers: set[int] = set()
    deadline = time.monotonic() + 300
    for line in process.stderr:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        if children.exists():
            workers |= {int(pid) for pid in children.read_text().split()}
        if "worker processes" in line:
            time.sleep(2)  # let them start their jobs
            workers |= {int(pid) for pid in children.read_text().split()}
            process.send_signal(signal.SIGTERM)
            break
        assert time.monotonic() < deadline
    process.communicate(timeout=120)
    assert process.returncode != 0 and workers
    time.sleep(1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]
    assert alive == []
    finished = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert len(list(ResultStore(tmp_path / "results").results())) == 3
