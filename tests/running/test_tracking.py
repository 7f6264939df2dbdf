"""The MLflow view: against a real `mlflow server` on 127.0.0.1 (see conftest.mlflow_server),
and against the default sqlite store with each tracking failure planted in it."""

import logging
import signal
import socket
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from ecgbench.running.tracking import KEY_TAG, KIND_TAG, OWNER_TAG, Tracker, flatten, sync


def dead_owner() -> str:
    """The owner tag of a process on this host that has ended."""
    process = subprocess.Popen(["true"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"


def test_flatten_nested_params():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_nested_runs_round_trip_through_a_real_server(mlflow_server, tmp_path):
    tracker = Tracker(mlflow_server, artifact_root=tmp_path / "local-artifacts", experiment="tracking-test")
    tracker.start("invocation", {"request": {"methods": ["simclr"], "seeds": [0]}})
    artifact = tmp_path / "result.json"
    artifact.write_text('{"ok": true}')
    tracker.log_child("run-1/task@v1/lr", "result", params={"probe": "lr"},
                      metrics={"macro_auroc": 0.75, "bad": float("nan")}, artifacts=[artifact])
    tracker.log_child("run-1", "pretrain", params={"lr": 0.001}, metrics={"steps": 3}, curve=[(1, 2.0), (2, 1.5)])
    tracker.finish()

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("tracking-test")
    runs = {r.data.tags.get(KEY_TAG): r for r in client.search_runs([experiment.experiment_id])}
    result = runs["run-1/task@v1/lr"]
    assert result.data.metrics["macro_auroc"] == 0.75 and "bad" not in result.data.metrics
    assert result.data.params["probe"] == "lr"
    assert result.data.tags["mlflow.parentRunId"] == tracker.parent_id
    assert [a.path for a in client.list_artifacts(result.info.run_id)] == ["result.json"]
    history = client.get_metric_history(runs["run-1"].info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.5)]
    # artifacts go where the server keeps them, not under this client's folder
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    assert not (tmp_path / "local-artifacts").exists()

    again = Tracker(mlflow_server, experiment="tracking-test")  # a resumed invocation
    assert again.has("run-1/task@v1/lr")
    again.start("second", {})
    again.log_child("run-1/task@v1/lr", "result", params={}, metrics={"macro_auroc": 0.1})
    keyed = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get(KEY_TAG) == "run-1/task@v1/lr"]
    assert len(keyed) == 1, "a key already logged is not logged twice"


# ----- the sqlite store, with failures planted --------------------------------------------
def runs_of(results, key=None):
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ecgbench")
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if key is None or r.data.tags.get(KEY_TAG) == key]


def test_a_half_logged_result_run_is_replaced(tmp_path):
    results = tmp_path / "results"
    Tracker.for_results(results)  # creates the store
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name("ecgbench").experiment_id
    # what a kill -9 between create_run and its metrics left: tagged, RUNNING, empty
    client.create_run(experiment_id, run_name="k", tags={KEY_TAG: "k", KIND_TAG: "result", OWNER_TAG: dead_owner()})
    client.create_run(experiment_id, run_name="old", tags={KIND_TAG: "invocation"})  # a pre-owner-tag run

    tracker = Tracker.for_results(results)
    assert {r.info.status for r in runs_of(results)} == {"KILLED"}, "orphans end KILLED when the next run starts"
    assert not tracker.has("k"), "a run that never finished does not count as logged"
    artifact = tmp_path / "result.json"
    artifact.write_text("{}")
    assert tracker.log_child("k", "result", params={"probe": "lr"}, metrics={"auroc": 0.5}, artifacts=[artifact])

    (run,) = runs_of(results, "k")
    assert run.info.status == "FINISHED" and run.data.metrics == {"auroc": 0.5}
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["result.json"]


