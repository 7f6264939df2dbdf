"""Paper layouts: the seed papers' tables re-laid with ecgbench's numbers beside the reported ones.

A layout names one or more tables of ``results/reported/*.yaml`` (:mod:`ecgbench.reporting.reported`); the
rows (methods), columns (task, probe, metric) and reported values all come from the YAML, never
from this file. What a layout adds is the tolerance for flagging a difference, and the plan of
what ``ecgbench run --layout NAME`` must run to fill it.

Our cell for (row method, column) is built from stored result JSON only (no recomputation):

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
from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.reporting.reported import COLLAPSED, PROBES, Column, Table, Value, load_reported

PROTOCOL = "frozen-probe"
OUTSIDE = "⚠"
SAMPLE = "†"
# Metrics a result carries independently of the probe (computed on embeddings or on training).
PROBE_FREE = ("dbi", "silhouette", "chi", "hours")
# The probe planned for a layout whose columns need no probe: the cheapest to fit.
PROBE_FOR_PROBE_FREE = "lr"
# Records in each full public release (used to tell a small real sample from the full dataset):
# PTB-XL 1.0.3 has 21,799 records; the CinC 2017 training set 8,528; UCI HAR 10,299 windows.
FULL_RECORDS = {"ptbxl": 21799, "cinc2017": 8528, "uci_har": 10299, "uci-har": 10299, "har": 10299}
SAMPLE_FRACTION = 0.5
# Reported clustering metric -> its key in a result's "clustering" (ecgbench.evaluation.analysis).
CLUSTERING_KEYS = {"dbi": "davies_bouldin", "silhouette": "silhouette", "chi": "calinski_harabasz"}
MAX_INLINE_REASON = 40  # longer not-applicable reasons become numbered notes under the table


class LayoutError(ValueError):
    """Unknown layout or bad layout request; one line for the user."""


# ----- tolerances ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """How far ours may be from the reported value before it is flagged: ``amount`` absolute
    (in the column's printed unit), or a fraction of the reported value when ``relative``."""

    amount: float
    relative: bool = False

    def exceeded(self, ours: float, reported: float) -> bool:
        allowed = self.amount * abs(reported) if self.relative else self.amount
        return abs(ours - reported) > allowed + 1e-12

    def describe(self, scale: str | None = None) -> str:
        if self.relative:
            return f"±{self.amount:.0%} of the reported value"
        amount = self.amount * 100 if scale == "percent" else self.amount
        unit = " points" if scale == "percent" else ""
        return f"±{amount:g}{unit} absolute"


# Defaults per metric, in fraction units for bounded metrics (scaled for percent columns).
# 0.05 on accuracy/F1/AUROC is a chosen threshold, not a derived one: a gap that large is worth
# a reader's look (protocols differ between papers and us; see each layout's header). MAE in years, R2 absolute,
# clustering indices relative (their scale depends on the embedding dimension). Training hours
# are never compared (hardware differs), so they have no tolerance.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "accuracy": Tolerance(0.05),
    "macro_f1": Tolerance(0.05),
    "macro_auroc": Tolerance(0.05),
    "f1_class": Tolerance(0.05),
    "mae": Tolerance(1.0),
    "r2": Tolerance(0.10),
    "dbi": Tolerance(0.25, relative=True),
    "silhouette": Tolerance(0.05),
    "chi": Tolerance(0.25, relative=True),
}


# ----- layouts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowRun:
    """How ecgbench runs one row of a source's table: the registered method that stands for it
    (when it is not the YAML row's own), or why the row is the source's number only."""

    method: str | None = None
    reading: str = ""  # the reading taken where the source is silent about this row
    reported_only: str = ""  # non-empty: nothing of ours reproduces the row, and why


