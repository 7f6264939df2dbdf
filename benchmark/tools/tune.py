"""``ecgbench tune``: hyper-parameter search for one method's pretraining on Ray Tune.

A trial pretrains the method with one configuration (the pretraining loop of
:mod:`ecgbench.models.train`, on the windows the runner would train on) and, at a few points during
pretraining, embeds the task's training and validation records (:mod:`ecgbench.evaluation.embedding`), fits a
fast probe on train and reports its score on validation (:func:`ecgbench.evaluation.probes.fit_probe`).
The test split never leaves the driver. Optuna's TPE proposes configurations
(:class:`~ray.tune.search.optuna.OptunaSearch`) and ASHA stops trials that fall behind at a
report point (:class:`~ray.tune.schedulers.ASHAScheduler`). The default configuration of the
preset runs as the first trial and is never stopped early, so the closing table compares two
complete runs.

Each method declares its space beside its Config (:meth:`ecgbench.models.method.Method.search_space`);
``--set`` fixes settings (and takes a searched one out of the space).

``--protocol finetune`` searches the fine-tuning protocol's settings instead
(:func:`ecgbench.evaluation.protocols.finetune.finetune_search_space`, ``eval.finetune.*``): the method is
pretrained once with its default config (the runner's pretraining stage, cached as in ``run``),
and a trial fine-tunes that encoder with its settings on the task's training records, reporting
the best validation score so far after every epoch; the test records never reach a trial.

Files, under ``<results-dir>/tune/<name>/`` (``name`` from the method, task, preset, seed and a
hash of everything that shapes the search):

* ``trials/<trial>.json``: every trial's config, reports (step, score, loss, node), status; the truth;
* ``search.json``: the summary; ``best.yaml``: the best config for ``ecgbench run --config``;
* ``search.png``: validation score per trial and the best so far;
* ``ray/``: Ray Tune's experiment (``--resume`` restores it after a kill);
  ``partial/``: partial pretraining checkpoints, so an interrupted trial resumes mid-way.

Every trial is also an MLflow child run of the invocation's run (:mod:`ecgbench.running.tracking`).
A local Ray instance sized to the machine runs the trials unless ``--ray-address`` names a
cluster; trials then read and write ``<results-dir>``, which must be on storage every node sees.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler

from ecgbench.core.config import ConfigError, RunFailed, apply_overrides, derive_seed, short_hash, split_overrides
from ecgbench.core.contracts import HIGHER_IS_BETTER, Task
from ecgbench.core.registry import METHODS, TASKS
from ecgbench.core.store import read_json, write_json

INPUT_FIELDS = ("leads", "fs", "n_samples")  # fixed: the data are adapted once, before the trials
DOMAINS = ("loguniform", "uniform", "int", "choice")
FINISHED = ("completed", "pruned")  # trial statuses that a resumed search never runs again
REPORT_KEYS = ("score", "step", "loss", "node_id", "attempt", "stopped_early")
# Ray saves the experiment's state at most this often; a trial that finished after the last
# save of a killed search is not run again (run_trial replays its record).
CHECKPOINT_PERIOD_S = "2"


@dataclass
class TuneRequest:
    method: str
    task: str
    trials: int
    preset: str = "smoke"
    seed: int = 0
    results_dir: Path = Path("results")
    data_root: Path | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    probe: str = "lr"
    protocol: str | None = None  # None: search pretraining; "finetune": the fine-tuning protocol's settings
    reports: int = 4  # validation scores per trial, evenly spaced over max_steps
    reduction_factor: float = 2.0
    ray_address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    resume: bool = False
    tracking_uri: str | None = None
    track: bool = True


@dataclass
class TrialData:
    """What every trial needs, put once into Ray's object store."""

    method: str
    base_config: Any  # what a trial's config overrides: the method's Config or the protocol's settings
    protocol: str | None
    task: Task
    pretrained: Any  # the pretrained ecgbench.models.method.Method that finetune trials start from
    uses_labels: bool
    task_kind: str
    n_outputs: int
    metric: str
    n_classes: int | None
    probe: str
    probe_grid: str
    seed: int
    milestones: tuple[int, ...]
    windows: Any  # ecgbench.models.train.WindowDataset: what pretraining sees (None for finetune)
    probe_windows: np.ndarray  # (N, W, leads, T): the task's usable train + val records
    probe_valid: np.ndarray  # (N, W)
    probe_y: np.ndarray
    probe_is_train: np.ndarray  # (N,) bool; the rest is validation
    probe_derived: dict[str, np.ndarray]  # the method's per-record derived input, if any
    folder: str


