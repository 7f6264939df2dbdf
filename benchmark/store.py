"""The result store: JSON files are the truth; checkpoints and embeddings are caches.

Layout under the results directory (``--results-dir``, default ``./results``)::

    runs/<run_id>/run.json                                  pretraining record (config, stats)
    runs/<run_id>/<task>@v<version>/<result_name>.json      one result per key
    cache/checkpoints/<run_id>.pt (+ .partial.pt while training)
    cache/embeddings/<run_id>/<dataset>-<version>-<input>.npy
    cache/locks/<run_id>.lock                               held while a run pretrains
    tables/                                                 generated markdown
    mlflow.db, mlartifacts/                                 default MLflow store (a view)

Every write goes to a temporary file in the same folder and is renamed into place, so a
killed run never leaves a half-written file that a later run would trust.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then rename ``tmp`` onto ``path`` (same folder, so rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # the pid in the name lets remove_stale_temps clear what a killed process left behind
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-{os.getpid()}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def prepare_cache_folder(folder: Path, error: type[Exception]) -> None:
    """Create a dataset's cache folder (or raise ``error`` naming it) and clear what killed
    preparations left in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as cause:
        raise error(f"{folder}: cannot create the cache folder ({cause.strerror}); "
                    "pass cache_dir= a writable folder") from None
    remove_stale_temps(folder)


def remove_stale_temps(folder: Path) -> None:
    """Delete ``<name>.tmp-<pid>[.ext]`` files of killed preparations (their pid is gone).

    Dataset preparations write such per-process temp files (they can be GBs); a live pid's file
    belongs to a concurrent preparation and is left alone.
    """
    for path in Path(folder).glob("*.tmp-*"):
        pid = path.name.split(".tmp-")[1].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _strict(value: Any) -> Any:
    """NaN and infinities become null, so the files are strict JSON for any reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    def dump(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(_strict(data), handle, indent=2, sort_keys=True, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())

    atomic_write(path, dump)


def write_npy(path: Path, array: Any) -> None:
    import numpy as np

    def dump(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle, because np.save(path) would append ".npy"
            np.save(handle, array)

    atomic_write(path, dump)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None


class ResultStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ----- paths -------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def run_record(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "run.json"

    def result_path(self, run_id: str, task_key: str, result_name: str) -> Path:
        return self.run_dir(run_id) / task_key / f"{result_name}.json"

    def checkpoint(self, run_id: str) -> Path:
        return self.root / "cache" / "checkpoints" / f"{run_id}.pt"

    def partial_checkpoint(self, run_id: str) -> Path:
        return self.root / "cache" / "checkpoints" / f"{run_id}.partial.pt"

    @contextlib.contextmanager
    def lock(self, run_id: str) -> Iterator[None]:
        """Hold an exclusive lock on one run's pretraining (shards sharing a results directory).

        ``fcntl.flock`` on ``cache/locks/<run_id>.lock``: a second process that wants the same
        run waits, then finds the checkpoint and reuses it instead of training it again. The
        lock ends with the process, so a killed shard never leaves a stale lock behind.
        """
        import fcntl

        path = self.root / "cache" / "locks" / f"{run_id}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def embeddings(self, run_id: str, name: str) -> Path:
        return self.root / "cache" / "embeddings" / run_id / f"{name}.npy"

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def default_tracking_uri(self) -> str:
        return f"sqlite:///{(self.root / 'mlflow.db').resolve()}"

    # ----- reading -----------------------------------------------------------------------
    def results(self) -> Iterator[dict[str, Any]]:
        """Every stored result record (not run records), in a stable order."""
        for path in sorted((self.root / "runs").glob("*/*/*.json")):
            yield read_json(path)

    def runs(self) -> Iterator[dict[str, Any]]:
        for path in sorted((self.root / "runs").glob("*/run.json")):
            yield read_json(path)
