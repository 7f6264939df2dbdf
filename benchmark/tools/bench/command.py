"""``ecgbench bench`` end to end: time the methods (and ``--data`` loading), print the tables and
write the JSON record under ``<results-dir>/bench/``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ecgbench.core.config import ConfigError
from ecgbench.core.store import write_json
from ecgbench.tools.bench.figures import BenchSettings
from ecgbench.tools.bench.loading import bench_cache_hit_vs_floor, bench_wfdb_vs_prepared
from ecgbench.tools.bench.render import bench_record, render_bench
from ecgbench.tools.bench.timing import run_bench


def bench_and_write(methods: list[str], settings: BenchSettings, results_dir: str | Path, out: str | Path | None,
                    data: str | None = None, data_root: str | Path | None = None,
                    data_records: int | None = None) -> Path:
    """Run the bench, print its tables and return where its JSON record went."""
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("benchmarking") as status:
        results = run_bench(methods, settings, console, on_method=lambda m: status.update(f"benchmarking {m}"))
    extra = {}
    if data:
        extra["data_loading"] = bench_data_loading(data, data_root, data_records, console)
    print(render_bench(results))
    if "data_loading" in extra:
        print("\ndata loading: " + ", ".join(f"{k} {v}" for k, v in extra["data_loading"].items()))
    record = bench_record(results, settings, extra)
    path = Path(out) if out else (
        Path(results_dir) / "bench" / f"bench-{settings.preset}-{record['device'].replace(':', '')}-"
        f"{record['created'].replace(':', '')}.json")
    write_json(path, record)
    console.log(f"bench written to {path}")
    return path


def bench_data_loading(name: str, data_root: str | Path | None, max_records: int | None, console,
                       floor_rounds: int = 5) -> dict:
    """``--data NAME``: the prepared store's load against a per-record wfdb loop on its records,
    and its cache hit against the mmap floor on the same store (in this process and as fresh
    processes)."""
    from ecgbench.data.datasets import data_root as resolve_root
    from ecgbench.data.datasets import dataset_module

    module = dataset_module(name)
    if not hasattr(module, "find_source"):
        raise ConfigError(f"--data {name}: only WFDB datasets with a prepared store can be compared")
    root = resolve_root(data_root)
    clock = time.perf_counter()
    recordings = module.load(root, allow_subset=True)
    prepare_seconds = time.perf_counter() - clock
    source = module.find_source(root)
    stems = [source / f for f in recordings.meta["filename"]]
    console.log(f"{name}: {len(stems)} records; load (including a first prepare) {prepare_seconds:.1f} s")

    def load() -> np.ndarray:  # the cache-hit path
        return module.load(root, allow_subset=True).signals

    report = {"dataset": name, "load_or_prepare_seconds": round(prepare_seconds, 2),
              **bench_wfdb_vs_prepared(stems, load, max_records)}
    store = getattr(recordings.signals, "filename", None)  # a memmap names its signals.npy
    if store:
        hit_code = (f"from ecgbench.data.datasets import dataset_module\n"
                    f"signals = dataset_module({name!r}).load({str(root)!r}, allow_subset=True).signals")
        report.update(bench_cache_hit_vs_floor(load, Path(store), hit_code, floor_rounds))
        console.log(f"{name}: cache hit {report['fresh_process_cache_hit_over_floor']}x the mmap floor "
                    f"as fresh processes, {report['cache_hit_over_floor']}x after imports")
    return report
