"""The runner's evaluate stage with every protocol: separate results, keys and tables; label
fractions; stored predictions; reuse; --protocols on the command line; and the residual
report's layout scored with seed 004's head on DREAMER-format fixtures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from ecgbench.cli import main
from ecgbench.core.registry import TASKS
from ecgbench.core.store import ResultStore
from ecgbench.evaluation.stats import compare_methods, load_predictions
from ecgbench.reporting.tables import render
from ecgbench.running.runner import Runner, RunRequest, resolve

PROTOCOLS = ["frozen-probe", "linear", "head", "finetune"]
FAST = {"data.n_patients": "90", "eval.bootstrap": "50", "eval.label_fractions": "0.5,1",
        "eval.linear.max_epochs": "4", "eval.head.max_epochs": "4", "eval.finetune.max_epochs": "2",
        "max_steps": "3"}


def run(tmp_path: Path, protocols: list[str], methods=("random-init", "transform-cnn")) -> tuple[Runner, list[dict]]:
    request = RunRequest(methods=list(methods), tasks=["synth-sex"], probes=["lr"], seeds=[0], preset="smoke",
                         results_dir=tmp_path / "results", data_root=tmp_path / "data",
                         overrides={k: v for k, v in FAST.items() if k.count(".") < 2 or k.split(".")[1] in protocols},
                         track=False, protocols=protocols, pretrain_dataset="synthetic")
    runner = Runner(resolve(request))
    return runner, runner.run()


@pytest.mark.slow
def test_every_protocol_is_scored_apart_and_reused(tmp_path, one_torch_thread):
    runner, results = run(tmp_path, PROTOCOLS)
    assert len(results) == 2 * 4 * 2  # methods x protocols x label fractions
    by_protocol = {(r["method"], r["protocol"]): r for r in results}
    for method in ("random-init", "transform-cnn"):
        for protocol in PROTOCOLS:
            full, half = by_protocol[(method, protocol)], by_protocol[(method, f"{protocol}-50%-labels")]
            assert full["key"].split("/")[-1].startswith(protocol) and full["key"] != half["key"]
            assert half["n"]["train"] < full["n"]["train"] and half["n"]["test"] == full["n"]["test"]
            assert full["ci"]["low"] <= full["metrics"]["macro_auroc"] <= full["ci"]["high"]
            assert full["ci"]["unit"] == "patient" and full["probe_spec"]["protocol"] == protocol
            assert len(load_predictions(full, runner.store.root)["y_true"]) == full["n"]["test"]
            if protocol != "frozen-probe":
                assert full["probe"] == protocol and 1 <= full["probe_params"]["best_epoch"] <= len(full["history"])
    table = render(results)
    for protocol in PROTOCOLS:
        assert f"· {protocol} ·" in table  # one table per protocol, never one ranking
    comparison = compare_methods(results, TASKS.get("synth-sex").key, runner.store.root, protocol="head", probe="head")
    assert {comparison.reference} <= {"random-init", "transform-cnn"}  # the head's own predictions compared

    tuned = sorted((tmp_path / "results" / "cache" / "checkpoints").rglob("finetune-*.pt"))
    assert len(tuned) == 2 * 2 and not [p for p in tuned if p.name.endswith(".partial.pt")]
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*") if p.is_file()}
    again, _ = run(tmp_path, PROTOCOLS)
    assert again.new_results == 0
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*") if p.is_file()}
    probe_only, _ = run(tmp_path, ["frozen-probe"])
    assert probe_only.new_results == 0  # frozen-probe keys are what they were before protocols


def test_protocol_names_and_settings_are_checked_before_any_work(tmp_path, capsys):
    base = ["run", "--methods", "random-init", "--tasks", "synth-sex", "--results-dir", str(tmp_path), "--no-tracking"]
    assert main([*base, "--protocols", "frozen-probe,fine-tune"]) == 2
    assert "Did you mean 'finetune'" in capsys.readouterr().err
    assert main([*base, "--protocols", "head", "--set", "eval.head.optimizer=rmsprop"]) == 2
    assert "eval.head.optimizer" in capsys.readouterr().err
    assert main([*base, "--set", "eval.finetune.lr=0.1"]) == 2  # finetune not selected
    assert "not selected" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_settings_reach_the_plan():
    request = RunRequest(methods=["random-init"], tasks=["synth-sex"], probes=["lr"], seeds=[0],
                         protocols=["head", "finetune"], pretrain_dataset="synthetic",
                         overrides={"eval.head.dropout": "0.5", "eval.finetune.optimizer": "adam", "eval.bootstrap": "9"})
    plan = resolve(request)
    assert plan.protocol_settings["head"].dropout == 0.5 and plan.protocol_settings["head"].hidden == (64, 64)
    assert plan.protocol_settings["finetune"].optimizer == "adam" and plan.eval_settings.bootstrap == 9


def _dreamer_fixture():
    path = Path(__file__).resolve().parents[2] / "data" / "datasets" / "test_dreamer.py"
    spec = importlib.util.spec_from_file_location("dreamer_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_residual_table1_is_scored_with_seed_004s_head_on_dreamer(tmp_path, capsys, one_torch_thread):
    fixture = _dreamer_fixture()
    root = tmp_path / "data"
    fixture.write(root / "dreamer" / "DREAMER.mat", fixture.dreamer_struct())
    results = tmp_path / "results"
    assert main(["run", "--layout", "residual-table1", "--data-root", str(root), "--results-dir", str(results),
                 "--no-tracking", "--set", "eval.bootstrap=50", "--set", "eval.head.max_epochs=3",
                 "--set", "max_steps=3"]) == 0
    assert "with protocol head" in capsys.readouterr().err
    records = [r for r in ResultStore(results).results()]
    assert {(r["method"], r["task"]) for r in records} == {  # the paper's rows, then the classical baselines
        (m, t) for m in ("transform-cnn", "transform-cnn-res1", "transform-cnn-res12", "transform-cnn-res123",
                         "ecg-features", "ecg-features-lead2")
        for t in ("dreamer-arousal", "dreamer-valence")}
    assert {(r["protocol"], r["probe"]) for r in records} == {("head", "head")}
    assert all(r["probe_spec"]["settings"]["hidden"] == [64, 64] for r in records)
    table = (results / "tables" / "layout-residual-table1.md").read_text()
    assert "protocol `head`" in table and "not run" not in table and "classical baseline, ours" in table
    rows = [line for line in table.splitlines() if line.startswith("| none (`transform-cnn`)")]
    assert rows and "(via head)" in rows[0]
    stored = json.loads(next(results.rglob("head-*.json")).read_text())
    assert stored["task_kind"] == "binary" and stored["ci"]["metric"] == stored["main_metric"]


def test_fine_tuning_progress_shows_epoch_loss_and_validation_score():
    from types import SimpleNamespace

    from rich.progress import Progress

    from ecgbench.evaluation.protocols.training import EpochLog
    from ecgbench.running.stages.evaluate import epoch_progress

    progress = Progress(disable=True)
    ctx = SimpleNamespace(progress=progress)
    with epoch_progress(ctx, "finetune run-1 synth-sex") as on_epoch:
        on_epoch(EpochLog(3, 30, 0.512, 0.71, 2, 0.74, "macro_auroc"))
        (task,) = progress.tasks
        assert (task.completed, task.total) == (3, 30)
        assert task.description.endswith("epoch 3/30 loss 0.512 val macro_auroc 0.710 (best 0.740 at 2)")
    assert not progress.tasks  # the line goes when the protocol is done
    with epoch_progress(ctx, "frozen-probe", trains=False) as on_epoch:
        assert on_epoch is None and not progress.tasks
