"""``ecgbench data``: list the datasets, download one, prepare its fast cache, describe it.

A missing dataset or an option its functions do not take becomes one line: :class:`RunFailed`
(exit 1) for what is not on disk, :class:`ConfigError` (exit 2) for a bad option.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecgbench.core.config import ConfigError, RunFailed
from ecgbench.data.datasets import dataset_module, load_dataset
from ecgbench.data.datasets.catalog import disk_size, entry, human_size, scan


def _dataset_call(name: str, root: Path, action: str, call: Callable[[], Any]) -> Any:
    """Run a dataset function; a missing or bad dataset becomes one line."""
    try:
        return call()
    except RunFailed:
        raise
    except (FileNotFoundError, NotADirectoryError) as error:
        raise RunFailed(f"{name}: {error.filename or error}: not found under {root}; "
                        f"get it with `ecgbench data download {name} --data-root {root}`") from None
    except TypeError as error:  # an option the dataset's function does not take
        raise ConfigError(f"data {action} {name}: {error}") from None


def list_datasets(root: Path) -> str:
    """Every dataset: version, size, licence, location, present and prepared or not."""
    from tabulate import tabulate

    rows = []
    for found in scan().values():
        where = found.location(root)
        present = where.exists()
        prepared = found.prepared(root)
        size = human_size(disk_size(where)) if present else (found.size or "-")
        rows.append([found.name, found.version, size, found.license, str(where),
                     "yes" if present else "cache only" if prepared else "no",
                     f"yes ({len(prepared)})" if prepared else "no"])
    table = tabulate(rows, headers=["name", "version", "size", "licence", "location", "present", "prepared"],
                     tablefmt="github")
    return f"data root: {root}\n{table}"


def download(name: str, root: Path, options: dict[str, str]) -> str:
    found = entry(name)
    module = dataset_module(found.name)
    if not hasattr(module, "download"):
        raise ConfigError(f"{found.name} has nothing to download (it is generated or read where it is)")
    where = _dataset_call(found.name, root, "download", lambda: module.download(root, **options))
    return f"{found.name} {found.version}: downloaded and verified under {where or root}"


def prepare(name: str, root: Path, options: dict[str, str]) -> str:
    found = entry(name)
    module = dataset_module(found.name)
    prepare_dataset = getattr(module, "prepare", module.load)
    recordings = _dataset_call(found.name, root, "prepare", lambda: prepare_dataset(root, **options))
    lines = []
    if recordings is not None and hasattr(recordings, "signals"):
        lines.append(f"{found.name}: {len(recordings)} records, signals {tuple(recordings.signals.shape)} "
                     f"at {recordings.fs} Hz, version {recordings.version}")
    lines.append(f"{found.name}: prepared under {root}")
    return "\n".join(lines)


def info(name: str, root: Path, options: dict[str, str]) -> str:
    """Record and patient counts (per split, fold, class), as the dataset's ``info`` gives them."""
    found = entry(name)
    module = dataset_module(found.name)
    if hasattr(module, "info"):
        summary = _dataset_call(found.name, root, "info", lambda: module.info(root, **options))
    else:
        meta = _dataset_call(found.name, root, "info", lambda: module.load(root, **options)).meta
        summary = {"records": len(meta), "patients": int(meta["patient_id"].nunique()),
                   "splits": {str(s): int(n) for s, n in meta["split"].value_counts().sort_index().items()}}
    return "\n".join([f"{found.name} {found.version} ({found.license}) under {root}", *_info_lines(summary)])


def _info_lines(value: dict, indent: str = "") -> list[str]:
    """Nested dict -> indented lines; a dict of plain values fits on one line."""
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and any(isinstance(v, dict) for v in item.values()):
            lines.append(f"{indent}{key}:")
            lines.extend(_info_lines(item, indent + "  "))
        elif isinstance(item, dict):
            lines.append(f"{indent}{key}: " + ", ".join(f"{k} {v}" for k, v in item.items()))
        else:
            lines.append(f"{indent}{key}: {item}")
    return lines


def describe_tasks(names: list[str], root: Path) -> str:
    """``ecgbench list tasks --verbose``: per task its dataset and version, kind, classes, main
    metric, citation and, where its dataset is prepared, usable records / patients per split."""
    from ecgbench.core.contracts import HIGHER_IS_BETTER
    from ecgbench.core.registry import TASKS

    blocks = []
    for name in names:
        task = TASKS.get(name)
        found = scan().get(task.dataset)
        direction = "higher" if HIGHER_IS_BETTER.get(task.main_metric, True) else "lower"
        lines = [f"{task.key}: {task.description}",
                 f"  dataset: {task.dataset} (version {found.version if found else '?'})"
                 + (f", options {task.dataset_options}" if task.dataset_options else ""),
                 f"  kind: {task.kind}; main metric: {task.main_metric} ({direction} is better)"]
        if task.classes:
            lines.append(f"  classes: {', '.join(task.classes)}")
        lines.append(f"  n (usable records / patients): {_split_counts(task, found, root)}")
        citation = task.citation or (getattr(dataset_module(task.dataset), "CITATION", "") if found else "")
        lines.append(f"  citation: {' '.join(str(citation).split()) or 'not given'}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _split_counts(task: Any, found: Any, root: Path) -> str:
    if found is None or not (found.prepared(root) or (task.dataset == "synthetic" and found.location(root).exists())):
        return f"{task.dataset} not prepared under {root}"
    data = load_dataset(task.dataset, root, task.dataset_options)
    _, usable = task.labels(data.meta)
    parts = []
    for split in ("train", "val", "test"):
        rows = data.meta[(data.meta["split"] == split).to_numpy() & usable]
        parts.append(f"{split} {len(rows):,} / {rows['patient_id'].nunique():,}")
    return " · ".join(parts)
