"""``ecgbench run``: check a request, resolve it, run its grid and report what it stored.

Everything is checked before any work starts (:mod:`ecgbench.running.validate`); heavy libraries
load only after that, so a bad request answers at once.
"""

from __future__ import annotations

import time
from typing import Any

from ecgbench.running.plan import RunRequest, resolve
from ecgbench.running.validate import validate_plan, validate_request


def run_grid(request: RunRequest, console=None) -> list[dict[str, Any]]:
    """Run every (method, seed) x task x probe of ``request``; print its table (rank 0 only under
    torchrun) and return the result records."""
    validate_request(request)
    plan = resolve(request)
    validate_plan(plan)
    if request.limit:  # every dataset the run loads, cut to its first N patients per split
        from ecgbench.running.validate import datasets_needed

        request = limited(request, datasets_needed(plan))
        plan = resolve(request)
        validate_plan(plan)
    from ecgbench.running import cross_validation

    if plan.eval_settings.cv and not cross_validation.is_fold_run(request):
        return run_folds(request, plan, console)
    from rich.console import Console

    from ecgbench.models import distributed
    from ecgbench.reporting.tables import render
    from ecgbench.running.runner import Runner, write_tables

    console = console or Console(stderr=True)
    clock = time.perf_counter()
    runner = Runner(plan, console)
    results = runner.run()
    if not distributed.is_main():  # under torchrun rank 0 reports for everyone
        return results
    path = write_tables(runner.store, results, runner.tracker)
    print(render(results))
    summary = write_summary(request, results, runner.provenance, time.perf_counter() - clock)
    console.log(
        f"{len(results)} results ({runner.new_results} new) in {time.perf_counter() - clock:.1f} s; "
        f"table: {path}; results: {runner.store.root / 'runs'}; summary: {summary}"
    )
    return results


def limited(request: RunRequest, datasets: list[str]) -> RunRequest:
    """``--limit N`` as the ``data.<dataset>.limit`` option of every dataset, once."""
    import dataclasses

    return dataclasses.replace(request, limit=None, overrides={
        **request.overrides, **{f"data.{name}.limit": str(request.limit) for name in datasets}})


def write_summary(request: RunRequest, results: list[dict[str, Any]], provenance: dict[str, Any],
                  seconds: float) -> Any:
    """One JSON per invocation (as lm-evaluation-harness writes): the command, the request, the
    versions, and every result's key with its main score; under ``<results-dir>/summaries/``."""
    import dataclasses
    import sys
    from datetime import datetime, timezone
    from pathlib import Path

    from ecgbench.core.store import write_json

    now = datetime.now(timezone.utc)
    request_fields = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(request).items()}
    rows = [{"key": r.get("key"), "method": r.get("method"), "task": r.get("task_key"), "protocol": r.get("protocol"),
             "probe": r.get("probe"), "seed": r.get("seed"), "status": r.get("status", "ok"),
             "metric": r.get("main_metric"), "value": (r.get("metrics") or {}).get(r.get("main_metric"))}
            for r in results]
    path = Path(request.results_dir) / "summaries" / f"run-{now:%Y%m%dT%H%M%S%fZ}.json"
    write_json(path, {"command": sys.argv, "created": now.isoformat(timespec="seconds"), "seconds": round(seconds, 1),
                      "request": request_fields, **provenance, "results": rows})
    return path


def run_folds(request: RunRequest, plan: Any, console=None) -> list[dict[str, Any]]:
    """``eval.cv=K``: the grid on each fold, then the pooled results (:mod:`.cross_validation`)."""
    from rich.console import Console

    from ecgbench.models import distributed
    from ecgbench.reporting.tables import render
    from ecgbench.running import cross_validation
    from ecgbench.running.validate import datasets_needed

    console = console or Console(stderr=True)
    folds = plan.eval_settings.cv
    fold_results = []
    for fold, fold_request in enumerate(cross_validation.fold_requests(request, folds, datasets_needed(plan))):
        console.log(f"cross-validation: fold {fold + 1} of {folds}")
        fold_results += run_grid(fold_request, console)
    if not distributed.is_main():
        return fold_results
    pooled = cross_validation.pool(fold_results, request.results_dir, folds)
    print(render(pooled))
    console.log(f"{len(pooled)} pooled results of {folds} folds; results: {request.results_dir}/runs")
    return pooled
