"""The request (what the user asked for) and the plan (typed configs for everything that will
run), resolved before any work."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgbench.core.config import EVAL_PRESETS, PRESETS, ConfigError, EvalSettings, apply_overrides, split_overrides
from ecgbench.core.contracts import Task
from ecgbench.core.registry import METHODS, TASKS
from ecgbench.core.store import DEFAULT_RESULTS_DIR


@dataclass
class RunRequest:
    methods: list[str]
    tasks: list[str]
    probes: list[str]
    seeds: list[int]
    preset: str = "smoke"
    results_dir: Path = Path(DEFAULT_RESULTS_DIR)  # never the committed results/
    data_root: Path | None = None
    tracking_uri: str | None = None
    device: str = "auto"
    overrides: dict[str, str] = field(default_factory=dict)
    pretrain_dataset: str | None = None  # None: the dataset the tasks evaluate (resolve)
    track: bool = True
    compile: bool = False  # torch.compile the training step on CUDA (not part of any key: same math)
    shard: tuple[int, int] = (0, 1)  # (index, count): this process runs every count-th job from index
    protocols: list[str] = field(default_factory=lambda: ["frozen-probe"])  # ecgbench.evaluation.protocols
    jobs: int | None = 1  # CPU worker processes for unfinished jobs; None: one per core (ecgbench.running.parallel)
    limit: int | None = None  # --limit: the first N patients per split of every dataset (ecgbench.data.subset)
    log_checkpoints: bool = False  # --log-checkpoints: the encoder's weights under its MLflow pretraining run
    include_paths: list[str] = field(default_factory=list)  # --include-path folders, for worker processes


@dataclass
class Plan:
    """The resolved request: typed configs for everything that will run."""

    request: RunRequest
    method_configs: dict[str, Any]
    tasks: list[Task]
    eval_settings: EvalSettings
    data_options: dict[str, str]
    protocol_settings: dict[str, Any] = field(default_factory=dict)  # protocol -> typed settings


def resolve(request: RunRequest) -> Plan:
    if request.preset not in PRESETS:
        raise ConfigError(f"unknown preset {request.preset!r}; choose one of {', '.join(PRESETS)}")
    if request.pretrain_dataset is None:  # pretraining follows the task, never synthetic by default
        from ecgbench.data.leakage import default_pretraining

        request = dataclasses.replace(request, pretrain_dataset=default_pretraining(request.tasks))
    classes = {name: METHODS.get(name) for name in request.methods}
    per_method, eval_overrides, data_options = split_overrides(
        request.overrides, request.methods, {n: c.config_fields() for n, c in classes.items()}
    )
    configs = {}
    for name, cls in classes.items():
        merged = {**cls.preset_overrides(request.preset), **per_method[name]}
        configs[name] = apply_overrides(cls.Config(), merged, name)
    _add_base_configs(configs, request.preset)
    _follow_base_layout(configs)
    from ecgbench.evaluation.protocols import check_protocols, split_protocol_overrides

    request = dataclasses.replace(request, protocols=check_protocols(request.protocols))
    eval_overrides, protocol_settings = split_protocol_overrides(eval_overrides, request.protocols)
    settings = apply_overrides(EvalSettings(**EVAL_PRESETS[request.preset]), eval_overrides, "eval")
    # a dataset option that is a task's version (the synthetic suite's) sets the task's key too
    tasks = [TASKS.get(name) for name in request.tasks]
    tasks = [task.at_data_options(data_overrides(data_options, task.dataset)) for task in tasks]
    return Plan(request, configs, tasks, settings, data_options, protocol_settings)


def data_overrides(data_options: dict[str, str], dataset: str) -> dict[str, str]:
    """The ``--set data.<dataset>.<option>`` overrides of one dataset; a plain ``data.<option>``
    is the synthetic suite's."""
    options = {}
    for key, value in data_options.items():
        name, dot, option = key.partition(".")
        if dot and name == dataset:
            options[option] = value
        elif not dot and dataset == "synthetic":
            options[key] = value
    return options


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


def _follow_base_layout(configs: dict[str, Any]) -> None:
    """A frozen-encoder variant builds its encoder as its base does: the fields its Config names
    in ``from_base`` (e.g. the layout a published checkpoint switches on) are the base's."""
    for name, config in list(configs.items()):
        base = METHODS.get(name).base_method
        names = getattr(type(config), "from_base", ())
        if base and names:
            configs[name] = dataclasses.replace(config, **{f: getattr(configs[base], f) for f in names})