def test_invocation_ends_killed_failed_or_finished(tmp_path):
    results = tmp_path / "results"
    tracker = Tracker.for_results(results)
    with tracker.invocation("ok", {}):
        pass
    with pytest.raises(RuntimeError), tracker.invocation("error", {}):
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), tracker.invocation("interrupted", {}):
        raise KeyboardInterrupt
    statuses = {r.info.run_name: r.info.status for r in runs_of(results)}
    assert statuses == {"ok": "FINISHED", "error": "FAILED", "interrupted": "KILLED"}


def test_logging_interrupted_midway_is_repaired_by_the_next_run(tmp_path, monkeypatch):
    results = tmp_path / "results"
    artifact = tmp_path / "result.json"
    artifact.write_text("{}")
    tracker = Tracker.for_results(results)

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(tracker.client, "log_artifact", interrupt)  # Ctrl-C while logging k
    with pytest.raises(KeyboardInterrupt), tracker.invocation("interrupted", {}):
        tracker.log_child("k", "result", params={}, metrics={"auroc": 0.5}, artifacts=[artifact])
    assert {r.info.status for r in runs_of(results)} == {"KILLED"}

    again = Tracker.for_results(results)
    assert not again.has("k") and again.log_child("k", "result", params={}, metrics={"auroc": 0.5}, artifacts=[artifact])
    assert [r.info.status for r in runs_of(results, "k")] == ["FINISHED"], "the KILLED run is replaced"


def plant_half_migrated_database(path):
    """What a kill during MLflow's first migration leaves: the step column added, the schema
    version not yet stamped (MLflow then fails on every start: duplicate column name: step)."""
    import sqlalchemy
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    uri = f"sqlite:///{path}"
    engine = sqlalchemy.create_engine(uri)
    InitialBase.metadata.create_all(engine)
    config = _get_alembic_config(uri)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "451aebb31d03")  # the first migration: add metric step
        connection.execute(sqlalchemy.text("DELETE FROM alembic_version"))
    engine.dispose()


def test_a_half_migrated_database_is_moved_aside_and_rebuilt(tmp_path, caplog):
    results = tmp_path / "results"
    results.mkdir()
    plant_half_migrated_database(results / "mlflow.db")
    with pytest.raises(Exception, match="duplicate column"):  # what plain MLflow makes of it
        MlflowClient(f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}").search_experiments()

    with caplog.at_level(logging.WARNING, logger="ecgbench.running.tracking"):
        tracker = Tracker.for_results(results)
    assert not tracker.offline
    assert tracker.log_child("k", "result", params={}, metrics={"auroc": 0.5})
    assert [r.info.status for r in runs_of(results, "k")] == ["FINISHED"]
    (aside,) = results.glob("mlflow.db.broken-*")
    assert any(aside.name in message and "rebuilt" in message for message in caplog.messages)


KILLED_MID_WRITE = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA cache_size = 1")  # spill to the file at once: the journal holds the old pages
db.execute("BEGIN")
db.execute("DELETE FROM tags")
db.execute("DELETE FROM params")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_journal_left_by_a_kill_mid_write_is_rolled_back_not_taken_for_damage(tmp_path):
    results = tmp_path / "results"
    tracker = Tracker.for_results(results)
    assert tracker.log_child("k", "result", params={"probe": "lr"}, metrics={"auroc": 0.5})
    database = results / "mlflow.db"
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(database)])
    assert killed.returncode == -signal.SIGKILL and database.with_name("mlflow.db-journal").exists()

    again = Tracker.for_results(results)
    assert again.has("k"), "the half-done write is rolled back: what was logged is still there"
    assert not list(results.glob("mlflow.db.broken-*"))
    assert [r.info.status for r in runs_of(results, "k")] == ["FINISHED"]


def test_an_unreachable_server_costs_one_warning_in_seconds(tmp_path, caplog):
    clock = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ecgbench.running.tracking"):
        tracker = Tracker.for_results(tmp_path / "results", "http://127.0.0.1:9")  # nothing listens
        with tracker.invocation("run", {}):
            for key in ("a", "b", "c"):
                tracker.log_child(key, "result", params={}, metrics={"auroc": 0.5})
    assert tracker.offline
    assert len([r for r in caplog.records if r.name == "ecgbench.running.tracking"]) == 1
    assert "ecgbench track sync" in caplog.messages[0]
    assert time.monotonic() - clock < 30, "seconds, not MLflow's default minutes of retries"


