"""The tasks of tasks/dreamer.py and tasks/har.py, the per-channel embedding they ask for, and
an end-to-end run on both.

Labels are checked on hand-made metadata and on the fixture releases of the loader tests
(tests/data/datasets/test_dreamer.py and test_uci_har.py: DREAMER.mat and the UCI HAR signal files
are written in their original layouts there, since neither exists on this machine; their
builders are imported from those files, not copied).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.contracts import HIGHER_IS_BETTER, InputSpec, NotApplicable, Recordings, Task
from ecgbench.core.registry import METHODS, TASKS
from ecgbench.data.adapt import adapt, adapt_each_channel
from ecgbench.data.datasets import dataset_module, uci_har
from ecgbench.tasks import dreamer as dreamer_tasks
from ecgbench.tasks import har as har_tasks

HERE = Path(__file__).resolve().parent
EXPECTED = {"dreamer-arousal": "dreamer", "dreamer-valence": "dreamer", "har": "uci_har"}


def _sibling(name: str):
    """A loader test module (for its fixture builders), loaded by path: tests/ is no package."""
    path = HERE.parent / "data" / "datasets" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_fixtures_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DREAMER_FIXTURE = _sibling("test_dreamer")
HAR_FIXTURE = _sibling("test_uci_har")


def write_har(root: Path) -> Path:
    """A small UCI HAR tree in the original layout: 8 training and 2 test volunteers, two
    windows of every activity each (so every split has every class)."""
    folder = root / "UCI HAR Dataset"
    (folder / "activity_labels.txt").parent.mkdir(parents=True, exist_ok=True)
    (folder / "activity_labels.txt").write_text(HAR_FIXTURE.LABELS_TEXT)
    for seed, (subset, subjects) in enumerate({"train": range(1, 9), "test": (9, 10)}.items()):
        (folder / subset).mkdir(exist_ok=True)
        activity = [a for _ in subjects for a in (1, 2, 3, 4, 5, 6) * 2]
        subject = [s for s in subjects for _ in range(12)]
        (folder / subset / f"y_{subset}.txt").write_text("".join(f"{a}\n" for a in activity))
        (folder / subset / f"subject_{subset}.txt").write_text("".join(f"{s}\n" for s in subject))
        HAR_FIXTURE.write_signals(folder, subset, len(activity), seed)
    return folder


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data-root")
    DREAMER_FIXTURE.write(root / "dreamer" / "DREAMER.mat", DREAMER_FIXTURE.dreamer_struct())
    write_har(root)
    return root


# ----- task contracts --------------------------------------------------------------------------
def test_registry_finds_the_three_tasks():
    names = {e.name for e in TASKS.entries.values()
             if e.module in ("ecgbench.tasks.dreamer", "ecgbench.tasks.har")}
    assert names == set(EXPECTED)
    assert TASKS.get("har") is har_tasks.HAR


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_task_contract(name):
    task = TASKS.get(name)
    assert isinstance(task, Task) and task.name == name and task.version == 1
    assert task.dataset == EXPECTED[name] and dataset_module(task.dataset).NAME == task.dataset
    assert task.description == TASKS.entry(name).description
    assert task.main_metric in HIGHER_IS_BETTER and task.channels == "each"
    assert task.citation
    if name == "har":
        assert task.kind == "multiclass" and task.main_metric == "accuracy"
        assert task.classes == uci_har.ACTIVITIES == har_tasks.ACTIVITIES
        assert "Anguita" in task.citation and "NERULA" in task.citation
    else:
        assert task.kind == "binary" and task.classes == ("low", "high")
        assert "Katsigiannis" in task.citation and "Sarkar" in task.citation


def test_dreamer_labels_are_high_above_three():
    meta = pd.DataFrame({"arousal": [1, 2, 3, 4, 5, None], "valence": [5, 4, 3, 2, 1, 3]})
    y, usable = dreamer_tasks.DREAMER_AROUSAL.labels(meta)
    assert y[:5].tolist() == [0, 0, 0, 1, 1] and usable.tolist() == [True] * 5 + [False]
    y, usable = dreamer_tasks.DREAMER_VALENCE.labels(meta)
    assert y.tolist() == [1, 1, 0, 0, 0, 0] and usable.all()


def test_har_labels_are_activity_minus_one():
    y, usable = har_tasks.HAR.labels(pd.DataFrame({"activity": [1, 6, 3, 7, 0]}))
    assert y[:3].tolist() == [0, 5, 2] and usable.tolist() == [True, True, True, False, False]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_labels_on_the_fixture_releases_and_patient_wise_splits(name, data_root, tmp_path):
    task = TASKS.get(name)
    data = dataset_module(task.dataset).load(data_root, cache_dir=tmp_path, **task.dataset_options)
    y, usable = task.labels(data.meta)
    assert usable.all() and len(y) == len(data)
    assert set(np.unique(y)) <= set(range(len(task.classes)))
    patients = {s: set(data.meta.loc[data.meta["split"] == s, "patient_id"]) for s in ("train", "val", "test")}
    assert not patients["train"] & patients["val"] and not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]
    for split in ("train", "val", "test"):  # every class can be probed and scored
        assert len(np.unique(y[data.indices(split)])) == len(task.classes)


# ----- per-channel adaptation ------------------------------------------------------------------
def _recordings(n: int = 3, channels: int = 4, t: int = 128, fs: int = 50) -> Recordings:
    signals = np.random.default_rng(0).normal(size=(n, channels, t)).astype(np.float32)
    meta = pd.DataFrame({"record_id": range(n), "patient_id": range(n), "split": "train"})
    return Recordings("toy", "1", signals, meta, fs, tuple(f"ch{i}" for i in range(channels)))


def test_each_channel_becomes_a_single_lead_record():
    data = _recordings()
    spec = InputSpec(leads=("II",), fs=100, n_samples=300)
    adapted = adapt_each_channel(data, spec)
    assert adapted.windows.shape == (3 * 4, 1, 1, 300)  # 2.56 s at 100 Hz = 256 samples, padded
    one = Recordings("toy", "1", data.signals[:, 2:3], data.meta, 50, ("II",))
    np.testing.assert_array_equal(adapted.windows[1 * 4 + 2], adapt(one, spec).windows[1])
    assert adapted.description["zero_padded_samples"] == 44
    assert "each of the 4 channels (ch0, ch1, ch2, ch3)" in adapted.description["channels"]
    assert "concatenated" in adapted.description["channels"]


def test_each_channel_refuses_a_multi_lead_encoder():
    with pytest.raises(NotApplicable, match="single-lead encoder; this encoder takes 12 leads"):
        adapt_each_channel(_recordings(), InputSpec(leads=tuple("ABCDEFGHIJKL"), fs=50, n_samples=128))


def test_runner_concatenates_the_channel_embeddings(tmp_path, data_root, one_torch_thread):
    """Runner.embeddings on HAR = [embed(channel 0) | ... | embed(channel 8)] per record."""
    import torch
    from rich.progress import Progress

    from ecgbench.running.runner import Runner, RunRequest, resolve

    plan = resolve(RunRequest(methods=["transform-cnn"], tasks=["har"], probes=["lr"], seeds=[0],
                              preset="smoke", results_dir=tmp_path / "results", data_root=data_root,
                              overrides={"data.n_patients": "90"}, track=False))
    runner = Runner(plan)
    runner.progress = Progress(disable=True)
    method = METHODS.get("transform-cnn")(plan.method_configs["transform-cnn"])
    config = runner.run_config("transform-cnn", 0)
    embeddings, adaptation = runner.embeddings(method, config, TASKS.get("har"))
    data = runner.dataset("uci_har")
    dim = method.embedding_dim
    assert embeddings.shape == (len(data), 9 * dim)
    assert "each of the 9 channels" in adaptation["channels"]
    spec = method.input_spec
    one = Recordings("uci_har", "x", np.ascontiguousarray(data.signals[:5, 4:5]), data.meta.iloc[:5],
                     data.fs, spec.leads)
    windows = torch.from_numpy(adapt(one, spec).windows[:, 0])  # (5, 1, T): channel 4 only
    method.eval()
    with torch.no_grad():
        expected = method.embed(windows).numpy()
    np.testing.assert_allclose(embeddings[:5, 4 * dim : 5 * dim], expected, rtol=1e-4, atol=1e-5)
    cached, _ = runner.embeddings(method, config, TASKS.get("har"))  # stored under an "-each" key
    np.testing.assert_array_equal(cached, embeddings)
    assert any(p.name.endswith("-each.npy") for p in (tmp_path / "results").rglob("*.npy"))


# ----- end to end ------------------------------------------------------------------------------
@pytest.mark.slow
def test_smoke_run_on_har_and_dreamer(tmp_path, data_root, capsys, one_torch_thread):
    from ecgbench.cli import main

    results = tmp_path / "results"
    argv = ["run", "--methods", "random-init,transform-cnn", "--tasks", "har,dreamer-arousal",
            "--preset", "smoke", "--seeds", "0", "--data-root", str(data_root),
            "--results-dir", str(results), "--no-tracking", "--probes", "lr,knn",
            "--pretrain-data", "synthetic",  # tasks on two datasets: the corpus must be named
            "--set", "data.n_patients=90", "--set", "eval.bootstrap=50"]
    assert main(argv) == 0
    records = [json.loads(p.read_text()) for p in (results / "runs").rglob("*.json") if p.name != "run.json"]
    cells = {(r["method"], r["task"], r["probe"]): r for r in records}
    assert len(cells) == 2 * 2 * 2
    for task in ("har", "dreamer-arousal"):
        for probe in ("lr", "knn"):
            na = cells[("random-init", task, probe)]
            assert na["status"] == "not_applicable" and "single-lead encoder" in na["reason"]
            scored = cells[("transform-cnn", task, probe)]
            assert scored.get("status", "ok") != "not_applicable"
            assert 0 <= scored["metrics"]["accuracy"] <= 1
            assert "each of the" in scored["adaptation"]["channels"]
    assert cells[("transform-cnn", "har", "lr")]["n"] == {"train": 48, "val": 48, "test": 24}
    assert "n/a" in capsys.readouterr().out


@pytest.mark.slow
def test_dreamer_tasks_pretrain_on_dreamer_every_channel_a_record(tmp_path, data_root, one_torch_thread):
    """No --pretrain-data: a DREAMER task pretrains on DREAMER's training volunteers (the residual
    report's setting), each of its two unnamed ECG channels a single-lead record of its own."""
    from ecgbench.cli import main

    results = tmp_path / "results"
    assert main(["run", "--methods", "transform-cnn", "--tasks", "dreamer-arousal", "--preset", "smoke",
                 "--seeds", "0", "--data-root", str(data_root), "--results-dir", str(results),
                 "--no-tracking", "--probes", "lr", "--set", "eval.bootstrap=50"]) == 0
    run = json.loads(next((results / "runs").glob("*/run.json")).read_text())
    assert run["run_config"]["pretrain_data"].startswith("dreamer@") and run["leakage"]["pretrain_dataset"] == "dreamer"
    assert run["train"]["steps"] > 0
    result = next(json.loads(p.read_text()) for p in (results / "runs").rglob("dreamer-arousal@v1/*.json"))
    assert result.get("status", "ok") != "not_applicable"