@dataclass(frozen=True)
class Layout:
    name: str
    tables: tuple[str, ...]  # reported table ids, rendered in this order
    description: str
    tolerances: dict[str, Tolerance] = field(default_factory=dict)  # per metric, over the defaults
    column_tolerances: dict[str, Tolerance] = field(default_factory=dict)  # per "table.column" id
    settings: tuple[str, ...] = ()  # --set assignments the run needs (before the user's own)
    # The protocol of the source. ``pretrain``: the corpus every self-supervised row pretrains on
    # (None: the dataset its tasks evaluate); ``pretrain_source``: where the source says so, or
    # the assumption we made; ``tasks``: the source's task variant per YAML task; ``rows``: per
    # YAML row method; ``readings``: what we read where the source is silent.
    pretrain: str | None = None
    pretrain_source: str = ""
    tasks: dict[str, str] = field(default_factory=dict)
    rows: dict[str, RowRun] = field(default_factory=dict)
    readings: tuple[str, ...] = ()
    protocol: str = PROTOCOL  # the evaluation protocol the source used (ecgbench.evaluation.protocols)

    def row_run(self, method: str) -> RowRun:
        """The row's protocol, its method filled in."""
        run = self.rows.get(method, RowRun())
        return RowRun(run.method or method, run.reading, run.reported_only)

    def task(self, task: str) -> str:
        return self.tasks.get(task, task)

    def tolerance(self, table: Table, column: Column) -> Tolerance | None:
        if f"{table.id}.{column.id}" in self.column_tolerances:
            return self.column_tolerances[f"{table.id}.{column.id}"]
        key = "f1_class" if column.metric.startswith("f1_") else column.metric
        return self.tolerances.get(key, DEFAULT_TOLERANCES.get(key))

    def reported_tables(self, folder: str | Path | None = None) -> list[Table]:
        tables = {t.id: t for s in load_reported(folder) for t in s.tables}
        missing = [t for t in self.tables if t not in tables]
        if missing:
            raise LayoutError(f"layout {self.name}: no reported table {', '.join(missing)} in results/reported")
        return [tables[table_id] for table_id in self.tables]


