"""End-to-end runs of the grid on a small synthetic suite: results, tables, reuse, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecgbench.cli import main
from ecgbench.core.store import ResultStore
from ecgbench.data.datasets.synthetic import VERSION as SYNTH_VERSION
from ecgbench.running.runner import Runner, RunRequest, resolve

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
    for expected in [f"synth-superclass@v{SYNTH_VERSION}", f"synth-age@v{SYNTH_VERSION}", "random-init (control)", "transform-cnn", "| lr", "rf"]:
        assert expected in table
    store = ResultStore(tmp_path / "results")
    results = list(store.results())
    assert len(results) == 2 * 2 * 2
    for result in results:
        assert result["ci"]["low"] <= result["metrics"][result["main_metric"]] <= result["ci"]["high"]
        assert result["n"]["test"] > 0 and result["git"] and result["versions"]["torch"]
        assert result["adaptation"]["resample"].startswith("500 Hz -> ")
    assert list((tmp_path / "results" / "tables").glob("*.md"))
    (summary,) = (tmp_path / "results" / "summaries").glob("run-*.json")  # one per invocation
    written = json.loads(summary.read_text())
    assert written["command"] and written["versions"]["torch"] and written["request"]["preset"] == "smoke"
    assert sorted(r["key"] for r in written["results"]) == sorted(r["key"] for r in results)
    assert all(r["value"] == next(x for x in results if x["key"] == r["key"])["metrics"][r["metric"]]
               for r in written["results"])

    before = snapshot(tmp_path / "results" / "runs") | snapshot(tmp_path / "results" / "cache")
    assert main(argv) == 0
    after = snapshot(tmp_path / "results" / "runs") | snapshot(tmp_path / "results" / "cache")
    assert before == after, "a second identical run rewrites nothing"
    assert "0 new" in capsys.readouterr().err

    assert main(["table", "--results-dir", str(tmp_path / "results"), "--tasks", "synth-age"]) == 0
    only_age = capsys.readouterr().out
    assert f"synth-age@v{SYNTH_VERSION}" in only_age and "synth-superclass" not in only_age


class Killed(Exception):
    pass


def test_killed_run_resumes_without_redoing_or_losing_work(tmp_path, monkeypatch):
    plan = resolve(request(tmp_path))
    calls = {"n": 0}
    from ecgbench.running.stages import evaluate

    original = evaluate.score

    def dying_score(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # killed while scoring simclr, after its pretraining finished
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluate, "score", dying_score)
    with pytest.raises(Killed):
        Runner(plan).run()
    store = ResultStore(tmp_path / "results")
    first = {r["key"]: r for r in store.results()}
    assert len(first) == 5
    leftovers = [p for p in (tmp_path / "results").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []

    monkeypatch.setattr(evaluate, "score", original)
    trained = []
    import ecgbench.models.train as train_module

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
    import dataclasses

    import numpy as np
    import torch

    from ecgbench.core.registry import METHODS
    from ecgbench.models.train import WindowDataset, pretrain

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

    from ecgbench.core.registry import METHODS
    from ecgbench.models.train import TrainingDiverged, WindowDataset, pretrain

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
    parent = logged.data.tags["mlflow.parentRunId"]  # the result hangs under its pretraining run
    assert parent == by_key[results[0]["run_id"]].info.run_id
    invocation = client.get_run(parent).data.tags["mlflow.parentRunId"]
    assert client.get_run(invocation).data.tags["ecgbench.kind"] == "invocation"
    assert json.loads(client.get_run(invocation).data.params["request.seeds"]) == [0]


def test_a_user_finds_a_result_run_by_its_tags_and_reads_its_confusion_matrix(tmp_path):
    """Browsing as an MLflow user would: a filter string on tags, a readable run name, and the
    confusion matrix, per-class metrics and predictions among the result run's artifacts."""
    import mlflow
    from mlflow.tracking import MlflowClient

    runner = Runner(resolve(request(tmp_path, methods=["simclr"], tasks=["synth-sex"], probes=["lr", "knn"],
                                    track=True, log_checkpoints=True)))
    (result,) = [r for r in runner.run() if r["probe"] == "lr"]
    uri = f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["ecgbench"], output_format="list",
                               filter_string="tags.method = 'simclr' and tags.seed = '0' and tags.probe = 'lr'")
    assert len(found) == 1 and found[0].info.run_name == f"simclr · {result['task_key']} · seed 0 · lr"
    assert found[0].data.tags["task"] == result["task_key"] and found[0].data.tags["preset"] == "smoke"
    client = MlflowClient(uri)
    names = {a.path for a in client.list_artifacts(found[0].info.run_id)}
    assert {"confusion_matrix.json", "per_class.json"} <= names and any(n.endswith(".npz") for n in names)
    matrix = json.loads(Path(client.download_artifacts(found[0].info.run_id, "confusion_matrix.json",
                                                       str(tmp_path))).read_text())
    assert matrix["labels"] == [0, 1] and sum(map(sum, matrix["matrix"])) == result["n"]["test"]
    pretraining = found[0].data.tags["mlflow.parentRunId"]  # --log-checkpoints: the weights beside run.json
    assert {"run.json", f"{result['run_id']}.pt"} <= {a.path for a in client.list_artifacts(pretraining)}


