"""End-to-end runs of the grid on a small synthetic suite: results, tables, reuse, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecgbench.cli import main
from ecgbench.runner import Runner, RunRequest, resolve
from ecgbench.store import ResultStore

SMALL = ["data.n_patients=90", "eval.bootstrap=50"]


def request(tmp_path: Path, **changes) -> RunRequest:
    base = dict(
        methods=["random-init", "simclr"], tasks=["synth-superclass", "synth-age"], probes=["lr", "knn"],
        seeds=[0], preset="smoke", results_dir=tmp_path / "results", data_root=tmp_path / "data",
        overrides=dict(s.split("=") for s in SMALL), track=False,
    )
    base.update(changes)
    return RunRequest(**base)


def snapshot(root: Path) -> dict[str, tuple[float, str]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes().hex()[:64])
            for p in sorted(root.rglob("*")) if p.is_file() and "mlflow" not in p.name}


def test_cli_run_writes_results_and_table_then_reuses_everything(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    argv = ["run", "--methods", "random-init,transform-cnn", "--tasks", "synth-superclass,synth-age",
            "--probes", "lr,rf", "--seeds", "0", "--results-dir", str(tmp_path / "results"), "--no-tracking"]
    for item in SMALL:
        argv += ["--set", item]
    assert main(argv) == 0
    table = capsys.readouterr().out
    for expected in ["synth-superclass@v1", "synth-age@v1", "random-init (control)", "transform-cnn", "| lr", "rf"]:
        assert expected in table
    store = ResultStore(tmp_path / "results")
    results = list(store.results())
    assert len(results) == 2 * 2 * 2
    for result in results:
        assert result["ci"]["low"] <= result["metrics"][result["main_metric"]] <= result["ci"]["high"]
        assert result["n"]["test"] > 0 and result["git"] and result["versions"]["torch"]
        assert result["adaptation"]["resample"].startswith("500 Hz -> ")
    assert list((tmp_path / "results" / "tables").glob("*.md"))

    before = snapshot(tmp_path / "results" / "runs") | snapshot(tmp_path / "results" / "cache")
    assert main(argv) == 0
    after = snapshot(tmp_path / "results" / "runs") | snapshot(tmp_path / "results" / "cache")
    assert before == after, "a second identical run rewrites nothing"
    assert "0 new" in capsys.readouterr().err

    assert main(["table", "--results-dir", str(tmp_path / "results"), "--tasks", "synth-age"]) == 0
    only_age = capsys.readouterr().out
    assert "synth-age@v1" in only_age and "synth-superclass" not in only_age


class Killed(Exception):
    pass


def test_killed_run_resumes_without_redoing_or_losing_work(tmp_path, monkeypatch):
    plan = resolve(request(tmp_path))
    calls = {"n": 0}
    original = Runner._score

    def dying_score(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # killed while scoring simclr, after its pretraining finished
            raise Killed
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Runner, "_score", dying_score)
    with pytest.raises(Killed):
        Runner(plan).run()
    store = ResultStore(tmp_path / "results")
    first = {r["key"]: r for r in store.results()}
    assert len(first) == 5
    leftovers = [p for p in (tmp_path / "results").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []

    monkeypatch.setattr(Runner, "_score", original)
    trained = []
    import ecgbench.train as train_module

    real_pretrain = train_module.pretrain
    monkeypatch.setattr(train_module, "pretrain", lambda *a, **k: trained.append(1) or real_pretrain(*a, **k))
    runner = Runner(resolve(request(tmp_path)))
    runner.run()
    assert trained == [], "the finished pretraining is reused"
    final = {r["key"]: r for r in store.results()}
    assert len(final) == 2 * 2 * 2 and runner.new_results == 3
    for key, result in first.items():
        assert final[key] == result, "results written before the kill are kept as they were"


def test_interrupted_pretraining_resumes_from_partial_checkpoint(tmp_path):
    import torch

    from ecgbench.registry import METHODS
    from ecgbench.train import WindowDataset, pretrain
    import dataclasses
    import numpy as np

    cls = METHODS.get("simclr")
    config = dataclasses.replace(cls.Config(), **{**cls.preset_overrides("smoke"), "max_steps": 6, "batch_size": 4})
    rng = np.random.default_rng(0)
    shape = (len(config.leads), config.n_samples)
    data = WindowDataset(rng.standard_normal((16, *shape)).astype("float32"), np.arange(16), np.arange(16))
    partial = tmp_path / "x.partial.pt"

    def stop_at_four(step, loss):
        if step == 4:
            raise Killed

    torch.manual_seed(0)
    method = cls(config)
    with pytest.raises(Killed):
        pretrain(method, data, seed=1, device=torch.device("cpu"), partial_path=partial, on_step=stop_at_four, checkpoint_every=2)
    assert torch.load(partial, weights_only=False)["step"] == 2
    torch.manual_seed(0)
    stats = pretrain(cls(config), data, seed=1, device=torch.device("cpu"), partial_path=partial, checkpoint_every=2)
    assert stats.resumed_from_step == 2 and stats.steps == 6


def test_non_finite_loss_stops_with_a_clear_error(tmp_path):
    import dataclasses

    import numpy as np
    import torch

    from ecgbench.registry import METHODS
    from ecgbench.train import TrainingDiverged, WindowDataset, pretrain

    cls = METHODS.get("simclr")
    config = dataclasses.replace(cls.Config(), **{**cls.preset_overrides("smoke"), "max_steps": 2, "batch_size": 4})
    signal = np.full((8, len(config.leads), config.n_samples), np.nan, dtype="float32")
    with pytest.raises(TrainingDiverged, match="simclr: loss became nan at step 0"):
        pretrain(cls(config), WindowDataset(signal, np.arange(8), np.arange(8)), 0, torch.device("cpu"), tmp_path / "p.pt")


def test_run_logs_nested_runs_to_a_tracking_server(tmp_path, mlflow_server):
    from mlflow.tracking import MlflowClient

    runner = Runner(resolve(request(tmp_path, methods=["random-init"], tasks=["synth-sex"], probes=["lr"],
                                    tracking_uri=mlflow_server, track=True)))
    results = runner.run()
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("ecgbench")
    runs = client.search_runs([experiment.experiment_id])
    by_key = {r.data.tags.get("ecgbench.key"): r for r in runs}
    assert results[0]["key"] in by_key and results[0]["run_id"] in by_key
    logged = by_key[results[0]["key"]]
    assert logged.data.metrics["macro_auroc"] == pytest.approx(results[0]["metrics"]["macro_auroc"])
    parent = logged.data.tags["mlflow.parentRunId"]
    assert client.get_run(parent).data.tags["ecgbench.kind"] == "invocation"
    assert json.loads(client.get_run(parent).data.params["request.seeds"]) == [0]
