"""The MLflow view, against a real `mlflow server` on 127.0.0.1 (see conftest.mlflow_server)."""

from mlflow.tracking import MlflowClient

from ecgbench.tracking import KEY_TAG, Tracker, flatten


def test_flatten_nested_params():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_nested_runs_round_trip_through_a_real_server(mlflow_server, tmp_path):
    tracker = Tracker(mlflow_server, experiment="tracking-test")
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

    again = Tracker(mlflow_server, experiment="tracking-test")  # a resumed invocation
    assert again.has("run-1/task@v1/lr")
    again.start("second", {})
    again.log_child("run-1/task@v1/lr", "result", params={}, metrics={"macro_auroc": 0.1})
    keyed = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get(KEY_TAG) == "run-1/task@v1/lr"]
    assert len(keyed) == 1, "a key already logged is not logged twice"
