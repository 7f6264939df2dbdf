"""Per-record measurement tables (clinical parameters, ECG features), measured once and cached.

An :class:`Extractor` measures one record at a time on the record as an encoder sees it (its
leads at the encoder's rate: its valid windows joined end to end). :func:`record_table` keeps
one table per dataset (name, version, content fingerprint), input spec, extractor and extractor
version, by record id, so any subset of the dataset reuses it and a call measures only the
records the table lacks (under a file lock: processes sharing the cache measure each record
once; atomic writes: a killed run leaves no half-written table). Many records are measured in
worker processes (:func:`map_rows`).
"""

from __future__ import annotations

import dataclasses
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgbench.core.config import short_hash
from ecgbench.core.contracts import InputSpec, Recordings
from ecgbench.core.store import write_json

PARALLEL_FROM = 16  # records: below this, starting worker processes costs more than it saves


@dataclass(frozen=True)
class Extractor:
    """What a table holds: ``measure(signals, fs, leads, n_jobs)`` turns one ``(leads, T_i)``
    signal per record into one row of ``columns(spec)`` each, every value finite."""

    name: str  # the table's file prefix
    version: int  # bump when a measurement changes: it is part of every table's key
    columns: Callable[[InputSpec], tuple[str, ...]]
    measure: Callable[[list[np.ndarray], float, tuple[str, ...], int], np.ndarray]


def map_rows(measure_one: Callable[[np.ndarray, float, tuple[str, ...]], np.ndarray], signals: list[np.ndarray],
             fs: float, leads: tuple[str, ...], n_jobs: int = -1) -> list[np.ndarray]:
    """``measure_one(signal, fs, leads)`` for every signal, in worker processes when there are many."""
    if len(signals) < PARALLEL_FROM or n_jobs == 1:
        return [measure_one(s, fs, leads) for s in signals]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ecgbench.core.machine import usable_cores

    workers = usable_cores() if n_jobs < 1 else n_jobs
    # a pool that ends with the call: joblib's reusable loky workers idle on for minutes, and a
    # process that started them waits for them before it can exit
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(measure_one, signals, [fs] * len(signals), [leads] * len(signals),
                             chunksize=max(1, len(signals) // (8 * workers))))


def table_path(data: Recordings, spec: InputSpec, cache_dir: Path, extractor: Extractor) -> Path:
    """The table of ``data``'s dataset (name, version, content fingerprint) for ``spec``: one
    row per record measured so far, whatever subset asked for it."""
    content = f"-{data.fingerprint}" if data.fingerprint else ""
    return Path(cache_dir) / (f"{extractor.name}-{data.name}-{data.version}{content}-{short_hash(spec, 8)}"
                              f"-x{extractor.version}.npz")


def record_table(data: Recordings, spec: InputSpec, cache_dir: Path, extractor: Extractor,
                 n_jobs: int = -1) -> np.ndarray:
    """(N, columns) float32: ``extractor``'s row for every record of ``data`` as ``spec`` adapts it."""
    from filelock import FileLock

    path = table_path(data, spec, cache_dir, extractor)
    columns = extractor.columns(spec)
    ids = np.asarray([str(r) for r in data.meta["record_id"]])
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        known = _read_table(path, len(columns), extractor.name)
        missing = np.flatnonzero([record not in known for record in ids])
        if len(missing):
            measured = extractor.measure(_joined_windows(data, missing, spec), spec.fs, tuple(spec.leads), n_jobs)
            known.update(zip(ids[missing], measured))
            _write_table(path, known, data, spec, extractor, columns)
    return np.stack([known[record] for record in ids]).astype(np.float32)


def _joined_windows(data: Recordings, rows: np.ndarray, spec: InputSpec) -> list[np.ndarray]:
    """Each record at the encoder's leads and rate: its valid windows joined end to end."""
    from ecgbench.data.adapt import adapt

    subset = dataclasses.replace(data, signals=np.asarray(data.signals[rows]),
                                 meta=data.meta.iloc[rows].reset_index(drop=True))
    adapted = adapt(subset, spec)  # (n, W, leads, samples)
    return [np.concatenate(list(windows[valid]), axis=-1)  # (leads, valid windows * samples)
            for windows, valid in zip(adapted.windows, adapted.valid)]


def _read_table(path: Path, n_columns: int, name: str) -> dict[str, np.ndarray]:
    """record id -> row; empty when the table is missing or damaged (measured again)."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as table:
            ids, features = table["record_id"], table["features"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        logging.getLogger(__name__).warning("%s: unreadable %s table; measuring again", path, name)
        return {}
    if features.shape != (len(ids), n_columns):
        return {}
    return dict(zip(ids.astype(str), features))


def _write_table(path: Path, known: dict[str, np.ndarray], data: Recordings, spec: InputSpec,
                 extractor: Extractor, columns: tuple[str, ...]) -> None:
    from ecgbench.core.store import atomic_write

    ids = np.asarray(sorted(known))
    features = np.stack([known[record] for record in ids]).astype(np.float32)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would append .npz to a path
            np.savez(handle, record_id=ids, features=features)

    atomic_write(path, save)
    write_json(path.with_suffix(".json"), {
        "dataset": f"{data.name}@{data.version}", "fingerprint": data.fingerprint,
        "records": len(ids), "input_spec": repr(spec), "extractor": extractor.name,
        "extractor_version": extractor.version, "columns": list(columns),
        f"mean_{columns[-1]}_per_record": round(float(features[:, -1].mean()), 3),
    })