# ----- the search space --------------------------------------------------------------------
def declared_space(cls, config, fixed: set[str]) -> dict[str, tuple]:
    """The method's space minus the fields fixed by ``--set``, checked against its Config."""
    return checked_space(cls.search_space(config), cls.config_fields(), cls.name, fixed)


def checked_space(space: dict[str, tuple], fields: list[str], owner: str, fixed: set[str]) -> dict[str, tuple]:
    """``space`` minus the fields fixed by ``--set``, checked against the ``fields`` it sets."""
    space = {k: v for k, v in space.items() if k not in fixed}
    for name, spec in space.items():
        if name not in fields or name in INPUT_FIELDS:
            raise ConfigError(f"{owner} search space: {name!r} is not a searchable field")
        if spec[0] not in DOMAINS:
            raise ConfigError(f"{owner} search space: {name} has domain {spec[0]!r}; use one of {', '.join(DOMAINS)}")
    if not space:
        raise ConfigError(f"{owner}: nothing to search (every field of its space is fixed by --set)")
    return space


def covering_default(space: dict[str, tuple], default: dict[str, Any]) -> tuple[dict[str, tuple], list[str]]:
    """The space widened where the preset's default lies outside it (the default runs as a
    trial, so TPE must be able to represent it), and a note per widened field."""
    widened, notes = {}, []
    for name, spec in space.items():
        value = default[name]
        if spec[0] == "choice" and value not in spec[1]:
            spec = ("choice", (*spec[1], value))
        elif spec[0] != "choice" and not spec[1] <= value <= spec[2]:
            spec = (spec[0], min(spec[1], value), max(spec[2], value))
        if spec != space[name]:
            notes.append(f"{name}: the default {value!r} lies outside {space[name][1:]}; searched over {spec[1:]}")
        widened[name] = spec
    return widened, notes


def ray_space(space: dict[str, tuple]) -> dict[str, Any]:
    from ray import tune

    domains = {"loguniform": tune.loguniform, "uniform": tune.uniform,
               "int": lambda low, high: tune.randint(low, high + 1)}  # randint's high is exclusive
    return {name: tune.choice(list(spec[1])) if spec[0] == "choice" else domains[spec[0]](*spec[1:])
            for name, spec in space.items()}


def is_default(config: dict[str, Any], default: dict[str, Any]) -> bool:
    return all(isinstance(config.get(k), (int, float)) and math.isclose(config[k], v, rel_tol=1e-9)
               if isinstance(v, float) else config.get(k) == v for k, v in default.items())


def milestones(max_steps: int, reports: int) -> tuple[int, ...]:
    """Steps at which a trial reports its validation score: evenly spaced, the last at the end."""
    if max_steps < 1:
        raise ConfigError(f"max_steps={max_steps}: a method that is not trained has nothing to tune")
    return tuple(sorted({max(1, round(max_steps * k / reports)) for k in range(1, max(1, reports) + 1)}))


# ----- one trial (runs in a Ray worker) ----------------------------------------------------
def trial_key(trial_id: str, config: dict[str, Any]) -> str:
    """A trial's file name: its Ray id and its config (a reused id never meets another's files)."""
    return f"{trial_id}-{short_hash(config, 8)}"


