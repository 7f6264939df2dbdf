"""The result store: JSON files are the truth; checkpoints and embeddings are caches.

Layout under the results directory (``--results-dir``, default ``./results``)::

    runs/<run_id>/run.json                                  pretraining record (config, stats)
    runs/<run_id>/<task>@v<version>/<result_name>.json      one result per key
    cache/checkpoints/<run_id>.pt (+ .partial.pt while training)
    cache/embeddings/<run_id>/<dataset>-<version>-<input>.npy
    cache/locks/<run_id>.lock                               held while a run pretrains
    leaderboard-tests.json                                  the leaderboard's stored significance tests
    tables/                                                 generated markdown
    mlflow.db, mlartifacts/                                 default MLflow store (a view)

Paired-bootstrap resample values are cached outside it, under the user's cache
(:func:`ecgbench.evaluation.stats.bootstrap_cache_dir`), so reading results writes nothing here.

Every write goes to a temporary file in the same folder and is renamed into place, so a
killed run never leaves a half-written file that a later run would trust; files get the mode
the umask allows, and a full disk is one line naming the file. A damaged or foreign file is
never fatal: readers of results skip it and stages recompute it, with a warning naming it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ecgbench.core.config import RunFailed

# Fields every result record has (tables, leaderboard and check group by them); a JSON file
# under runs/ without them is foreign or damaged and is skipped with a warning.
RESULT_FIELDS = ("method", "task", "task_key", "task_kind", "main_metric", "probe", "protocol",
                 "preset", "seed", "metrics")
RUN_FIELDS = ("run_id", "run_config", "train")
# Errors of the disk itself while ``write`` fills the temp file (others are the writer's own).
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)
NEARLY_FULL = 1 << 20  # bytes free below which a failed write is taken for a full disk
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import: setting it again later would race with other threads
FILE_MODE = 0o666 & ~_UMASK  # what open() would give; mkstemp's temp files are 0600


class StoreError(RunFailed):
    """A results or cache file that cannot be written; one line naming the file."""


def warn(message: str) -> None:
    print(f"ecgbench: warning: {message}", file=sys.stderr)


def _write_error(path: Path, error: OSError) -> StoreError:
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        advice = f"free space under {path.parent} and rerun the same command (finished results are kept)"
    else:
        advice = f"make {path.parent} writable or pass another --results-dir"
    return StoreError(f"{path}: cannot write ({error.strerror or error}); {advice}")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then rename ``tmp`` onto ``path`` (same folder, so rename is atomic).

    The file gets the mode the umask allows, like any file ``open`` creates. A full or
    read-only disk raises a :class:`StoreError` naming ``path``.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the pid in the name lets remove_stale_temps clear what a killed process left behind
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-{os.getpid()}.",
                                            suffix=".tmp")
        os.close(handle)
    except OSError as error:
        raise _write_error(path, error) from None
    tmp = Path(tmp_name)
    try:
        try:
            write(tmp)
        except OSError as error:
            if error.errno in _DISK_ERRORS:
                raise _write_error(path, error) from None
            raise
        except RuntimeError:  # torch.save reports a full disk without an errno
            if shutil.disk_usage(path.parent).free < NEARLY_FULL:
                raise _write_error(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) from None
            raise
        try:
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, path)
        except OSError as error:
            raise _write_error(path, error) from None
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
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not valid JSON (not UTF-8 text)") from None


def read_record(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object with the ``required`` fields, else ValueError naming ``path``."""
    try:
        record = read_json(path)
    except OSError as error:
        raise ValueError(f"{path}: unreadable ({error.strerror or error})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}: holds a JSON {type(record).__name__}, not an object")
    missing = [name for name in required if name not in record]
    if missing:
        raise ValueError(f"{path}: lacks {', '.join(missing)}")
    return record


def cached_record(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """A cached stage output, or None when it is missing or damaged (a warning names the file
    and says it is recomputed)."""
    if not path.exists():
        return None
    try:
        return read_record(path, required)
    except ValueError as error:
        warn(f"{error}; recomputing it")
        return None


def cached_array(path: Path, shape: tuple[int, ...] | None = None) -> Any:
    """A cached ``.npy`` (embeddings), or None when it is missing, truncated or not ``shape``
    (a warning names the file and says it is recomputed)."""
    import numpy as np

    if not path.exists():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        warn(f"{path}: unreadable array ({str(error).splitlines()[0][:80]}); recomputing it")
        return None
    if shape is not None and tuple(array.shape) != tuple(shape):
        warn(f"{path}: shape {tuple(array.shape)}, expected {tuple(shape)}; recomputing it")
        return None
    return array


# Where a run writes by default: never the repository's committed results/ (the leaderboard's
# truth), so a smoke run in a clone cannot mix into it. ``$ECGBENCH_RESULTS`` overrides it.
DEFAULT_RESULTS_DIR = "ecgbench-results"


def default_results_dir() -> str:
    """``$ECGBENCH_RESULTS``, else ``./ecgbench-results`` (gitignored)."""
    import os

    return os.environ.get("ECGBENCH_RESULTS") or DEFAULT_RESULTS_DIR


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

    def embeddings_dir(self, run_id: str) -> Path:
        return self.root / "cache" / "embeddings" / run_id

    def embeddings(self, run_id: str, name: str) -> Path:
        return self.embeddings_dir(run_id) / f"{name}.npy"

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def default_tracking_uri(self) -> str:
        return f"sqlite:///{(self.root / 'mlflow.db').resolve()}"

    # ----- reading -----------------------------------------------------------------------
    def results(self) -> Iterator[dict[str, Any]]:
        """Every stored result record (not run records), in a stable order; a damaged or
        foreign JSON file is skipped with a warning naming it."""
        yield from self._records("*/*/*.json", RESULT_FIELDS, "result")

    def runs(self) -> Iterator[dict[str, Any]]:
        yield from self._records("*/run.json", RUN_FIELDS, "run")

    def _records(self, pattern: str, required: tuple[str, ...], kind: str) -> Iterator[dict[str, Any]]:
        for path in sorted((self.root / "runs").glob(pattern)):
            try:
                yield read_record(path, required)
            except ValueError as error:
                warn(f"{error}; skipped as a {kind} record (delete it; 'ecgbench run' recomputes it)")
