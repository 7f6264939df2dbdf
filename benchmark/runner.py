"""The grid: methods x seeds pretrained once each, embeddings once per (run, dataset, input),
then tasks x probes. Every stage is keyed by hashes and skipped when its output exists, so a
killed run resumes where it stopped and a changed setting never reuses a stale output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import platform
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench import __version__, distributed
from ecgbench.api import NotApplicable, Recordings, Task
from ecgbench.config import (
    EVAL_PRESETS,
    PRESETS,
    ConfigError,
    EvalSettings,
    RunConfig,
    apply_overrides,
    derive_seed,
    short_hash,
    split_overrides,
)
from ecgbench.registry import METHODS, TASKS
from ecgbench.store import ResultStore, atomic_write, read_json, write_json, write_npy
from ecgbench.tables import NOT_APPLICABLE

PROTOCOL = "frozen-probe"
ARTIFACT_BATCH = 8  # training windows handed to a method's ``artifacts`` hook


@dataclass
class RunRequest:
    methods: list[str]
    tasks: list[str]
    probes: list[str]
    seeds: list[int]
    preset: str = "smoke"
    results_dir: Path = Path("results")
    data_root: Path | None = None
    tracking_uri: str | None = None
    device: str = "auto"
    overrides: dict[str, str] = field(default_factory=dict)
    pretrain_dataset: str = "synthetic"
    track: bool = True
    compile: bool = False  # torch.compile the training step on CUDA (not part of any key: same math)
    shard: tuple[int, int] = (0, 1)  # (index, count): this process runs every count-th job from index


@dataclass
class Plan:
    """The resolved request: typed configs for everything that will run."""

    request: RunRequest
    method_configs: dict[str, Any]
    tasks: list[Task]
    eval_settings: EvalSettings
    data_options: dict[str, str]


def resolve(request: RunRequest) -> Plan:
    if request.preset not in PRESETS:
        raise ConfigError(f"unknown preset {request.preset!r}; choose one of {', '.join(PRESETS)}")
    classes = {name: METHODS.get(name) for name in request.methods}
    per_method, eval_overrides, data_options = split_overrides(
        request.overrides, request.methods, {n: c.config_fields() for n, c in classes.items()}
    )
    configs = {}
    for name, cls in classes.items():
        merged = {**cls.preset_overrides(request.preset), **per_method[name]}
        configs[name] = apply_overrides(cls.Config(), merged, name)
    _add_base_configs(configs, request.preset)
    settings = apply_overrides(EvalSettings(**EVAL_PRESETS[request.preset]), eval_overrides, "eval")
    tasks = [TASKS.get(name) for name in request.tasks]
    return Plan(request, configs, tasks, settings, data_options)


def _add_base_configs(configs: dict[str, Any], preset: str) -> None:
    """Base methods of frozen-encoder variants run with their own preset config (or with the
    selected config when the base is selected too)."""
    pending = list(configs)
    while pending:
        base = METHODS.get(pending.pop()).base_method
        if base and base not in configs:
            cls = METHODS.get(base)
            configs[base] = apply_overrides(cls.Config(), cls.preset_overrides(preset), base)
            pending.append(base)


def n_outputs(task: Task) -> int:
    """Label-head width for ``Method.setup_task``: one logit for binary and regression."""
    return len(task.classes) if task.kind in ("multiclass", "multilabel") else 1


def training_labels(task: Task, y: np.ndarray) -> np.ndarray:
    """Labels as the batches carry them: int64 classes, float32 multilabel targets, float32
    regression targets standardised with the (training) values given."""
    if task.kind in ("multiclass", "binary"):
        return y.astype(np.int64)
    if task.kind == "multilabel":
        return y.astype(np.float32)
    y = y.astype(np.float64)
    return ((y - y.mean()) / (y.std() or 1.0)).astype(np.float32)


# ----- provenance ------------------------------------------------------------------------------
def git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str]:
    import sklearn
    import torch

    return {
        "ecgbench": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
    }


# ----- the runner ------------------------------------------------------------------------------
class Runner:
    def __init__(self, plan: Plan, console=None):
        from rich.console import Console

        from ecgbench.train import resolve_device

        self.plan = plan
        self.request = plan.request
        self.console = console or Console(stderr=True)
        self.store = ResultStore(self.request.results_dir)
        self.device = distributed.init_from_env(resolve_device(self.request.device))
        self.datasets: dict[str, Recordings] = {}
        self.adapted: dict[tuple, Any] = {}
        self.provenance = {"git": git_revision(), "versions": versions()}
        self.tracker = None
        self.new_results = 0
        self.analysis: dict[tuple[str, str], dict[str, Any]] = {}  # (run_id, task key) -> extras

    # ----- data --------------------------------------------------------------------------
    def dataset(self, name: str) -> Recordings:
        if name not in self.datasets:
            from ecgbench.datasets import load_dataset

            options = self.dataset_options(name)
            self.console.log(f"loading dataset [bold]{name}[/]" + (f" {options}" if options else ""))
            self.datasets[name] = load_dataset(name, self.request.data_root, options)
        return self.datasets[name]

    def dataset_options(self, name: str) -> dict[str, Any]:
        """Options for loading ``name``: its tasks' ``dataset_options``, then ``--set
        data.<name>.<option>=value``; a plain ``data.<option>`` is the synthetic suite's."""
        options: dict[str, Any] = {}
        for task in self.plan.tasks:
            if task.dataset != name:
                continue
            clash = {k for k, v in task.dataset_options.items() if k in options and options[k] != v}
            if clash:
                raise ConfigError(f"tasks on {name} ask for different {sorted(clash)}; run them separately")
            options.update(task.dataset_options)
        for key, value in self.plan.data_options.items():
            dataset, dot, option = key.partition(".")
            if dot and dataset == name:
                options[option] = value
            elif not dot and name == "synthetic":
                options[key] = value
        return options

    def adapt(self, recordings: Recordings, spec, each_channel: bool = False):
        from ecgbench.adapt import adapt, adapt_each_channel

        key = (recordings.name, recordings.version, spec, each_channel)
        if key not in self.adapted:
            self.adapted[key] = (adapt_each_channel if each_channel else adapt)(recordings, spec)
        return self.adapted[key]

    @functools.cached_property
    def pretraining(self):
        """The leakage guard (:mod:`ecgbench.leakage`), once per run: the pretraining dataset's
        training rows minus known overlaps with the evaluated datasets, checked."""
        from ecgbench.leakage import select_pretraining

        tasks: dict[str, list[str]] = {}
        for task in self.plan.tasks:
            tasks.setdefault(task.dataset, []).append(task.name)
        selection = select_pretraining(self.dataset(self.request.pretrain_dataset),
                                       {name: self.dataset(name) for name in tasks}, tasks)
        for name, ids in selection.excluded.items():
            self.console.log(f"leakage guard: {len(ids)} records of {selection.dataset} are in {name}, "
                             f"excluded from pretraining: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")
        for note in selection.notes:
            self.console.log(f"leakage guard: {note}")
        return selection

    # ----- stages ------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._start_tracking()
        results: list[dict[str, Any]] = []
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        status = "FAILED"
        try:
            with Progress(*columns, console=self.console, transient=False) as progress:
                self.progress = progress
                for method, seed in self.jobs():
                    results.extend(self.run_method_seed(method, seed))
            status = "FINISHED"
        finally:
            if self.tracker:
                self.tracker.finish(status)
        return results

    def jobs(self) -> list[tuple[str, int]]:
        """This shard's (method, seed) pretraining jobs: every n-th of the grid, from the i-th.

        Shards split the grid deterministically, so n processes (e.g. Slurm array jobs) sharing
        one results directory never both own a job; the per-run lock in the store covers the
        runs two jobs share (a base method of two variants).
        """
        grid = [(m, s) for m in self.request.methods for s in self.request.seeds]
        index, count = self.request.shard
        return grid[index::count]

    def run_config(self, method: str, seed: int, task: Task | None = None) -> RunConfig:
        """A label-using method's run is per task (trained on its training labels); a
        frozen-encoder variant's run names the run of its base method."""
        cls = METHODS.get(method)
        if cls.uses_labels and task is None:
            raise ValueError(f"{method} uses labels: its run config needs a task")
        data = self.dataset(task.dataset if cls.uses_labels else self.request.pretrain_dataset)
        base_run_id = self.base_run(cls, seed, task)[0].run_id if cls.base_method else None
        return RunConfig(
            method=method,
            method_version=cls.version,
            method_config=dataclasses.asdict(self.plan.method_configs[method]),
            preset=self.request.preset,
            pretrain_data=f"{data.name}@{data.version}:train" + ("" if cls.uses_labels else self.pretraining.key),
            seed=seed,
            task=task.key if cls.uses_labels else None,
            base_run_id=base_run_id,
        )

    def base_run(self, cls, seed: int, task: Task | None) -> tuple[RunConfig, Task | None]:
        """The run a frozen-encoder variant starts from, and the task it is trained on (the
        variant's task if the base method uses labels too, else none)."""
        base_task = task if METHODS.get(cls.base_method).uses_labels else None
        return self.run_config(cls.base_method, seed, base_task), base_task

    def run_method_seed(self, method_name: str, seed: int) -> list[dict[str, Any]]:
        if METHODS.get(method_name).uses_labels:  # one run per task, probed on that task only
            return [r for task in self.plan.tasks for r in self._run_and_probe(method_name, seed, [task], task)]
        return self._run_and_probe(method_name, seed, self.plan.tasks)

    def _run_and_probe(self, method_name: str, seed: int, tasks: list[Task],
                       label_task: Task | None = None) -> list[dict[str, Any]]:
        run_config = self.run_config(method_name, seed, label_task)
        try:
            method = self.pretrained(run_config, label_task)
        except NotApplicable as reason:
            return [r for task in tasks for r in self.not_applicable(run_config, task, reason)]
        if not distributed.is_main():  # under torchrun the other ranks only help pretrain
            return []
        results = []
        bar = self.progress.add_task(f"probe {run_config.run_id}", total=len(tasks) * len(self.request.probes))
        for task in tasks:
            try:
                embeddings, adaptation = self.embeddings(method, run_config, task)
            except NotApplicable as reason:
                results.extend(self.not_applicable(run_config, task, reason))
                self.progress.advance(bar, len(self.request.probes))
                continue
            self.analyse(run_config, task, embeddings)
            for probe in self.request.probes:
                self.progress.update(bar, description=f"probe {run_config.run_id} {task.name} {probe}")
                for fraction in self.plan.eval_settings.label_fractions:
                    results.append(self.evaluate(run_config, method, task, probe, embeddings, adaptation, fraction))
                self.progress.advance(bar)
        self.progress.remove_task(bar)
        return results

    def pretrained(self, run_config: RunConfig, task: Task | None = None):
        """Build the method and load its checkpoint, training it first if there is none.

        ``task``: the task whose training labels a label-using method learns from. A variant
        with a ``base_method`` starts from that method's run (trained first if not cached); on
        reuse its own checkpoint holds everything, so the base is not loaded again.
        """
        import torch

        from ecgbench.train import load_checkpoint

        cls = METHODS.get(run_config.method)
        run_id = run_config.run_id
        torch.manual_seed(derive_seed(run_config.seed, "init"))
        method = cls(self.plan.method_configs[run_config.method])
        if cls.uses_labels:
            method.setup_task(task.kind, n_outputs(task))
        checkpoint = self.store.checkpoint(run_id)
        # Rank 0 holds the run's lock and decides for every rank whether to train or reuse.
        lock = self.store.lock(run_id) if distributed.is_main() else contextlib.nullcontext()
        with lock:
            cached = distributed.agree(checkpoint.exists() and self.store.run_record(run_id).exists())
            if cached:
                load_checkpoint(method, checkpoint)
                self.console.log(f"reusing pretrained [bold]{run_id}[/]")
                record = read_json(self.store.run_record(run_id))
            else:
                record = self._pretrain_and_save(method, run_config, task)
        if self.tracker:
            self.tracker.log_child(
                run_id, "pretrain", params=record["run_config"],
                metrics={k: v for k, v in record["train"].items() if isinstance(v, (int, float))},
                curve=[tuple(x) for x in record["train"].get("loss_curve", [])],
                artifacts=[self.store.run_dir(run_id) / a for a in record.get("artifacts", [])],
            )
        return method

    def _pretrain_and_save(self, method, run_config: RunConfig, task: Task | None) -> dict[str, Any]:
        """Train (after the base run, for a frozen-encoder variant), then write the checkpoint
        and run record; under torchrun rank 0 writes and the others wait for it."""
        from ecgbench.train import save_checkpoint

        cls, run_id = type(method), run_config.run_id
        if cls.base_method:
            base_config, base_task = self.base_run(cls, run_config.seed, task)
            method.init_from_base(self.pretrained(base_config, base_task))
        stats, artifacts = self._train(method, run_config, task) if cls.needs_training else (None, [])
        record = self._run_record(method, run_config, stats)
        record["artifacts"] = artifacts
        if distributed.is_main():
            save_checkpoint(method, self.store.checkpoint(run_id), {"run_config": run_config.to_dict()})
            write_json(self.store.run_record(run_id), record)
            self.store.partial_checkpoint(run_id).unlink(missing_ok=True)
        distributed.barrier()
        return record

    def _train(self, method, run_config: RunConfig, task: Task | None = None):
        """Pretrain on the training split; a label-using method sees ``task``'s training
        records that carry a usable label, and their labels. Returns (stats, artifacts)."""
        from ecgbench.train import WindowDataset, pretrain

        data = self.dataset(task.dataset if task else self.request.pretrain_dataset)
        adapted = self.adapt(data, method.input_spec)
        # pretraining never sees validation or test patients, nor records of evaluated datasets
        train = data.indices("train") if task else self.pretraining.indices
        labels = None
        if task is not None:
            y, usable = task.labels(data.meta)
            train = train[usable[train]]
            labels = training_labels(task, y[train])
        w = adapted.windows.shape[1]  # windows (N, W, leads, T), gathered once below
        position = np.repeat(np.arange(len(train)), w)  # record-major, as the windows lie
        window = np.tile(np.arange(w), len(train))
        keep = adapted.valid[train].reshape(-1)  # padding windows of short records never train
        position, window = position[keep], window[keep]
        record = train[position]
        dataset = WindowDataset(
            adapted.windows.reshape(-1, *adapted.windows.shape[2:])[record * w + window],
            data.meta["patient_id"].to_numpy()[record],
            record,
            labels=None if labels is None else labels[position],
        )
        bar = self.progress.add_task(f"pretrain {run_config.run_id}", total=method.config.max_steps)
        stats = pretrain(
            method, dataset, derive_seed(run_config.seed, "pretrain"), self.device,
            self.store.partial_checkpoint(run_config.run_id),
            on_step=lambda step, loss: self.progress.update(bar, completed=step, description=f"pretrain {run_config.run_id} loss {loss:.3f}"),
            compile=self.request.compile,
        )
        self.progress.remove_task(bar)
        self.console.log(
            f"pretrained [bold]{run_config.run_id}[/]: {stats.steps} steps in {stats.seconds:.0f} s, "
            f"final loss {stats.final_loss:.4f}"
        )
        # the other torchrun ranks would only draw the same files again
        return stats, self._artifacts(method, run_config, dataset) if distributed.is_main() else []

    def _artifacts(self, method, run_config: RunConfig, dataset) -> list[str]:
        """Run the method's ``artifacts`` hook on the first training windows; paths relative
        to the run's folder."""
        import torch

        run_dir = self.store.run_dir(run_config.run_id)
        first = dataset.__getitems__(list(range(min(ARTIFACT_BATCH, len(dataset)))))
        batch = {k: v.to(self.device) for k, v in first.items()}
        method.to(self.device).eval()
        with torch.no_grad():
            paths = method.artifacts(batch, run_dir / "artifacts")
        return [str(Path(p).resolve().relative_to(run_dir.resolve())) for p in paths]

    def _run_record(self, method, run_config: RunConfig, stats) -> dict[str, Any]:
        train = dataclasses.asdict(stats) if stats else {"steps": 0, "note": "not trained (control)"}
        return {
            "run_id": run_config.run_id,
            "run_config": run_config.to_dict(),
            "method": run_config.method,
            "paper": type(method).paper,
            "parameters": sum(p.numel() for p in method.encoder.parameters()),
            "embedding_dim": method.embedding_dim,
            "device": str(self.device),
            "train": train,
            "leakage": None if type(method).uses_labels else self.pretraining.record(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **self.provenance,
        }

    def embeddings(self, method, run_config: RunConfig, task: Task) -> tuple[np.ndarray, dict]:
        data = self.dataset(task.dataset)
        spec = method.input_spec
        each = task.channels == "each"  # per-channel embeddings, concatenated (adapt_each_channel)
        path = self.store.embeddings(run_config.run_id, f"{data.name}-{data.version}-{short_hash(spec, 8)}"
                                     + ("-each" if each else ""))
        adaptation = {"dataset": f"{data.name}@{data.version}", "source_fs": data.fs}
        if path.exists():
            meta = read_json(path.with_suffix(".json"))
            return np.load(path), meta["adaptation"]
        adapted = self.adapt(data, spec, each)
        adaptation.update(adapted.description)
        bar = self.progress.add_task(f"embed {run_config.run_id} on {data.name}", total=int(adapted.valid.sum()))
        from ecgbench.embed import embed_windows

        embeddings = embed_windows(
            method, adapted.windows, self.device, self.plan.eval_settings.embed_batch_size,
            on_batch=lambda n: self.progress.advance(bar, n), valid=adapted.valid,
        )
        if each:
            embeddings = embeddings.reshape(len(data), -1)  # (N * C, D) -> (N, C * D)
        self.progress.remove_task(bar)
        write_json(path.with_suffix(".json"), {"adaptation": adaptation, "shape": list(embeddings.shape)})
        write_npy(path, embeddings)
        return embeddings, adaptation

    def _result_location(self, run_config: RunConfig, task: Task, probe: str,
                         label_fraction: float = 1.0) -> tuple[Path, str, dict]:
        settings = self.plan.eval_settings
        probe_spec = {"protocol": PROTOCOL, "probe": probe, "grid": settings.probe_grid, "bootstrap": settings.bootstrap}
        if label_fraction != 1:  # only then, so full-label keys stay what they were
            probe_spec["label_fraction"] = float(label_fraction)
        name = f"{PROTOCOL}-{probe}-{short_hash(probe_spec, 8)}"
        return self.store.result_path(run_config.run_id, task.key, name), f"{run_config.run_id}/{task.key}/{name}", probe_spec

    def not_applicable(self, run_config: RunConfig, task: Task, reason: Exception) -> list[dict]:
        """One record per probe marking the cell not applicable, with the reason, no metrics.

        Rechecked on every run (the check is cheap), so a cell that becomes applicable is
        scored then; an unchanged record is not rewritten.
        """
        cls = METHODS.get(run_config.method)
        self.console.log(f"[yellow]not applicable[/]: {run_config.method} on {task.name}: {reason}")
        results = []
        for probe in self.request.probes:
            path, key, probe_spec = self._result_location(run_config, task, probe)
            stored = read_json(path) if path.exists() else {}
            if stored.get("status") == NOT_APPLICABLE and stored.get("reason") == str(reason):
                results.append(stored)
                continue
            record = {
                "key": key, "status": NOT_APPLICABLE, "reason": str(reason), "metrics": {},
                "run_id": run_config.run_id, "method": run_config.method, "method_version": cls.version,
                "control": not cls.needs_training, "uses_labels": cls.uses_labels,
                "task": task.name, "task_key": task.key, "task_kind": task.kind,
                "main_metric": task.main_metric, "probe": probe, "protocol": PROTOCOL,
                "preset": run_config.preset, "seed": run_config.seed, "probe_spec": probe_spec,
                "run_config": run_config.to_dict(),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **self.provenance,
            }
            write_json(path, record)
            self.new_results += 1
            results.append(record)
            if self.tracker:
                self.tracker.log_child(f"{key}#{NOT_APPLICABLE}", NOT_APPLICABLE, params={
                    "task": task.key, "run_id": run_config.run_id, "probe": probe_spec, "reason": str(reason)},
                    metrics={})
        return results

    def evaluate(self, run_config, method, task: Task, probe: str, embeddings, adaptation,
                 label_fraction: float = 1.0) -> dict:
        path, key, probe_spec = self._result_location(run_config, task, probe, label_fraction)
        stored = read_json(path) if path.exists() else None
        extras = self.analysis.get((run_config.run_id, task.key), {})
        if stored is not None and stored.get("status") != NOT_APPLICABLE:
            result = stored
            if any(k not in result for k in extras):  # analysis switched on after the result
                result.update(extras)
                write_json(path, result)
        else:
            result = self._score(run_config, method, task, probe, embeddings, adaptation, probe_spec, label_fraction)
            result["key"] = key
            result.update(extras)
            from ecgbench.stats import write_predictions

            write_predictions(path.with_suffix(".npz"), **result.pop("_predictions"))
            result["predictions"] = path.with_suffix(".npz").name
            write_json(path, result)
            result = read_json(path)  # the stored form (NaN -> null), same as a resumed run sees
            self.new_results += 1
        if self.tracker:
            self.tracker.log_child(
                key, "result", params={"probe": probe_spec, "task": task.key, "run_id": run_config.run_id,
                                       "probe_params": result["probe_params"]},
                metrics={**{k: v for k, v in result["metrics"].items() if isinstance(v, (int, float))},
                         "ci_low": result["ci"]["low"], "ci_high": result["ci"]["high"]},
                artifacts=[path],
            )
        return result

    def _score(self, run_config, method, task: Task, probe: str, embeddings, adaptation, probe_spec,
               label_fraction: float = 1.0) -> dict:
        from ecgbench import metrics, probes
        from ecgbench.analysis import fraction_label, label_subset

        data = self.dataset(task.dataset)
        y, usable = task.labels(data.meta)
        split = {s: data.indices(s) for s in ("train", "val", "test")}
        split = {s: idx[usable[idx]] for s, idx in split.items()}
        patients = data.meta["patient_id"].to_numpy()
        if label_fraction != 1:  # same patients for every method and probe of a replicate
            split["train"] = label_subset(split["train"], patients[split["train"]], label_fraction,
                                          derive_seed(run_config.seed, f"label-subset/{task.key}"))
        probe_seed = derive_seed(run_config.seed, f"probe/{task.key}/{probe}")
        clock = time.perf_counter()
        fit = probes.fit_probe(
            probe, task.kind, embeddings[split["train"]], y[split["train"]],
            embeddings[split["val"]], y[split["val"]], task.main_metric, probe_seed, self.plan.eval_settings.probe_grid,
            n_classes=len(task.classes) if task.kind == "multiclass" else None,
        )
        test = split["test"]
        prediction = probes.predict(fit, embeddings[test], task.kind)
        scores = metrics.score(task.kind, y[test], prediction.y_pred, prediction.scores, task.classes)
        low, high = metrics.bootstrap_ci(
            task.kind, task.main_metric, y[test], prediction.y_pred, prediction.scores,
            data.meta["patient_id"].to_numpy()[test], self.plan.eval_settings.bootstrap,
            derive_seed(run_config.seed, f"bootstrap/{task.key}/{probe}"),
        )
        cls = type(method)
        return {
            "run_id": run_config.run_id,
            "method": run_config.method,
            "method_version": cls.version,
            "control": not cls.needs_training,
            "uses_labels": cls.uses_labels,
            "task": task.name,
            "task_key": task.key,
            "task_kind": task.kind,
            "main_metric": task.main_metric,
            "probe": probe,
            "protocol": PROTOCOL if label_fraction == 1 else f"{PROTOCOL}-{fraction_label(label_fraction)}-labels",
            "label_fraction": float(label_fraction),
            "preset": run_config.preset,
            "seed": run_config.seed,
            "probe_seed": probe_seed,
            "metrics": scores,
            "ci": {"metric": task.main_metric, "low": low, "high": high, "level": 0.95,
                   "resamples": self.plan.eval_settings.bootstrap, "unit": "patient"},
            "probe_params": fit.params,
            "val_score": fit.val_score,
            "n": {s: int(len(idx)) for s, idx in split.items()},
            "adaptation": adaptation,
            "probe_spec": probe_spec,
            "run_config": run_config.to_dict(),
            "eval_settings": dataclasses.asdict(self.plan.eval_settings),
            "timings": {"probe_seconds": round(time.perf_counter() - clock, 3),
                        "pretrain_seconds": self._pretrain_seconds(run_config.run_id)},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **self.provenance,
            "_predictions": {"test_indices": test, "patient_ids": patients[test], "y_true": y[test],
                             "y_pred": prediction.y_pred, "scores": prediction.scores},  # -> .npz
        }

    def _pretrain_seconds(self, run_id: str) -> float:
        """Pretraining time from run.json (0 for controls that are not trained)."""
        path = self.store.run_record(run_id)
        return round(float(read_json(path).get("train", {}).get("seconds", 0.0)), 3) if path.exists() else 0.0

    def analyse(self, run_config: RunConfig, task: Task, embeddings) -> None:
        """Analysis extras per (run, task) as EvalSettings switch them (ecgbench.analysis)."""
        from ecgbench.analysis import analyse

        plot_path = self.store.root / "plots" / run_config.run_id / f"{task.key}-tsne.png"
        extras, plot = analyse(self.plan.eval_settings, task, self.dataset(task.dataset), embeddings,
                               derive_seed(run_config.seed, f"analysis/{task.key}"), plot_path,
                               title=f"{run_config.run_id} on {task.key}: t-SNE of test embeddings")
        self.analysis[(run_config.run_id, task.key)] = extras
        if self.tracker and (extras or plot):
            from ecgbench.tracking import flatten

            numbers = {k: v for k, v in flatten(extras).items() if isinstance(v, (int, float))}
            self.tracker.log_child(f"{run_config.run_id}/{task.key}/analysis", "analysis",
                                   params={"task": task.key, "run_id": run_config.run_id},
                                   metrics=numbers, artifacts=[plot] if plot else [])

    # ----- tracking ---------------------------------------------------------------------------
    def _start_tracking(self) -> None:
        if not self.request.track or not distributed.is_main():
            return
        from ecgbench.tracking import Tracker

        uri = self.request.tracking_uri or self.store.default_tracking_uri
        self.store.root.mkdir(parents=True, exist_ok=True)
        self.tracker = Tracker(uri, artifact_root=self.store.root / "mlartifacts")
        request = dataclasses.asdict(self.request)
        request["results_dir"], request["data_root"] = str(request["results_dir"]), str(request["data_root"])
        self.tracker.start(
            f"ecgbench-run-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}",
            {"request": request, "eval": dataclasses.asdict(self.plan.eval_settings),
             "method_configs": {k: dataclasses.asdict(v) for k, v in self.plan.method_configs.items()}},
        )


def write_tables(store: ResultStore, results: list[dict[str, Any]], tracker=None) -> Path:
    from ecgbench.tables import render

    tasks = sorted({r["task"] for r in results})
    path = store.tables_dir / f"{'+'.join(tasks)}.md"
    text = f"# ecgbench results: {', '.join(tasks)}\n\n{render(results)}"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if tracker:
        tracker.log_artifact(path)
    return path
