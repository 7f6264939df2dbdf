"""scripts/leaderboard_grid.py: the resumable grid runner's job order, log and workers."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "leaderboard_grid.py"


@pytest.fixture(scope="module")
def grid():
    spec = importlib.util.spec_from_file_location("leaderboard_grid", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_seed_order_runs_every_method_at_a_seed_before_the_next(grid):
    jobs = grid.jobs("synthetic", ["byol", "random-init"], [0, 1])
    assert [(j.method, j.seed) for j in jobs] == [("random-init", 0), ("byol", 0), ("random-init", 1), ("byol", 1)]


def test_workers_run_jobs_at_once_in_grid_order_and_log_each(grid, tmp_path, monkeypatch):
    started, running, peak, lock = [], [0], [0], threading.Lock()
    together = threading.Barrier(2, timeout=30)  # raises unless the first two jobs run at once

    def fake_job(command, log, job):
        with lock:
            started.append(job.method)
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if job.method in ("a", "b"):
            together.wait()
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        grid.append(log, {"command": " ".join(command), "returncode": 1 if job.method == "bad" else 0})
        return 1 if job.method == "bad" else 0

    monkeypatch.setattr(grid, "run_job", fake_job)
    jobs = [grid.Job(m, 0, ("synth-sex",)) for m in ("a", "b", "bad", "c")]
    pending = [(job, job.command("cpu", "results", None)) for job in jobs]
    log = tmp_path / "grid-log.jsonl"
    assert grid.run_pending(pending, log, workers=2, budget_minutes=None, bases=lambda m: set()) == 1
    # the first two start together (in either order), the rest as workers free up
    assert peak[0] == 2 and sorted(started[:2]) == ["a", "b"] and sorted(started) == ["a", "b", "bad", "c"]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 4
    assert len(grid.finished_commands(log)) == 3  # the failed job runs again next time


def test_no_job_starts_after_the_budget(grid, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grid, "run_job", lambda command, log, job: calls.append(job) or 0)
    jobs = [grid.Job(m, 0, ("synth-sex",)) for m in ("a", "b")]
    pending = [(job, job.command("cpu", "results", None)) for job in jobs]
    assert grid.run_pending(pending, tmp_path / "log.jsonl", workers=2, budget_minutes=-1) == 0
    assert calls == []


def test_no_job_starts_once_the_stop_file_exists(grid, tmp_path, monkeypatch):
    """The first job creates the stop file while it runs: it finishes, and no later job starts."""
    stop, calls = tmp_path / grid.STOP_FILE, []

    def fake_job(command, log, job):
        calls.append(job.method)
        stop.touch()
        time.sleep(0.05)
        return 0

    monkeypatch.setattr(grid, "run_job", fake_job)
    jobs = [grid.Job(m, 0, ("synth-sex",)) for m in ("a", "b", "c", "d")]
    pending = [(job, job.command("cpu", "results", None)) for job in jobs]
    assert grid.run_pending(pending, tmp_path / "log.jsonl", workers=1, budget_minutes=None,
                            bases=lambda m: set(), stop_file=stop) == 0
    assert calls == ["a"]


def test_a_variant_does_not_start_while_its_base_runs(grid, tmp_path, monkeypatch):
    """ecg-jepa-hybrid starts from ecg-jepa's run and would only wait on its lock: the free worker
    takes the next job instead."""
    events, lock = [], threading.Lock()

    def fake_job(command, log, job):
        with lock:
            events.append(("start", job.method))
        time.sleep(0.2 if job.method == "base" else 0.05)
        with lock:
            events.append(("end", job.method))
        return 0

    monkeypatch.setattr(grid, "run_job", fake_job)
    jobs = [grid.Job(m, 0, ("synth-sex",)) for m in ("base", "variant", "other")]
    pending = [(job, job.command("cpu", "results", None)) for job in jobs]
    grid.run_pending(pending, tmp_path / "log.jsonl", workers=2, budget_minutes=None,
                     bases=lambda m: {"base"} if m == "variant" else set())
    assert events.index(("start", "other")) < events.index(("start", "variant"))
    assert events.index(("end", "base")) < events.index(("start", "variant"))
    assert grid.base_methods("ecg-jepa-hybrid") == {"ecg-jepa"} and grid.base_methods("simclr") == set()


def test_synthetic_jobs_name_their_suite_version_and_status_counts_only_it(grid, tmp_path):
    """A new suite version's jobs differ from the old ones' (the log does not take them as done),
    and --status counts only results scored at the grid's version."""
    from ecgbench.core.store import ResultStore, write_json
    from ecgbench.data.datasets import synthetic

    current, old = grid.jobs("synthetic", ["simclr"], [0]), grid.jobs("synthetic", ["simclr"], [0], version="3")
    assert current[0].settings == (f"data.version={synthetic.VERSION}",)
    command = current[0].command("cpu", "results", None)
    assert command[-2:] == ["--set", f"data.version={synthetic.VERSION}"]
    assert command != old[0].command("cpu", "results", None)
    store = ResultStore(tmp_path)
    for task in grid.SYNTHETIC_TASKS:
        key = f"{task}@v3"
        write_json(store.result_path("simclr-0", key, "frozen-probe-lr"),
                   {"key": f"simclr-0/{key}/frozen-probe-lr", "run_id": "simclr-0", "method": "simclr", "task": task,
                    "task_key": key, "seed": 0, "preset": "cpu", "protocol": "frozen-probe", "metrics": {"mae": 1.0},
                    "task_kind": "regression", "main_metric": "mae", "probe": "lr"})
    assert grid.status(tmp_path, old, "cpu").endswith("0 (method, task, seed) cells still to run")
    assert grid.status(tmp_path, current, "cpu").endswith("4 (method, task, seed) cells still to run")
