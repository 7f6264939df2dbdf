"""MLflow view of the result store.

One MLflow run per ``ecgbench`` invocation; nested under it, one run per pretraining (``simclr ·
seed 0 · pretraining``), and under that each of its results (``simclr · synth-superclass@v4 · seed
0 · lr``). Every run is tagged for filtering (method, task, seed, probe, protocol, preset, label
fraction, data version, git; ``tags.method = 'simclr' and tags.probe = 'lr'``) and keeps its key in
``ecgbench.key``. Params are the resolved config, metrics the scores (the pretraining loss as a
curve); artifacts: run.json under a pretraining run; the result JSON, its test predictions,
per-class metrics and confusion matrix under a result run; the markdown tables under the
invocation. One experiment, ``ecgbench``, holds every run: the tags separate presets and suites
without the keys of one store spreading over several experiments.

The JSON files are the truth; MLflow is a view that repairs itself and never costs a result:

- A key counts as logged only when a run tagged with it is FINISHED. That status is set last,
  after params, metrics and artifacts, so a key's run left RUNNING, KILLED or FAILED by an
  interrupted process is deleted and logged again the next time the key comes by.
- A key is checked and logged under a file lock (beside the sqlite database, or in the results
  folder for a server), so processes sharing a store log it once.
- The sqlite database is set up under that lock in a temporary file renamed into place; one
  left half-migrated (a process killed during MLflow's own setup) is moved aside and rebuilt.
- Any tracking error (a server that is down or dies, a locked database) costs one warning and
  switches tracking off for the rest of the invocation; HTTP requests time out in seconds.
  ``ecgbench track sync`` (or the next run, for the keys it touches) logs what is missing.
- SIGTERM and SIGINT end the open runs KILLED; runs of processes on this host that died without
  ending them (kill -9) are ended KILLED when the next invocation starts.

Default store: MLflow's sqlite database in the results directory, artifacts in ``mlartifacts/``
beside it; with a server URI (``--tracking-uri http://host:5000``) the artifacts go wherever
that server keeps them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import shutil
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ecgbench.core.config import flatten
from ecgbench.core.store import ResultStore, _alive, atomic_write, read_json, remove_stale_temps
from ecgbench.reporting.tables import NOT_APPLICABLE

EXPERIMENT = "ecgbench"
KEY_TAG = "ecgbench.key"
KIND_TAG = "ecgbench.kind"
OWNER_TAG = "ecgbench.owner"  # host:pid of the process that created the run
STAGE_TAG = "stage"  # pretraining / result: set since runs are named and nested for browsing
_MAX_PARAM_LENGTH = 6000
_SERVER_SCHEMES = ("http", "https", "databricks")
# MLflow's defaults (7 retries, 120 s each) turn a server that is down into minutes of silence.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                 "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}  # stdout is the table
_LOCK_TIMEOUT_S = 300

log = logging.getLogger(__name__)


class Terminated(SystemExit):
    """SIGTERM (what Slurm sends before a kill), raised so the open runs end KILLED."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _guarded(method):
    """Tracking never costs a result: its first error is one warning, then tracking is off."""

    @functools.wraps(method)
    def call(self: Tracker, *args, **kwargs):
        if self.offline:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 -- any tracking failure, by design
            self.offline = True
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            log.warning("MLflow tracking at %s failed (%s: %s); tracking is off for this invocation, "
                        "the JSON results are unaffected; `ecgbench track sync` logs them later",
                        self.uri, type(error).__name__, first_line)
            return None

    return call


