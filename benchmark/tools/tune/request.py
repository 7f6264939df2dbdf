"""An ``ecgbench tune`` request (:class:`TuneRequest`) resolved into a :class:`Search`: the run plan,
the method, the task, the checked space and the search's folder, all checked before any data
are loaded (:func:`resolve_search`); and the data every trial needs, loaded and adapted once in
the driver (:func:`trial_data`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.config import ConfigError, RunFailed, short_hash, split_overrides
from ecgbench.core.contracts import HIGHER_IS_BETTER, Task
from ecgbench.core.registry import METHODS, TASKS
from ecgbench.core.store import DEFAULT_RESULTS_DIR
from ecgbench.tools.tune.space import checked_space, covering_default, declared_space, milestones
from ecgbench.tools.tune.trial import TrialData


@dataclass
class TuneRequest:
    method: str
    task: str
    trials: int
    preset: str = "smoke"
    seed: int = 0
    results_dir: Path = Path(DEFAULT_RESULTS_DIR)  # never the committed results/
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
                              # pretraining follows the task, as in run
                              pretrain_dataset=TASKS.get(request.task).dataset))
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
