"""MLflow view of the result store.

One MLflow run per ``ecgbench run`` invocation; nested under it, one run per pretraining
(named by its run id) and one per result key (task, probe, seed). Params are the resolved
config, metrics the scores, artifacts the result JSON and the markdown tables. The JSON files
stay the source of truth: a key already present in MLflow (tag ``ecgbench.key``) is not logged
again when a resumed run reuses it.

Default store: MLflow's local sqlite database in the results directory; pass a server URI
(``--tracking-uri http://host:5000``) when a team shares results.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

EXPERIMENT = "ecgbench"
KEY_TAG = "ecgbench.key"
KIND_TAG = "ecgbench.kind"
_MAX_PARAM_LENGTH = 6000


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class Tracker:
    def __init__(self, tracking_uri: str, artifact_root: Path | None = None, experiment: str = EXPERIMENT):
        import mlflow
        from mlflow.tracking import MlflowClient

        for noisy in ("mlflow", "alembic"):  # database migration chatter on first use
            logging.getLogger(noisy).setLevel(logging.WARNING)

        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.uri = tracking_uri
        self.experiment_id = self._experiment(experiment, artifact_root)
        self.parent_id: str | None = None
        self._logged = self._existing_keys()

    def _experiment(self, name: str, artifact_root: Path | None) -> str:
        """The experiment's id, creating it if needed; two shards may race to create it."""
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = artifact_root.resolve().as_uri() if artifact_root else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException:  # another process created it between our lookup and create
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _existing_keys(self) -> set[str]:
        keys, token = set(), None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`{KEY_TAG}` != ''", max_results=5000,
                page_token=token,
            )
            keys.update(run.data.tags[KEY_TAG] for run in page if KEY_TAG in run.data.tags)
            token = page.token
            if not token:
                return keys

    def start(self, name: str, params: dict[str, Any]) -> None:
        run = self.client.create_run(self.experiment_id, run_name=name, tags={KIND_TAG: "invocation"})
        self.parent_id = run.info.run_id
        self._log(self.parent_id, params=params)

    def finish(self, status: str = "FINISHED") -> None:
        if self.parent_id:
            self.client.set_terminated(self.parent_id, status=status)

    def has(self, key: str) -> bool:
        return key in self._logged

    def log_child(
        self,
        key: str,
        kind: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        artifacts: list[Path] = (),
        curve: list[tuple[int, float]] = (),
    ) -> None:
        """One nested run named by its result key, skipped if that key was logged before."""
        if self.has(key):
            return
        tags = {KEY_TAG: key, KIND_TAG: kind}
        if self.parent_id:
            tags["mlflow.parentRunId"] = self.parent_id
        run = self.client.create_run(self.experiment_id, run_name=key, tags=tags)
        self._log(run.info.run_id, params, metrics, curve)
        for path in artifacts:
            self.client.log_artifact(run.info.run_id, str(path))
        self.client.set_terminated(run.info.run_id)
        self._logged.add(key)

    def log_artifact(self, path: Path) -> None:
        if self.parent_id:
            self.client.log_artifact(self.parent_id, str(path))

    def _log(self, run_id: str, params=None, metrics=None, curve=()) -> None:
        from mlflow.entities import Metric, Param

        param_list = [
            Param(key, _param_value(value)) for key, value in flatten(params or {}).items()
        ]
        now = int(time.time() * 1000)
        metric_list = [
            Metric(key, float(value), now, 0)
            for key, value in (metrics or {}).items()
            if isinstance(value, (int, float)) and math.isfinite(value)
        ]
        metric_list += [Metric("loss", float(loss), now, int(step)) for step, loss in curve]
        for start in range(0, max(len(param_list), 1), 100):  # MLflow caps a batch at 100 params
            self.client.log_batch(
                run_id, params=param_list[start : start + 100], metrics=metric_list if start == 0 else []
            )


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:_MAX_PARAM_LENGTH]
