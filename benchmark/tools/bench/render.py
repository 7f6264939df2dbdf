"""What ``ecgbench bench`` shows and keeps: the speed table and the table of one preset
pretraining against the reported compute (:func:`render_bench`), and the JSON record of a bench
(:func:`bench_record`). Results print as a table and are written as JSON (temp file + rename)
under ``<results-dir>/bench/``.
"""

from __future__ import annotations

import dataclasses
import math
import platform
from datetime import datetime, timezone

from ecgbench.tools.bench.figures import NOT_REPORTED, BenchSettings, MethodBench, reported_compute


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _sig(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3g}"


def render_bench(results: list[MethodBench]) -> str:
    """The speed table, then the table of one preset pretraining against the reported compute."""
    return _render_speed(results) + "\n\n" + render_pretraining(results)


def render_pretraining(results: list[MethodBench]) -> str:
    from tabulate import tabulate

    rows = []
    for r in results:
        reported = r.reported_compute or reported_compute(r.method)
        rows.append([r.method, r.preset_max_steps, r.preset_batch_size, _num(r.pretrain_hours, 2),
                     reported.get("hardware", NOT_REPORTED), reported.get("time", NOT_REPORTED),
                     reported.get("epochs", NOT_REPORTED), reported.get("source", "")])
    headers = ["method", "steps", "batch", "one pretraining here (h)", "reported hardware",
               "reported time", "reported epochs", "source"]
    return tabulate(rows, headers=headers, tablefmt="github")


def _render_speed(results: list[MethodBench]) -> str:
    from tabulate import tabulate

    rows = []
    for r in results:
        probe_total = sum(r.probe_fit_seconds.values()) if r.probe_fit_seconds else None
        rows.append([
            r.method, r.batch_size, _num(r.encoder_parameters / 1e6, 2), _num(r.train_samples_per_s),
            _num(r.loader_samples_per_s), _num(r.busy_fraction, 2), _num(r.compiled_samples_per_s),
            "-" if r.compiled_graphs is None else r.compiled_graphs,
            _sig(r.flops_per_sample / 1e9 if r.flops_per_sample else None), _sig(r.achieved_tflops),
            _num(100 * r.mfu if r.mfu is not None else None, 1),
            _num(100 * r.compiled_mfu if r.compiled_mfu is not None else None, 1), _num(r.peak_memory_mb, 0),
            _num(r.embed_samples_per_s), _num(probe_total, 2), r.error or "",
        ])
    headers = ["method", "batch", "enc. params (M)", "train samples/s", "with loader samples/s",
               "busy fraction", "compiled samples/s", "graphs", "GFLOP/sample (fwd+bwd)", "TFLOP/s", "MFU %",
               "compiled MFU %", "peak mem (MB)", "embed samples/s", "probe fit s (5 probes)", "note"]
    return tabulate(rows, headers=headers, tablefmt="github")


def bench_record(results: list[MethodBench], settings: BenchSettings, extra: dict | None = None) -> dict:
    import torch

    device = results[0].device if results else settings.device
    return {
        "settings": dataclasses.asdict(settings),
        "device": device,
        "device_name": (torch.cuda.get_device_name(0) if device.startswith("cuda")
                        else platform.processor() or platform.machine()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "methods": [dataclasses.asdict(r) for r in results],
        **(extra or {}),
    }
