"""Run the committed leaderboard's grid one (method, seed) job at a time, resumably.

Two sections (issue 14):

* ``synthetic``: every registered method (``ecgbench list methods``, aliases left out) x every
  synthetic task x seeds 0, 1, 2 at one preset (default ``cpu``) and one suite version (default
  the current; ``--suite-version 3`` for an older one), results in ``results/``;
* ``real-sample``: the PTB-XL tasks on the 300-record PTB-XL sample and the CinC 2017 tasks on
  the 200-record sample, each pretraining on its own dataset's training split (the runner's
  default), results in ``results/real-sample/``. The samples are read-only: pass a
  ``--data-root`` holding a copy (``ptb-xl/``, ``cinc2017/``).

Each job is one ``ecgbench run`` command (one method, one seed, one dataset's tasks) run under
``nice -n 10`` with ``OMP_NUM_THREADS=1``; ``--workers 2`` runs two such jobs at once, taken in
grid order (one per core at most: each is one thread). Every stage of the runner is cached, so a job killed
half-way resumes where it stopped; a job whose exact command finished (exit 0) is skipped, as
written in ``<results-dir>/grid-log.jsonl`` (one line per job: command, start, seconds, exit
status). A method that cannot run on a task is not skipped here: the runner stores a
not-applicable record with the reason, which the leaderboard shows. ``--status`` prints, per
method and task, the seeds stored, the not-applicable reason, or what is still to run.

    python scripts/leaderboard_grid.py synthetic --dry-run
    python scripts/leaderboard_grid.py real-sample --data-root /tmp/realdata --budget-minutes 90
    python scripts/leaderboard_grid.py real-sample --status
    python scripts/leaderboard_grid.py real-sample --cv 5 --seeds 0 --data-root /tmp/realdata   # every record tested once
    python scripts/leaderboard_grid.py real-sample --completed   # markdown for the README

To stop a running grid cleanly, ``touch <results-dir>/grid.stop``: no new job starts, the
running ones finish and are logged, and the driver removes the file on its way out (killing the
jobs instead also loses nothing stored: they resume from their checkpoints, minus their log lines).

Jobs run seed by seed (every method at seed 0, then at seed 1, ...; ``--order method`` runs
all seeds of a method before the next), methods in ``PRIORITY`` order: the controls and one
method of each main family first, then the rest in registry order. So a grid stopped half-way
has the broadest coverage it could have.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ECGBENCH = [sys.executable, "-m", "ecgbench"]

SYNTHETIC_TASKS = ("synth-superclass", "synth-rhythm", "synth-sex", "synth-age")
REAL_SAMPLE = {  # dataset -> (its tasks, the settings its sample needs)
    "ptbxl": (("ptbxl-superclass", "ptbxl-sex", "ptbxl-age"), ("data.ptbxl.allow_subset=true",)),
    "cinc2017": (("cinc2017-af", "cinc2017-af3"), ()),
}
SECTIONS = {"synthetic": "results", "real-sample": "results/real-sample"}
# controls, then one method per main family (contrastive, non-contrastive, transformation
# recognition, masked reconstruction, patient contrastive, NERULA, JEPA, dual-view, MAE)
PRIORITY = ("random-init", "random-init-lead2", "ecg-features", "ecg-features-lead2", "supervised-resnet", "simclr",
            "byol", "transform-cnn", "st-mem", "clocs-cmsc", "nerula", "ecg-jepa", "dual-view-seqaug", "ti-mae")
LOG = "grid-log.jsonl"


@dataclass(frozen=True)
class Job:
    method: str
    seed: int
    tasks: tuple[str, ...]
    settings: tuple[str, ...] = ()

    def command(self, preset: str, results_dir: str, data_root: str | None) -> list[str]:
        command = ["ecgbench", "run", "--methods", self.method, "--tasks", ",".join(self.tasks),
                   "--seeds", str(self.seed), "--preset", preset, "--results-dir", results_dir, "--no-tracking"]
        if data_root:
            command += ["--data-root", data_root]
        for setting in self.settings:
            command += ["--set", setting]
        return command


def registered_methods() -> list[str]:
    from ecgbench.core.registry import METHODS

    return METHODS.select("all")


def base_methods(method: str) -> set[str]:
    """The methods whose pretrained run ``method`` starts from (``base_method``, recursively):
    its job waits on their lock, so it is not started while one of them runs."""
    from ecgbench.core.registry import METHODS

    bases, name = set(), METHODS.get(method).base_method
    while name:
        bases.add(name)
        name = METHODS.get(name).base_method
    return bases


def ordered(methods: list[str]) -> list[str]:
    first = [m for m in PRIORITY if m in methods]
    return first + [m for m in methods if m not in first]


def suite_version() -> str:
    from ecgbench.data.datasets import synthetic

    return synthetic.VERSION


def jobs(section: str, methods: list[str], seeds: list[int], datasets: list[str] | None = None,
         order: str = "seed", version: str | None = None, cv: int = 0) -> list[Job]:
    """The section's jobs in run order: per seed, per method (priority order), per dataset
    (``order="method"``: per method, per seed, per dataset). Synthetic jobs name the suite
    ``version`` (default: the current one), so a new version's jobs are not taken as done; ``cv``
    (real-sample): K-fold cross-validation (``eval.cv=K``), every sample record tested once."""
    pairs = ([(m, s) for s in seeds for m in ordered(methods)] if order == "seed"
             else [(m, s) for m in ordered(methods) for s in seeds])
    if section == "synthetic":
        setting = (f"data.version={version or suite_version()}",)
        return [Job(m, s, SYNTHETIC_TASKS, setting) for m, s in pairs]
    chosen = datasets or list(REAL_SAMPLE)
    # the folds' t-SNE plots and clustering indices would be K per result and are shown nowhere
    folds = (f"eval.cv={cv}", "eval.embedding_plot=false", "eval.clustering=false") if cv else ()
    return [Job(m, s, REAL_SAMPLE[d][0], REAL_SAMPLE[d][1] + folds) for m, s in pairs for d in chosen]


# ----- the log ------------------------------------------------------------------------------------
def finished_commands(log: Path) -> set[str]:
    if not log.is_file():
        return set()
    done = set()
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:  # a line cut by a kill: that job simply runs again
            continue
        if entry.get("returncode") == 0:
            done.add(entry["command"])
    return done


_LOG_LOCK = threading.Lock()


STOP_FILE = "grid.stop"  # in the results folder: start no new job (module docstring)


def append(log: Path, entry: dict) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with _LOG_LOCK, open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


def run_job(command: list[str], log: Path, job: Job) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    clock = time.perf_counter()
    process = subprocess.run(["nice", "-n", "10", *ECGBENCH, *command[1:]], cwd=ROOT, env=env)
    append(log, {"command": shlex.join(command), "method": job.method, "seed": job.seed,
                 "tasks": list(job.tasks), "started": started, "returncode": process.returncode,
                 "seconds": round(time.perf_counter() - clock, 1),
                 "load_average_1min": round(os.getloadavg()[0], 2)})
    return process.returncode


# ----- status -------------------------------------------------------------------------------------
def status(results_dir: Path, grid: list[Job], preset: str, protocol: str = "frozen-probe") -> str:
    """Per (method, task): stored seeds, a not-applicable reason, or 'to run'. Synthetic results
    count only at the grid's suite version."""
    from ecgbench.core.store import ResultStore

    store = ResultStore(results_dir)
    versions = {setting.split("=", 1)[1] for job in grid for setting in job.settings
                if setting.startswith("data.version=")}
    seen: dict[tuple[str, str], set[int]] = {}
    reasons: dict[tuple[str, str], str] = {}
    if (results_dir / "runs").exists():
        for r in store.results():
            if r.get("preset") != preset or r.get("protocol", "frozen-probe") != protocol:
                continue
            if r["task"] in SYNTHETIC_TASKS and r["task_key"].rsplit("@v", 1)[-1] not in versions:
                continue
            if r.get("status") == "not_applicable":
                reasons[(r["method"], r["task"])] = str(r.get("reason") or "not applicable")
            elif "metrics" in r:
                seen.setdefault((r["method"], r["task"]), set()).add(int(r["seed"]))
    wanted: dict[tuple[str, str], set[int]] = {}
    for job in grid:
        for task in job.tasks:
            wanted.setdefault((job.method, task), set()).add(job.seed)
    lines, missing = [], 0
    for (method, task), seeds in wanted.items():
        if (method, task) in reasons:
            lines.append(f"{method:28} {task:18} n/a: {reasons[(method, task)]}")
            continue
        done = seen.get((method, task), set())
        todo = sorted(seeds - done)
        missing += len(todo)
        lines.append(f"{method:28} {task:18} seeds {sorted(done & seeds) or '-'}"
                     + (f"; to run: seeds {todo}" if todo else ""))
    lines.append(f"{missing} (method, task, seed) cells still to run")
    return "\n".join(lines)