# NERULA (seed 002) ran every method on lead II of PhysioNet/CinC 2020 (Section 5.1), Adam at
# 1e-4 (Section 5.2); its competitors' lead-II variants are in methods/nerula_comparisons.py.
NERULA = dict(
    pretrain="cinc2020",
    pretrain_source="seed 002 (NERULA) Section 5.1: PhysioNet/CinC 2020, lead II only",
    tasks={"cinc2017-af": "cinc2017-af3"},
    readings=("NERULA's input rate and window are not stated: 500 Hz x 10 s (the LocalLead code's rate, "
              "methods/nerula.py)",),
)
NERULA_CINC2017 = dict(NERULA, readings=(
    *NERULA["readings"],
    "three CinC 2017 classes read as N, A, O with the noisy recordings left out (tasks/cinc2017.py says why)",
    "CinC 2017 split: our dataset-level split; NERULA's preset train/validation split puts its 300 validation "
    "records in training too (data.cinc2017.split=preset reproduces it, with a warning)",
))
NERULA_ROWS = {
    "byol": RowRun("nerula-ladder-byol", "BYOL on a 1-D ResNet, lead II: Table 2's first rung, the same numbers"),
    "simclr": RowRun("simclr-lead2", "SimCLR on lead II at NERULA's input; lead masking off (one lead)"),
    "clocs": RowRun("clocs-cmsc", "CLOCS's CMSC version, the one NERULA names (Section 5.2)"),
    "ti-mae": RowRun("ti-mae", "Ti-MAE on lead II at 100 Hz x 10 s (NERULA gives no rate for it)"),
    "supervised-resnet": RowRun("supervised-resnet50", "the 1D ResNet-50 of Table 3's caption"),
}
SEED_003 = ("seed 003 (embedding-enhancements report): ST-MEM and ECG-JEPA pretrain on Shaoxing "
            "(Chapman + Ningbo), 45,152 records, 12 leads, 500 Hz, 10 s")

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("nerula-table1", ("nerula-table1",), "NERULA Table 1: SSL methods on a ResNet encoder, CinC 2017, F1",
               rows={"byol": NERULA_ROWS["byol"],
                     "clocs": RowRun("nerula-resnet-clocs", "Table 1: ResNet encoder, non-contrastive loss, "
                                     "CLOCS's adjacent non-overlapping segments as the positive pair")},
               **NERULA_CINC2017),
        Layout("nerula-ladder", ("nerula-table2",), "NERULA Table 2: the ablation ladder from BYOL to NERULA, CinC 2017",
               **NERULA_CINC2017),
        Layout("nerula-table3", ("nerula-table3",), "NERULA Table 3: CinC 2017, linear evaluation",
               rows=NERULA_ROWS, **NERULA_CINC2017),
        Layout("nerula-table4", ("nerula-table4",), "NERULA Table 4: PTB-XL sex classification",
               rows=NERULA_ROWS, **NERULA),
        Layout("nerula-table5", ("nerula-table5",), "NERULA Table 5: PTB-XL age regression",
               rows=NERULA_ROWS, **NERULA),
        Layout("nerula-table6", ("nerula-table6",), "NERULA Table 6: UCI HAR activity recognition",
               rows=NERULA_ROWS, **NERULA),
        Layout("dualview-table1", ("dual-view-table",), "Dual-view transformer report: PTB-XL single-label superclass",
               pretrain="ptbxl", pretrain_source="seed 001 (dual-view report): PTB-XL, 12 leads (\"evaluated ... on "
               "PTB-XL\"; its training split, folds 1-8)",
               readings=("sampling rate and window not stated: 100 Hz x 10 s, the full PTB-XL record "
                         "(\"keep full signal length\")", "\"linear probing\" read as the lr probe")),
        Layout("embeddings-classification", ("embedding-ecg-jepa", "embedding-st-mem-probes"),
               "Embedding-enhancements report: ECG-JEPA and ST-MEM variants, PTB-XL superclasses",
               pretrain="chapman", pretrain_source=SEED_003,
               readings=("ECG-JEPA's probe not stated: every probe, the best on validation shown",
                         "\"5 superclasses\" read as the multilabel task")),
        Layout("embeddings-clustering", ("embedding-st-mem-clustering",),
               "Embedding-enhancements report: clustering quality of ST-MEM embeddings",
               settings=("eval.clustering=true",), pretrain="chapman", pretrain_source=SEED_003,
               readings=("clustering labels not stated: the runner's clustering of the test embeddings",)),
        Layout("residual-table1", ("residual-table",), "Residual-connections report: DREAMER arousal / valence",
               pretrain="dreamer", pretrain_source="assumed: seed 000 names no dataset; its tables are DREAMER "
               "arousal/valence, and seed 004 (the same transformation-recognition network) pretrains on DREAMER",
               protocol="head",
               readings=("scored with seed 004's head on the frozen encoder (two dense layers of 64 sigmoid "
                         "units, dropout, L2): protocol head", "DREAMER's 256 Hz and 2,560-sample windows: seed 004's")),
        Layout("ptbxl-anchors", ("ptbxl-benchmark-superdiagnostic", "ecg-fm-benchmark-ptbxl-superdiagnostic"),
               "Context anchors: PTB-XL superdiagnostic macro AUROC (supervised benchmark, FM linear probes)",
               pretrain="chapman",
               pretrain_source="the FM benchmark probes the authors' public checkpoints (both include Chapman-"
               "Shaoxing); ours pretrain on Chapman-Shaoxing as seed 003",
               rows={"supervised-resnet1d-wang": RowRun(reported_only="end-to-end supervised benchmark model, "
                                                        "a context anchor: no frozen-encoder method stands for it"),
                     "supervised-xresnet1d101": RowRun(reported_only="end-to-end supervised benchmark model, "
                                                       "a context anchor: no frozen-encoder method stands for it")}),
    )
}


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        from ecgbench.core.registry import did_you_mean

        raise LayoutError(f"unknown layout {name!r}.{did_you_mean(name, list(LAYOUTS))} "
                          "Run 'ecgbench table --layout list' to see them all.")
    return LAYOUTS[name]