# ----- label-using methods, base-method chains, not-applicable cells ---------------------------
# Small fake methods defined here (not registered in methods/), served through METHODS.get.
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ecgbench.core.contracts import Recordings, Task
from ecgbench.core.registry import METHODS, TASKS
from ecgbench.models.method import Method, MethodConfig
from ecgbench.reporting.tables import render


class TinyEncoder(nn.Module):
    def __init__(self, leads: int, width: int):
        super().__init__()
        self.conv = nn.Conv1d(leads, width, 5)
        self.embedding_dim = width

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(-1)  # (B, width)


@dataclass
class TinyConfig(MethodConfig):
    leads: tuple[str, ...] = ("I", "II")
    fs: int = 50
    n_samples: int = 250
    batch_size: int = 8
    max_steps: int = 2
    width: int = 4


class FakeBase(Method):
    """A tiny self-supervised stand-in."""

    name = "fake-base"
    Config = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.encoder = TinyEncoder(len(config.leads), config.width)

    def training_step(self, batch):
        return {"loss": self.encoder(batch["signal"]).pow(2).mean()}

    def artifacts(self, batch, out_dir):
        path = out_dir / "batch.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{tuple(batch['signal'].shape)} {torch.is_grad_enabled()} {self.training}")
        return [path]


class FakeSupervised(FakeBase):
    """Records what it is set up for and every batch it trains on."""

    name = "fake-supervised"
    uses_labels = True
    seen: list[dict] = []

    def setup_task(self, kind, n_outputs):
        self.kind, self.n_outputs = kind, n_outputs
        self.head = nn.Linear(self.encoder.embedding_dim, n_outputs)

    def training_step(self, batch):
        FakeSupervised.seen.append({"kind": self.kind, "n_outputs": self.n_outputs,
                                    "record_index": batch["record_index"].numpy().copy(),
                                    "label": batch["label"].numpy().copy()})
        return {"loss": self.head(self.encoder(batch["signal"])).pow(2).mean()}


class FakeVariant(FakeBase):
    """Starts from fake-base's encoder."""

    name = "fake-variant"
    base_method = "fake-base"
    bases: list[Method] = []

    def init_from_base(self, base):
        FakeVariant.bases.append(base)
        self.encoder.load_state_dict(base.encoder.state_dict())


class FakeBroken(FakeBase):
    """Crashes while training: a real failure, not 'not applicable'."""

    name = "fake-broken"

    def training_step(self, batch):
        raise RuntimeError("boom in training_step")


FAKES = {cls.name: cls for cls in (FakeBase, FakeSupervised, FakeVariant, FakeBroken)}