def run_trial(config: dict[str, Any], data: TrialData) -> None:
    """Pretrain (or fine-tune) with ``config``, reporting the validation score at each milestone."""
    import ray
    import torch
    from ray import tune

    from ecgbench.models.train import resolve_device

    folder = Path(data.folder)
    key = trial_key(tune.get_context().get_trial_id(), config)
    record = folder / "trials" / f"{key}.json"
    stored = read_json(record) if record.exists() else {}
    if stored.get("status") in FINISHED:
        # finished before a kill that Ray's experiment state did not see: its last report
        # again, so that the trial ends where it ended (the record keeps the others)
        tune.report(stored["reports"][-1])
        return
    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    attempt = {"node_id": ray.get_runtime_context().get_node_id(), "attempt": uuid.uuid4().hex[:8]}
    partial = folder / "partial" / f"{key}.pt"
    partial.parent.mkdir(parents=True, exist_ok=True)
    trial = finetune_trial if data.protocol == "finetune" else pretrain_trial
    trial(config, data, resolve_device("auto"), partial, lambda report: tune.report({**report, **attempt}))
    partial.unlink(missing_ok=True)


def pretrain_trial(config: dict[str, Any], data: TrialData, device, partial: Path, report) -> None:
    """Pretrain with ``config``; at each milestone, the probe's validation score."""
    import torch

    from ecgbench.models.train import pretrain

    cls = METHODS.get(data.method)
    torch.manual_seed(derive_seed(data.seed, "init"))
    method = cls(apply_overrides(data.base_config, config, data.method))
    if data.uses_labels:
        method.setup_task(data.task_kind, data.n_outputs)

    def on_step(step: int, loss: float) -> None:
        if step in data.milestones:
            score = validation_score(method, data, device)
            method.train()
            report({"score": score, "step": step, "loss": loss})

    every = data.milestones[0] if len(data.milestones) > 1 else max(data.milestones)
    pretrain(method, data.windows, derive_seed(data.seed, "pretrain"), device, partial,
             on_step=on_step, checkpoint_every=every)


def finetune_trial(config: dict[str, Any], data: TrialData, device, partial: Path, report) -> None:
    """Fine-tune the pretrained encoder with ``config`` on the training records; after each
    epoch, the best validation score so far (the model early stopping keeps). A trial that
    early stopping ends before ``max_epochs`` says so in its last report."""
    from ecgbench.data.adapt import Adapted
    from ecgbench.evaluation.protocols import EvalInputs
    from ecgbench.evaluation.protocols.finetune import fit

    rows = np.arange(len(data.probe_y))
    last: dict[str, Any] = {}

    def on_epoch(log) -> None:
        last.update(score=log.best_score, step=log.epoch, loss=log.train_loss)
        report(dict(last))

    inputs = EvalInputs(
        data.task, data.probe_y, {"train": rows[data.probe_is_train], "val": rows[~data.probe_is_train]},
        patients=None, seed=derive_seed(data.seed, f"probe/{data.task.key}/finetune"),  # as run's finetune
        method=data.pretrained, windows=Adapted(data.probe_windows, {}, data.probe_valid), device=device,
        partial_checkpoint=partial, on_epoch=on_epoch)
    fit(inputs, apply_overrides(data.base_config, config, "eval.finetune"))
    if last and last["step"] < data.milestones[-1]:
        report({**last, "stopped_early": True})


def validation_score(method, data: TrialData, device) -> float:
    """Embed the probe records with the current encoder, fit the probe on train, score on val."""
    from ecgbench.evaluation import probes
    from ecgbench.evaluation.embedding import embed_windows

    embeddings = embed_windows(method, data.probe_windows, device, valid=data.probe_valid,
                               derived=data.probe_derived)
    train = data.probe_is_train
    fit = probes.fit_probe(data.probe, data.task_kind, embeddings[train], data.probe_y[train],
                           embeddings[~train], data.probe_y[~train], data.metric,
                           derive_seed(data.seed, f"tune-probe/{data.probe}"), data.probe_grid,
                           n_classes=data.n_classes)
    return float(fit.val_score)


