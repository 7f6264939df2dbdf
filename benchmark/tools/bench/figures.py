"""What ``ecgbench bench`` works with: its settings (:class:`BenchSettings`), one method's measured
figures (:class:`MethodBench`), and what they are set against: the devices' dense bf16 peaks
(for MFU), the pretraining compute each method's seed report states, the hours of one preset
pretraining at a measured speed, and the batch doubling of ``--batch-size auto``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

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