@pytest.fixture
def fakes(monkeypatch):
    real = METHODS.get
    monkeypatch.setattr(METHODS, "get", lambda name: FAKES.get(name) or real(name))
    FakeSupervised.seen.clear()
    FakeVariant.bases.clear()
    import ecgbench.models.train as train_module

    calls: list[str] = []
    real_pretrain = train_module.pretrain
    monkeypatch.setattr(train_module, "pretrain",
                        lambda method, *a, **k: calls.append(method.name) or real_pretrain(method, *a, **k))
    return calls


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def test_label_using_method_trains_once_per_task_on_training_labels_only(tmp_path, data_root, fakes):
    req = request(tmp_path, methods=["fake-supervised"], probes=["lr"], data_root=data_root)
    results = Runner(resolve(req)).run()
    assert fakes == ["fake-supervised", "fake-supervised"]
    by_task = {r["task"]: r for r in results}
    assert sorted(by_task) == ["synth-age", "synth-superclass"] and len(results) == 2
    superclass, age = by_task["synth-superclass"], by_task["synth-age"]
    assert superclass["run_id"] != age["run_id"], "two tasks never share a supervised checkpoint"
    assert superclass["uses_labels"] and superclass["run_config"]["task"] == f"synth-superclass@v{SYNTH_VERSION}"
    assert age["run_config"]["task"] == f"synth-age@v{SYNTH_VERSION}"
    runs = {r.name for r in (tmp_path / "results" / "runs").iterdir()}
    assert runs == {superclass["run_id"], age["run_id"]}
    for run_id, task in [(superclass["run_id"], f"synth-superclass@v{SYNTH_VERSION}"), (age["run_id"], f"synth-age@v{SYNTH_VERSION}")]:
        task_folders = {p.name for p in (tmp_path / "results" / "runs" / run_id).iterdir() if "@v" in p.name}
        assert task_folders == {task}, "probed on its own task only"

    runner = Runner(resolve(req))
    data = runner.dataset("synthetic")
    split = data.meta["split"].to_numpy()
    for task_name, kind, width in [("synth-superclass", "multilabel", 5), ("synth-age", "regression", 1)]:
        task = TASKS.get(task_name)
        y, usable = task.labels(data.meta)
        batches = [b for b in FakeSupervised.seen if b["kind"] == kind]
        assert batches and all(b["n_outputs"] == width for b in batches)
        seen = np.concatenate([b["record_index"] for b in batches])
        assert (split[seen] == "train").all() and usable[seen].all(), "labels never come from val/test"
        labels = np.concatenate([b["label"] for b in batches])
        if kind == "multilabel":
            assert labels.dtype == np.float32 and np.array_equal(labels, y[seen])
        else:
            train = np.flatnonzero((split == "train") & usable)
            expected = (y[seen] - y[train].mean()) / y[train].std()
            assert labels.dtype == np.float32 and np.allclose(labels, expected, atol=1e-5)

    fakes.clear()
    again = runner.run()
    assert fakes == [] and runner.new_results == 0, "a second run reuses both supervised runs"
    assert {r["key"] for r in again} == {r["key"] for r in results}
    assert "fake-supervised (supervised)" in render(again)


def test_base_method_is_trained_once_reused_and_part_of_the_variant_key(tmp_path, data_root, fakes):
    req = request(tmp_path, methods=["fake-variant"], tasks=["synth-sex"], probes=["lr"], data_root=data_root)
    runner = Runner(resolve(req))
    results = runner.run()
    assert fakes == ["fake-base", "fake-variant"], "the base is trained first"
    base_run = runner.run_config("fake-base", 0).run_id
    record = json.loads((tmp_path / "results" / "runs" / results[0]["run_id"] / "run.json").read_text())
    assert record["run_config"]["base_run_id"] == base_run
    assert record["artifacts"] == ["artifacts/batch.txt"]  # the artifacts hook ran after training
    written = tmp_path / "results" / "runs" / results[0]["run_id"] / "artifacts" / "batch.txt"
    assert written.read_text() == "(8, 2, 250) False False"
    assert results[0]["run_config"]["base_run_id"] == base_run
    (base,) = FakeVariant.bases
    stored = torch.load(tmp_path / "results" / "cache" / "checkpoints" / f"{base_run}.pt", weights_only=False)
    assert all(torch.equal(v, stored["model"][f"encoder.{k}"]) for k, v in base.encoder.state_dict().items())

    fakes.clear()
    FakeVariant.bases.clear()
    Runner(resolve(req)).run()
    assert fakes == [] and FakeVariant.bases == [], "a cached variant needs neither training nor its base"

    # Both selected, the base's config changed: it is trained once and the variant's key changes.
    changed = request(tmp_path, methods=["fake-base", "fake-variant"], tasks=["synth-sex"], probes=["lr"],
                      data_root=data_root, overrides={"data.n_patients": "90", "fake-base.lr": "0.01"})
    fakes.clear()
    results2 = Runner(resolve(changed)).run()
    assert fakes == ["fake-base", "fake-variant"]
    variant2 = next(r for r in results2 if r["method"] == "fake-variant")
    base2 = next(r for r in results2 if r["method"] == "fake-base")
    assert variant2["run_id"] != results[0]["run_id"]
    assert variant2["run_config"]["base_run_id"] == base2["run_id"] != base_run


