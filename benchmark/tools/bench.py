"""``ecgbench bench``: how fast each method pretrains, embeds and probes, on this machine.

Correctness lives in the tests; speed lives here. Every figure is measured, never assumed:

* **pretraining**: optimiser steps on a staged device batch (the method's preset batch size,
  its real ``training_step``, the trainer's bf16 autocast on CUDA), timed after warm-up steps
  with one device synchronisation at each end of the timed loop, never inside it. Samples/s,
  peak memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU: peak resident set size of the
  process, an upper bound) and, from a FLOP count of one forward/backward pass
  (:class:`torch.utils.flop_counter.FlopCounterMode`), achieved TFLOP/s and the model FLOPs
  utilisation (MFU) against the device's dense bf16 peak, when the device is known.
* **loader**: the same steps fed by the trainer's real ``DataLoader`` over a window array; the
  ratio staged / loader time is the fraction of wall time the device is busy with compute
  (1.0 means data loading never holds the step back).
* **torch.compile** (CUDA, ``--compile``): the same staged-batch loop with the compiled
  ``training_step``; reported beside eager (with its own MFU and the number of graphs compiled,
  which stays 1 for ECG-JEPA's varying mask sizes) so the flag is used only where it helps.
* **batch size** (``--batch-size auto``, CUDA): the preset's batch doubled while one training
  step fits in :data:`AUTO_BATCH_MEMORY_FRACTION` of the device memory (an out-of-memory error
  counts as not fitting); on the CPU the preset's batch is kept.
* **one pretraining**: the wall-clock time of the preset's whole pretraining (``max_steps`` x
  the preset's batch windows) at the measured samples/s (the faster of eager and compiled),
  next to the compute the source paper or seed report states (:data:`REPORTED_COMPUTE`).
* **embedding**: frozen ``embed`` throughput in eval mode.
* **probes**: fit time of each probe (small grid) on random embeddings of the method's width.
* **data** (``--data``): loading a prepared array store vs a per-record ``wfdb.rdsamp`` loop over
  the same WFDB records (the habit of the reference PTB-XL benchmark).

Results print as a table and are written as JSON (temp file + rename) under
``<results-dir>/bench/``.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' datasheets, matched on device name.
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 80GB HBM3": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10G": 70.0,
}


# The compute each method's seed report (000-004) states for its training, with where it says
# so; "not reported" where the source is silent. The original papers were not checked here.
NOT_REPORTED = "not reported"
REPORTED_COMPUTE: dict[str, dict[str, str]] = {
    "nerula": {"hardware": "1x NVIDIA GeForce RTX 4090", "time": NOT_REPORTED, "epochs": NOT_REPORTED,
               "source": "seed 002 (NERULA, arXiv:2405.19348) Sec. 5.2, for all its experiments"},
    "st-mem": {"hardware": NOT_REPORTED, "time": NOT_REPORTED, "epochs": NOT_REPORTED,
               "source": "seed 003 (ST-MEM/ECG-JEPA report): no compute stated"},
    "ecg-jepa": {"hardware": NOT_REPORTED, "time": NOT_REPORTED, "epochs": NOT_REPORTED,
                 "source": "seed 003 (ST-MEM/ECG-JEPA report): no compute stated"},
    "dual-view": {"hardware": "2x NVIDIA GB10 (256 GB)", "time": "10 h",
                  "epochs": "not reported (a 5-epoch warm start)",
                  "source": "seed 001 (dual-view report), Training"},
    "transform-cnn": {"hardware": NOT_REPORTED, "time": "~1.3 h until convergence",
                      "epochs": NOT_REPORTED, "source": "seed 000 Table 1 (no skip connections)"},
    "transform-cnn-res1": {"hardware": NOT_REPORTED, "time": "~1.1 h until convergence",
                           "epochs": NOT_REPORTED, "source": "seed 000 Table 1 (skip in block 1)"},
    "transform-cnn-res12": {"hardware": NOT_REPORTED, "time": "~1.1 h until convergence",
                            "epochs": NOT_REPORTED, "source": "seed 000 Table 1 (skips in blocks 1-2)"},
    "transform-cnn-res123": {"hardware": NOT_REPORTED, "time": "~1.05 h until convergence",
                             "epochs": NOT_REPORTED, "source": "seed 000 Table 1 (skips in all blocks)"},
}
# Families that take their entry from the method they follow.
_REPORTED_FAMILY = {"nerula-": "nerula", "simclr-lead2": "nerula", "st-mem-": "st-mem",
                    "ecg-jepa-": "ecg-jepa", "dual-view-": "dual-view"}

# ``--batch-size auto``: grow the batch while a step's peak memory stays under this fraction.
AUTO_BATCH_MEMORY_FRACTION = 0.85
AUTO_BATCH_MAX_DOUBLINGS = 6


def reported_compute(method: str) -> dict[str, str]:
    """The pretraining compute the method's source reports (hardware, time, epochs, source)."""
    if method in REPORTED_COMPUTE:
        return REPORTED_COMPUTE[method]
    for prefix, family in _REPORTED_FAMILY.items():
        if method.startswith(prefix):
            return REPORTED_COMPUTE[family]
    return {"hardware": NOT_REPORTED, "time": NOT_REPORTED, "epochs": NOT_REPORTED,
            "source": "no seed report states compute for this method"}