def list_layouts(folder: str | Path | None = None) -> str:
    """One line per layout: name and description (and any reported table it misses)."""
    known = {t.id for s in load_reported(folder) for t in s.tables}
    width = max(len(name) for name in LAYOUTS)
    lines = []
    for layout in LAYOUTS.values():
        missing = [t for t in layout.tables if t not in known]
        note = f"  (missing reported table {', '.join(missing)})" if missing else ""
        lines.append(f"{layout.name:<{width}}  {layout.description}{note}")
    return "\n".join(lines)


# ----- what a layout needs -------------------------------------------------------------------
def column_task(table: Table, column: Column) -> list[str]:
    return [column.task] if column.task else list(table.tasks)


def column_probes(column: Column) -> list[str]:
    """Probes whose results fill the column: the named one; every probe where the source does
    not name it (ours takes the best on validation); one cheap probe for probe-free metrics."""
    if column.probe:
        return [column.probe]
    return [PROBE_FOR_PROBE_FREE] if column.metric in PROBE_FREE else list(PROBES)


@dataclass
class LayoutJob:
    """One rectangular grid for the runner: every method x task x probe here is needed, the
    self-supervised ones pretrained on ``pretrain``."""

    methods: list[str]
    tasks: list[str]
    probes: list[str]
    pretrain: str | None = None


@dataclass
class LayoutPlan:
    layout: str
    jobs: list[LayoutJob]
    skipped: list[str]  # one line each: what is left out and why
    settings: list[str] = field(default_factory=list)  # --set assignments the layout needs
    protocol: str = PROTOCOL  # the evaluation protocol of every job (its probes: frozen-probe only)


def pretraining_corpus(layout: Layout, tasks: list[str]) -> str:
    """The layout's corpus, else the one dataset its tasks evaluate."""
    if layout.pretrain:
        return layout.pretrain
    from ecgbench.data.leakage import default_pretraining

    return default_pretraining(tasks)


def plan_layout(name: str, data_root: str | Path | None = None, folder: str | Path | None = None) -> LayoutPlan:
    """Exactly the methods, tasks and probes the layout's tables need, one job per table (merged
    where two tables need the same corpus, tasks and probes); reported-only rows, unregistered
    methods or tasks and tasks whose dataset is not prepared are listed in ``skipped``, not
    raised. Methods and tasks are the layout's (:class:`RowRun`, ``Layout.tasks``)."""
    from ecgbench.core.registry import METHODS

    layout = get_layout(name)
    skipped: list[str] = []
    jobs: dict[tuple, LayoutJob] = {}
    for table in layout.reported_tables(folder):
        methods = []
        for row in table.rows:
            run = layout.row_run(row.method)
            if run.reported_only:
                _add(skipped, f"{table.id}: {row.label} is reported only ({run.reported_only})")
            elif run.method not in METHODS.entries:
                _add(skipped, f"{table.id}: method {run.method} not registered")
            else:
                methods.append(run.method)
        tasks, probes = [], []
        for column in table.columns:
            for task in column_task(table, column):
                task = layout.task(task)
                reason = task_missing(task, data_root)
                if reason:
                    _add(skipped, f"{table.id}: {reason}")
                elif task not in tasks:
                    tasks.append(task)
            probes += [p for p in column_probes(column) if p not in probes]
        if not methods or not tasks:
            continue
        probes = [p for p in PROBES if p in probes] if layout.protocol == PROTOCOL else []
        corpus = pretraining_corpus(layout, tasks)
        reason = dataset_missing(corpus, data_root)
        if reason and any(not METHODS.get(m).uses_labels for m in methods):
            _add(skipped, f"{table.id}: pretraining corpus {reason}")
            methods = [m for m in methods if METHODS.get(m).uses_labels]
            if not methods:
                continue
        job = jobs.setdefault((corpus, tuple(tasks), tuple(probes)), LayoutJob([], tasks, probes, corpus))
        job.methods += [m for m in methods if m not in job.methods]
    return LayoutPlan(name, list(jobs.values()), skipped, list(layout.settings), layout.protocol)


