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
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

GiB = 2**30
MEMORY_PER_WORKER = 3 * GiB  # a whole serial smoke grid peaked at 2.5-3.0 GiB RSS (top, /usr/bin/time)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


def run_jobs(request: Any, jobs: list[tuple[str, int]], workers: int, parent_run_id: str | None,
             console) -> tuple[int, list[tuple[str, int, str]]]:
    """Run ``jobs`` in ``workers`` processes; returns how many results they stored and the
    (method, seed, error) of the jobs that failed (the caller's serial pass runs them again)."""
    import multiprocessing

    from ecgbench.tracking import interrupts_raise

    threads = max(1, usable_cores() // workers)
    new_results, failed = 0, []
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch's threads exist
    with interrupts_raise(), ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                                 initargs=(request, threads, parent_run_id)) as pool:
        futures = {pool.submit(_run_job, method, seed): (method, seed) for method, seed in jobs}
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


_RUNNER = None  # the worker's runner, kept across its jobs (datasets load once per worker)


def _start_worker(request: Any, threads: int, parent_run_id: str | None) -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)  # before torch and numpy's BLAS start their pools
    import torch
    from rich.console import Console
    from rich.progress import Progress

    from ecgbench.plan import resolve
    from ecgbench.runner import Runner

    torch.set_num_threads(threads)
    global _RUNNER
    _RUNNER = Runner(resolve(request), Console(stderr=True))
    _RUNNER.progress = Progress(disable=True)
    if request.track:
        from ecgbench.tracking import Tracker

        _RUNNER.tracker = Tracker.for_results(_RUNNER.store.root, request.tracking_uri)
        _RUNNER.tracker.parent_id = parent_run_id  # children nest under the caller's invocation


def _run_job(method: str, seed: int) -> dict[str, Any]:
    """One job's error (None if it succeeded), results stored, wall and CPU seconds."""
    import time

    before, clock, cpu = _RUNNER.new_results, time.perf_counter(), time.process_time()
    error = None
    try:
        _RUNNER.run_method_seed(method, seed)
    except Exception as failure:  # noqa: BLE001 - the serial pass reruns it and reports properly
        error = f"{type(failure).__name__}: {failure}"
    finally:
        if _RUNNER.tracker is not None:
            _RUNNER.tracker.finish("KILLED")  # ends only child runs left open by an error
    return {"error": error, "new": _RUNNER.new_results - before,
            "seconds": time.perf_counter() - clock, "cpu_seconds": time.process_time() - cpu}