def pretraining_hours(max_steps: int, batch_size: int, samples_per_s: float | None) -> float | None:
    """Wall-clock hours of ``max_steps`` optimiser steps of ``batch_size`` windows at a measured
    ``samples_per_s`` (steps x batch / samples/s); None without a positive throughput."""
    if not samples_per_s or not math.isfinite(samples_per_s) or samples_per_s <= 0:
        return None
    return max_steps * batch_size / samples_per_s / 3600.0


def largest_batch(fits: Callable[[int], bool], start: int, max_doublings: int = AUTO_BATCH_MAX_DOUBLINGS) -> int:
    """The largest of ``start * 2**k`` (k <= ``max_doublings``) for which ``fits`` holds, trying
    them in order and stopping at the first that does not; ``start`` if even that fails."""
    best = start
    for k in range(1, max_doublings + 1):
        if not fits(start * 2**k):
            break
        best = start * 2**k
    return best


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in device_name:
            return value
    return None


@dataclass
class BenchSettings:
    preset: str = "smoke"
    device: str = "auto"
    steps: int = 10
    warmup: int = 3
    batch_size: int | str | None = None  # default: the method's preset batch size; "auto": fit to memory
    compile: bool = False
    probe_records: int = 2000  # 0: no probe timings
    embed_batches: int = 5
    overrides: dict[str, str] = field(default_factory=dict)


@dataclass
class MethodBench:
    method: str
    preset: str
    device: str
    batch_size: int
    parameters: int
    encoder_parameters: int
    train_samples_per_s: float
    train_step_ms: float
    peak_memory_mb: float
    peak_memory_kind: str
    flops_per_sample: float | None = None
    achieved_tflops: float | None = None
    mfu: float | None = None
    loader_samples_per_s: float | None = None
    busy_fraction: float | None = None
    compiled_samples_per_s: float | None = None
    compiled_mfu: float | None = None
    compiled_graphs: int | None = None  # graphs torch.compile built over the timed steps
    preset_batch_size: int | None = None
    preset_max_steps: int | None = None
    pretrain_hours: float | None = None  # one preset pretraining at the faster measured speed
    reported_compute: dict[str, str] = field(default_factory=dict)
    embed_samples_per_s: float | None = None
    probe_fit_seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None


# ----- helpers ------------------------------------------------------------------------------
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _random_batch(method, batch_size: int, device, generator) -> dict[str, Any]:
    import torch

    spec = method.input_spec
    signal = torch.randn(batch_size, len(spec.leads), spec.n_samples, generator=generator)
    batch = {
        "signal": signal,
        "patient_id": torch.arange(batch_size) // 2,  # pairs of windows per patient (CLOCS)
        "record_index": torch.arange(batch_size),
    }
    if getattr(method, "uses_labels", False):
        batch["label"] = torch.randint(0, 2, (batch_size,), generator=generator)
    return {k: v.to(device) for k, v in {**batch, **_derived_inputs(method, batch_size)}.items()}


def _derived_inputs(method, batch_size: int) -> dict[str, Any]:
    """Typical per-record inputs for a method that takes them (ecg-jepa-hybrid's clinical
    parameters), so its step and embedding run as in a real run."""
    if getattr(method, "derived_input", None) != "clinical":
        return {}
    import torch

    from ecgbench.data.clinical import N_COLUMNS, TYPICAL_VALUES

    row = torch.tensor([*TYPICAL_VALUES, 0.0][:N_COLUMNS], dtype=torch.float32)
    return {"clinical": row.expand(batch_size, -1).contiguous()}


def _prepare_method(method, device):
    if getattr(method, "uses_labels", False):
        method.setup_task("binary", 1)  # as the runner sets up a binary task (one logit)
    method.to(device).train()
    return method.configure_optimizer()


