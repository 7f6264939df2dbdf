"""Progress, records and MLflow in the driver of ``ecgbench tune``: :class:`SearchMonitor`, Ray
Tune's callback that writes each trial's record (``trials/<trial>.json``, the truth), logs
finished trials as MLflow child runs and shows a live table of the trials.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ray.tune import Callback

from ecgbench.core.store import read_json, write_json
from ecgbench.tools.tune.request import Search
from ecgbench.tools.tune.space import is_default
from ecgbench.tools.tune.trial import FINISHED, trial_key

REPORT_KEYS = ("score", "step", "loss", "node_id", "attempt", "stopped_early")


class SearchMonitor(Callback):
    """Writes each trial's record, logs finished trials to MLflow and shows a live trial table.

    Pickled with Ray's experiment state; the console, table and tracker are made again in each
    process that runs the search (``setup``).
    """

    def __init__(self, search: Search):
        self.folder = search.folder
        self.default = search.default
        self.fields = list(search.space)
        self.max_step = search.milestones[-1]
        self.metric = search.task.main_metric
        self.invocation = {"method": search.request.method, "task": search.task.key,
                           "protocol": search.request.protocol, "preset": search.request.preset,
                           "seed": search.request.seed,
                           "space": {k: list(map(str, v)) for k, v in search.space.items()}}
        self.tracking = (search.request.results_dir, search.request.tracking_uri) if search.request.track else None
        self._runtime: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_runtime": {}}

    # ----- Ray's hooks -------------------------------------------------------------------
    def setup(self, **info) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(stderr=True)
        live = Live(console=console, refresh_per_second=2, transient=False)
        live.start()
        tracker = None
        if self.tracking:
            from ecgbench.running.tracking import Tracker

            tracker = Tracker.for_results(*self.tracking)
            tracker.start(f"ecgbench-tune-{self.folder.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}",
                          self.invocation)
        self._runtime = {"console": console, "live": live, "tracker": tracker}

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._update(trial, status="running")
        self._redraw(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        report = {k: result[k] for k in REPORT_KEYS if k in result}
        self._update(trial, report=report)
        self._redraw(trials)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        record = self._update(trial, status="finished")
        last = record["reports"][-1] if record["reports"] else {}
        self._runtime["console"].log(f"trial {trial.trial_id} {record['status']} at step {last.get('step')}: "
                                     f"validation {self.metric} {last.get('score')}")
        self._log(record)
        self._redraw(trials)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = _first_error_line(trial)
        record = self._update(trial, status="error", error=error)
        self._runtime["console"].log(f"[red]trial {trial.trial_id} failed[/]: {error}")
        self._log(record)
        self._redraw(trials)

    def on_experiment_end(self, trials, **info) -> None:
        self._redraw(trials)
        self._runtime["live"].stop()
        self._runtime["console"].line()
        if self._runtime.get("tracker"):
            self._runtime["tracker"].finish("FINISHED")

    # ----- records ---------------------------------------------------------------------
    def _path(self, trial) -> Path:
        return self.folder / "trials" / f"{trial_key(trial.trial_id, trial.config)}.json"

    def _update(self, trial, status: str | None = None, report: dict | None = None,
                error: str | None = None) -> dict[str, Any]:
        path = self._path(trial)
        record = read_json(path) if path.exists() else {
            "trial_id": trial.trial_id, "config": dict(trial.config), "default": is_default(trial.config, self.default),
            "status": "running", "reports": [], "attempts": {}, "started": time.time()}
        if report is not None and report not in record["reports"]:  # a finished trial's replay adds none
            record["reports"].append(report)
            record["attempts"].setdefault(report["attempt"], report["node_id"])
        if status == "finished":
            status = ("completed" if record["reports"] and ran_to_the_end(record["reports"][-1], self.max_step)
                      else "pruned")
        if status and not (status == "running" and record["status"] in FINISHED):  # a replay ends as it was
            record["status"] = status
        if error:
            record["error"] = error
        write_json(path, record)
        return record

    def _log(self, record: dict[str, Any]) -> None:
        tracker = self._runtime.get("tracker")
        if not tracker:
            return
        last = record["reports"][-1] if record["reports"] else {}
        metrics = {f"val_{self.metric}": last.get("score", math.nan), "step": last.get("step", 0),
                   "loss": last.get("loss", math.nan)}
        tracker.log_child(f"tune/{self.folder.name}/{record['trial_id']}", "tune-trial",
                          params={"config": record["config"], "status": record["status"],
                                  "default": record["default"], "nodes": sorted(set(record["attempts"].values()))},
                          metrics=metrics, curve=[])

    # ----- the live table ----------------------------------------------------------------
    def _redraw(self, trials) -> None:
        live = self._runtime.get("live")
        if live:
            live.update(trial_table(trials, self.fields, self.max_step, self.metric, self.default))


def ran_to_the_end(report: dict[str, Any], max_step: int) -> bool:
    """Whether a trial's last report ends its schedule (or early stopping ended it), not ASHA."""
    return report["step"] >= max_step or bool(report.get("stopped_early"))


def _first_error_line(trial) -> str:
    path = getattr(trial, "error_file", None) or ""
    try:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
        return lines[-1][:300] if lines else "unknown error"
    except OSError:
        return f"see {path}" if path else "unknown error"


def trial_table(trials, fields: list[str], max_step: int, metric: str, default: dict[str, Any]):
    from rich.table import Table

    table = Table(title=f"trials (validation {metric})", show_lines=False)
    for column in ("trial", "status", *fields, "step", "score", "node"):
        table.add_column(column, justify="right" if column in ("step", "score") else "left")
    for trial in trials:  # in the order Ray created them
        result = trial.last_result or {}
        step = result.get("step")
        status = trial.status.lower()
        if status == "terminated":
            status = "completed" if step is not None and ran_to_the_end(result, max_step) else "pruned"
        name = trial.trial_id + (" (default)" if is_default(trial.config, default) else "")
        table.add_row(name, status, *(_short(trial.config.get(f)) for f in fields),
                      "-" if step is None else str(step),
                      "-" if result.get("score") is None else f"{result['score']:.4f}",
                      str(result.get("node_id", ""))[:8])
    return table


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