# ----- the driver --------------------------------------------------------------------------
@dataclass
class Search:
    """A resolved request: everything checked before any data are loaded."""

    request: TuneRequest
    plan: Any  # ecgbench.running.plan.Plan
    method_class: Any
    task: Task
    space: dict[str, tuple]
    default: dict[str, Any]  # the preset's values of the searched fields
    notes: list[str]
    milestones: tuple[int, ...]
    folder: Path

    @property
    def mode(self) -> str:
        return "max" if HIGHER_IS_BETTER[self.task.main_metric] else "min"

    @property
    def prefix(self) -> str:
        """The ``--set`` prefix of the searched fields: the method's, or ``eval.<protocol>``."""
        protocol = self.request.protocol
        return f"eval.{protocol}" if protocol else self.method_class.name


def resolve_search(request: TuneRequest) -> Search:
    from ecgbench.evaluation.probes import check_probe
    from ecgbench.running.plan import RunRequest, resolve

    try:
        check_probe(request.probe)
    except ValueError as error:
        raise ConfigError(f"--probe: {error}") from None
    if request.trials < 1:
        raise ConfigError(f"--trials {request.trials}: need at least one trial")
    if request.protocol not in (None, "finetune"):
        raise ConfigError(f"--protocol {request.protocol}: only the finetune protocol's settings are searched")
    cls = METHODS.get(request.method)
    if not cls.needs_training or cls.base_method:
        raise ConfigError(f"{request.method}: nothing to tune ("
                          + ("a control that is never trained)" if not cls.needs_training
                             else f"a frozen-encoder variant; tune its base method {cls.base_method})"))
    plan = resolve(RunRequest(methods=[request.method], tasks=[request.task], probes=[request.probe],
                              seeds=[request.seed], preset=request.preset, results_dir=request.results_dir,
                              data_root=request.data_root, overrides=request.overrides, track=False,
                              protocols=[request.protocol] if request.protocol else ["frozen-probe"],
                              pretrain_dataset=TASKS.get(request.task).dataset))  # pretraining follows the task, as in run
    task = plan.tasks[0]
    if task.channels != "select":
        raise ConfigError(f"{task.name}: tune scores tasks whose leads are selected, not per-channel tasks")
    config = plan.method_configs[request.method]
    if request.protocol:
        from ecgbench.evaluation.protocols.finetune import finetune_search_space

        searched = plan.protocol_settings[request.protocol]
        prefix = f"eval.{request.protocol}."
        fixed = {key[len(prefix):] for key in request.overrides if key.startswith(prefix)}
        declared = checked_space(finetune_search_space(searched), [f.name for f in dataclasses.fields(searched)],
                                 f"eval.{request.protocol}", fixed)
        steps = tuple(range(1, searched.max_epochs + 1))  # a report per epoch
    else:
        searched = config
        fixed = set(split_overrides(request.overrides, [request.method],
                                    {request.method: cls.config_fields()})[0][request.method])
        declared = declared_space(cls, config, fixed)
        steps = milestones(config.max_steps, request.reports)
    default = {name: getattr(searched, name) for name in declared}
    space, notes = covering_default(declared, default)
    shape = {"config": dataclasses.asdict(config), "space": space, "probe": request.probe,
             "grid": plan.eval_settings.probe_grid, "reports": request.reports, "task": task.key,
             "reduction_factor": request.reduction_factor, "data": plan.data_options, "version": cls.version,
             **({"protocol": request.protocol, "settings": dataclasses.asdict(searched)} if request.protocol else {})}
    protocol = f"-{request.protocol}" if request.protocol else ""
    name = f"{request.method}-{task.name}{protocol}-{request.preset}-seed{request.seed}-{short_hash(shape, 8)}"
    folder = (Path(request.results_dir) / "tune" / name).resolve()
    return Search(request, plan, cls, task, space, default, notes, steps, folder)