# ----- the protocol plan (``run --layout NAME --dry-run``) -----------------------------------
# Leads (or channels) of every dataset, to check before any loading that a row's encoder can
# read its task and its corpus (tests keep these equal to the loaders' constants).
DATASET_LEADS: dict[str, tuple[str, ...]] = {
    **{name: STANDARD_LEADS for name in ("ptbxl", "cinc2020", "cinc2021", "chapman", "synthetic")},
    "cinc2017": ("I",),
    "dreamer": ("ECG1", "ECG2"),
    "uci_har": ("body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z",
                "total_acc_x", "total_acc_y", "total_acc_z"),
}


@dataclass
class PlanRow:
    """One row of a layout's plan: what runs it, on what, and whether it can."""

    table: str
    label: str
    method: str
    pretrain: str  # corpus, "task labels (train split)" or "-" (reported only / control)
    leads: str
    fs: str
    window: str
    task: str
    probes: str
    problem: str = ""  # why the row cannot run here because of our configuration; "" when it can
    note: str = ""  # reading taken, reported-only reason


def lead_problem(leads: tuple[str, ...], dataset: str, each_channel: bool = False, corpus: bool = False) -> str:
    """Why an encoder on ``leads`` cannot read ``dataset`` (as the adapter would refuse), or "".
    A single-lead encoder reads a single-lead dataset's one lead, and pretrains on every channel
    of a corpus that lacks its lead (``stages.pretrain.each_channel``)."""
    have = DATASET_LEADS.get(dataset)
    if have is None:
        return f"leads of {dataset} unknown"
    if each_channel:
        return "" if len(leads) == 1 else f"{dataset}'s channels are embedded one at a time; the encoder takes {len(leads)} leads"
    if len(leads) == 1 and (len(have) == 1 or (corpus and leads[0] not in have)):
        return ""
    missing = [lead for lead in leads if lead not in have]
    return f"needs leads {','.join(missing)} that {dataset} lacks" if missing else ""


def label_problem(cls, task) -> str:
    """Why a label-using method cannot learn ``task``'s labels (its ``setup_task`` refuses the
    task's kind, checked on the smoke-size method), or ""."""
    from ecgbench.core.config import apply_overrides
    from ecgbench.core.contracts import NotApplicable

    method = cls(apply_overrides(cls.Config(), cls.preset_overrides("smoke"), cls.name))
    try:
        method.setup_task(task.kind, max(1, len(task.classes)))
    except NotApplicable as reason:
        return str(reason)
    return ""