def _step_fn(method, optimizer, device) -> Callable[[dict], Any]:
    import torch

    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    clip = float(getattr(method.config, "grad_clip", 0.0))
    params = method.trainable_parameters()

    def step(batch: dict, index: int = 0) -> Any:
        with autocast:
            loss = method.training_step(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        method.on_train_step_end(index, 1_000_000)
        return loss.detach()

    return step


def _timed(step: Callable, batches: Callable[[int], dict], steps: int, warmup: int, device) -> float:
    """Seconds per step, synchronising only before and after the timed loop."""
    for i in range(warmup):
        step(batches(i), i)
    _sync(device)
    clock = time.perf_counter()
    for i in range(steps):
        step(batches(warmup + i), warmup + i)
    _sync(device)
    return (time.perf_counter() - clock) / max(steps, 1)


def count_training_flops(method, batch: dict) -> float:
    """FLOPs of one forward + backward pass of ``training_step`` on ``batch`` (no update)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss = method.training_step(batch)["loss"]
        loss.backward()
    method.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


# ----- one method ---------------------------------------------------------------------------
def bench_method(name: str, settings: BenchSettings, device, console=None) -> MethodBench:
    import torch

    from ecgbench.running.runner import RunRequest, resolve

    plan = resolve(RunRequest(methods=[name], tasks=[], probes=[], seeds=[0], preset=settings.preset,
                              overrides=dict(settings.overrides), track=False,
                              pretrain_dataset="synthetic"))  # random batches: no data is read
    config = plan.method_configs[name]
    auto_batch = settings.batch_size == "auto"
    batch_size = int(config.batch_size if auto_batch or not settings.batch_size else settings.batch_size)
    from ecgbench.core.registry import METHODS

    cls = METHODS.get(name)
    torch.manual_seed(0)
    method = cls(config)
    if cls.base_method:  # a frozen-encoder variant: a fresh base stands in for its pretrained run
        method.init_from_base(METHODS.get(cls.base_method)(plan.method_configs[cls.base_method]))
    generator = torch.Generator().manual_seed(0)
    result = MethodBench(
        method=name, preset=settings.preset, device=str(device), batch_size=batch_size,
        parameters=sum(p.numel() for p in method.parameters()),
        encoder_parameters=sum(p.numel() for p in method.encoder.parameters()),
        train_samples_per_s=float("nan"), train_step_ms=float("nan"), peak_memory_mb=float("nan"),
        peak_memory_kind="cuda max allocated" if device.type == "cuda" else "process peak RSS",
        preset_batch_size=int(config.batch_size), preset_max_steps=int(config.max_steps),
        reported_compute=reported_compute(name),
    )
    if not cls.needs_training:
        result.train_samples_per_s = 0.0
        result.train_step_ms = 0.0
        result.peak_memory_mb = _peak_rss_mb()
    else:
        optimizer = _prepare_method(method, device)
        step = _step_fn(method, optimizer, device)
        if auto_batch and device.type == "cuda":
            batch_size = largest_batch(lambda b: _fits(method, step, b, device), batch_size)
            result.batch_size = batch_size
        staged = _random_batch(method, batch_size, device, generator)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = _timed(step, lambda i: staged, settings.steps, settings.warmup, device)
        result.train_step_ms = seconds * 1e3
        result.train_samples_per_s = batch_size / seconds
        result.peak_memory_mb = (torch.cuda.max_memory_allocated(device) / 2**20
                                 if device.type == "cuda" else _peak_rss_mb())
        _flops(method, staged, device, result)
        _loader(method, step, batch_size, device, settings, seconds, result)
        if settings.compile and device.type == "cuda":
            _compiled(method, optimizer, staged, device, settings, result)
        fastest = max(result.train_samples_per_s, result.compiled_samples_per_s or 0.0)
        result.pretrain_hours = pretraining_hours(config.max_steps, config.batch_size, fastest)
    _embedding(method, batch_size, device, settings, generator, result)
    if settings.probe_records > 0:
        result.probe_fit_seconds = probe_fit_seconds(method.embedding_dim, settings.probe_records)
    return result


def _fits(method, step, batch_size: int, device) -> bool:
    """Whether one training step at ``batch_size`` runs within the memory budget (CUDA)."""
    import torch

    batch = _random_batch(method, batch_size, device, torch.Generator().manual_seed(0))
    torch.cuda.reset_peak_memory_stats(device)
    try:
        step(batch)
        _sync(device)
    except torch.OutOfMemoryError:
        return False
    finally:
        del batch
        method.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(device).total_memory
    return torch.cuda.max_memory_allocated(device) <= AUTO_BATCH_MEMORY_FRACTION * total


def _flops(method, staged: dict, device, result: MethodBench) -> None:
    import torch

    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    with autocast:
        flops = count_training_flops(method, staged)
    if flops <= 0:
        return
    result.flops_per_sample = flops / result.batch_size
    result.achieved_tflops = flops / (result.train_step_ms / 1e3) / 1e12
    if device.type == "cuda":
        peak = peak_tflops(torch.cuda.get_device_name(device))
        if peak:
            result.mfu = result.achieved_tflops / peak


def _loader(method, step, batch_size: int, device, settings: BenchSettings, staged_seconds: float,
            result: MethodBench) -> None:
    import torch

    from ecgbench.models.train import WindowDataset, make_loader

    spec = method.input_spec
    n = batch_size * (settings.steps + settings.warmup)
    windows = np.random.default_rng(0).standard_normal((n, len(spec.leads), spec.n_samples), dtype=np.float32)
    dataset = WindowDataset(windows, np.arange(n) // 2, np.arange(n))
    loader = make_loader(dataset, batch_size, 0, device)  # exactly as the trainer loads
    batches = iter(loader)

    def next_batch(_: int) -> dict:
        batch = next(batches)
        if getattr(method, "uses_labels", False):
            batch["label"] = torch.zeros(batch_size, dtype=torch.long)
        batch.update(_derived_inputs(method, batch_size))
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    seconds = _timed(step, next_batch, settings.steps, settings.warmup, device)
    result.loader_samples_per_s = batch_size / seconds
    result.busy_fraction = min(1.0, staged_seconds / seconds)


def _compiled(method, optimizer, staged: dict, device, settings: BenchSettings, result: MethodBench) -> None:
    import torch
    from torch._dynamo.utils import counters

    eager = method.training_step
    try:
        method.training_step = torch.compile(eager)
        step = _step_fn(method, optimizer, device)
        graphs = counters["stats"]["unique_graphs"]
        seconds = _timed(step, lambda i: staged, settings.steps, settings.warmup + 2, device)
        result.compiled_graphs = counters["stats"]["unique_graphs"] - graphs
        result.compiled_samples_per_s = result.batch_size / seconds
        if result.mfu is not None and result.achieved_tflops:
            result.compiled_mfu = result.mfu * result.compiled_samples_per_s / result.train_samples_per_s
    except Exception as error:  # report, do not abort the bench: compile support varies by model
        result.error = f"torch.compile failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    finally:
        method.training_step = eager


def _embedding(method, batch_size: int, device, settings: BenchSettings, generator, result: MethodBench) -> None:
    import torch

    method.to(device).eval()
    spec = method.input_spec
    x = torch.randn(batch_size, len(spec.leads), spec.n_samples, generator=generator).to(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    derived = {k: v.to(device) for k, v in _derived_inputs(method, batch_size).items()}

    def step(batch, _i):
        with torch.no_grad(), autocast:
            return method.embed(batch, **derived)

    seconds = _timed(step, lambda i: x, settings.embed_batches, 1, device)
    result.embed_samples_per_s = batch_size / seconds


def probe_fit_seconds(width: int, n_records: int, seed: int = 0) -> dict[str, float]:
    """Seconds to fit each probe (small grid, with validation selection) on random embeddings."""
    from ecgbench.evaluation import probes

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_records, width)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.standard_normal(n_records) > 0).astype(int)
    half = n_records // 2
    seconds = {}
    for probe in probes.PROBES:
        clock = time.perf_counter()
        probes.fit_probe(probe, "binary", x[:half], y[:half], x[half:], y[half:], "macro_auroc", seed, "small")
        seconds[probe] = round(time.perf_counter() - clock, 3)
    return seconds


# ----- data loading -------------------------------------------------------------------------
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


# ----- the command ---------------------------------------------------------------------------
def run_bench(methods: list[str], settings: BenchSettings, console=None,
              on_method: Callable[[str], None] | None = None) -> list[MethodBench]:
    from ecgbench.models.train import resolve_device

    device = resolve_device(settings.device)
    if settings.probe_records > 0:
        probe_fit_seconds(8, 60)  # import scikit-learn and warm its code paths outside the timings
    results = []
    for name in methods:
        if on_method:
            on_method(name)
        try:
            results.append(bench_method(name, settings, device, console))
        except Exception as error:  # one method failing (e.g. out of memory) must not hide the others
            results.append(MethodBench(
                method=name, preset=settings.preset, device=str(device), batch_size=0, parameters=0,
                encoder_parameters=0, train_samples_per_s=float("nan"), train_step_ms=float("nan"),
                peak_memory_mb=float("nan"), peak_memory_kind="",
                error=f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}",
            ))
    return results


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
        "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "methods": [dataclasses.asdict(r) for r in results],
        **(extra or {}),
    }