def trial_data(search: Search, ctx) -> TrialData:
    """The pretraining windows (or, for a protocol search, the method pretrained once with its
    default config) and the task's train + validation records, adapted once."""
    from rich.progress import Progress

    from ecgbench.running.stages.pretrain import derived_inputs, n_outputs, pretrained, run_config, training_windows

    cls, task = search.method_class, search.task
    config = search.plan.method_configs[cls.name]
    method, windows = cls(config), None  # for its input spec only, unless pretrained below
    label_task = task if cls.uses_labels else None
    if search.request.protocol:
        with Progress(console=ctx.console, transient=True) as ctx.progress:
            method = pretrained(ctx, run_config(ctx, cls.name, search.request.seed, label_task), label_task)
        ctx.progress = None
    else:
        windows = training_windows(ctx, method, label_task)
    data = ctx.dataset(task.dataset)
    adapted = ctx.adapt(data, method.input_spec)
    y, usable = task.labels(data.meta)
    train, val = (idx[usable[idx]] for idx in (data.indices("train"), data.indices("val")))
    if not len(train) or not len(val):
        raise RunFailed(f"{task.name}: no labelled training or validation records to score trials on")
    rows = np.concatenate([train, val])
    protocol = search.request.protocol
    return TrialData(
        method=cls.name, protocol=protocol, task=task, pretrained=method if protocol else None,
        base_config=search.plan.protocol_settings[protocol] if protocol else config,
        uses_labels=cls.uses_labels, task_kind=task.kind,
        n_outputs=n_outputs(task), metric=task.main_metric,
        n_classes=len(task.classes) if task.kind == "multiclass" else None,
        probe=search.request.probe, probe_grid=search.plan.eval_settings.probe_grid,
        seed=search.request.seed, milestones=search.milestones, windows=windows,
        probe_windows=np.ascontiguousarray(adapted.windows[rows]), probe_valid=adapted.valid[rows],
        probe_y=y[rows], probe_is_train=np.arange(len(rows)) < len(train),
        probe_derived={k: v[rows] for k, v in derived_inputs(ctx, method, data).items()}, folder=str(search.folder),
    )


def run_search(request: TuneRequest, console=None) -> dict[str, Any]:
    """Resolve, run (or resume) the search, then write its summary, best config and plot."""
    from rich.console import Console

    search = resolve_search(request)
    console = console or Console(stderr=True)
    ray_dir = search.folder / "ray"
    if request.resume and not ray_dir.exists():
        raise ConfigError(f"--resume: no search to resume at {search.folder}")
    if not request.resume and ray_dir.exists():
        raise ConfigError(f"{search.folder} holds this search already; pass --resume to continue it "
                          "(or delete the folder to start over)")
    for note in search.notes:
        console.log(f"search space: {note}")
    from ecgbench.running.stages.context import RunContext

    ctx = RunContext(search.plan, console)
    data = trial_data(search, ctx)
    started_ray = _start_ray(request)
    try:
        _fit(search, data, console)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return summarise(search, console)


def _start_ray(request: TuneRequest) -> bool:
    """Connect to ``--ray-address`` or start a local instance sized to this machine; returns
    whether this process started it (and should stop it)."""
    import logging

    import ray

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", CHECKPOINT_PERIOD_S)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: the trial table is ours
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if request.ray_address:
        ray.init(address=request.ray_address, **quiet)
    else:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, **quiet)  # never a cluster found by chance
    return True