def single_lead_task() -> tuple[Task, Recordings]:
    rng = np.random.default_rng(0)
    n = 60
    meta = pd.DataFrame({"record_id": np.arange(n), "patient_id": np.arange(n) // 2,
                         "split": np.array(["train", "val", "test"])[(np.arange(n) // 2) % 3],
                         "y": rng.integers(0, 2, n)})
    recordings = Recordings("fake-single-lead", "1", rng.standard_normal((n, 1, 500)).astype("float32"),
                            meta, fs=50, lead_names=("II",))
    task = Task(name="fake-single", version=1, dataset="fake-single-lead", kind="binary",
                labels=lambda m: (m["y"].to_numpy(), np.ones(len(m), bool)), main_metric="macro_auroc",
                description="a single-lead task", classes=("a", "b"))
    return task, recordings


def test_a_method_that_cannot_run_on_a_task_gets_a_not_applicable_cell(tmp_path, data_root, fakes):
    task, recordings = single_lead_task()

    def runner_for(methods):
        plan = resolve(request(tmp_path, methods=methods, tasks=["synth-sex"], probes=["lr", "knn"],
                               data_root=data_root))
        plan.tasks.append(task)
        runner = Runner(plan)
        runner.datasets[recordings.name] = recordings
        return runner

    results = runner_for(["random-init", "fake-supervised"]).run()
    na = [r for r in results if r.get("status") == "not_applicable"]
    assert {(r["method"], r["task"], r["probe"]) for r in na} == {
        (m, "fake-single", p) for m in ("random-init", "fake-supervised") for p in ("lr", "knn")}
    for r in na:
        assert "lacks" in r["reason"] and "'I'" in r["reason"] and r["metrics"] == {}
    scored = [r for r in results if r.get("status") != "not_applicable"]
    assert {r["task"] for r in scored} == {"synth-sex"} and all(r["metrics"] for r in scored)
    assert list(ResultStore(tmp_path / "results").results())  # stored like every result

    table = render(ResultStore(tmp_path / "results").results())
    section = table[table.index("### fake-single"):]
    import re

    for label in (r"random-init \(control\)", r"fake-supervised \(supervised\)"):
        assert re.search(rf"\| {label} +\| n/a\[\^na\d\] +\| n/a\[\^na\d\]", section), section
    assert "not applicable: fake-single-lead: the encoder needs leads" in section

    before = snapshot(tmp_path / "results" / "runs")
    runner = runner_for(["random-init", "fake-supervised"])
    runner.run()
    assert runner.new_results == 0 and snapshot(tmp_path / "results" / "runs") == before

    with pytest.raises(RuntimeError, match="boom in training_step"):
        runner_for(["fake-broken"]).run()


def test_dataset_options_come_from_tasks_then_named_set_keys():
    from ecgbench.core.config import ConfigError
    from ecgbench.running.runner import Runner

    runner = Runner.__new__(Runner)

    class _Plan:
        tasks = [TASKS.get("ptbxl-sex"), TASKS.get("synth-sex")]
        data_options = {"n_patients": "300", "ptbxl.allow_subset": "true"}

    runner.plan = _Plan()
    assert runner.dataset_options("ptbxl") == {"fs": 100, "allow_subset": "true"}
    assert runner.dataset_options("synthetic") == {**TASKS.get("synth-sex").dataset_options, "n_patients": "300"}
    _Plan.data_options = {"ptbxl.fs": "500"}
    assert runner.dataset_options("ptbxl") == {"fs": "500"}  # the command line wins
    import dataclasses

    _Plan.tasks = [TASKS.get("ptbxl-sex"), dataclasses.replace(TASKS.get("ptbxl-age"), dataset_options={"fs": 500})]
    with pytest.raises(ConfigError, match="tasks on ptbxl ask for different"):
        runner.dataset_options("ptbxl")


def test_a_degenerate_probe_is_one_warning_line_and_library_warnings_are_summarised(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    argv = ["run", "--methods", "random-init", "--tasks", "synth-superclass", "--probes", "knn", "--seeds", "0",
            "--results-dir", str(tmp_path / "results"), "--no-tracking", "--set", "eval.label_fractions=0.01"]
    for item in SMALL:
        argv += ["--set", item]
    assert main(argv) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "degenerate probe" in line]
    assert len(lines) == 1 and "random-init seed 0 · synth-superclass@v" in lines[0] and "1%-labels knn" in lines[0]
    assert "Warning:" not in err.replace("ecgbench: warning:", "")  # no raw third-party warning lines


def test_clustering_indices_and_the_plot_path_are_printed():
    from pathlib import Path

    from ecgbench.running.stages.evaluate import analysis_line

    line = analysis_line({"clustering": {"davies_bouldin": 15.81, "silhouette": -0.0612, "n_clusters": 5}},
                         Path("r/plots/x/t-tsne.png"))
    assert line == "clustering davies_bouldin 15.8, silhouette -0.0612; t-SNE plot r/plots/x/t-tsne.png"
    assert analysis_line({}, None) == ""
