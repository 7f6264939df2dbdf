"""Data loading for ``ecgbench bench --data``: loading a prepared array store vs a per-record
``wfdb.rdsamp`` loop over the same WFDB records (the habit of the reference PTB-XL benchmark),
and a cache hit of the store vs the mmap floor: ``np.load(mmap_mode="r")`` of the same
``signals.npy`` plus ``pandas.read_csv`` of its ``meta.csv``, what any cache of these arrays
costs at least. Both sides end with every sample read.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_READ = "\nimport numpy as np\nfloat(np.asarray(signals).sum())"
_FLOOR = "import numpy as np, pandas as pd\nsignals = np.load({store!r}, mmap_mode='r')\npd.read_csv({meta!r})"


def bench_wfdb_vs_prepared(record_stems: list[Path], load_prepared: Callable[[], np.ndarray],
                           max_records: int | None = None) -> dict[str, float]:
    """Seconds to read the records one by one with ``wfdb.rdsamp`` vs to load the prepared set.

    ``load_prepared()`` is the whole prepared-store path (e.g. a cache-hit ``load()``: metadata,
    cache key, memmap); it is timed together with touching every sample (a sum), so both sides
    end with every sample read. Run it after the records were read once (a first prepare), so
    the page cache favours neither side.
    """
    import wfdb

    stems = record_stems[:max_records] if max_records else record_stems
    clock = time.perf_counter()
    total = 0.0
    for stem in stems:
        signal, _ = wfdb.rdsamp(str(stem))
        total += float(signal[0, 0])
    wfdb_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    subset = load_prepared()[: len(stems)]
    checksum = float(np.asarray(subset, dtype=np.float32).sum())
    prepared_seconds = time.perf_counter() - clock
    return {
        "records": len(stems),
        "wfdb_rdsamp_seconds": round(wfdb_seconds, 3),
        "prepared_seconds": round(prepared_seconds, 4),
        "speedup": round(wfdb_seconds / max(prepared_seconds, 1e-9), 1),
        "checksum": checksum if math.isfinite(checksum) else None,
    }


def bench_cache_hit_vs_floor(load_signals: Callable[[], np.ndarray], store: Path, hit_code: str,
                             rounds: int = 5) -> dict[str, Any]:
    """Median seconds of a cache hit against the mmap floor on the same store, interleaved.

    ``load_signals()`` is the loader's whole cache-hit path in this process; ``hit_code`` the
    same as Python source run in a fresh interpreter (it defines ``signals``), so the
    fresh-process figures include interpreter start and imports on both sides. ``store`` is the
    prepared ``signals.npy``, with ``meta.csv`` beside it.
    """
    floor_code = _FLOOR.format(store=str(store), meta=str(Path(store).with_name("meta.csv")))
    load = os.getloadavg()[0]
    timings: dict[str, list[float]] = {key: [] for key in ("hit", "floor", "fresh_hit", "fresh_floor")}
    for _ in range(rounds):
        timings["hit"].append(_timed(lambda: _read_all(load_signals())))
        timings["floor"].append(_timed(lambda: _floor(Path(store))))
        timings["fresh_hit"].append(_timed(lambda: _fresh_process(hit_code + _READ)))
        timings["fresh_floor"].append(_timed(lambda: _fresh_process(floor_code + _READ)))
    median = {key: statistics.median(values) for key, values in timings.items()}
    return {
        "cache_hit_seconds": round(median["hit"], 4), "mmap_floor_seconds": round(median["floor"], 4),
        "cache_hit_over_floor": round(median["hit"] / max(median["floor"], 1e-9), 2),
        "fresh_process_cache_hit_seconds": round(median["fresh_hit"], 3),
        "fresh_process_mmap_floor_seconds": round(median["fresh_floor"], 3),
        "fresh_process_cache_hit_over_floor": round(median["fresh_hit"] / max(median["fresh_floor"], 1e-9), 2),
        "floor_rounds": rounds, "load_avg_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def _floor(store: Path) -> float:
    import pandas as pd

    signals = np.load(store, mmap_mode="r")
    pd.read_csv(store.with_name("meta.csv"))
    return _read_all(signals)


def _read_all(signals: np.ndarray) -> float:
    return float(np.asarray(signals).sum())


def _timed(run: Callable[[], Any]) -> float:
    clock = time.perf_counter()
    run()
    return time.perf_counter() - clock


def _fresh_process(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
