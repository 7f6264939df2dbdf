"""``ecgbench bench``: how fast each method pretrains, embeds and probes, on this machine, one
module per part: :mod:`.figures` the settings, one method's measured figures and what they are
set against (datasheet bf16 peaks, the compute the seed reports state, one preset pretraining's
hours, the batch doubling of ``--batch-size auto``); :mod:`.timing` the measurements of one
method (pretraining steps staged and through the loader, FLOPs and MFU, ``torch.compile``,
embedding, probe fits) and :func:`run_bench` over several; :mod:`.loading` a prepared array
store against a per-record ``wfdb.rdsamp`` loop and its cache hit against the mmap floor
(``--data``); :mod:`.render` the tables and the JSON record; :mod:`.command` the whole command
over them. Each of the four imports only :mod:`.figures` among them; every name below stays
importable from ``ecgbench.tools.bench``.
"""

from ecgbench.tools.bench.command import bench_and_write, bench_data_loading
from ecgbench.tools.bench.figures import (
    AUTO_BATCH_MAX_DOUBLINGS,
    AUTO_BATCH_MEMORY_FRACTION,
    NOT_REPORTED,
    PEAK_BF16_TFLOPS,
    REPORTED_COMPUTE,
    BenchSettings,
    MethodBench,
    largest_batch,
    peak_tflops,
    pretraining_hours,
    reported_compute,
)
from ecgbench.tools.bench.loading import bench_cache_hit_vs_floor, bench_wfdb_vs_prepared
from ecgbench.tools.bench.render import bench_record, render_bench, render_pretraining
from ecgbench.tools.bench.timing import bench_method, count_training_flops, probe_fit_seconds, run_bench

__all__ = [
    "AUTO_BATCH_MAX_DOUBLINGS", "AUTO_BATCH_MEMORY_FRACTION", "NOT_REPORTED", "PEAK_BF16_TFLOPS", "REPORTED_COMPUTE",
    "BenchSettings", "MethodBench", "bench_and_write", "bench_cache_hit_vs_floor", "bench_data_loading", "bench_method", "bench_record",
    "bench_wfdb_vs_prepared", "count_training_flops",
    "largest_batch", "peak_tflops", "pretraining_hours", "probe_fit_seconds", "render_bench", "render_pretraining",
    "reported_compute", "run_bench",
]
