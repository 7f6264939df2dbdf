"""The request (what the user asked for) and the plan (typed configs for everything that will
run), resolved before any work."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgbench.api import Task
from ecgbench.config import EVAL_PRESETS, PRESETS, ConfigError, EvalSettings, apply_overrides, split_overrides
from ecgbench.registry import METHODS, TASKS


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
