"""Data loading for ``ecgbench bench --data``: loading a prepared array store vs a per-record
``wfdb.rdsamp`` loop over the same WFDB records (the habit of the reference PTB-XL benchmark).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np


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
