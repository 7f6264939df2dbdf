"""The command line's arguments turned into values: lists, seeds, probes, shards, job counts, the
``--config`` file and the request of ``ecgbench run``. A bad one is a :class:`UsageError`, one line
and exit 2, raised before any work starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ecgbench.core.registry import METHODS, TASKS, UnknownNameError, did_you_mean, include_paths

if TYPE_CHECKING:
    from ecgbench.running.plan import RunRequest


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in comma_list(text)]
    except ValueError:
        raise UsageError(f"--seeds expects comma-separated integers, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise UsageError(f"--seeds expects non-negative integers, got {text!r}")
    return seeds


def probes(text: str) -> list[str]:
    from ecgbench.evaluation.probes import PROBES

    if text.strip() == "all":
        return list(PROBES)
    names = comma_list(text)
    for name in names:
        if name not in PROBES:
            raise UnknownNameError(f"unknown probe {name!r}.{did_you_mean(name, list(PROBES))}")
    return names


def pretrain_data(name: str | None) -> str | None:
    """A dataset of the catalogue (found by scanning benchmark/datasets/, nothing imported);
    None (not given): the plan takes the dataset the tasks evaluate."""
    from ecgbench.data.datasets.catalog import entry

    if name is None:
        return None
    try:
        return entry(name).name
    except UnknownNameError as error:
        raise UsageError(f"--pretrain-data: {error}") from None


def jobs(text: str | None) -> int | None:
    """--jobs N, or auto (also $ECGBENCH_JOBS): one worker process per core on CPU."""
    text = text or os.environ.get("ECGBENCH_JOBS") or "auto"
    if text == "auto":
        return None
    try:
        jobs = int(text)
    except ValueError:
        raise UsageError(f"--jobs expects a positive number or 'auto', got {text!r}") from None
    if jobs < 1:
        raise UsageError(f"--jobs expects a positive number or 'auto', got {text!r}")
    return jobs


def shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard expects i/n with integers, e.g. 0/4, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard {text}: need 0 <= i < n")
    return index, count


def config_file(path: str | None) -> dict[str, str]:
    """``--config FILE``: a YAML or JSON mapping of ``--set`` keys (nested mappings join with
    dots), e.g. the best.yaml ``ecgbench tune`` writes; ``--set`` items override it."""
    import yaml

    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"--config {path}: not UTF-8 text; give a YAML or JSON file of --set keys") from None
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"--config {path}: unreadable ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping of --set keys, e.g. 'transform-cnn.lr: 0.002'")
    from ecgbench.core.config import flatten

    return {key: ",".join(map(str, value)) if isinstance(value, list) else str(value)
            for key, value in flatten(data).items()}


def run_request(args: argparse.Namespace, settings: tuple[str, ...] = (), **grid) -> RunRequest:
    """The request of ``run``'s arguments; a layout job replaces the grid (methods, tasks,
    probes, protocols, pretraining data) and adds its settings before the user's ``--set``."""
    from ecgbench.core.config import parse_assignments
    from ecgbench.running.plan import RunRequest  # light: validation runs before torch loads

    return RunRequest(
        methods=METHODS.select(grid.get("methods", args.methods or "all")),
        tasks=TASKS.select(grid.get("tasks", args.tasks or "synth-superclass")),
        probes=probes(grid.get("probes", args.probes or "all")),
        protocols=comma_list(grid.get("protocols", getattr(args, "protocols", "frozen-probe"))),
        seeds=seeds(args.seeds),
        preset=args.preset,
        results_dir=Path(args.results_dir),
        data_root=Path(args.data_root) if args.data_root else None,
        tracking_uri=args.tracking_uri,
        device=args.device,
        overrides={**config_file(args.config), **parse_assignments([*settings, *args.set])},
        track=not args.no_tracking,
        pretrain_dataset=pretrain_data(grid.get("pretrain_data", args.pretrain_data)),
        shard=shard(args.shard),
        compile=args.compile,
        jobs=jobs(getattr(args, "jobs", None)),
        limit=limit(getattr(args, "limit", None)),
        include_paths=[str(p) for p in include_paths()],
        log_checkpoints=bool(getattr(args, "log_checkpoints", False)),
    )


def limit(value: str | None) -> int | None:
    """``--limit N``: a whole number of patients per split, at least 1 (the loader's own check)."""
    from ecgbench.data.subset import check_limit

    return None if value is None else check_limit(value, "--limit")


def launch_torchrun(argv: list[str], nproc: int) -> int:
    """Re-run this ``ecgbench run`` command under ``torchrun --nproc-per-node nproc``."""
    import subprocess

    if nproc < 1:
        raise UsageError(f"--nproc expects a positive number of processes, got {nproc}")
    rest, skip = [], False
    for item in argv:  # drop --nproc N / --nproc=N, keep everything else as given
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            rest.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "ecgbench", *rest]
    print(f"ecgbench: launching {' '.join(command[1:])}", file=sys.stderr)
    return subprocess.call(command)

