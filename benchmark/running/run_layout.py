"""``ecgbench run --layout NAME``: run exactly what a paper layout's tables need, then write the
layout table beside the reported numbers (and log it to MLflow).

One grid per reported table (:func:`ecgbench.reporting.layouts.plan_layout`), each run as
``ecgbench run`` would run it; rows that cannot run are reported, not raised.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ecgbench.core.config import ConfigError
from ecgbench.core.store import ResultStore, atomic_write
from ecgbench.reporting.layouts import (
    LayoutError,
    LayoutJob,
    LayoutPlan,
    plan_layout,
    plan_rows,
    render_layout,
    render_plan,
)
from ecgbench.running.plan import RunRequest
from ecgbench.running.run_grid import run_grid


def layout_text(name: str, results_dir: str | Path, preset: str | None, data_root: str | Path | None) -> str:
    """The layout's tables from the results stored under ``results_dir`` (no recomputation)."""
    store = ResultStore(results_dir)
    results = list(store.results()) if (store.root / "runs").exists() else []
    try:
        return render_layout(name, results, preset=preset, data_root=data_root)
    except LayoutError as error:
        raise ConfigError(str(error)) from None


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def dry_run(name: str, preset: str, data_root: str | Path | None) -> int:
    """Print the layout's plan per row; 1 if a row cannot run as configured."""
    try:
        print(render_plan(name, preset, data_root))
        return 1 if any(row.problem for row in plan_rows(name, preset)) else 0
    except LayoutError as error:
        raise ConfigError(str(error)) from None


def checked_plan(name: str, preset: str, data_root: str | Path | None) -> LayoutPlan:
    """The layout's grids, refused in one line when a row cannot run as configured."""
    try:
        blocked = [f"{row.label} ({row.method}): {row.problem}" for row in plan_rows(name, preset) if row.problem]
        if blocked:
            raise ConfigError(f"layout {name}: {len(blocked)} rows cannot run as configured: "
                              f"{'; '.join(blocked)} (see 'ecgbench run --layout {name} --dry-run')")
        return plan_layout(name, data_root)
    except LayoutError as error:
        raise ConfigError(str(error)) from None


def run_layout(name: str, preset: str, data_root: str | Path | None, results_dir: str | Path,
               request_for: Callable[[LayoutJob, LayoutPlan], RunRequest], log_run: dict | None = None) -> Path | None:
    """Run each of the layout's grids (``request_for`` turns a job into the request ``ecgbench run``
    would make of it), then write and print the layout table; returns its path (None on ranks
    other than 0 under torchrun). ``log_run``: MLflow tracking URI and params, None: no tracking."""
    plan = checked_plan(name, preset, data_root)
    for line in plan.skipped:
        print(f"ecgbench: {name}: not run: {line}", file=sys.stderr)
    if not plan.jobs:
        print(f"ecgbench: {name}: nothing can run here; the table shows why", file=sys.stderr)
    for job in plan.jobs:
        scoring = f"probes {','.join(job.probes)}" if job.probes else f"protocol {plan.protocol}"
        print(f"ecgbench: {name}: running {','.join(job.methods)} on {','.join(job.tasks)} "
              f"with {scoring}, pretrained on {job.pretrain}", file=sys.stderr)
        run_grid(request_for(job, plan))
    from ecgbench.models import distributed

    if not distributed.is_main():  # under torchrun rank 0 writes the table for everyone
        return None
    text = layout_text(name, results_dir, preset, data_root)
    store = ResultStore(results_dir)
    path = store.tables_dir / f"layout-{name}.md"
    write_text(path, text)
    if log_run is not None:
        _log_table(store, name, path, **log_run)
    print(text)
    print(f"ecgbench: layout table: {path}", file=sys.stderr)
    return path


def _log_table(store: ResultStore, name: str, path: Path, tracking_uri: str | None, params: dict) -> None:
    from ecgbench.running.tracking import Tracker

    tracker = Tracker(tracking_uri or store.default_tracking_uri, artifact_root=store.root / "mlartifacts")
    tracker.start(f"ecgbench-layout-{name}", params)
    tracker.log_artifact(path)
    tracker.finish()