class Tracker:
    def __init__(self, tracking_uri: str, artifact_root: Path | None = None, experiment: str = EXPERIMENT,
                 lock_dir: Path | None = None):
        """``artifact_root``: where a local store (sqlite) keeps artifacts; a server's own
        artifact location is never overridden. ``lock_dir``: where processes sharing a server
        serialise their logging (a sqlite store locks beside its database file)."""
        self.uri = tracking_uri
        self.offline = False
        self.parent_id: str | None = None
        self.relayout = False  # track sync: replace runs of the older, untagged layout
        self._logged: set[str] = set()
        self._open: list[str] = []  # runs this process created and has not ended yet
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._connect(experiment, None if _is_server(tracking_uri) else artifact_root, lock_dir)

    @classmethod
    def for_results(cls, results_dir: str | Path, tracking_uri: str | None = None) -> Tracker:
        """The tracker of a results folder: its sqlite store unless ``tracking_uri`` names another."""
        store = ResultStore(results_dir)
        store.root.mkdir(parents=True, exist_ok=True)
        return cls(tracking_uri or store.default_tracking_uri, artifact_root=store.root / "mlartifacts",
                   lock_dir=store.root / "cache" / "locks")

    # ----- setup -------------------------------------------------------------------------
    @_guarded
    def _connect(self, experiment: str, artifact_root: Path | None, lock_dir: Path | None) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        self._lock = _store_lock(self.uri, lock_dir)

        for name, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        for noisy in ("mlflow", "alembic"):  # database migration chatter on first use
            logging.getLogger(noisy).setLevel(logging.WARNING)
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # retry chatter

        database = _sqlite_path(self.uri)
        with self._lock:
            if database is not None:
                _prepare_sqlite(database, artifact_root)
            mlflow.set_tracking_uri(self.uri)
            self.client = MlflowClient(tracking_uri=self.uri)
            self.experiment_id = self._experiment(experiment, artifact_root)
            self._end_orphans()
        self.reload_logged()

    @_guarded
    def reload_logged(self) -> None:
        """Read which keys are logged (FINISHED) again, e.g. after other processes logged."""
        self._logged = {run.data.tags[KEY_TAG] for run in self._search("attributes.status = 'FINISHED'")
                        if KEY_TAG in run.data.tags}

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

    def _end_orphans(self) -> None:
        """End KILLED the runs that processes on this host left RUNNING when they died (kill -9)."""
        for run in self._search("attributes.status = 'RUNNING'"):
            if _owner_gone(run.data.tags):
                self.client.set_terminated(run.info.run_id, status="KILLED")

    def _search(self, filter_string: str) -> list:
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=filter_string,
                                           max_results=5000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    # ----- the invocation ----------------------------------------------------------------
    @_guarded
    def start(self, name: str, params: dict[str, Any]) -> None:
        self.parent_id = self._create(name, {KIND_TAG: "invocation"})
        self._log(self.parent_id, params=params)

    @_guarded
    def finish(self, status: str = "FINISHED") -> None:
        """End the invocation's run with ``status``; a child run still open (its logging was
        interrupted) ends KILLED, so the next run replaces it."""
        for run_id in list(reversed(self._open)):
            self._end(run_id, status if run_id == self.parent_id else "KILLED")

    @contextlib.contextmanager
    def invocation(self, name: str, params: dict[str, Any]) -> Iterator[Tracker]:
        """The invocation's run around a block: FINISHED, FAILED on an error, KILLED on SIGINT or
        SIGTERM (handled while the block runs, then raised on as KeyboardInterrupt / exit 143)."""
        status = "FAILED"
        try:
            with interrupts_raise():
                self.start(name, params)
                yield self
            status = "FINISHED"
        except (KeyboardInterrupt, Terminated):
            status = "KILLED"
            raise
        finally:
            self.finish(status)

    # ----- logging -----------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return key in self._logged

    @_guarded
    def log_child(
        self,
        key: str,
        kind: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        artifacts: list[Path] = (),
        curve: list[tuple[int, float]] = (),
        name: str | None = None,
        tags: dict[str, str] | None = None,
        parent_key: str | None = None,
        documents: dict[str, Any] | None = None,
    ) -> bool:
        """One nested run (named ``name``, tagged with its key and ``tags``) unless that key is
        logged already; returns whether it was logged now. It hangs under the run of
        ``parent_key`` (its pretraining) when that is logged, else under the invocation;
        ``documents`` (file name -> JSON-able) become artifacts beside ``artifacts``."""
        if self.has(key) and not self.relayout:
            return False
        with self._lock:
            if not self._claim(key):
                return False
            tags = {**(tags or {}), KEY_TAG: key, KIND_TAG: kind}
            parent = self._run_of(parent_key) if parent_key else None
            if parent or self.parent_id:
                tags["mlflow.parentRunId"] = parent or self.parent_id
            run_id = self._create(name or key, tags)
            self._log(run_id, params, metrics, curve)
            for path in artifacts:
                self.client.log_artifact(run_id, str(path))
            self._log_documents(run_id, documents or {})
            self._end(run_id, "FINISHED")  # last: only now does the key count as logged
        self._logged.add(key)
        return True

    def log_result(self, record: dict[str, Any], path: Path) -> bool:
        """A stored result record (``path``: its JSON file, the run's artifact), named and tagged
        for browsing, under its pretraining run, with its predictions, per-class metrics and
        confusion matrix."""
        name, tags = result_name(record), result_tags(record)
        if record.get("status") == NOT_APPLICABLE:
            return self.log_child(f"{record['key']}#{NOT_APPLICABLE}", NOT_APPLICABLE, params={
                "task": record["task_key"], "run_id": record["run_id"], "probe": record["probe_spec"],
                "reason": record["reason"]}, metrics={}, name=f"{name} · n/a", tags=tags, parent_key=record["run_id"])
        predictions = path.with_suffix(".npz")
        return self.log_child(
            record["key"], "result",
            params={"probe": record["probe_spec"], "task": record["task_key"], "run_id": record["run_id"],
                    "probe_params": record.get("probe_params", {})},
            metrics=result_metrics(record), artifacts=[path] + ([predictions] if predictions.is_file() else []),
            name=name, tags=tags, parent_key=record["run_id"], documents=result_documents(record, predictions),
        )

    def log_pretrain(self, record: dict[str, Any], run_dir: Path, checkpoint: Path | None = None) -> bool:
        """A pretraining record (run.json), the artifacts it lists in ``run_dir`` and, when given
        (``run --log-checkpoints``), the encoder's weights."""
        config = record["run_config"]
        tags = {"method": str(config.get("method")), "seed": str(config.get("seed")), "preset": str(config.get("preset")),
                "data": str(config.get("pretrain_data")), "git": str(record.get("git", "")), "stage": "pretraining"}
        return self.log_child(
            run_dir.name, "pretrain", params=config,
            metrics={k: v for k, v in record["train"].items() if isinstance(v, (int, float))},
            curve=[tuple(point) for point in record["train"].get("loss_curve", [])],
            artifacts=[run_dir / "run.json", *(run_dir / name for name in record.get("artifacts", [])),
                       *([checkpoint] if checkpoint is not None and checkpoint.is_file() else [])],
            name=f"{config.get('method')} · seed {config.get('seed')} · pretraining", tags=tags,
        )

    def _run_of(self, key: str) -> str | None:
        """The MLflow run id of a logged key (a pretraining run), if there is one."""
        runs = [r for r in self._search(f"tags.`{KEY_TAG}` = '{key}'") if r.info.status == "FINISHED"]
        return runs[0].info.run_id if runs else None

    def _log_documents(self, run_id: str, documents: dict[str, Any]) -> None:
        if not documents:
            return
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            for file_name, content in documents.items():
                path = Path(folder) / file_name
                path.write_text(json.dumps(content, indent=1, default=str), encoding="utf-8")
                self.client.log_artifact(run_id, str(path))

    @_guarded
    def log_artifact(self, path: Path) -> None:
        if self.parent_id:
            self.client.log_artifact(self.parent_id, str(path))

    def _claim(self, key: str) -> bool:
        """Under the lock: whether this process should log ``key`` now. Not if a run of it is
        FINISHED or being logged by a live process; its other runs (left by interrupted
        processes) are deleted, to be replaced."""
        runs = self._search(f"tags.`{KEY_TAG}` = '{key}'")
        finished = [run for run in runs if run.info.status == "FINISHED"]
        if finished and not (self.relayout and all(STAGE_TAG not in run.data.tags for run in finished)):
            self._logged.add(key)
            return False
        if any(run.info.status == "RUNNING" and not _owner_gone(run.data.tags) for run in runs):
            return False
        for run in runs:
            self.client.delete_run(run.info.run_id)
        return True

    def _create(self, name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name, tags={**tags, OWNER_TAG: self._owner})
        self._open.append(run.info.run_id)
        return run.info.run_id

    def _end(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status=status)
        self._open.remove(run_id)

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