def completed(results_dir: Path) -> str:
    """Markdown: per task and method, the validation-chosen probe and its test main metric per
    seed (as the leaderboard ranks them), and per job the wall time from the log."""
    from ecgbench.core.store import ResultStore
    from ecgbench.reporting.leaderboard import build

    store = ResultStore(results_dir)
    results = list(store.results()) if (results_dir / "runs").exists() else []
    rows = ["| task | protocol | method | probe (chosen on validation) | test metric per seed |", "|---|---|---|---|---|"]
    for group in build(results):
        for board in group.tasks:
            for entry in board.entries:
                values = ", ".join(f"seed {r['seed']}: {r['metrics'][board.metric]:.3f}"
                                   for r in sorted(entry.records, key=lambda r: r["seed"]))
                rows.append(f"| {board.task_key} | {group.protocol} | {entry.label} | {entry.probe} | "
                            f"{board.metric} {values} |")
            rows += [f"| {board.task_key} | {group.protocol} | {label} | – | {why} |"
                     for label, why in board.missing.items() if why.startswith("n/a")]
    jobs_table = ["| method | seed | tasks | seconds (wall, shared machine) | exit |", "|---|---|---|---|---|"]
    log = results_dir / LOG
    for line in (log.read_text(encoding="utf-8").splitlines() if log.is_file() else []):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        jobs_table.append(f"| {entry['method']} | {entry['seed']} | {','.join(entry['tasks'])} | "
                          f"{entry['seconds']} | {entry['returncode']} |")
    return "\n".join(rows) + "\n\n" + "\n".join(jobs_table)


