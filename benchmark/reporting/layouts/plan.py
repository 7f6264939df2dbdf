"""What a paper layout needs: the grids ``ecgbench run --layout NAME`` runs (:func:`plan_layout`),
and the per-row plan ``run --layout NAME --dry-run`` prints (:func:`plan_rows`, :func:`render_plan`):
each row's method, corpus, input and probes, checked against its task and corpus before any
training. What cannot run here (unregistered, not prepared, reported only) is listed, not raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.reporting.layouts.spec import PROTOCOL, Layout, get_layout
from ecgbench.reporting.reported import PROBES, Column, Table

# Metrics a result carries independently of the probe (computed on embeddings or on training).
PROBE_FREE = ("dbi", "silhouette", "chi", "hours")
# The probe planned for a layout whose columns need no probe: the cheapest to fit.
PROBE_FOR_PROBE_FREE = "lr"
# Rows every layout table gets below the paper's, marked as ours: the classical feature baselines
# (12-lead and lead II) a representation has to beat; where one cannot read a task, its cell says so.
BASELINES = ("ecg-features", "ecg-features-lead2")


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
    where two tables need the same corpus, tasks and probes), each with the :data:`BASELINES`
    rows; reported-only rows, unregistered
    methods or tasks and tasks whose dataset is not prepared are listed in ``skipped``, not
    raised. Methods and tasks are the layout's (:class:`RowRun`, ``Layout.tasks``)."""
    from ecgbench.core.registry import METHODS

    layout = get_layout(name, folder)
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
    for job in jobs.values():  # the baselines last, once per grid (they need no pretraining)
        job.methods = [m for m in job.methods if m not in BASELINES] + [b for b in BASELINES if b in METHODS.entries]
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
        return "" if len(leads) == 1 else (f"{dataset}'s channels are embedded one at a time; "
                                           f"the encoder takes {len(leads)} leads")
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

    layout = get_layout(name, folder)
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

    layout = get_layout(name, folder)
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