def result_name(record: dict[str, Any]) -> str:
    """``simclr · synth-superclass@v4 · seed 0 · lr`` (the protocol too where it is not the probes')."""
    protocol = record.get("protocol", "frozen-probe")
    extra = "" if protocol == "frozen-probe" else f" · {protocol}"
    probe = record.get("probe") or (record.get("probe_spec") or {}).get("probe", "?")
    return f"{record.get('method', '?')} · {record['task_key']} · seed {record.get('seed', '?')} · {probe}{extra}"


def result_tags(record: dict[str, Any]) -> dict[str, str]:
    """What a user filters result runs by (``tags.method = 'simclr' and tags.seed = '0'``)."""
    probe = record.get("probe") or (record.get("probe_spec") or {}).get("probe", "")
    return {"method": str(record.get("method", "")), "task": str(record["task_key"]), "seed": str(record.get("seed", "")),
            "probe": str(probe), "protocol": str(record.get("protocol", "frozen-probe")),
            "preset": str(record.get("preset", "")), "label_fraction": str(record.get("label_fraction", 1.0)),
            "data": str((record.get("adaptation") or {}).get("dataset", "")), "git": str(record.get("git", "")),
            "stage": "result"}


def result_documents(record: dict[str, Any], predictions: Path) -> dict[str, Any]:
    """Per-class metrics and, for a classification task with stored predictions, the confusion
    matrix (per class 2x2 for multilabel), as MLflow artifacts."""
    documents: dict[str, Any] = {}
    per_class = (record.get("metrics") or {}).get("per_class_f1")
    if per_class:
        documents["per_class.json"] = {"f1": per_class}
    if record.get("task_kind") in ("binary", "multiclass", "multilabel") and predictions.is_file():
        import numpy as np
        from sklearn.metrics import confusion_matrix, multilabel_confusion_matrix

        with np.load(predictions, allow_pickle=False) as arrays:
            y_true, y_pred = arrays["y_true"], arrays["y_pred"]
        if record["task_kind"] == "multilabel":
            matrix = multilabel_confusion_matrix(y_true, y_pred).tolist()
            documents["confusion_matrix.json"] = {"kind": "multilabel", "per_class": matrix,
                                                  "layout": "[[tn, fp], [fn, tp]] per class"}
        else:
            labels = sorted(set(np.unique(y_true).tolist()) | set(np.unique(y_pred).tolist()))
            documents["confusion_matrix.json"] = {"kind": record["task_kind"], "labels": labels,
                                                  "rows": "true", "columns": "predicted",
                                                  "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()}
    return documents


def result_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """A result record's numbers as MLflow metrics: its scores and CI bounds."""
    ci = record.get("ci") or {}
    return {**{k: v for k, v in record["metrics"].items() if isinstance(v, (int, float))},
            "ci_low": ci.get("low"), "ci_high": ci.get("high")}


def sync(results_dir: str | Path, tracking_uri: str | None = None) -> dict[str, int]:
    """Log every pretraining and result record under ``results_dir`` that the MLflow store lacks
    (after a server was down, or a database was rebuilt), and replace the runs logged before runs
    were named, tagged and nested (no ``stage`` tag) by runs in today's layout. Counts: logged, present, skipped
    (unreadable files, each named in a warning), and failed (1 if tracking failed)."""
    from ecgbench.core.config import ConfigError

    store = ResultStore(results_dir)
    if not (store.root / "runs").is_dir():
        raise ConfigError(f"--results-dir {store.root}: no results there (no runs/ folder); pass the folder `ecgbench run` wrote")
    tracker = Tracker.for_results(store.root, tracking_uri)
    tracker.relayout = True  # runs logged before names, tags and nesting are replaced, not doubled
    counts = {"logged": 0, "present": 0, "skipped": 0}
    with tracker.invocation(f"ecgbench-sync-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}",
                            {"results_dir": str(store.root.resolve())}):
        for path in sorted(store.root.glob("runs/*/run.json")) + sorted(store.root.glob("runs/*/*/*.json")):
            try:
                record = read_json(path)
                logged = (tracker.log_pretrain(record, path.parent) if path.name == "run.json"
                          else tracker.log_result(record, path))
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                log.warning("%s: skipped, not a readable ecgbench record (%s)", path, error)
                counts["skipped"] += 1
                continue
            if tracker.offline:
                break
            counts["logged" if logged else "present"] += 1
    counts["failed"] = int(tracker.offline)
    return counts


# ----- the store: locks, first-use setup, owners -------------------------------------------
def _is_server(uri: str) -> bool:
    return uri.split(":", 1)[0].lower() in _SERVER_SCHEMES


def _sqlite_path(uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]) if uri.startswith(prefix) and len(uri) > len(prefix) else None