# ----- main ---------------------------------------------------------------------------------------
def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("section", choices=sorted(SECTIONS))
    parser.add_argument("--methods", default="all", help="'all' (registered, no aliases) or a comma-separated list")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--suite-version", default=None, help="synthetic only: the suite version (default: the current)")
    parser.add_argument("--datasets", default=None, help=f"real-sample only: a subset of {','.join(REAL_SAMPLE)}")
    parser.add_argument("--cv", type=int, default=0,
                        help="real-sample only: K-fold patient-wise cross-validation (eval.cv=K), every record tested once")
    parser.add_argument("--results-dir", default=None, help="default: results (synthetic), results/real-sample")
    parser.add_argument("--data-root", default=None, help="dataset root; for real-sample a COPY of the samples")
    parser.add_argument("--order", choices=("seed", "method"), default="seed",
                        help="seed: every method at one seed before the next seed (default); method: all seeds of a method first")
    parser.add_argument("--budget-minutes", type=float, default=None, help="start no job after this long")
    parser.add_argument("--workers", type=int, default=1,
                        help="jobs run at once, each on one thread, taken in grid order (one per core at most)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands still to run")
    parser.add_argument("--status", action="store_true", help="what is stored, n/a, and still to run")
    parser.add_argument("--completed", action="store_true",
                        help="markdown: test metric per seed of each stored cell, and each logged job's wall time")
    args = parser.parse_args(argv)
    if args.section == "real-sample" and not (args.dry_run or args.status or args.completed) and not args.data_root:
        parser.error("real-sample needs --data-root: a copy of ../shared/data's ptb-xl/ and cinc2017/ "
                     "(the shared samples are read-only)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    methods = registered_methods() if args.methods == "all" else args.methods.split(",")
    datasets = args.datasets.split(",") if args.datasets else None
    if datasets and set(datasets) - set(REAL_SAMPLE):
        print(f"--datasets: unknown {sorted(set(datasets) - set(REAL_SAMPLE))}; known: {', '.join(REAL_SAMPLE)}",
              file=sys.stderr)
        return 2
    grid = jobs(args.section, methods, [int(s) for s in args.seeds.split(",")], datasets, args.order,
                args.suite_version, args.cv)
    results_dir = args.results_dir or SECTIONS[args.section]
    if args.status:
        print(status(ROOT / results_dir, grid, args.preset, f"frozen-probe-cv{args.cv}" if args.cv else "frozen-probe"))
        return 0
    if args.completed:
        print(completed(ROOT / results_dir))
        return 0
    log = ROOT / results_dir / LOG
    done = finished_commands(log)
    pending = [(job, job.command(args.preset, results_dir, args.data_root)) for job in grid]
    pending = [(job, command) for job, command in pending if shlex.join(command) not in done]
    print(f"{len(grid) - len(pending)} of {len(grid)} jobs finished earlier ({log}); {len(pending)} to run",
          file=sys.stderr)
    if args.dry_run:
        print("\n".join(shlex.join(command) for _, command in pending))
        return 0
    stop_file = ROOT / results_dir / STOP_FILE
    if stop_file.exists():
        stop_file.unlink()
        print(f"removed {stop_file}, left by an earlier run", file=sys.stderr)
    failures = run_pending(pending, log, args.workers, args.budget_minutes, stop_file=stop_file)
    stop_file.unlink(missing_ok=True)
    return 1 if failures else 0


def run_pending(pending: list[tuple[Job, list[str]]], log: Path, workers: int,
                budget_minutes: float | None, bases=base_methods, stop_file: Path | None = None) -> int:
    """Run the jobs in order on ``workers`` threads (each job its own one-thread process); a job
    whose base method (``bases``) is running at the same seed waits, and the next job goes first.
    No job starts after the budget or once ``stop_file`` exists. Returns how many failed."""
    queue, running, failures = list(pending), set(), []
    waits_for = functools.cache(bases)  # looked up once per method, when first needed
    ready = threading.Condition()
    start = time.perf_counter()

    def stop_reason() -> str | None:
        if budget_minutes is not None and time.perf_counter() - start > 60 * budget_minutes:
            return f"budget of {budget_minutes:g} min spent; rerun the same command to continue"
        if stop_file is not None and stop_file.exists():
            return f"{stop_file} exists: no new job starts; the running ones finish"
        return None

    def next_job() -> tuple[Job, list[str]] | None:
        with ready:
            while queue:
                if (reason := stop_reason()) is not None:
                    print(reason, file=sys.stderr)
                    queue.clear()
                    break
                for i, (job, _) in enumerate(queue):
                    if not any((base, job.seed) in running for base in waits_for(job.method)):
                        running.add((job.method, job.seed))
                        return queue.pop(i)
                ready.wait()
            return None

    def worker() -> None:
        while (taken := next_job()) is not None:
            job, command = taken
            print(f"running: {shlex.join(command)}", file=sys.stderr, flush=True)
            try:
                if run_job(command, log, job) != 0:
                    failures.append(job)
            except Exception as error:  # a job that cannot even start fails alone
                print(f"{shlex.join(command)}: {error}", file=sys.stderr)
                failures.append(job)
            finally:
                with ready:
                    running.discard((job.method, job.seed))
                    ready.notify_all()

    threads = [threading.Thread(target=worker) for _ in range(max(1, workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(failures)


if __name__ == "__main__":
    sys.exit(main())
