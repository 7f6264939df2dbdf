"""Record stage: what a run leaves behind. JSON results are the truth (written by the
evaluate stage through the store); this module adds the MLflow view of every stage and the
markdown tables. A tracker that is switched off (``--no-tracking``, other torchrun ranks)
makes every ``log_*`` a no-op."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ecgbench import distributed
from ecgbench.stages.context import RunContext
from ecgbench.store import ResultStore, atomic_write


def start_tracking(ctx: RunContext) -> None:
    if not ctx.request.track or not distributed.is_main():
        return
    from ecgbench.tracking import Tracker

    uri = ctx.request.tracking_uri or ctx.store.default_tracking_uri
    ctx.store.root.mkdir(parents=True, exist_ok=True)
    ctx.tracker = Tracker(uri, artifact_root=ctx.store.root / "mlartifacts")
    request = dataclasses.asdict(ctx.request)
    request["results_dir"], request["data_root"] = str(request["results_dir"]), str(request["data_root"])
    ctx.tracker.start(
        f"ecgbench-run-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}",
        {"request": request, "eval": dataclasses.asdict(ctx.plan.eval_settings),
         "method_configs": {k: dataclasses.asdict(v) for k, v in ctx.plan.method_configs.items()}},
    )


def finish_tracking(ctx: RunContext, status: str) -> None:
    if ctx.tracker:
        ctx.tracker.finish(status)


def log_pretraining(ctx: RunContext, run_id: str, run_record: dict[str, Any]) -> None:
    if not ctx.tracker:
        return
    ctx.tracker.log_child(
        run_id, "pretrain", params=run_record["run_config"],
        metrics={k: v for k, v in run_record["train"].items() if isinstance(v, (int, float))},
        curve=[tuple(x) for x in run_record["train"].get("loss_curve", [])],
        artifacts=[ctx.store.run_dir(run_id) / a for a in run_record.get("artifacts", [])],
    )


def log_result(ctx: RunContext, key: str, params: dict[str, Any], result: dict[str, Any], path: Path) -> None:
    if not ctx.tracker:
        return
    ctx.tracker.log_child(
        key, "result", params={**params, "probe_params": result["probe_params"]},
        metrics={**{k: v for k, v in result["metrics"].items() if isinstance(v, (int, float))},
                 "ci_low": result["ci"]["low"], "ci_high": result["ci"]["high"]},
        artifacts=[path],
    )


def log_not_applicable(ctx: RunContext, key: str, status: str, params: dict[str, Any]) -> None:
    if ctx.tracker:
        ctx.tracker.log_child(f"{key}#{status}", status, params=params, metrics={})


def log_analysis(ctx: RunContext, key: str, params: dict[str, Any], extras: dict[str, Any],
                 plot: Path | None) -> None:
    if not ctx.tracker or not (extras or plot):
        return
    from ecgbench.tracking import flatten

    numbers = {k: v for k, v in flatten(extras).items() if isinstance(v, (int, float))}
    ctx.tracker.log_child(key, "analysis", params=params, metrics=numbers, artifacts=[plot] if plot else [])


def write_tables(store: ResultStore, results: list[dict[str, Any]], tracker=None) -> Path:
    from ecgbench.tables import render

    tasks = sorted({r["task"] for r in results})
    path = store.tables_dir / f"{'+'.join(tasks)}.md"
    text = f"# ecgbench results: {', '.join(tasks)}\n\n{render(results)}"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if tracker:
        tracker.log_artifact(path)
    return path