def _store_lock(uri: str, lock_dir: Path | None):
    """A file lock shared by every process that logs to this store on this file system."""
    from filelock import FileLock

    database = _sqlite_path(uri)
    if database is not None:
        path = database.with_name(f"{database.name}.lock")
    elif lock_dir is not None:
        path = Path(lock_dir) / "tracking.lock"
    else:
        return contextlib.nullcontext()
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, timeout=_LOCK_TIMEOUT_S)


def _prepare_sqlite(database: Path, artifact_root: Path | None) -> None:
    """Under the store lock: a database that MLflow can open, created in a temporary file and
    renamed into place (a kill mid-setup leaves only the temporary file), and rebuilt if it was
    left half-migrated by an earlier MLflow setup (moved aside, named in a warning)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(database.parent)
    if database.exists():
        problem = _schema_problem(database)
        if problem is None:
            return
        aside = database.with_name(f"{database.name}.broken-{datetime.now():%Y%m%dT%H%M%S}")
        for suffix in ("", "-journal", "-wal", "-shm"):  # a journal left beside would be applied to the new one
            if database.with_name(database.name + suffix).exists():
                os.replace(database.with_name(database.name + suffix), aside.with_name(aside.name + suffix))
        _forget_engines(database)
        log.warning("%s: unusable MLflow database (%s); moved to %s and rebuilt; the JSON results are "
                    "unaffected, `ecgbench track sync` logs them into it again", database, problem, aside.name)
    atomic_write(database, lambda tmp: _create_database(tmp, artifact_root))


def _create_database(path: Path, artifact_root: Path | None) -> None:
    """A new, fully migrated MLflow database at ``path``: a copy of this machine's empty
    template (:func:`_schema_template`) with the Default experiment's artifact location set,
    or migrated in place where no template can be kept."""
    artifact_uri = (artifact_root or path.parent / "mlartifacts").resolve().as_uri()
    template = _schema_template()
    if template is None:
        _migrate(path, artifact_uri)
        return
    shutil.copyfile(template, path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (f"{artifact_uri}/0",))


def _migrate(path: Path, artifact_uri: str) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(f"sqlite:///{path.resolve()}", artifact_uri)
    _forget_engines(path)  # the file is renamed next: no connection may outlive it


@functools.cache
def _schema_template() -> Path | None:
    """An empty MLflow database at the installed MLflow's latest schema, made once per machine
    and version under the user cache: a new sqlite store otherwise runs every one of MLflow's
    alembic migrations, seconds for each new results folder. None if it cannot be kept."""
    import mlflow
    from filelock import FileLock
    from mlflow.store.db.utils import _get_latest_schema_revision

    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecgbench" / "mlflow-schema"
    path = folder / f"mlflow-{mlflow.__version__}-{_get_latest_schema_revision()}.db"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.lock", timeout=_LOCK_TIMEOUT_S):
            if not path.exists() or _schema_problem(path) is not None:
                atomic_write(path, lambda tmp: _migrate(tmp, (folder / "mlartifacts").resolve().as_uri()))
    except (OSError, sqlite3.Error, TimeoutError) as error:
        log.debug("no MLflow schema template (%s); migrating each new database", error)
        return None
    return path


def _forget_engines(database: Path) -> None:
    """Close MLflow's cached connections to ``database`` (it caches one engine per URI, whose
    pooled connections would keep using a file that was renamed)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for uri, engine in list(SqlAlchemyStore._engine_map.items()):
        if engine.url.database and Path(engine.url.database).resolve() == database.resolve():
            SqlAlchemyStore._engine_map.pop(uri).dispose()


