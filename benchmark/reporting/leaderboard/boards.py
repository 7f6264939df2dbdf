"""The leaderboard's boards: per group (preset, protocol, suite) and task, one entry per method
(the probe chosen on validation), its seeds' scores, and what the test split can tell apart
(:class:`ecgbench.evaluation.separation.Separation`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ecgbench.core.config import PRESETS
from ecgbench.core.contracts import HIGHER_IS_BETTER
from ecgbench.core.rows import method_of
from ecgbench.data.folds import is_fold_result
from ecgbench.reporting.layouts import (
    best_probe_on_validation,
    index_results,
    not_applicable,
)
from ecgbench.reporting.tables import method_label

if TYPE_CHECKING:
    from ecgbench.evaluation.separation import Separation

DEFAULT_PROTOCOL = "frozen-probe"

START = "<!-- leaderboard:start -->"
END = "<!-- leaderboard:end -->"
HEADING = "## Leaderboard"
SAMPLE_DIR = "real-sample"  # under the results directory: the small real-sample results
SPLITS = ("train", "val", "test")


class LeaderboardError(ValueError):
    """Bad leaderboard input (markers broken, file missing); one line for the user."""


@dataclass
class Entry:
    """One method on one task in one preset: the validation-chosen probe and its records."""

    method: str
    label: str
    probe: str
    records: list[dict[str, Any]]
    mean: float
    rank: float | None = None  # by the test mean: the listing order only, never printed as a rank

    @property
    def seeds(self) -> list[int]:
        return sorted(int(r["seed"]) for r in self.records)


@dataclass
class TaskBoard:
    task: str
    task_key: str
    metric: str
    entries: list[Entry]  # by test mean, best first
    missing: dict[str, str] = field(default_factory=dict)  # label -> "not run" / "n/a: reason"
    separation: Separation | None = None  # None when not tested
    significance_note: str = ""  # why not tested, or which methods could not be
    sizes: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # split -> (records, patients)


def rank(values: list[float], higher_is_better: bool) -> list[float]:
    """1 = best; tied values share the average of their ranks."""
    from scipy.stats import rankdata

    keys = [-v for v in values] if higher_is_better else list(values)
    return [float(r) for r in rankdata(keys, method="average")]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _label(records: list[dict[str, Any]]) -> str:
    return method_label(records[0])


def task_board(task: str, by_method: dict[str, dict[str, list[dict]]], reasons: dict[str, str],
               labels: dict[str, str], not_applicable_record: dict[str, Any] | None = None) -> TaskBoard | None:
    """Rank the methods of one task (``by_method``: method -> probe -> records per seed). A task
    on which every method that tried was not applicable (``not_applicable_record``: one of their
    records) still gets a board, empty but for the reasons."""
    entries = []
    for method, by_probe in sorted(by_method.items()):
        probe = best_probe_on_validation(by_probe)
        if probe is None:
            continue
        metric = by_probe[probe][0]["main_metric"]
        records = [r for r in by_probe[probe] if _finite(r["metrics"].get(metric))]  # null: an undefined metric
        if records:
            mean = float(np.mean([r["metrics"][metric] for r in records]))
            entries.append(Entry(method, _label(records), probe, records, mean))
    if not entries:
        if not_applicable_record is None or not reasons:
            return None
        missing = {labels[m]: f"n/a: {reasons[m]}" for m in sorted(reasons) if m in labels}
        return TaskBoard(task, not_applicable_record["task_key"], not_applicable_record["main_metric"], [], missing)
    metric = entries[0].records[0]["main_metric"]
    higher = HIGHER_IS_BETTER.get(metric, True)
    for entry, value in zip(entries, rank([e.mean for e in entries], higher)):
        entry.rank = value
    entries.sort(key=lambda e: (e.rank, e.label))
    ranked = {e.method for e in entries}
    missing = {labels[m]: (f"n/a: {reasons[m]}" if m in reasons else "not run")
               for m in sorted(labels) if m not in ranked}
    return TaskBoard(task, entries[0].records[0]["task_key"], metric, entries, missing,
                     sizes=split_sizes(entries[0].records[0]))


def split_sizes(record: dict[str, Any], results_dir: str | Path | None = None) -> dict[str, tuple[int, int | None]]:
    """split -> (records, patients) of one result: ``n`` and ``n_patients`` as stored; for a
    result written before ``n_patients`` was, the test patients come from its stored
    predictions (under ``results_dir``) when there are any, else they are unknown (None)."""
    records, patients = record.get("n") or {}, dict(record.get("n_patients") or {})
    if "test" not in patients and results_dir is not None and record.get("predictions"):
        from ecgbench.evaluation.stats import load_predictions

        try:
            patients["test"] = len(set(load_predictions(record, Path(results_dir))["patient_ids"].tolist()))
        except ValueError:  # predictions named but missing: the count stays unknown
            pass
    return {split: (int(records[split]), patients.get(split)) for split in SPLITS if split in records}


def suite(record: dict[str, Any]) -> str:
    """The collection a record's task belongs to: ``synthetic v<N>`` for the synthetic suite
    (tasks of two suite versions never share a ranking), ``real data`` for everything else."""
    dataset = str((record.get("adaptation") or {}).get("dataset") or "")
    name, _, version = dataset.partition("@")
    if name == "synthetic":
        return f"synthetic v{version.split('-')[0] or '?'}"
    if not dataset and str(record.get("task", "")).startswith("synth-"):  # a not-applicable record: no data read
        return f"synthetic v{str(record.get('task_key', '')).partition('@v')[2] or '?'}"
    return "real data"


def _suite_order(name: str) -> tuple[bool, int, str]:
    version = name.rsplit(" v", 1)[-1]
    return name == "real data", -int(version) if version.isdigit() else 0, name


def group_key(record: dict[str, Any]) -> tuple[str, str, str]:
    """(preset, protocol, suite): the results that may be ranked against each other."""
    return (str(record.get("preset", "")), str(record.get("protocol") or DEFAULT_PROTOCOL), suite(record))


def registered_methods() -> dict[str, str]:
    """Every registered method (aliases left out, as ``--methods all`` runs them) -> its label
    (``(control)``, ``(supervised)`` as its class declares)."""
    from ecgbench.core.registry import METHODS

    labels = {}
    for name in METHODS.select("all"):
        cls = METHODS.get(name)
        labels[name] = method_label({"method": name, "control": not getattr(cls, "needs_training", True),
                                     "uses_labels": getattr(cls, "uses_labels", False)})
    return labels


@dataclass
class PresetBoard:
    preset: str
    tasks: list[TaskBoard]
    n_results: int
    protocol: str = DEFAULT_PROTOCOL
    suite: str = ""
    titled: bool = False  # the heading names protocol and suite (the preset holds several groups)
    not_run: list[str] = field(default_factory=list)  # labels of registered methods with no result here

    def standing(self) -> list[tuple[str, dict[str, str], int, int]]:
        """(label, task -> "top" / "below" / "untested", tasks in the top group, tasks run) of
        every method with a score here: most tasks in the top group first, then by label. No
        mean rank: a rank difference no test supports is not a standing."""
        cells: dict[str, dict[str, str]] = defaultdict(dict)
        for board in self.tasks:
            top = set(board.separation.top_group) if board.separation and board.separation.reference else None
            for entry in board.entries:
                cells[entry.label][board.task] = ("untested" if top is None else
                                                  "top" if entry.method in top else "below")
        rows = [(label, by_task, sum(v == "top" for v in by_task.values()), len(by_task))
                for label, by_task in cells.items()]
        return sorted(rows, key=lambda row: (-row[2], -row[3], row[0]))

    def unranked(self) -> list[tuple[str, dict[str, str]]]:
        """(label, task -> why) of the methods with results or not-applicable records in this
        group but no rank on any task, then of the registered methods never run here."""
        ranked = {label for label, *_ in self.standing()}
        seen = sorted({label for board in self.tasks for label in board.missing} - ranked)
        rows = [(label, {b.task: b.missing.get(label, "not run") for b in self.tasks}) for label in seen]
        return rows + [(label, {b.task: "not run" for b in self.tasks}) for label in self.not_run]


def build(results: Iterable[dict[str, Any]], significance: Significance | None = None,
          registered: dict[str, str] | None = None, results_dir: str | Path | None = None) -> list[PresetBoard]:
    """One board per (preset, protocol, suite) that has scored results: paper first, then
    frozen-probe, then by suite (newest synthetic version first). ``registered`` (method ->
    label, e.g. :func:`registered_methods`) adds the methods without any result in a group as
    not run; ``results_dir`` (the store the results came from) lets a result written before
    ``n_patients`` was stored count its test patients from its predictions."""
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for record in results:
        # label-efficiency results are curves (ecgbench report); a fold's result is an input of its pooled one
        if _all_labels(record) and not is_fold_result(record):
            groups[group_key(record)].append(record)
    boards = []
    for (preset, protocol, name), records in groups.items():
        for board in _build_group(records, significance, protocol):
            board.suite = name
            present = {method_of(label) for t in board.tasks for label in [*(e.label for e in t.entries), *t.missing]}
            board.not_run = sorted(label for method, label in (registered or {}).items() if method not in present)
            if results_dir is not None:
                for task in board.tasks:
                    task.sizes = split_sizes(task.entries[0].records[0], results_dir) if task.entries else {}
            boards.append(board)
    presets = [p for p in reversed(PRESETS)] + sorted({b.preset for b in boards} - set(PRESETS))
    boards.sort(key=lambda b: (presets.index(b.preset), b.protocol != DEFAULT_PROTOCOL, b.protocol,
                               *_suite_order(b.suite)))
    for board in boards:
        board.titled = sum(b.preset == board.preset for b in boards) > 1
    return boards


def _all_labels(record: dict[str, Any]) -> bool:
    spec = record.get("probe_spec") or {}
    fraction = record.get("label_fraction", spec.get("label_fraction", spec.get("train_fraction", 1.0)))
    return fraction in (None, 1, 1.0)


def _build_group(results: list[dict[str, Any]], significance: Significance | None,
                 protocol: str = DEFAULT_PROTOCOL) -> list[PresetBoard]:
    """The boards of one (preset, protocol, suite) group."""
    stored = index_results(results, protocol)
    reasons: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)  # (preset, task) -> method -> why
    for (preset, method, task), reason in stored.reasons.items():
        reasons[(preset, task)][method] = reason
    grouped: dict[str, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    for (preset, method, task), by_probe in stored.cells.items():
        grouped[preset][task][method] = by_probe
        labels[preset][method] = _label(next(iter(by_probe.values())))
    about: dict[tuple[str, str], dict] = {}  # (preset, task) -> a not-applicable record of it
    for record in results:  # a not-applicable method still shows up on its preset's tasks
        if not_applicable(record) and record.get("preset") in grouped:
            labels[record["preset"]].setdefault(record["method"], method_label(record))
            about.setdefault((record["preset"], record["task"]), record)
    boards = []
    order = [p for p in reversed(PRESETS) if p in grouped] + sorted(set(grouped) - set(PRESETS))
    for preset in order:
        tasks = []
        for task in sorted(set(grouped[preset]) | {t for (p, t) in about if p == preset}):
            board = task_board(task, grouped[preset].get(task, {}), reasons[(preset, task)], labels[preset],
                               about.get((preset, task)))
            if board is None:
                continue
            if significance is not None and board.entries:
                board.separation, board.significance_note = significance(board, preset, protocol)
            tasks.append(board)
        n = sum(len(records) for (p, _, _), by_probe in stored.cells.items() if p == preset
                for records in by_probe.values())
        boards.append(PresetBoard(preset, tasks, n, protocol))
    return boards


# Where a task's separation comes from (:mod:`.significance`): (separation or None, note).
Significance = Callable[[TaskBoard, str, str], tuple["Separation | None", str]]