def plan_rows(name: str, preset: str = "smoke", folder: str | Path | None = None) -> list[PlanRow]:
    """Every row of every table of the layout, with its method's input at ``preset`` and the
    check that it can run on its task and pretrain on its corpus."""
    from ecgbench.core.config import apply_overrides
    from ecgbench.core.registry import METHODS, TASKS

    layout = get_layout(name)
    rows = []
    for table in layout.reported_tables(folder):
        tasks = [layout.task(t) for t in table.tasks]
        probes = [p for p in PROBES if any(p in column_probes(c) for c in table.columns)]
        if layout.protocol != PROTOCOL:
            probes = [f"{layout.protocol} (protocol)"]
        corpus = pretraining_corpus(layout, tasks)
        for row in table.rows:
            run = layout.row_run(row.method)
            line = PlanRow(table.id, row.label, run.method, "-", "-", "-", "-", ", ".join(tasks),
                           ", ".join(probes), note=run.reading)
            if run.reported_only:
                line.method, line.probes, line.note = "-", "-", f"reported only: {run.reported_only}"
                rows.append(line)
                continue
            problems = [f"task {t} not registered" for t in tasks if t not in TASKS.entries]
            if run.method not in METHODS.entries:
                line.problem = "; ".join([f"method {run.method} not registered", *problems])
                rows.append(line)
                continue
            cls = METHODS.get(run.method)
            config = apply_overrides(cls.Config(), cls.preset_overrides(preset), run.method)
            leads = tuple(config.leads)
            line.leads = ",".join(leads) if len(leads) < 12 else f"12 ({leads[0]}..{leads[-1]})"
            line.fs, line.window = f"{config.fs} Hz", f"{config.n_samples / config.fs:g} s"
            base = METHODS.get(cls.base_method) if cls.base_method else None
            if base is not None and not base.uses_labels:
                problems.append(lead_problem(leads, corpus, corpus=True))
            if cls.uses_labels:
                line.pretrain = (f"{corpus} ({cls.base_method}), then " if base else "") + "task labels (train split)"
            elif not cls.needs_training:
                line.pretrain = "- (untrained control)"
            else:
                line.pretrain = corpus
                problems.append(lead_problem(leads, corpus, corpus=True))
            for task in tasks:
                if task in TASKS.entries:
                    spec = TASKS.get(task)
                    problems.append(lead_problem(leads, spec.dataset, spec.channels == "each"))
                    if cls.uses_labels:
                        problems.append(label_problem(cls, spec))
            line.problem = "; ".join(dict.fromkeys(p for p in problems if p))
            rows.append(line)
    return rows


def render_plan(name: str, preset: str = "smoke", data_root: str | Path | None = None,
                folder: str | Path | None = None) -> str:
    """The plan of ``run --layout NAME`` as a table, the source's corpus and our readings, and
    what is not prepared under the data root."""
    from tabulate import tabulate

    layout = get_layout(name)
    rows = plan_rows(name, preset, folder)
    body = tabulate([[r.table, r.label, r.method, r.pretrain, r.leads, r.fs, r.window, r.task, r.probes,
                      r.problem or ("reported only" if r.method == "-" else "ok"), r.note] for r in rows],
                    headers=["table", "row", "method", "pretraining data", "leads", "fs", "window", "task",
                             "probes", "can run", "reading"], tablefmt="github", disable_numparse=True)
    corpus = layout.pretrain or "the dataset the tasks evaluate"
    lines = [f"## Plan of `{name}` (preset {preset}): {layout.description}", "",
             f"Pretraining: {corpus} (its training split, minus records of evaluated datasets); source: "
             f"{layout.pretrain_source or 'not stated'}.", "", body, ""]
    lines += [f"Reading: {reading}." for reading in layout.readings]
    missing = sorted({reason for reason in (
        [task_missing(t, data_root) for r in rows for t in r.task.split(", ") if r.method != "-"]
        + ([dataset_missing(layout.pretrain, data_root)] if layout.pretrain else [])) if reason})
    if missing:
        lines.append(f"Not prepared under the data root (those rows would be 'not run'): {'; '.join(missing)}.")
    blocked = sum(1 for r in rows if r.problem)
    lines.append(f"{blocked} of {len(rows)} rows cannot run because of our configuration.")
    return "\n".join(lines) + "\n"


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def task_missing(task: str, data_root: str | Path | None = None) -> str | None:
    """Why ``task`` cannot run here, or None: not registered, or its dataset not prepared."""
    from ecgbench.core.registry import TASKS

    if task not in TASKS.entries:
        return f"task {task} not registered"
    return dataset_missing(TASKS.get(task).dataset, data_root)


