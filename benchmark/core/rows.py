"""One config, one row: results are pooled over seeds only within one resolved config.

A result's *resolved config* is everything that was chosen for it except the replicate seed:
the method, its version and settings, the preset, the pretraining data, a label-using method's
task, the protocol and probe settings (grid, head) and the label fraction
(:func:`resolved_config`). Seed-specific fields (the seed, a per-seed base run) are left out.

Tables, the leaderboard, the report, the audit and the significance tests group results by
:func:`row_of`. :func:`label_configs` names the rows of one comparison (one table): a method with
one config keeps its name; a method run under several configs gets one row per config, labelled
by the settings that differ, for example ``simclr (temperature=0.2)`` beside ``simclr
(temperature=0.5)``. So seeds of two configs are never averaged as if they were replicates.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ecgbench.core.config import flatten

SEED_SPECIFIC = frozenset({"seed", "base_run_id"})  # run_config fields that vary with the seed
PROBE_INDEPENDENT = frozenset({"probe", "bootstrap"})  # the probe is chosen per row; CI resamples
FRACTION = frozenset({"label_fraction", "probe.label_fraction"})  # the x-axis of a label-efficiency curve


def resolved_config(record: dict[str, Any]) -> dict[str, Any]:
    """The settings that make a result's row, without seed-specific fields (module docstring)."""
    run = {k: v for k, v in (record.get("run_config") or {}).items() if k not in SEED_SPECIFIC}
    run.setdefault("method", record.get("method"))
    run.setdefault("preset", record.get("preset"))
    if "method_version" in record:
        run.setdefault("method_version", record["method_version"])
    spec = {k: v for k, v in (record.get("probe_spec") or {}).items() if k not in PROBE_INDEPENDENT}
    spec.setdefault("protocol", record.get("protocol"))
    fraction = record.get("label_fraction", 1.0)
    return {**run, **{f"probe.{k}": v for k, v in spec.items()}, "label_fraction": 1.0 if fraction is None else fraction}


def config_key(record: dict[str, Any], ignore: frozenset[str] = frozenset()) -> str:
    config = {k: v for k, v in resolved_config(record).items() if k not in ignore}
    return json.dumps(config, sort_keys=True, default=str)


def row_of(record: dict[str, Any]) -> str:
    """The row a record belongs to: its :func:`label_configs` name, else its method."""
    return record.get("row") or record["method"]


def method_of(row: str) -> str:
    """The method of a row name (``simclr (temperature=0.2)`` -> ``simclr``)."""
    return row.split(" (", 1)[0]


def label_configs(records: Iterable[dict[str, Any]], ignore: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The records, each with ``row`` set: its method when the method has one config among
    ``records``, else the method and the settings in which its configs differ. A record that
    already has a row (named by an earlier, wider comparison) keeps it. ``ignore``: settings that
    vary within one row (e.g. :data:`FRACTION` along a label-efficiency curve)."""
    records = list(records)
    configs: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # method -> key -> config
    for record in records:
        if not record.get("row"):
            config = {k: v for k, v in resolved_config(record).items() if k not in ignore}
            configs[record["method"]][config_key(record, ignore)] = config
    names = {}
    for method, by_key in configs.items():
        if len(by_key) == 1:
            names.update({(method, key): method for key in by_key})
            continue
        flat = {key: flatten(config) for key, config in by_key.items()}
        differing = sorted({k for f in flat.values() for k in f if len({_text(g.get(k)) for g in flat.values()}) > 1})
        for key, settings in flat.items():
            shown = ", ".join(f"{_short_name(k, differing)}={_text(settings.get(k))}" for k in differing)
            names[(method, key)] = f"{method} ({shown})"
    return [r if r.get("row") else {**r, "row": names[(r["method"], config_key(r, ignore))]} for r in records]


def _short_name(key: str, keys: list[str]) -> str:
    """The last part of a dotted setting (``method_config.temperature`` -> ``temperature``),
    unless two differing settings share it."""
    leaf = key.rsplit(".", 1)[-1]
    return leaf if sum(k.rsplit(".", 1)[-1] == leaf for k in keys) == 1 else key


def _text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return str(value)