def _schema_problem(database: Path) -> str | None:
    """Why MLflow could not use this database (a migration left half done, a damaged file), or
    None. Opened read-write, so that SQLite first rolls back the journal of a process killed
    mid-write (read-only, that journal would make a sound database look broken); errors other
    than damage (locked, read-only, I/O) are raised, not taken for damage."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    try:
        with contextlib.closing(sqlite3.connect(database, timeout=60)) as db:
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                return "damaged (PRAGMA quick_check failed)"
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp"))
            if leftovers:
                return f"an interrupted migration left {leftovers[0]}"
            if "alembic_version" not in tables:
                return "no schema version"
            versions = [v for (v,) in db.execute("SELECT version_num FROM alembic_version")]
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as error:  # not a database, or malformed
        return str(error)
    head = _get_latest_schema_revision()
    return None if versions == [head] else f"schema version {versions or 'none'}, expected {head}"


def _owner_gone(tags: dict[str, str]) -> bool:
    """Whether the process that created a run has ended (unknown owners count as ended; a
    process on another host is assumed alive)."""
    host, _, pid = tags.get(OWNER_TAG, "").rpartition(":")
    if not pid.isdigit():
        return True
    return host == socket.gethostname() and not _alive(int(pid))


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """While the block runs, SIGTERM raises Terminated and SIGINT KeyboardInterrupt, so the
    open runs end KILLED on the way out (signal handlers exist only in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        print("ecgbench: terminated (SIGTERM); rerun the same command to resume", file=sys.stderr)
        raise Terminated()

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, terminate),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:_MAX_PARAM_LENGTH]