def dataset_missing(name: str, data_root: str | Path | None = None) -> str | None:
    """None when dataset ``name`` is under the data root (its source folder or a prepared
    cache, as ``ecgbench data list`` sees them), else ``"<name> not prepared"``. The synthetic
    suite is generated, so always there."""
    from ecgbench.data.datasets import data_root as resolve_root

    if name == "synthetic":
        return None
    root = resolve_root(data_root)
    from ecgbench.data.datasets.catalog import scan

    entries = scan()
    if name not in entries:
        return f"{name} not prepared (no loader for it yet)"
    entry = entries[name]
    return None if entry.location(root).exists() or entry.prepared(root) else f"{name} not prepared"



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

    def presets(self, methods: Iterable[str], tasks: Iterable[str]) -> list[str]:
        methods, tasks = set(methods), set(tasks)
        found = {p for (p, m, t) in self.cells if m in methods and t in tasks}
        return [p for p in PRESETS if p in found] + sorted(found - set(PRESETS))


def index_results(results: Iterable[dict[str, Any]], protocol: str = PROTOCOL) -> Stored:
    results = list(results)
    reasons = {(r.get("preset", ""), r["method"], r["task"]): str(r.get("reason") or "not applicable")
               for r in results if not_applicable(r)}
    scored = [r for r in results if not not_applicable(r) and standard(r, protocol) and "metrics" in r]
    latest: dict[str, int] = {}
    for r in scored:  # compare methods on one task version: the newest present
        latest[r["task"]] = max(latest.get(r["task"], 0), task_version(r))
    by_seed: dict[tuple, dict] = {}
    for r in scored:
        if task_version(r) != latest[r["task"]]:
            continue
        key = (r["preset"], r["method"], r["task"], r["probe"], r["seed"])
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
    """The probe with the best mean validation score (the task's main metric) over seeds."""
    from ecgbench.core.contracts import HIGHER_IS_BETTER

    best, best_score = None, None
    for probe in [p for p in PROBES if p in by_probe] + sorted(set(by_probe) - set(PROBES)):
        records = by_probe[probe]
        scores = [r.get("val_score") for r in records]
        scores = [s for s in scores if isinstance(s, (int, float)) and math.isfinite(s)]
        if not scores:
            continue
        score = float(np.mean(scores))
        if not HIGHER_IS_BETTER.get(records[0].get("main_metric"), True):
            score = -score
        if best_score is None or score > best_score:
            best, best_score = probe, score
    return best


def sample_size(records: list[dict[str, Any]]) -> tuple[int, int, str] | None:
    """(records used, records in the full release, dataset) when the results come from a small
    sample of a real dataset, else None."""
    for record in records:
        dataset = str((record.get("adaptation") or {}).get("dataset", "")).split("@")[0]
        full = FULL_RECORDS.get(dataset)
        n = record.get("n") or {}
        used = sum(int(v) for v in n.values() if isinstance(v, (int, float)))
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
        body = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
        columns = "; ".join(f"`{c.id}` = {c.probe or 'probe not stated'} · {c.metric}"
                            f"{' (%)' if c.scale == 'percent' else ''}"
                            f"{' on ' + c.task if c.task else ''}"
                            f" ({'higher' if c.higher_is_better else 'lower'} is better)" for c in table.columns)
        notes = f"\n\n{table.notes}" if table.notes else ""
        return f"### {table.title}\n\nTask: {', '.join(self.layout.task(t) for t in table.tasks)}. Columns: {columns}.{notes}\n\n{body}\n"

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
            lines.append(f"Ours: preset `{self.preset}`, protocol `{self.layout.protocol}`, seeds {seeds}, pretrained on "
                         f"{ours} (the source: {theirs}; `run --layout` pretrains on "
                         f"{self.layout.pretrain or 'the dataset its tasks evaluate'})."
                         + (f" Also stored for this layout: preset {', '.join(self.other_presets)} "
                            "(pass --preset to show it)." if self.other_presets else ""))
        else:
            lines.append("Ours: no stored results for this layout yet.")
        lines += ["", *sections]
        lines.append(f"Source: {' '.join(c if c.endswith('.') else c + '.' for c in sources.values())} Read the source's protocol "
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
                  data_root: str | Path | None = None) -> str:
    """The layout as markdown, from stored result records (and the reported YAML)."""
    layout = get_layout(name)
    return LayoutRenderer(layout, index_results(results, layout.protocol), preset, data_root).render()
