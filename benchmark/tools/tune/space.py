"""The search space of ``ecgbench tune``: what a method (or the fine-tuning protocol) declares,
checked against the fields it sets, minus what ``--set`` fixes, widened to cover the preset's
default, and turned into Ray Tune's domains; and the steps at which a trial reports.
"""

from __future__ import annotations

import math
from typing import Any

from ecgbench.core.config import ConfigError

INPUT_FIELDS = ("leads", "fs", "n_samples")  # fixed: the data are adapted once, before the trials
DOMAINS = ("loguniform", "uniform", "int", "choice")


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