def _fit(search: Search, data: TrialData, console) -> None:
    from ray import tune

    request = search.request
    resources = {"cpu": request.cpus_per_trial, "gpu": request.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(run_trial, data=data), resources)
    ray_dir = search.folder / "ray"
    if request.resume:
        if not tune.Tuner.can_restore(str(ray_dir)):
            raise RunFailed(f"{ray_dir}: Ray's experiment state is missing or unreadable; delete the folder to start over")
        console.log(f"resuming the search in {search.folder}")
        tuner = tune.Tuner.restore(str(ray_dir), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(trainable, param_space=ray_space(search.space),
                           tune_config=_tune_config(search),
                           run_config=tune.RunConfig(name="ray", storage_path=str(search.folder), verbose=0,
                                                     callbacks=[SearchMonitor(search)]))
    tuner.fit()


def _tune_config(search: Search):
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    request = search.request
    seed = derive_seed(request.seed, "tune-search")
    # TPE's default of 10 random start-up trials would leave a short search all random.
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, request.trials // 3)))
    searcher = OptunaSearch(sampler=sampler, points_to_evaluate=[search.default])
    scheduler = DefaultSparingASHA(
        search.default, time_attr="step", max_t=search.milestones[-1], grace_period=search.milestones[0],
        reduction_factor=request.reduction_factor)
    return tune.TuneConfig(metric="score", mode=search.mode, search_alg=searcher, scheduler=scheduler,
                           num_samples=request.trials, reuse_actors=True)


class DefaultSparingASHA(ASHAScheduler):
    """ASHA that records the default configuration's scores at every rung but never stops it."""

    def __init__(self, default: dict[str, Any], **kwargs):
        super().__init__(**kwargs)
        self.default = default

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        return self.CONTINUE if is_default(trial.config, self.default) else decision


# ----- progress, records, MLflow (in the driver) ---------------------------------------------
class SearchMonitor(Callback):
    """Writes each trial's record, logs finished trials to MLflow and shows a live trial table.

    Pickled with Ray's experiment state; the console, table and tracker are made again in each
    process that runs the search (``setup``).
    """

    def __init__(self, search: Search):
        self.folder = search.folder
        self.default = search.default
        self.fields = list(search.space)
        self.max_step = search.milestones[-1]
        self.metric = search.task.main_metric
        self.invocation = {"method": search.request.method, "task": search.task.key, "protocol": search.request.protocol,
                           "preset": search.request.preset, "seed": search.request.seed,
                           "space": {k: list(map(str, v)) for k, v in search.space.items()}}
        self.tracking = (search.request.results_dir, search.request.tracking_uri) if search.request.track else None
        self._runtime: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_runtime": {}}

    # ----- Ray's hooks -------------------------------------------------------------------
    def setup(self, **info) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(stderr=True)
        live = Live(console=console, refresh_per_second=2, transient=False)
        live.start()
        tracker = None
        if self.tracking:
            from ecgbench.running.tracking import Tracker

            tracker = Tracker.for_results(*self.tracking)
            tracker.start(f"ecgbench-tune-{self.folder.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}",
                          self.invocation)
        self._runtime = {"console": console, "live": live, "tracker": tracker}

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._update(trial, status="running")
        self._redraw(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        report = {k: result[k] for k in REPORT_KEYS if k in result}
        self._update(trial, report=report)
        self._redraw(trials)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        record = self._update(trial, status="finished")
        last = record["reports"][-1] if record["reports"] else {}
        self._runtime["console"].log(f"trial {trial.trial_id} {record['status']} at step {last.get('step')}: "
                                     f"validation {self.metric} {last.get('score')}")
        self._log(record)
        self._redraw(trials)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = _first_error_line(trial)
        record = self._update(trial, status="error", error=error)
        self._runtime["console"].log(f"[red]trial {trial.trial_id} failed[/]: {error}")
        self._log(record)
        self._redraw(trials)

    def on_experiment_end(self, trials, **info) -> None:
        self._redraw(trials)
        self._runtime["live"].stop()
        self._runtime["console"].line()
        if self._runtime.get("tracker"):
            self._runtime["tracker"].finish("FINISHED")

    # ----- records ---------------------------------------------------------------------
    def _path(self, trial) -> Path:
        return self.folder / "trials" / f"{trial_key(trial.trial_id, trial.config)}.json"

    def _update(self, trial, status: str | None = None, report: dict | None = None,
                error: str | None = None) -> dict[str, Any]:
        path = self._path(trial)
        record = read_json(path) if path.exists() else {
            "trial_id": trial.trial_id, "config": dict(trial.config), "default": is_default(trial.config, self.default),
            "status": "running", "reports": [], "attempts": {}, "started": time.time()}
        if report is not None and report not in record["reports"]:  # a finished trial's replay adds none
            record["reports"].append(report)
            record["attempts"].setdefault(report["attempt"], report["node_id"])
        if status == "finished":
            status = "completed" if record["reports"] and ran_to_the_end(record["reports"][-1], self.max_step) else "pruned"
        if status and not (status == "running" and record["status"] in FINISHED):  # a replay ends as it was
            record["status"] = status
        if error:
            record["error"] = error
        write_json(path, record)
        return record

    def _log(self, record: dict[str, Any]) -> None:
        tracker = self._runtime.get("tracker")
        if not tracker:
            return
        last = record["reports"][-1] if record["reports"] else {}
        metrics = {f"val_{self.metric}": last.get("score", math.nan), "step": last.get("step", 0),
                   "loss": last.get("loss", math.nan)}
        tracker.log_child(f"tune/{self.folder.name}/{record['trial_id']}", "tune-trial",
                          params={"config": record["config"], "status": record["status"],
                                  "default": record["default"], "nodes": sorted(set(record["attempts"].values()))},
                          metrics=metrics, curve=[])

    # ----- the live table ----------------------------------------------------------------
    def _redraw(self, trials) -> None:
        live = self._runtime.get("live")
        if live:
            live.update(trial_table(trials, self.fields, self.max_step, self.metric, self.default))


def ran_to_the_end(report: dict[str, Any], max_step: int) -> bool:
    """Whether a trial's last report ends its schedule (or early stopping ended it), not ASHA."""
    return report["step"] >= max_step or bool(report.get("stopped_early"))


def _first_error_line(trial) -> str:
    path = getattr(trial, "error_file", None) or ""
    try:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
        return lines[-1][:300] if lines else "unknown error"
    except OSError:
        return f"see {path}" if path else "unknown error"


def trial_table(trials, fields: list[str], max_step: int, metric: str, default: dict[str, Any]):
    from rich.table import Table

    table = Table(title=f"trials (validation {metric})", show_lines=False)
    for column in ("trial", "status", *fields, "step", "score", "node"):
        table.add_column(column, justify="right" if column in ("step", "score") else "left")
    for trial in trials:  # in the order Ray created them
        result = trial.last_result or {}
        step = result.get("step")
        status = trial.status.lower()
        if status == "terminated":
            status = "completed" if step is not None and ran_to_the_end(result, max_step) else "pruned"
        name = trial.trial_id + (" (default)" if is_default(trial.config, default) else "")
        table.add_row(name, status, *(_short(trial.config.get(f)) for f in fields),
                      "-" if step is None else str(step),
                      "-" if result.get("score") is None else f"{result['score']:.4f}",
                      str(result.get("node_id", ""))[:8])
    return table


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ----- the summary -------------------------------------------------------------------------
def load_records(folder: Path) -> list[dict[str, Any]]:
    records = [read_json(path) for path in sorted((folder / "trials").glob("*.json"))]
    return sorted(records, key=lambda r: r["started"])


def summarise(search: Search, console) -> dict[str, Any]:
    """The closing table (best vs default), best.yaml, --set lines, search.json and search.png."""
    from tabulate import tabulate

    records = load_records(search.folder)
    higher = search.mode == "max"
    complete = [r for r in records if r["status"] == "completed" and _finite(r["reports"][-1]["score"])]
    if not complete:
        raise RunFailed(f"{search.folder}: no trial completed; see the trial records in {search.folder / 'trials'}")
    best = (max if higher else min)(complete, key=lambda r: r["reports"][-1]["score"])
    default = next((r for r in records if r["default"]), None)
    counts = {s: sum(r["status"] == s for r in records) for s in ("completed", "pruned", "error", "running")}
    best_yaml = write_best(search, best)
    rows = []
    for label, record in (("default", default), ("best", best)):
        if record is None:
            rows.append([label, "-", "-", "not run", *("-" for _ in search.space)])
            continue
        last = record["reports"][-1] if record["reports"] else {}
        rows.append([label, record["trial_id"], last.get("step", "-"),
                     "-" if "score" not in last else f"{last['score']:.4f}",
                     *(_short(record["config"][f]) for f in search.space)])
    headers = ["config", "trial", "step", f"val {search.task.main_metric}", *search.space]
    table = tabulate(rows, headers=headers, tablefmt="github")
    summary = {
        "method": search.method_class.name, "task": search.task.key, "protocol": search.request.protocol,
        "preset": search.request.preset, "seed": search.request.seed,
        "metric": search.task.main_metric, "mode": search.mode, "split": "val",
        "probe": None if search.request.protocol else search.request.probe,
        "space": {k: list(v[1]) if v[0] == "choice" else list(v) for k, v in search.space.items()},
        "space_notes": search.notes, "milestones": list(search.milestones), "counts": counts,
        "best": best, "default": default, "best_config": str(best_yaml),
        "set_lines": set_lines(search.prefix, best["config"]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(search.folder / "search.json", summary)
    plot = plot_search(records, search, search.folder / "search.png")
    print(table)
    print("\nbest configuration as --set lines:")
    for line in summary["set_lines"]:
        print(f"  --set {line}")
    console.log(f"{len(records)} trials: {counts['completed']} completed, {counts['pruned']} pruned by ASHA, "
                f"{counts['error']} failed; best config {best_yaml}; plot {plot}")
    return summary


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def set_lines(prefix: str, config: dict[str, Any]) -> list[str]:
    return [f"{prefix}.{name}={_plain_value(value)}" for name, value in sorted(config.items())]


def _plain_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return repr(value) if isinstance(value, float) else str(value)


def write_best(search: Search, best: dict[str, Any]) -> Path:
    """best.yaml: ``--set`` style keys that ``ecgbench run --config`` reads."""
    import yaml

    from ecgbench.core.store import atomic_write

    method, request = search.method_class.name, search.request
    score = best["reports"][-1]["score"]
    protocols = f" --protocols {request.protocol}" if request.protocol else ""
    header = (f"# ecgbench tune: best of {search.folder.name} (trial {best['trial_id']}, "
              f"validation {search.task.main_metric} {score:.4f})\n"
              f"# use: ecgbench run --methods {method}{protocols} --preset {request.preset} --config <this file>\n")
    body = yaml.safe_dump({f"{search.prefix}.{k}": _plain_value(v) for k, v in sorted(best["config"].items())},
                          sort_keys=True)
    path = search.folder / "best.yaml"
    atomic_write(path, lambda tmp: tmp.write_text(header + body, encoding="utf-8"))
    return path


def plot_search(records: list[dict[str, Any]], search: Search, path: Path) -> Path:
    """Validation score of each trial at its last report (pruned ones marked), and the best
    completed score so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from ecgbench.core.store import atomic_write

    better = max if search.mode == "max" else min
    figure, axis = plt.subplots(figsize=(7, 4))
    best, best_so_far = None, []
    styles = {"completed": ("o", "tab:blue"), "pruned": ("x", "tab:gray"), "error": ("s", "tab:red"),
              "running": ("^", "tab:orange")}  # pruned / running: the score at the last report
    for index, record in enumerate(records):
        last = record["reports"][-1] if record["reports"] else None
        if last is not None and _finite(last["score"]):
            marker, colour = styles[record["status"]]
            axis.scatter(index, last["score"], marker=marker, color=colour,
                         label=record["status"] if record["status"] not in axis.get_legend_handles_labels()[1] else None)
            if record["default"]:
                axis.annotate("default", (index, last["score"]), textcoords="offset points", xytext=(4, 4))
            if record["status"] == "completed":
                best = last["score"] if best is None else better(best, last["score"])
        best_so_far.append(np.nan if best is None else best)
    axis.step(range(len(records)), best_so_far, where="post", color="tab:green", label="best completed so far")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("trial (in start order)")
    axis.set_ylabel(f"validation {search.task.main_metric}")
    searched = f"{search.request.protocol} of {search.method_class.name}" if search.request.protocol else search.method_class.name
    axis.set_title(f"{searched} on {search.task.name} ({search.request.preset}): "
                   f"{len(records)} trials")
    axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    plt.close(figure)
    return path
