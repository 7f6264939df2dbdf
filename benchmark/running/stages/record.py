"""Record stage: what a run leaves behind. JSON results are the truth (written by the
evaluate stage through the store); this module adds the MLflow view of every stage and the
markdown tables. A tracker that is switched off (``--no-tracking``, other torchrun ranks)
makes every ``log_*`` a no-op."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ecgbench.core.store import ResultStore, atomic_write
from ecgbench.models import distributed
from ecgbench.running.stages.context import RunContext


@contextlib.contextmanager
def tracking(ctx: RunContext) -> Iterator[None]:
    """The invocation's MLflow run around the grid: FINISHED, FAILED on an error, KILLED on
    SIGINT or SIGTERM (see :mod:`ecgbench.running.tracking`)."""
    if not ctx.request.track or not distributed.is_main():
        yield
        return
    from ecgbench.running.tracking import Tracker

    ctx.tracker = Tracker.for_results(ctx.store.root, ctx.request.tracking_uri)
    request = dataclasses.asdict(ctx.request)
    request["results_dir"], request["data_root"] = str(request["results_dir"]), str(request["data_root"])
    with ctx.tracker.invocation(
        f"ecgbench-run-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}",
        {"request": request, "eval": dataclasses.asdict(ctx.plan.eval_settings),
         "method_configs": {k: dataclasses.asdict(v) for k, v in ctx.plan.method_configs.items()}},
    ):
        yield


def log_pretraining(ctx: RunContext, run_id: str, run_record: dict[str, Any]) -> None:
    if not ctx.tracker:
        return
    checkpoint = ctx.store.checkpoint(run_id) if ctx.request.log_checkpoints else None
    ctx.tracker.log_pretrain(run_record, ctx.store.run_dir(run_id), checkpoint)


def log_result(ctx: RunContext, key: str, params: dict[str, Any], result: dict[str, Any], path: Path) -> None:
    if not ctx.tracker:
        return
    ctx.tracker.log_result({**result, "key": key, "probe_spec": params["probe"]}, path)




def log_analysis(ctx: RunContext, key: str, params: dict[str, Any], extras: dict[str, Any],
                 plot: Path | None) -> None:
    if not ctx.tracker or not (extras or plot):
        return
    from ecgbench.core.config import flatten

    numbers = {k: v for k, v in flatten(extras).items() if isinstance(v, (int, float))}
    ctx.tracker.log_child(key, "analysis", params=params, metrics=numbers, artifacts=[plot] if plot else [])


def write_tables(store: ResultStore, results: list[dict[str, Any]], tracker=None) -> Path:
    from ecgbench.reporting.tables import render

    tasks = sorted({r["task"] for r in results})
    path = store.tables_dir / f"{'+'.join(tasks)}.md"
    text = f"# ecgbench results: {', '.join(tasks)}\n\n{render(results)}"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if tracker:
        tracker.log_artifact(path)
    return path
