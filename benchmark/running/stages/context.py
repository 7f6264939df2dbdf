"""What every stage of a run shares: the plan, the result store, the device, the datasets
loaded once per process (and their adapted windows), the leakage guard and the provenance
stamped on every record."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench import __version__
from ecgbench.core.config import ConfigError
from ecgbench.core.contracts import Recordings
from ecgbench.core.store import ResultStore
from ecgbench.models import distributed
from ecgbench.running.plan import Plan, data_overrides


def git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str]:
    import sklearn
    import torch

    return {
        "ecgbench": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
    }


def thread_counts() -> dict[str, int]:
    """The threads the numbers were computed with: torch's intra-op threads and each BLAS/OpenMP
    pool's. Results may drift with them (benchmark/check.py gives the measured size)."""
    import torch
    from threadpoolctl import threadpool_info

    pools = {f"{pool['internal_api']}": int(pool["num_threads"]) for pool in threadpool_info()}
    return {"torch": torch.get_num_threads(), **dict(sorted(pools.items()))}


class RunContext:
    def __init__(self, plan: Plan, console=None):
        from rich.console import Console

        from ecgbench.models.train import resolve_device

        self.plan = plan
        self.request = plan.request
        self.console = console or Console(stderr=True)
        self.store = ResultStore(self.request.results_dir)
        self.device = distributed.init_from_env(resolve_device(self.request.device))
        self.datasets: dict[str, Recordings] = {}
        self.adapted: dict[tuple, Any] = {}
        self.provenance = {"git": git_revision(), "versions": versions(), "threads": thread_counts()}
        self.tracker = None
        self.progress = None
        self.new_results = 0
        self.analysis: dict[tuple[str, str], dict[str, Any]] = {}  # (run_id, task key) -> extras

    def dataset(self, name: str) -> Recordings:
        if name not in self.datasets:
            from ecgbench.data.datasets import load_dataset

            options = self.dataset_options(name)
            self.console.log(f"loading dataset [bold]{name}[/]" + (f" {options}" if options else ""))
            self.datasets[name] = load_dataset(name, self.request.data_root, options)
        return self.datasets[name]

    def dataset_options(self, name: str) -> dict[str, Any]:
        """Options for loading ``name``: its tasks' ``dataset_options``, then ``--set
        data.<name>.<option>=value``; a plain ``data.<option>`` is the synthetic suite's."""
        options: dict[str, Any] = {}
        for task in self.plan.tasks:
            if task.dataset != name:
                continue
            clash = {k for k, v in task.dataset_options.items() if k in options and options[k] != v}
            if clash:
                raise ConfigError(f"tasks on {name} ask for different {sorted(clash)}; run them separately")
            options.update(task.dataset_options)
        return {**options, **data_overrides(self.plan.data_options, name)}

    def adapt(self, recordings: Recordings, spec, each_channel: bool = False):
        from ecgbench.data.adapt import adapt, adapt_each_channel

        key = (recordings.name, recordings.version, spec, each_channel)
        if key not in self.adapted:
            self.adapted[key] = (adapt_each_channel if each_channel else adapt)(recordings, spec)
        return self.adapted[key]

    @functools.cached_property
    def pretraining(self):
        """The leakage guard (:mod:`ecgbench.data.leakage`), once per run: the pretraining dataset's
        training rows minus known overlaps with the evaluated datasets, checked."""
        from ecgbench.data.leakage import select_pretraining

        tasks: dict[str, list[str]] = {}
        for task in self.plan.tasks:
            tasks.setdefault(task.dataset, []).append(task.name)
        selection = select_pretraining(self.dataset(self.request.pretrain_dataset),
                                       {name: self.dataset(name) for name in tasks}, tasks)
        for name, ids in selection.excluded.items():
            self.console.log(f"leakage guard: {len(ids)} records of {selection.dataset} are in {name}, "
                             f"excluded from pretraining: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")
        for note in selection.notes:
            self.console.log(f"leakage guard: {note}")
        return selection
