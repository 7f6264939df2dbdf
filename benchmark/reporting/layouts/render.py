"""A layout rendered: the seed papers' tables with ecgbench's numbers beside the reported ones.

The rows (methods), columns (task, probe, metric) and reported values all come from
``results/reported`` (:mod:`ecgbench.reporting.reported`). Our cell for (row method, column) is
built from stored result JSON only (no recomputation):

* mean ± std over replicate seeds, and ``[low, high]`` the patient-level bootstrap 95% CI of
  the test split (bounds averaged over seeds) where the column's metric is the task's main
  metric (the only one the runner bootstraps);
* ``⚠`` when the mean differs from the reported value by more than the column's tolerance
  (a flag for a reader, not a verdict: protocols differ, see each source's ``protocol``);
* ``†`` when the result comes from a small sample of a real dataset (fewer than half the
  records of the full release), with n in a footnote;
* ``(via svc)`` where the source does not name its probe: ours then takes the probe with the
  best validation score (never the test score);
* else why it is missing: ``n/a: reason`` (a stored not-applicable record), ``not run:
  cinc2017 not prepared`` (the task's dataset is absent under the data root), ``not run: not
  registered`` (no such ecgbench method or task yet) or ``not run`` (nothing stored).

One preset per rendering (never mixed): the largest preset that has results for the layout,
or the one asked for. Per seed the newest record wins when a setting changed and a seed was
rerun under a new run id.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.config import PRESETS
from ecgbench.core.rows import label_configs, method_of, row_of
from ecgbench.data.folds import is_fold_result
from ecgbench.reporting.layouts.plan import BASELINES, PROBE_FREE, column_task, task_missing
from ecgbench.reporting.layouts.spec import PROTOCOL, Layout, LayoutError, get_layout
from ecgbench.reporting.reported import COLLAPSED, PROBES, Column, Table, Value, load_reported

OUTSIDE = "⚠"
SAMPLE = "†"
# Records in each full public release (used to tell a small real sample from the full dataset):
# PTB-XL 1.0.3 has 21,799 records; the CinC 2017 training set 8,528; UCI HAR 10,299 windows.
FULL_RECORDS = {"ptbxl": 21799, "cinc2017": 8528, "uci_har": 10299, "uci-har": 10299, "har": 10299}
SAMPLE_FRACTION = 0.5
# Reported clustering metric -> its key in a result's "clustering" (ecgbench.evaluation.analysis).
CLUSTERING_KEYS = {"dbi": "davies_bouldin", "silhouette": "silhouette", "chi": "calinski_harabasz"}
MAX_INLINE_REASON = 40  # longer not-applicable reasons become numbered notes under the table


# ----- selecting stored results --------------------------------------------------------------
def not_applicable(record: dict[str, Any]) -> bool:
    return record.get("status") == "not_applicable"


def standard(record: dict[str, Any], protocol: str = PROTOCOL) -> bool:
    """A result of ``protocol`` on all training labels (label-efficiency runs are kept apart)."""
    spec = record.get("probe_spec") or {}
    fraction = spec.get("label_fraction", spec.get("train_fraction", 1.0))
    return record.get("protocol", PROTOCOL) == protocol and fraction in (None, 1, 1.0)


def task_version(record: dict[str, Any]) -> int:
    key = record.get("task_key", "")
    try:
        return int(key.rsplit("@v", 1)[1])
    except (IndexError, ValueError):
        return 0


@dataclass
class Stored:
    """Stored results indexed for lookup: (preset, method, task) -> probe -> one record per seed
    (the newest where a seed was rerun), and (preset, method, task) -> not-applicable reason."""

    cells: dict[tuple[str, str, str], dict[str, list[dict]]]
    reasons: dict[tuple[str, str, str], str]

    def reason(self, preset: str | None, method: str, task: str) -> str | None:
        """Why (method, task) is not applicable in ``preset`` (in any preset when None)."""
        if preset is not None:
            return self.reasons.get((preset, method, task))
        return next((r for (_, m, t), r in sorted(self.reasons.items()) if (m, t) == (method, task)), None)

    def rows(self, preset: str | None, method: str, task: str) -> list[str]:
        """The rows (configs) of ``method`` on ``task``: one name unless it ran under several."""
        return sorted(m for (p, m, t) in self.cells if p == preset and t == task and method_of(m) == method)

    def presets(self, methods: Iterable[str], tasks: Iterable[str]) -> list[str]:
        methods, tasks = set(methods), set(tasks)
        found = {p for (p, m, t) in self.cells if method_of(m) in methods and t in tasks}
        return [p for p in PRESETS if p in found] + sorted(found - set(PRESETS))


def index_results(results: Iterable[dict[str, Any]], protocol: str = PROTOCOL) -> Stored:
    results = list(results)
    reasons = {(r.get("preset", ""), r["method"], r["task"]): str(r.get("reason") or "not applicable")
               for r in results if not_applicable(r)}
    scored = [r for r in results if not not_applicable(r) and standard(r, protocol) and "metrics" in r
              and not is_fold_result(r)]
    latest: dict[str, int] = {}
    for r in scored:  # compare methods on one task version: the newest present
        latest[r["task"]] = max(latest.get(r["task"], 0), task_version(r))
    comparable: dict[tuple[str, str], list[dict]] = defaultdict(list)  # one table: (preset, task)
    for r in scored:
        if task_version(r) == latest[r["task"]]:
            comparable[(r["preset"], r["task"])].append(r)
    by_seed: dict[tuple, dict] = {}
    for r in (r for records in comparable.values() for r in label_configs(records)):
        key = (r["preset"], row_of(r), r["task"], r["probe"], r["seed"])  # one config, one row
        if key not in by_seed or str(r.get("created", "")) > str(by_seed[key].get("created", "")):
            by_seed[key] = r
    cells: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for (preset, method, task, probe, _seed), record in sorted(by_seed.items(), key=lambda kv: str(kv[0])):
        cells[(preset, method, task)][probe].append(record)
    return Stored({k: dict(v) for k, v in cells.items()}, reasons)


def metric_value(record: dict[str, Any], metric: str) -> float | None:
    """A metric of one record: ``metrics[...]``, ``per_class_f1`` for ``f1_<class>``, clustering
    indices, or training hours; None when the record does not carry it."""
    metrics = record.get("metrics") or {}
    if metric.startswith("f1_"):
        value = (metrics.get("per_class_f1") or {}).get(metric[3:])
    elif metric == "hours":
        timings = record.get("timings") or {}
        seconds = timings.get("pretrain_seconds")
        value = None if seconds is None else seconds / 3600
    else:
        value = metrics.get(metric)
        if value is None:
            value = (record.get("clustering") or {}).get(CLUSTERING_KEYS.get(metric, metric))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def best_probe_on_validation(by_probe: dict[str, list[dict]]) -> str | None:
    """The probe with the best mean validation score (the task's main metric) over seeds, by the
    one rule of :mod:`ecgbench.evaluation.selection` (ties: registry order)."""
    from ecgbench.core.contracts import HIGHER_IS_BETTER
    from ecgbench.evaluation.selection import best_on_validation

    records = next((r for r in by_probe.values() if r), [])
    higher = HIGHER_IS_BETTER.get(records[0].get("main_metric"), True) if records else True
    return best_on_validation({probe: [r.get("val_score") for r in rs] for probe, rs in by_probe.items()}, higher)


def sample_size(records: list[dict[str, Any]]) -> tuple[int, int, str] | None:
    """(records used, records in the full release, dataset) when the results come from a small
    sample of a real dataset, else None."""
    for record in records:
        dataset = str((record.get("adaptation") or {}).get("dataset", "")).split("@")[0]
        full = FULL_RECORDS.get(dataset)
        n = record.get("n") or {}
        # cross-validated: every record is tested once, so the test count is the sample
        used = int(n.get("test", 0)) if record.get("cv") else sum(int(v) for v in n.values() if isinstance(v, (int, float)))
        if full and 0 < used < SAMPLE_FRACTION * full:
            return used, full, dataset
    return None


# ----- formatting ----------------------------------------------------------------------------
def fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def digits_for(metric: str, scale: str | None) -> int:
    if scale == "percent":
        return 1
    return 2 if metric in ("mae", "chi", "hours") else 3


def summary(values: list[float], lows: list[float], highs: list[float], digits: int) -> str:
    """``mean ± std [low, high]`` (std only with more than one seed, CI only where stored)."""
    text = fmt(float(np.mean(values)), digits)
    if len(values) > 1:
        text += f" ± {fmt(float(np.std(values, ddof=1)), digits)}"
    if lows and len(lows) == len(values):
        text += f" [{fmt(float(np.mean(lows)), digits)}, {fmt(float(np.mean(highs)), digits)}]"
    return text


def decimals(values: Iterable[Value]) -> int:
    """Decimals to print a reported column with: the most any of its values needs (YAML keeps
    0.30 as 0.3), at least two."""
    places = [len(repr(v).split(".")[1].rstrip("0")) if "." in repr(v) else 0
              for v in values if isinstance(v, float) and "e" not in repr(v)]
    return max([2, *places])


def reported_cell(row_value: Value, approx: bool, ci: tuple[float, float] | None, places: int) -> str:
    if row_value is None:
        return "–"
    if row_value == COLLAPSED:
        return "collapsed"
    text = f"{'~' if approx else ''}{row_value:.{places}f}"
    if ci:
        text += f" [{ci[0]:.{places}f}, {ci[1]:.{places}f}]"
    return text


@dataclass
class Notes:
    """Footnotes collected while the cells are built."""

    via: bool = False
    outside: bool = False
    samples: dict[tuple[str, int, int], set[str]] = field(default_factory=dict)  # (task, n, full) -> methods
    reasons: list[str] = field(default_factory=list)  # long not-applicable reasons, numbered in order
    seeds: set[int] = field(default_factory=set)
    pretrain: set[str] = field(default_factory=set)  # run_config.pretrain_data of the shown results


class LayoutRenderer:
    def __init__(self, layout: Layout, stored: Stored, preset: str | None, data_root: str | Path | None,
                 folder: str | Path | None = None):
        self.layout = layout
        self.stored = stored
        self.folder = folder
        self.tables = layout.reported_tables(folder)
        methods = {layout.row_run(row.method).method for t in self.tables for row in t.rows}
        tasks = {layout.task(task) for t in self.tables for task in t.tasks}
        found = stored.presets(methods, tasks)
        if preset is not None and preset not in PRESETS:
            raise LayoutError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        self.preset = preset or (found[-1] if found else None)
        self.other_presets = [p for p in found if p != self.preset]
        self.data_root = data_root
        self.notes = Notes()
        self._missing_task: dict[str, str | None] = {}
        self._registered: set[str] | None = None

    # ----- our cell ---------------------------------------------------------------------------
    def why_missing(self, method: str, task: str) -> str:
        reason = self.stored.reason(self.preset, method, task)
        if reason:
            if len(reason) <= MAX_INLINE_REASON:
                return f"n/a: {reason}"
            if reason not in self.notes.reasons:
                self.notes.reasons.append(reason)
            return f"n/a: note {self.notes.reasons.index(reason) + 1}"
        if self._registered is None:
            from ecgbench.core.registry import METHODS

            self._registered = set(METHODS.entries)
        if method not in self._registered:
            return "not run: method not registered"
        if task not in self._missing_task:
            self._missing_task[task] = task_missing(task, self.data_root)
        reason = self._missing_task[task]
        return f"not run: {reason}" if reason else "not run"

    def our_cell(self, table: Table, column: Column, method: str, reported: Value) -> str:
        task = self.layout.task(column_task(table, column)[0])
        by_probe = self.stored.cells.get((self.preset, method, task), {}) if self.preset else {}
        if not by_probe:
            configs = self.stored.rows(self.preset, method, task)
            if len(configs) > 1:  # never pooled; the layout names no config to pick
                return f"{len(configs)} configs: see `ecgbench table` ({'; '.join(configs)})"
            return self.why_missing(method, task)
        via = ""
        if column.probe:
            probe = column.probe
        elif column.metric in PROBE_FREE:
            probe = next((p for p in PROBES if p in by_probe), next(iter(by_probe)))
        else:
            probe = best_probe_on_validation(by_probe)
            via = f" (via {probe})" if probe else ""
            self.notes.via = self.notes.via or bool(probe)
        records = by_probe.get(probe, []) if probe else []
        if not records:
            return f"not run ({column.probe} probe)" if column.probe else "not run"
        records = [r for r in records if metric_value(r, column.metric) is not None]  # undefined: left out
        if not records:
            return "not computed"
        values = [metric_value(r, column.metric) for r in records]
        scale = 100.0 if column.scale == "percent" else 1.0
        values = [v * scale for v in values]
        main = all((r.get("ci") or {}).get("metric") == column.metric for r in records)
        lows = [r["ci"]["low"] * scale for r in records if main and r["ci"].get("low") is not None]
        highs = [r["ci"]["high"] * scale for r in records if main and r["ci"].get("high") is not None]
        text = summary(values, lows, highs if len(highs) == len(lows) else [], digits_for(column.metric, column.scale))
        self.notes.seeds.update(int(r["seed"]) for r in records)
        self.notes.pretrain.update(str((r.get("run_config") or {}).get("pretrain_data", "?")) for r in records)
        tolerance = self.layout.tolerance(table, column)
        # tolerances are in fraction units for bounded metrics, so compare before scaling
        if isinstance(reported, float) and tolerance and tolerance.exceeded(float(np.mean(values)) / scale,
                                                                           reported / scale):
            text += f" {OUTSIDE}"
            self.notes.outside = True
        sample = sample_size(records)
        if sample:
            text += f" {SAMPLE}"
            self.notes.samples.setdefault((task, *sample[:2]), set()).add(method)
        return text + via

    # ----- tables -----------------------------------------------------------------------------
    def section(self, table: Table) -> str:
        from tabulate import tabulate

        headers = ["method"]
        for column in table.columns:
            headers += [f"{column.id} (reported)", f"{column.id} (ours)"]
        places = {c.id: decimals(row.values[c.id] for row in table.rows) for c in table.columns}
        rows = []
        for row in table.rows:
            run = self.layout.row_run(row.method)
            line = [f"{row.label} (`{run.method}`)"]
            for column in table.columns:
                value = row.values[column.id]
                line.append(reported_cell(value, column.id in row.approx, row.ci.get(column.id), places[column.id]))
                line.append("reported only" if run.reported_only else self.our_cell(table, column, run.method, value))
            rows.append(line)
        rows += self.baseline_rows(table)
        body = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
        columns = "; ".join(f"`{c.id}` = {c.probe or 'probe not stated'} · {c.metric}"
                            f"{' (%)' if c.scale == 'percent' else ''}"
                            f"{' on ' + c.task if c.task else ''}"
                            f" ({'higher' if c.higher_is_better else 'lower'} is better)" for c in table.columns)
        notes = f"\n\n{table.notes}" if table.notes else ""
        tasks = ", ".join(self.layout.task(t) for t in table.tasks)
        return f"### {table.title}\n\nTask: {tasks}. Columns: {columns}.{notes}\n\n{body}\n"

    def baseline_rows(self, table: Table) -> list[list[str]]:
        """The classical baselines under the paper's rows: ours only, nothing reported to compare."""
        paper = {self.layout.row_run(row.method).method for row in table.rows}
        rows = []
        for baseline in (b for b in BASELINES if b not in paper):
            line = [f"classical baseline, ours, not in the paper (`{baseline}`)"]
            for column in table.columns:
                line += ["—", self.our_cell(table, column, baseline, None)]
            rows.append(line)
        return rows

    def tolerance_lines(self) -> list[str]:
        seen: dict[str, str] = {}
        for table in self.tables:
            for column in table.columns:
                tolerance = self.layout.tolerance(table, column)
                text = tolerance.describe(column.scale) if tolerance else "not compared"
                seen.setdefault(f"{column.metric}{' (%)' if column.scale == 'percent' else ''}", text)
        return [f"{metric} {text}" for metric, text in seen.items()]

    def render(self) -> str:
        sections = [self.section(table) for table in self.tables]
        sources, pretraining = {}, {}
        for source in load_reported(self.folder):
            if source.source not in {t.source for t in self.tables}:
                continue
            sources[source.source] = source.citation
            if isinstance(source.protocol.get("pretraining_data"), str):
                pretraining[source.source] = source.protocol["pretraining_data"].rstrip(".")
        lines = [f"## Layout `{self.layout.name}`: {self.layout.description}", ""]
        if self.preset:
            seeds = ", ".join(map(str, sorted(self.notes.seeds))) or "none"
            ours = ", ".join(f"`{p}`" for p in sorted(self.notes.pretrain)) or "none"
            theirs = self.layout.pretrain_source or "; ".join(pretraining.values()) or "not stated"
            lines.append(f"Ours: preset `{self.preset}`, protocol `{self.layout.protocol}`, seeds {seeds}, "
                         f"pretrained on {ours} (the source: {theirs}; `run --layout` pretrains on "
                         f"{self.layout.pretrain or 'the dataset its tasks evaluate'})."
                         + (f" Also stored for this layout: preset {', '.join(self.other_presets)} "
                            "(pass --preset to show it)." if self.other_presets else ""))
        else:
            lines.append("Ours: no stored results for this layout yet.")
        lines += ["", *sections]
        citations = " ".join(c if c.endswith(".") else c + "." for c in sources.values())
        lines.append(f"Source: {citations} Read the source's protocol "
                     "(results/reported) before comparing: pretraining data, leads, probes and splits differ.")
        lines += ["", "Ours: mean ± std over replicate seeds; [patient-level bootstrap 95% CI on the test "
                  "split, bounds averaged over seeds] where the metric is the task's main metric. "
                  "Probe hyper-parameters chosen on the validation split."]
        lines += ["", f"{OUTSIDE}: ours differs from the reported value by more than the tolerance ("
                  + "; ".join(self.tolerance_lines()) + ")."]
        if self.notes.via:
            lines += ["", "(via probe): the source does not name its probe; ours uses the probe with the "
                      "best validation score (the test split is never used to choose)."]
        for number, reason in enumerate(self.notes.reasons, 1):
            lines += ["", f"n/a note {number}: {reason}"]
        if self.notes.samples:
            samples = "; ".join(f"{task}: n = {n} records of {full:,} ({', '.join(sorted(methods))})"
                                for (task, n, full), methods in sorted(self.notes.samples.items()))
            lines += ["", f"{SAMPLE} sample-size result, from a small sample of the real dataset, not the "
                      f"full release ({samples}); its numbers are a pipeline check, not a reproduction."]
        return "\n".join(lines) + "\n"


def render_layout(name: str, results: Iterable[dict[str, Any]], preset: str | None = None,
                  data_root: str | Path | None = None, folder: str | Path | None = None) -> str:
    """The layout as markdown, from stored result records (and the reported YAML of ``folder``,
    default results/reported)."""
    layout = get_layout(name, folder)
    return LayoutRenderer(layout, index_results(results, layout.protocol), preset, data_root, folder).render()
