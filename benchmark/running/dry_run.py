"""``ecgbench run --dry-run``: the grid's plan, and what of it is already stored; nothing trains.

Per (method, seed) pretraining job: its run id, whether its encoder is stored, would be trained
(and for how many steps) or needs no training (controls), and how many of its results
(tasks x protocols x probes x label fractions) are stored. The datasets are loaded (the run ids
name their versions), so a dataset that is not prepared yet is prepared first; nothing is
trained, embedded or scored. Times are not estimated here: ``ecgbench bench`` measures them.
"""

from __future__ import annotations

from typing import Any

from ecgbench.core.registry import METHODS
from ecgbench.evaluation import protocols
from ecgbench.running.plan import RunRequest, resolve
from ecgbench.running.validate import validate_plan, validate_request


def plan_rows(request: RunRequest, console: Any = None) -> list[dict[str, Any]]:
    """One row per (method, seed) job (per task for a label-using method)."""
    from ecgbench.running.runner import Runner
    from ecgbench.running.stages import evaluate

    validate_request(request)
    plan = resolve(request)
    validate_plan(plan)
    runner = Runner(plan, console)
    pairs = protocols.evaluations(request.protocols, request.probes)
    fractions = plan.eval_settings.label_fractions
    rows = []
    for method, seed in runner.jobs():
        cls = METHODS.get(method)
        for label_task in plan.tasks if cls.uses_labels else [None]:
            config = runner.run_config(method, seed, label_task)
            tasks = plan.tasks if label_task is None else [label_task]
            wanted = [evaluate.result_location(runner, config, task, probe, fraction, protocol)[0]
                      for task in tasks for protocol, probe in pairs for fraction in fractions]
            rows.append({"method": method, "seed": seed, "run_id": config.run_id,
                         "tasks": ", ".join(t.name for t in tasks),
                         "encoder": _encoder_state(runner, cls, config, plan.method_configs[method]),
                         "results stored": f"{sum(p.exists() for p in wanted)}/{len(wanted)}"})
    return rows


def _encoder_state(runner: Any, cls: Any, config: Any, method_config: Any) -> str:
    if not cls.needs_training:
        return "no training (control)"
    if runner.store.run_record(config.run_id).exists():
        return "stored"
    return f"would train ({method_config.max_steps:,} steps)"


def render(rows: list[dict[str, Any]], request: RunRequest) -> str:
    from tabulate import tabulate

    training = sum(row["encoder"].startswith("would train") for row in rows)
    head = (f"Plan: {len(request.methods)} methods x {len(request.seeds)} seeds x {len(request.tasks)} tasks x "
            f"protocols {', '.join(request.protocols)} x probes {', '.join(request.probes)}, preset "
            f"{request.preset}, results in {request.results_dir}. {training} of {len(rows)} encoders would train; "
            "nothing ran (drop --dry-run to run; `ecgbench bench` measures times).")
    return head + "\n\n" + tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True)