def write_result(results, run_id, name, auroc):
    from ecgbench.core.store import write_json

    key = f"{run_id}/task@v1/{name}"
    write_json(results / "runs" / run_id / "run.json", {
        "run_id": run_id, "run_config": {"method": "m", "seed": 0}, "train": {"steps": 2, "loss_curve": [[1, 0.5]]}})
    write_json(results / "runs" / f"{key}.json", {
        "key": key, "run_id": run_id, "task_key": "task@v1", "probe_spec": {"probe": name},
        "probe_params": {"C": 1.0}, "metrics": {"macro_auroc": auroc}, "ci": {"low": 0.4, "high": None}})
    return key


def test_sync_logs_what_the_store_lacks_once(tmp_path, caplog):
    results = tmp_path / "results"
    keys = [write_result(results, "run-a", probe, 0.5 + i / 10) for i, probe in enumerate(("lr", "knn"))]
    (results / "runs" / "run-a" / "task@v1" / "foreign.json").write_text("{not json")
    Tracker.for_results(results).log_child(keys[0], "result", params={}, metrics={},
                                           tags={"stage": "result"})  # logged before, in today's layout

    with caplog.at_level(logging.WARNING, logger="ecgbench.running.tracking"):
        assert sync(results) == {"logged": 2, "present": 1, "skipped": 1, "failed": 0}
    assert any("foreign.json" in message for message in caplog.messages)
    assert sync(results)["logged"] == 0
    (result,) = runs_of(results, keys[1])
    assert result.info.status == "FINISHED" and result.data.metrics == {"macro_auroc": 0.6, "ci_low": 0.4}
    assert [r.info.status for r in runs_of(results, "run-a")] == ["FINISHED"]


def test_new_databases_copy_a_migrated_template_made_once(tmp_path, monkeypatch):
    """A new sqlite store is a copy of one migrated template per machine and MLflow version
    (migrating takes seconds); a damaged template is rebuilt; the copy names its own artifacts."""
    import sqlite3

    from ecgbench.running import tracking

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tracking._schema_template.cache_clear()
    migrations = []
    migrate = tracking._migrate
    monkeypatch.setattr(tracking, "_migrate", lambda path, uri: migrations.append(path) or migrate(path, uri))
    for name in ("a", "b"):
        tracking.Tracker.for_results(tmp_path / name)
    assert len(migrations) == 1  # the template only
    template = tracking._schema_template()
    assert template.parent == tmp_path / "cache" / "ecgbench" / "mlflow-schema"
    with sqlite3.connect(tmp_path / "b" / "mlflow.db") as db:
        location = db.execute("SELECT artifact_location FROM experiments WHERE experiment_id = 0").fetchone()[0]
    assert location == (tmp_path / "b" / "mlartifacts").resolve().as_uri() + "/0"
    template.write_bytes(b"not a database")
    tracking._schema_template.cache_clear()
    tracking.Tracker.for_results(tmp_path / "c")
    assert len(migrations) == 2 and tracking._schema_problem(template) is None
    tracking._schema_template.cache_clear()


def test_sync_replaces_runs_of_the_older_untagged_layout_without_doubling(tmp_path):
    results = tmp_path / "results"
    key = write_result(results, "run-a", "lr", 0.7)
    Tracker.for_results(results).log_child(key, "result", params={}, metrics={})  # the old layout: no tags
    (old,) = runs_of(results, key)
    assert "stage" not in old.data.tags
    assert sync(results)["logged"] == 2  # the pretraining run and the result, in today's layout
    (new,) = runs_of(results, key)  # replaced, not doubled
    assert new.info.run_id != old.info.run_id and new.data.tags["stage"] == "result"
    assert new.data.tags["mlflow.parentRunId"] == runs_of(results, "run-a")[0].info.run_id  # under its pretraining
    assert sync(results)["logged"] == 0
