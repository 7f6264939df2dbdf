"""Paper layouts: the seed papers' tables re-laid with ecgbench's numbers beside the reported ones.

Each layout is data, in the ``layouts:`` section of its paper's ``results/reported/<source>.yaml``
beside the tables it re-lays; adding a paper's table is adding a file there, no Python. The parts:

* :mod:`.spec`: what a layout is (:class:`Layout`, :class:`RowRun`, :class:`Tolerance`), reading and
  checking the YAML, the registry :data:`LAYOUTS` found by scanning the files;
* :mod:`.plan`: what ``ecgbench run --layout NAME`` must run to fill it, and its dry-run plan;
* :mod:`.render`: the one renderer that turns stored results into a layout's tables.
"""

from __future__ import annotations

from ecgbench.reporting.layouts.plan import (
    BASELINES,
    DATASET_LEADS,
    PROBE_FOR_PROBE_FREE,
    PROBE_FREE,
    LayoutJob,
    LayoutPlan,
    PlanRow,
    column_probes,
    column_task,
    dataset_missing,
    label_problem,
    lead_problem,
    plan_layout,
    plan_rows,
    pretraining_corpus,
    render_plan,
    task_missing,
)
from ecgbench.reporting.layouts.render import (
    CLUSTERING_KEYS,
    FULL_RECORDS,
    MAX_INLINE_REASON,
    OUTSIDE,
    SAMPLE,
    SAMPLE_FRACTION,
    LayoutRenderer,
    Notes,
    Stored,
    best_probe_on_validation,
    decimals,
    digits_for,
    fmt,
    index_results,
    metric_value,
    not_applicable,
    render_layout,
    reported_cell,
    sample_size,
    standard,
    summary,
    task_version,
)
from ecgbench.reporting.layouts.spec import (
    DEFAULT_TOLERANCES,
    LAYOUTS,
    PROTOCOL,
    Layout,
    LayoutError,
    LayoutRegistry,
    RowRun,
    Tolerance,
    get_layout,
    list_layouts,
    load_layouts,
)

__all__ = [
    "BASELINES", "CLUSTERING_KEYS", "DATASET_LEADS", "DEFAULT_TOLERANCES", "FULL_RECORDS", "LAYOUTS", "MAX_INLINE_REASON",
    "OUTSIDE", "PROBE_FOR_PROBE_FREE", "PROBE_FREE", "PROTOCOL", "SAMPLE", "SAMPLE_FRACTION",
    "Layout", "LayoutError", "LayoutJob", "LayoutPlan", "LayoutRegistry", "LayoutRenderer", "Notes", "PlanRow",
    "RowRun", "Stored", "Tolerance",
    "best_probe_on_validation", "column_probes", "column_task", "dataset_missing", "decimals", "digits_for", "fmt",
    "get_layout", "index_results", "label_problem", "lead_problem", "list_layouts", "load_layouts", "metric_value",
    "not_applicable", "plan_layout", "plan_rows", "pretraining_corpus", "render_layout", "render_plan",
    "reported_cell", "sample_size", "standard", "summary", "task_missing", "task_version",
]  # fmt: skip

