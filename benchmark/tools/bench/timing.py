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

This module measures one method (:func:`bench_method`) and runs it for each method asked for
(:func:`run_bench`); :mod:`.figures` holds what the figures are set against, :mod:`.loading` the
``--data`` comparison and :mod:`.render` the tables and the JSON record.
"""

from __future__ import annotations

import resource
import time
from typing import Any, Callable

import numpy as np

from ecgbench.tools.bench.figures import (
    AUTO_BATCH_MEMORY_FRACTION,
    BenchSettings,
    MethodBench,
    largest_batch,
    peak_tflops,
    pretraining_hours,
    reported_compute,
)


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
