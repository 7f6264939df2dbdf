"""Run a grid's unfinished (method, seed) jobs in several worker processes on CPU.

On a CPU the smoke and cpu grids are many small models: one process with two intra-op
threads leaves a core idle most of the time (small convolutions and Python overhead do not
split across threads), two single-threaded processes keep both busy. The workers do exactly
what the serial runner does for their jobs, writing the same cached stages (checkpoints,
embeddings, result JSON) and logging into the caller's MLflow invocation; the caller then
walks the grid serially as always, finds every stage cached, and writes the tables. A worker
that fails leaves its job to that serial pass, which runs it again and reports the error as a
serial run would. Runs that two jobs share (a variant's base method) are guarded by the
store's per-run lock.

Each worker runs with ``threads`` intra-op threads (cores // workers), which is recorded on
every result (``threads``); numbers can differ from a two-thread run in the last digits.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from ecgbench.core.machine import usable_cores

GiB = 2**30
MEMORY_PER_WORKER = 3 * GiB  # a whole serial smoke grid peaked at 2.5-3.0 GiB RSS (top, /usr/bin/time)


def worker_count(requested: int | None, pending_jobs: int) -> int:
    """``requested`` workers (None: one per core, as memory allows), never more than jobs."""
    if requested is None:
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            memory = 0
        by_memory = max(1, memory // MEMORY_PER_WORKER) if memory else 1
        requested = min(usable_cores(), by_memory)
    return max(1, min(requested, pending_jobs))


def run_jobs(jobs: list[tuple[str, int]], workers: int, start_worker: str, start_args: tuple,
             run_job: Callable[[str, int], dict[str, Any]], console) -> tuple[int, list[tuple[str, int, str]]]:
    """Run ``jobs`` in ``workers`` processes; returns how many results they stored and the
    (method, seed, error) of the jobs that failed (the caller's serial pass runs them again).

    Each worker calls ``start_worker(threads, *start_args)`` once, then ``run_job(method, seed)``
    per job, which returns ``{"error", "new", "seconds", "cpu_seconds"}``. ``start_worker`` is
    named (``"package.module:function"``), not passed, so that its module, and torch and numpy
    with it, is imported only after the worker's thread counts are set."""
    import multiprocessing

    from ecgbench.running.tracking import interrupts_raise

    threads = max(1, usable_cores() // workers)
    new_results, failed = 0, []
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch's threads exist
    with interrupts_raise(), ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                                                 initargs=(start_worker, threads, start_args)) as pool:
        futures = {pool.submit(run_job, method, seed): (method, seed) for method, seed in jobs}
        try:
            for done, future in enumerate(as_completed(futures), 1):
                method, seed = futures[future]
                error, outcome = future.exception(), {}
                if error is None:
                    outcome = future.result()
                    error = outcome["error"]
                new_results += outcome.get("new", 0)
                if error:
                    failed.append((method, seed, str(error)))
                console.log(f"job {done}/{len(jobs)} {method} seed {seed}: "
                            + (f"[red]failed[/] ({str(error).splitlines()[0][:160]})" if error else
                               f"done in {outcome['seconds']:.1f} s ({outcome['cpu_seconds']:.1f} CPU-s)"))
        except BaseException:  # interrupted (Ctrl-C, SIGTERM) or broken: stop the workers now
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list((pool._processes or {}).values()):  # no public handle on them
                process.terminate()  # their partial checkpoints resume on the next run
            raise
    return new_results, failed


def _start(start_worker: str, threads: int, start_args: tuple) -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)  # before torch and numpy's BLAS start their pools
    import importlib

    import torch

    torch.set_num_threads(threads)
    module, _, function = start_worker.partition(":")
    getattr(importlib.import_module(module), function)(threads, *start_args)
