"""The grid: methods x seeds pretrained once each, embeddings once per (run, dataset, input),
then tasks x probes. Every stage is keyed by hashes and skipped when its output exists, so a
killed run resumes where it stopped and a changed setting never reuses a stale output.

The stages live in :mod:`ecgbench.running.stages` (pretrain, embed, evaluate, record), one module
each; this module only walks the grid.
"""

from __future__ import annotations

from typing import Any

from ecgbench.core.config import RunConfig
from ecgbench.core.contracts import NotApplicable, Task
from ecgbench.core.registry import METHODS
from ecgbench.evaluation import protocols
from ecgbench.models import distributed
from ecgbench.running import parallel
from ecgbench.running.plan import Plan, RunRequest, resolve
from ecgbench.running.stages import embed, evaluate, pretrain, record
from ecgbench.running.stages.context import RunContext, git_revision, versions
from ecgbench.running.stages.evaluate import PROTOCOL
from ecgbench.running.stages.pretrain import n_outputs, training_labels
from ecgbench.running.stages.record import write_tables

__all__ = ["PROTOCOL", "Plan", "RunRequest", "Runner", "git_revision", "n_outputs", "resolve",
           "training_labels", "versions", "write_tables"]


class Runner(RunContext):
    def run(self) -> list[dict[str, Any]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with record.tracking(self):
            self.run_in_workers()
            with Progress(*columns, console=self.console, transient=False) as progress:
                self.progress = progress
                return self.walk()

    def walk(self) -> list[dict[str, Any]]:
        """This shard's jobs one after the other (every stage a worker finished is cached)."""
        results: list[dict[str, Any]] = []
        for method, seed in self.jobs():
            results.extend(self.run_method_seed(method, seed))
        return results

    def run_in_workers(self) -> None:
        """On CPU, the unfinished jobs first in worker processes (:mod:`ecgbench.running.parallel`)."""
        if self.device.type != "cpu" or distributed.is_distributed() or self.request.jobs == 1:
            return
        pending = [(m, s) for m, s in self.jobs() if not self.job_complete(m, s)]
        workers = parallel.worker_count(self.request.jobs, len(pending))
        if workers < 2:
            return
        self.console.log(f"{len(pending)} jobs in {workers} worker processes")
        parent = self.tracker.parent_id if self.tracker else None
        new_results, failed = parallel.run_jobs(pending, workers, f"{__name__}:_start_worker",
                                                (self.request, parent), _run_job, self.console)
        self.new_results += new_results
        for method, seed, error in failed:
            self.console.log(f"[yellow]{method} seed {seed} failed in a worker; running it here[/]: {error}")
        if self.tracker:
            self.tracker.reload_logged()  # what the workers logged

    def job_complete(self, method_name: str, seed: int) -> bool:
        """Whether every result of this (method, seed) is stored (so a worker has nothing to do)."""
        label_tasks = self.plan.tasks if METHODS.get(method_name).uses_labels else [None]
        pairs = protocols.evaluations(self.request.protocols, self.request.probes)
        for label_task in label_tasks:
            config = self.run_config(method_name, seed, label_task)
            if not self.store.run_record(config.run_id).exists():
                return False
            for task in self.plan.tasks if label_task is None else [label_task]:
                for protocol, probe in pairs:
                    for fraction in self.plan.eval_settings.label_fractions:
                        if not evaluate.result_location(self, config, task, probe, fraction, protocol)[0].exists():
                            return False
        return True

    def jobs(self) -> list[tuple[str, int]]:
        """This shard's (method, seed) pretraining jobs: every n-th of the grid, from the i-th.

        Shards split the grid deterministically, so n processes (e.g. Slurm array jobs) sharing
        one results directory never both own a job; the per-run lock in the store covers the
        runs two jobs share (a base method of two variants).
        """
        grid = [(m, s) for m in self.request.methods for s in self.request.seeds]
        index, count = self.request.shard
        return grid[index::count]

    def run_method_seed(self, method_name: str, seed: int) -> list[dict[str, Any]]:
        if METHODS.get(method_name).uses_labels:  # one run per task, probed on that task only
            return [r for task in self.plan.tasks for r in self._run_and_probe(method_name, seed, [task], task)]
        return self._run_and_probe(method_name, seed, self.plan.tasks)

    def _run_and_probe(self, method_name: str, seed: int, tasks: list[Task],
                       label_task: Task | None = None) -> list[dict[str, Any]]:
        config = self.run_config(method_name, seed, label_task)
        try:
            method = pretrain.pretrained(self, config, label_task)
        except NotApplicable as reason:
            return [r for task in tasks for r in evaluate.not_applicable(self, config, task, reason)]
        if not distributed.is_main():  # under torchrun the other ranks only help pretrain
            return []
        results = []
        pairs = protocols.evaluations(self.request.protocols, self.request.probes)  # (protocol, probe)
        bar = self.progress.add_task(f"probe {config.run_id}", total=len(tasks) * len(pairs))
        for task in tasks:
            try:
                embeddings, adaptation = self.embeddings(method, config, task)
            except NotApplicable as reason:
                results.extend(evaluate.not_applicable(self, config, task, reason))
                self.progress.advance(bar, len(pairs))
                continue
            evaluate.analyse(self, config, task, embeddings)
            for protocol, probe in pairs:
                self.progress.update(bar, description=f"{protocol} {config.run_id} {task.name} {probe}")
                for fraction in self.plan.eval_settings.label_fractions:
                    results.append(evaluate.evaluate(self, config, method, task, probe, embeddings,
                                                     adaptation, fraction, protocol))
                self.progress.advance(bar)
        self.progress.remove_task(bar)
        return results

    # The stages as methods, for callers that hold a Runner (tests, bench, tune).
    def run_config(self, method: str, seed: int, task: Task | None = None) -> RunConfig:
        return pretrain.run_config(self, method, seed, task)

    def pretrained(self, config: RunConfig, task: Task | None = None):
        return pretrain.pretrained(self, config, task)

    def _train(self, method, config: RunConfig, task: Task | None = None):
        return pretrain.train(self, method, config, task)

    def embeddings(self, method, config: RunConfig, task: Task):
        return embed.embeddings(self, method, config, task)


_WORKER_RUNNER: Runner | None = None  # a worker process's runner, kept across its jobs (datasets load once)


def _start_worker(threads: int, request: RunRequest, parent_run_id: str | None) -> None:
    """In a worker process (:mod:`ecgbench.running.parallel`): one quiet runner for its jobs."""
    from rich.console import Console
    from rich.progress import Progress

    from ecgbench.core.registry import include

    include(request.include_paths)  # a spawned worker starts with the package's registries only
    global _WORKER_RUNNER
    _WORKER_RUNNER = Runner(resolve(request), Console(stderr=True))
    _WORKER_RUNNER.progress = Progress(disable=True)
    if request.track:
        from ecgbench.running.tracking import Tracker

        _WORKER_RUNNER.tracker = Tracker.for_results(_WORKER_RUNNER.store.root, request.tracking_uri)
        _WORKER_RUNNER.tracker.parent_id = parent_run_id  # children nest under the caller's invocation


def _run_job(method: str, seed: int) -> dict[str, Any]:
    """One job's error (None if it succeeded), results stored, wall and CPU seconds."""
    import time

    runner = _WORKER_RUNNER
    before, clock, cpu = runner.new_results, time.perf_counter(), time.process_time()
    error = None
    try:
        runner.run_method_seed(method, seed)
    except Exception as failure:  # noqa: BLE001 - the serial pass reruns it and reports properly
        error = f"{type(failure).__name__}: {failure}"
    finally:
        if runner.tracker is not None:
            runner.tracker.finish("KILLED")  # ends only child runs left open by an error
    return {"error": error, "new": runner.new_results - before,
            "seconds": time.perf_counter() - clock, "cpu_seconds": time.process_time() - cpu}
