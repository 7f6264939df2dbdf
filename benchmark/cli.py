"""Command line: ``ecgbench list | run | table | bench`` (and the subcommands added beside them).

Heavy libraries (torch, scikit-learn, mlflow) are imported inside the commands that need
them, so ``--help`` and ``list`` answer at once. Misuse exits non-zero with one line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ecgbench import __version__
from ecgbench.core.config import ConfigError, RunFailed
from ecgbench.core.registry import METHODS, TASKS, UnknownNameError, did_you_mean

LISTABLE = ("methods", "tasks", "probes", "protocols")


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in _comma_list(text)]
    except ValueError:
        raise UsageError(f"--seeds expects comma-separated integers, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise UsageError(f"--seeds expects non-negative integers, got {text!r}")
    return seeds


def _probes(text: str) -> list[str]:
    from ecgbench.evaluation.probes import PROBES

    if text.strip() == "all":
        return list(PROBES)
    names = _comma_list(text)
    for name in names:
        if name not in PROBES:
            raise UnknownNameError(f"unknown probe {name!r}.{did_you_mean(name, list(PROBES))}")
    return names


def _pretrain_data(name: str | None) -> str | None:
    """A dataset of the catalogue (found by scanning benchmark/datasets/, nothing imported);
    None (not given): the plan takes the dataset the tasks evaluate."""
    from ecgbench.data.datasets.catalog import entry

    if name is None:
        return None
    try:
        return entry(name).name
    except UnknownNameError as error:
        raise UsageError(f"--pretrain-data: {error}") from None


# ----- commands ------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    what = args.what
    if what not in LISTABLE:
        raise UsageError(f"cannot list {what!r}; choose methods, tasks, probes or protocols.{did_you_mean(what, list(LISTABLE))}")
    if what == "probes":
        from ecgbench.evaluation.probes import PROBES

        rows = list(PROBES.items())
    elif what == "protocols":
        from ecgbench.evaluation.protocols import PROTOCOLS

        rows = list(PROTOCOLS.items())
    else:
        registry = METHODS if what == "methods" else TASKS
        rows = [(name, registry.entry(name).description) for name in registry.names()]
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0


def _jobs(text: str | None) -> int | None:
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


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard expects i/n with integers, e.g. 0/4, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard {text}: need 0 <= i < n")
    return index, count


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


def _config_file(path: str | None) -> dict[str, str]:
    """``--config FILE``: a YAML or JSON mapping of ``--set`` keys (nested mappings join with
    dots), e.g. the best.yaml ``ecgbench tune`` writes; ``--set`` items override it."""
    import yaml

    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"--config {path}: unreadable ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping of --set keys, e.g. 'transform-cnn.lr: 0.002'")
    from ecgbench.running.tracking import flatten

    return {key: ",".join(map(str, value)) if isinstance(value, list) else str(value)
            for key, value in flatten(data).items()}


def cmd_tune(args: argparse.Namespace) -> int:
    from ecgbench.core.config import parse_assignments
    from ecgbench.tools.tune import TuneRequest, run_search

    run_search(TuneRequest(
        method=METHODS.get(args.method).name, task=TASKS.get(args.task).name, trials=args.trials,
        preset=args.preset, seed=args.seed, results_dir=Path(args.results_dir),
        data_root=Path(args.data_root) if args.data_root else None, overrides=parse_assignments(args.set),
        probe=args.probe, protocol=args.protocol, reports=args.reports, reduction_factor=args.reduction_factor,
        ray_address=args.ray_address, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        resume=args.resume, tracking_uri=args.tracking_uri, track=not args.no_tracking,
    ))
    return 0


def _add_tune_parser(commands) -> None:
    tune = commands.add_parser("tune", help="hyper-parameter search for a method's pretraining (Ray Tune, Optuna "
                                            "TPE, ASHA), scored on a task's validation split")
    tune.add_argument("--method", required=True, help="the method whose pretraining is searched")
    tune.add_argument("--task", required=True, help="the task whose validation split scores the trials")
    tune.add_argument("--trials", type=int, default=20, help="trials, the default config's included (default: 20)")
    tune.add_argument("--preset", default="smoke", choices=["smoke", "cpu", "paper"], help="model and schedule scale")
    tune.add_argument("--seed", type=int, default=0, help="seed of every trial's pretraining and of TPE (default: 0)")
    tune.add_argument("--probe", default="lr", help="probe fitted on train embeddings, scored on val (default: lr)")
    tune.add_argument("--protocol", default=None, choices=["finetune"],
                      help="search this protocol's settings (eval.finetune.*) on the method pretrained once with "
                           "its default config, instead of its pretraining")
    tune.add_argument("--reports", type=int, default=4, help="validation scores per trial; ASHA may stop it at each (default: 4)")
    tune.add_argument("--reduction-factor", type=float, default=2.0, help="ASHA's reduction factor (default: 2)")
    tune.add_argument("--ray-address", default=None, help="a running Ray cluster, e.g. 10.0.0.1:6379 (default: a "
                                                          "local instance with this machine's cores)")
    tune.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs Ray reserves per trial (default: 1)")
    tune.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs Ray reserves per trial (default: 0)")
    tune.add_argument("--resume", action="store_true", help="continue the search stored under --results-dir (after a kill)")
    tune.add_argument("--results-dir", default="results", help="the search goes to <results-dir>/tune/<name>/")
    tune.add_argument("--data-root", default=None, help="dataset root (default: $ECGBENCH_DATA or ~/.cache/ecgbench/data)")
    tune.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite in the results dir)")
    tune.add_argument("--no-tracking", action="store_true", help="do not log trials to MLflow")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="fix a setting as for run (a searched one leaves the space), e.g. data.n_patients=90")
    tune.set_defaults(handler=cmd_tune)


def cmd_run(args: argparse.Namespace) -> int:
    if getattr(args, "nproc", None):  # first: one torchrun then runs the whole command, layouts too
        return launch_torchrun(args.argv, args.nproc)
    if getattr(args, "layout", None):
        return cmd_run_layout(args)
    from ecgbench.core.config import parse_assignments
    from ecgbench.running.plan import RunRequest, resolve  # light: validation runs before torch loads

    request = RunRequest(
        methods=METHODS.select(args.methods),
        tasks=TASKS.select(args.tasks),
        probes=_probes(args.probes),
        protocols=_comma_list(getattr(args, "protocols", "frozen-probe")),
        seeds=_seeds(args.seeds),
        preset=args.preset,
        results_dir=Path(args.results_dir),
        data_root=Path(args.data_root) if args.data_root else None,
        tracking_uri=args.tracking_uri,
        device=args.device,
        overrides={**_config_file(args.config), **parse_assignments(args.set)},
        track=not args.no_tracking,
        pretrain_dataset=_pretrain_data(args.pretrain_data),
        shard=_shard(args.shard),
        compile=args.compile,
        jobs=_jobs(getattr(args, "jobs", None)),
    )
    from ecgbench.running.validate import validate_plan, validate_request

    validate_request(request)  # all validation happens before any work starts
    plan = resolve(request)
    validate_plan(plan)
    from rich.console import Console

    from ecgbench.reporting.tables import render
    from ecgbench.running.runner import Runner, write_tables

    console = Console(stderr=True)
    clock = time.perf_counter()
    runner = Runner(plan, console)
    results = runner.run()
    from ecgbench.models import distributed

    if not distributed.is_main():  # under torchrun rank 0 reports for everyone
        return 0
    path = write_tables(runner.store, results, runner.tracker)
    print(render(results))
    console.log(
        f"{len(results)} results ({runner.new_results} new) in {time.perf_counter() - clock:.1f} s; "
        f"table: {path}; results: {runner.store.root / 'runs'}"
    )
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    if getattr(args, "layout", None):
        return cmd_table_layout(args)
    from ecgbench.core.store import ResultStore
    from ecgbench.reporting.tables import render

    store = ResultStore(args.results_dir)
    if not (store.root / "runs").exists():
        raise UsageError(f"no results under {store.root}; run 'ecgbench run' first or pass --results-dir")
    tasks = TASKS.select(args.tasks) if args.tasks else None
    text = render(store.results(), tasks)
    if args.out:
        from ecgbench.core.store import atomic_write

        atomic_write(Path(args.out), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    else:
        print(text)
    return 0


def _layout_text(name: str, results_dir: str, preset: str | None, data_root: str | None) -> str:
    from ecgbench.core.store import ResultStore
    from ecgbench.reporting.layouts import LayoutError, render_layout

    store = ResultStore(results_dir)
    results = list(store.results()) if (store.root / "runs").exists() else []
    try:
        return render_layout(name, results, preset=preset, data_root=data_root)
    except LayoutError as error:
        raise UsageError(str(error)) from None


def _write_text(path: Path, text: str) -> None:
    from ecgbench.core.store import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def cmd_table_layout(args: argparse.Namespace) -> int:
    """``table --layout NAME``: a paper's table with our stored numbers beside the reported ones."""
    from ecgbench.reporting.layouts import list_layouts

    if args.layout == "list":
        print(list_layouts())
        return 0
    text = _layout_text(args.layout, args.results_dir, args.preset, args.data_root)
    if args.out:
        _write_text(Path(args.out), text)
    else:
        print(text)
    return 0


def cmd_run_layout(args: argparse.Namespace) -> int:
    """``run --layout NAME``: run exactly the methods x tasks x probes the layout needs (one grid
    per reported table), report what cannot run, then write the layout table (and log it to
    MLflow). --methods/--tasks/--probes are replaced by the layout's."""
    from ecgbench.core.store import ResultStore
    from ecgbench.reporting.layouts import LayoutError, plan_layout, plan_rows, render_plan

    try:
        if getattr(args, "dry_run", False):
            print(render_plan(args.layout, args.preset, args.data_root))
            return 1 if any(row.problem for row in plan_rows(args.layout, args.preset)) else 0
        blocked = [f"{row.label} ({row.method}): {row.problem}" for row in plan_rows(args.layout, args.preset)
                   if row.problem]
        if blocked:
            raise UsageError(f"layout {args.layout}: {len(blocked)} rows cannot run as configured: "
                             f"{'; '.join(blocked)} (see 'ecgbench run --layout {args.layout} --dry-run')")
        plan = plan_layout(args.layout, args.data_root)
    except LayoutError as error:
        raise UsageError(str(error)) from None
    for line in plan.skipped:
        print(f"ecgbench: {args.layout}: not run: {line}", file=sys.stderr)
    if not plan.jobs:
        print(f"ecgbench: {args.layout}: nothing can run here; the table shows why", file=sys.stderr)
    for job in plan.jobs:
        scoring = f"probes {','.join(job.probes)}" if job.probes else f"protocol {plan.protocol}"
        print(f"ecgbench: {args.layout}: running {','.join(job.methods)} on {','.join(job.tasks)} "
              f"with {scoring}, pretrained on {job.pretrain}", file=sys.stderr)
        cmd_run(argparse.Namespace(**{**vars(args), "layout": None, "methods": ",".join(job.methods),
                                      "tasks": ",".join(job.tasks), "probes": ",".join(job.probes) or "all",
                                      "protocols": plan.protocol,
                                      "pretrain_data": job.pretrain, "set": [*plan.settings, *args.set]}))
    from ecgbench.models import distributed

    if not distributed.is_main():  # under torchrun rank 0 writes the table for everyone
        return 0
    text = _layout_text(args.layout, args.results_dir, args.preset, args.data_root)
    store = ResultStore(args.results_dir)
    path = store.tables_dir / f"layout-{args.layout}.md"
    _write_text(path, text)
    if not args.no_tracking:
        from ecgbench.running.tracking import Tracker

        tracker = Tracker(args.tracking_uri or store.default_tracking_uri, artifact_root=store.root / "mlartifacts")
        tracker.start(f"ecgbench-layout-{args.layout}", {"layout": args.layout, "preset": args.preset,
                                                         "seeds": args.seeds})
        tracker.log_artifact(path)
        tracker.finish()
    print(text)
    print(f"ecgbench: layout table: {path}", file=sys.stderr)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Regenerate (or with --check, verify) the leaderboard block of BENCHMARK.md."""
    from ecgbench.core.store import ResultStore
    from ecgbench.reporting.leaderboard import LeaderboardError, is_stale, render_block, update

    store = ResultStore(args.results_dir)
    results = list(store.results()) if (store.root / "runs").exists() else []
    block = render_block(results, args.results_dir)
    path = Path(args.file)
    try:
        if args.check:
            if is_stale(path, block):
                print(f"ecgbench: {path}: the leaderboard block is stale; run 'ecgbench leaderboard' "
                      "and commit the file", file=sys.stderr)
                return 1
            print(f"{path}: leaderboard block is up to date")
            return 0
        changed = update(path, block)
    except LeaderboardError as error:
        raise UsageError(str(error)) from None
    print(f"{path}: leaderboard block {'regenerated' if changed else 'already up to date'} "
          f"from {len(results)} result files")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """One self-contained HTML report (tables, CI plots, CD diagram, curves) from stored results."""
    from ecgbench.reporting.report import screenshot, write_report

    page = write_report(args.results_dir, args.out)
    print(f"ecgbench: report: {page}")
    if args.screenshot:
        try:
            print(f"ecgbench: screenshot: {screenshot(page, Path(args.screenshot))}")
        except FileNotFoundError as error:
            raise UsageError(f"--screenshot: {error}") from None
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """The synthetic suite's shortcut audit (and realism figures against real records)."""
    from ecgbench.data.datasets import data_root
    from ecgbench.reporting.audit import report_text

    if args.real_ptbxl and not (Path(args.real_ptbxl) / "ptbxl_database.csv").is_file():
        raise UsageError(f"--real-ptbxl {args.real_ptbxl}: no ptbxl_database.csv there; give a PTB-XL "
                         "folder (ptbxl_database.csv and records100/)")
    print(report_text(data_root(args.data_root), args.version, args.real, args.results_dir, args.real_ptbxl))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ecgbench.core.config import parse_assignments
    from ecgbench.core.store import write_json
    from ecgbench.tools.bench import BenchSettings, bench_record, render_bench, run_bench

    methods = METHODS.select(args.methods)
    settings = BenchSettings(preset=args.preset, device=args.device, steps=args.steps, warmup=args.warmup,
                             batch_size=args.batch_size, compile=args.compile,
                             probe_records=args.probe_records, overrides=parse_assignments(args.set))
    console = Console(stderr=True)
    with console.status("benchmarking") as status:
        results = run_bench(methods, settings, console, on_method=lambda m: status.update(f"benchmarking {m}"))
    extra = {}
    if args.data:
        extra["data_loading"] = _bench_data(args.data, args.data_root, args.data_records, console)
    text = render_bench(results)
    print(text)
    if "data_loading" in extra:
        print("\ndata loading: " + ", ".join(f"{k} {v}" for k, v in extra["data_loading"].items()))
    record = bench_record(results, settings, extra)
    out = Path(args.out) if args.out else (
        Path(args.results_dir) / "bench" / f"bench-{args.preset}-{record['device'].replace(':', '')}-"
        f"{record['created'].replace(':', '')}.json")
    write_json(out, record)
    console.log(f"bench written to {out}")
    return 0


def _bench_data(name: str, data_root: str | None, max_records: int | None, console) -> dict:
    from ecgbench.data.datasets import data_root as resolve_root
    from ecgbench.data.datasets import dataset_module
    from ecgbench.tools.bench import bench_wfdb_vs_prepared

    module = dataset_module(name)
    if not hasattr(module, "find_source"):
        raise UsageError(f"--data {name}: only WFDB datasets with a prepared store can be compared")
    root = resolve_root(data_root)
    clock = time.perf_counter()
    recordings = module.load(root, allow_subset=True)
    prepare_seconds = time.perf_counter() - clock
    source = module.find_source(root)
    stems = [source / f for f in recordings.meta["filename"]]
    console.log(f"{name}: {len(stems)} records; load (including a first prepare) {prepare_seconds:.1f} s")
    return {"dataset": name, "load_or_prepare_seconds": round(prepare_seconds, 2),
            **bench_wfdb_vs_prepared(stems, lambda: module.load(root, allow_subset=True).signals, max_records)}


# ----- data ------------------------------------------------------------------------------------
def _data_root(args: argparse.Namespace) -> Path:
    from ecgbench.data.datasets import data_root

    return data_root(args.data_root)


def _data_options(args: argparse.Namespace) -> dict[str, str]:
    from ecgbench.core.config import parse_assignments

    return parse_assignments(args.set)


def _dataset_call(name: str, root: Path, action: str, call):
    """Run a dataset function; a missing or bad dataset becomes one line (exit 1)."""
    try:
        return call()
    except RunFailed:
        raise
    except (FileNotFoundError, NotADirectoryError) as error:
        raise RunFailed(f"{name}: {error.filename or error}: not found under {root}; "
                        f"get it with `ecgbench data download {name} --data-root {root}`") from None
    except TypeError as error:  # an option the dataset's function does not take
        raise UsageError(f"data {action} {name}: {error}") from None


def cmd_data_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from ecgbench.data.datasets.catalog import disk_size, human_size, scan

    root = _data_root(args)
    rows = []
    for entry in scan().values():
        where = entry.location(root)
        present = where.exists()
        prepared = entry.prepared(root)
        size = human_size(disk_size(where)) if present else (entry.size or "-")
        rows.append([entry.name, entry.version, size, entry.license, str(where),
                     "yes" if present else "cache only" if prepared else "no",
                     f"yes ({len(prepared)})" if prepared else "no"])
    print(f"data root: {root}")
    print(tabulate(rows, headers=["name", "version", "size", "licence", "location", "present", "prepared"],
                   tablefmt="github"))
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from ecgbench.data.datasets import dataset_module
    from ecgbench.data.datasets.catalog import entry

    found = entry(args.name)
    root = _data_root(args)
    module = dataset_module(found.name)
    if not hasattr(module, "download"):
        raise UsageError(f"{found.name} has nothing to download (it is generated or read where it is)")
    where = _dataset_call(found.name, root, "download",
                          lambda: module.download(root, **_data_options(args)))
    print(f"{found.name} {found.version}: downloaded and verified under {where or root}")
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from ecgbench.data.datasets import dataset_module
    from ecgbench.data.datasets.catalog import entry

    found = entry(args.name)
    root = _data_root(args)
    module = dataset_module(found.name)
    prepare = getattr(module, "prepare", module.load)
    recordings = _dataset_call(found.name, root, "prepare",
                               lambda: prepare(root, **_data_options(args)))
    if recordings is not None and hasattr(recordings, "signals"):
        print(f"{found.name}: {len(recordings)} records, signals {tuple(recordings.signals.shape)} "
              f"at {recordings.fs} Hz, version {recordings.version}")
    print(f"{found.name}: prepared under {root}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from ecgbench.data.datasets import dataset_module
    from ecgbench.data.datasets.catalog import entry

    found = entry(args.name)
    root = _data_root(args)
    module = dataset_module(found.name)
    options = _data_options(args)
    if hasattr(module, "info"):
        summary = _dataset_call(found.name, root, "info", lambda: module.info(root, **options))
    else:
        recordings = _dataset_call(found.name, root, "info", lambda: module.load(root, **options))
        meta = recordings.meta
        summary = {"records": len(meta), "patients": int(meta["patient_id"].nunique()),
                   "splits": {str(s): int(n) for s, n in meta["split"].value_counts().sort_index().items()}}
    print(f"{found.name} {found.version} ({found.license}) under {root}")
    for line in _info_lines(summary):
        print(line)
    return 0


def _info_lines(value, indent: str = "") -> list[str]:
    """Nested dict -> indented lines; a dict of plain values fits on one line."""
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and any(isinstance(v, dict) for v in item.values()):
            lines.append(f"{indent}{key}:")
            lines.extend(_info_lines(item, indent + "  "))
        elif isinstance(item, dict):
            lines.append(f"{indent}{key}: " + ", ".join(f"{k} {v}" for k, v in item.items()))
        else:
            lines.append(f"{indent}{key}: {item}")
    return lines


def _add_data_parser(commands) -> None:
    data = commands.add_parser("data", help="list, download, prepare and describe the datasets")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    root_help = "data root (default: $ECGBENCH_DATA or ~/.cache/ecgbench/data)"
    listing = actions.add_parser("list", help="every dataset: version, size, licence, location, prepared or not")
    listing.add_argument("--data-root", "--root", dest="data_root", default=None, help=root_help)
    listing.set_defaults(handler=cmd_data_list)
    for action, handler, text in (
        ("download", cmd_data_download, "fetch a dataset's official files, verified against its checksums"),
        ("prepare", cmd_data_prepare, "convert a dataset once into the fast on-disk cache"),
        ("info", cmd_data_info, "record and patient counts (per split, fold, class)"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("name", help="dataset name (see 'ecgbench data list')")
        sub.add_argument("--data-root", "--root", dest="data_root", default=None, help=root_help)
        sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a dataset option, e.g. fs=500 or allow_subset=true (ptbxl), labels=folder (cinc2017)")
        sub.set_defaults(handler=handler)


def cmd_check(args: argparse.Namespace) -> int:
    """``check``: fresh results against the committed reference, within per-metric tolerances."""
    from ecgbench.reporting.check import compare, load_results, parse_tolerances, render, update_reference

    reference = Path(args.reference)
    try:
        if args.update:
            count = update_reference(Path(args.results_dir), reference)
            print(f"reference {reference} now holds {count} results from {args.results_dir}")
            return 0
        tolerances = parse_tolerances(args.tolerance)
        report = compare(load_results(reference, "reference"), load_results(Path(args.results_dir), "results"),
                         tolerances)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from None
    print(render(report, only_failures=args.failures_only))
    return 0 if report.passed else 1


def _add_check_parser(commands) -> None:
    from ecgbench.reporting.check import DEFAULT_REFERENCE

    check = commands.add_parser("check", help="compare fresh results with the reference results within tolerances (CI)")
    check.add_argument("--results-dir", default="results", help="fresh results to check (default: ./results)")
    check.add_argument("--reference", default=str(DEFAULT_REFERENCE),
                       help=f"reference results (default: {DEFAULT_REFERENCE}, the synthetic smoke grid)")
    check.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE",
                       help="override a tolerance: macro_auroc=0.03 (default kind), mae=rel:0.02, r2=abs:0.05")
    check.add_argument("--failures-only", action="store_true", help="print only the rows that fail")
    check.add_argument("--update", action="store_true",
                       help="replace the reference with the results in --results-dir (after an intended change)")
    check.set_defaults(handler=cmd_check)


def cmd_track_sync(args: argparse.Namespace) -> int:
    """Log into MLflow the JSON results it lacks (a server was down, a database was rebuilt)."""
    from ecgbench.running.tracking import sync

    counts = sync(args.results_dir, args.tracking_uri)
    print(f"ecgbench: track sync: {counts['logged']} logged, {counts['present']} already there, "
          f"{counts['skipped']} skipped" + ("; tracking failed (see the warning)" if counts["failed"] else ""),
          file=sys.stderr)
    return 1 if counts["failed"] else 0


def _add_track_parser(commands) -> None:
    track = commands.add_parser("track", help="the MLflow view of a results folder")
    actions = track.add_subparsers(dest="action", required=True, metavar="ACTION")
    sync = actions.add_parser("sync", help="log the JSON results that the MLflow store lacks (e.g. after a server was down)")
    sync.add_argument("--results-dir", default="results", help="results directory to read (default: ./results)")
    sync.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite database in the results dir)")
    sync.set_defaults(handler=cmd_track_sync)


# ----- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecgbench",
        description="Benchmark self-supervised ECG representation learning methods on shared tasks.",
    )
    parser.add_argument("--version", action="version", version=f"ecgbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list registered methods, tasks, probes or protocols")
    listing.add_argument("what", metavar="{methods,tasks,probes,protocols}", help="what to list")
    listing.set_defaults(handler=cmd_list)

    run = commands.add_parser("run", help="pretrain, embed, probe and score a grid of methods x tasks")
    run.add_argument("--methods", default="all", help="'all' or comma-separated method names (default: all)")
    run.add_argument("--tasks", default="synth-superclass", help="comma-separated task names (default: synth-superclass)")
    run.add_argument("--probes", default="all", help="'all' or comma-separated probes: svc,rf,lr,mlp,knn")
    run.add_argument("--protocols", default="frozen-probe",
                     help="comma-separated evaluation protocols: frozen-probe,linear,head,finetune (default: frozen-probe; "
                          "settings: --set eval.<protocol>.<field>=...)")
    run.add_argument("--seeds", default="0", help="comma-separated replicate seeds (default: 0)")
    run.add_argument("--preset", default="smoke", choices=["smoke", "cpu", "paper"],
                     help="model and schedule scale: smoke (CI, minutes), cpu (small models), paper (papers' sizes)")
    run.add_argument("--results-dir", default="results", help="where results, caches and the MLflow store go (default: ./results)")
    run.add_argument("--data-root", default=None, help="dataset root (default: $ECGBENCH_DATA or ~/.cache/ecgbench/data)")
    run.add_argument("--pretrain-data", default=None, metavar="NAME",
                     help="dataset to pretrain on (its training split, minus records of evaluated datasets): "
                          "cinc2021, cinc2020, chapman, ptbxl, synthetic, ... (default: the dataset the tasks evaluate)")
    run.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite database in the results dir)")
    run.add_argument("--no-tracking", action="store_true", help="do not log to MLflow (JSON results are still written)")
    run.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto picks CUDA when present")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a setting: lr=1e-3 (every method), simclr.temperature=0.2, eval.bootstrap=500, data.n_patients=300 (synthetic), data.ptbxl.fs=500")
    run.add_argument("--config", default=None, metavar="FILE",
                     help="YAML/JSON of --set keys, e.g. the best.yaml of 'ecgbench tune' (--set items override it)")
    run.add_argument("--shard", default="0/1", metavar="I/N",
                     help="run only every N-th (method, seed) job starting at the I-th (0-based), so N "
                          "machines sharing a results directory split the grid (default: 0/1)")
    run.add_argument("--compile", action="store_true",
                     help="torch.compile the training step on CUDA (falls back to eager where it fails; "
                          "'ecgbench bench --compile' shows where it helps)")
    run.add_argument("--jobs", default=None, metavar="N",
                     help="on CPU, run unfinished (method, seed) jobs in N worker processes with "
                          "cores/N threads each (default: auto = one per core, or $ECGBENCH_JOBS; 1: serial)")
    run.add_argument("--nproc", type=int, default=None, metavar="N",
                     help="pretrain with N processes (DistributedDataParallel): relaunches this command "
                          "under 'torchrun --nproc-per-node N'")
    run.add_argument("--layout", default=None, metavar="NAME",
                     help="run what this paper layout needs (replaces --methods/--tasks/--probes); see 'ecgbench table --layout list'")
    run.add_argument("--dry-run", action="store_true",
                     help="with --layout: print the layout's plan (method, pretraining data, leads, fs, window, "
                          "task, probes per row) and check every row can run; train nothing")
    run.set_defaults(handler=cmd_run)

    table = commands.add_parser("table", help="markdown tables from stored results (no recomputation)")
    table.add_argument("--results-dir", default="results", help="results directory to read (default: ./results)")
    table.add_argument("--tasks", default=None, help="only these comma-separated tasks")
    table.add_argument("--out", default=None, help="write to this file instead of standard output")
    table.add_argument("--layout", default=None, metavar="NAME",
                       help="a paper's table with our numbers beside the reported ones; 'list' lists the layouts")
    table.add_argument("--preset", default=None, choices=["smoke", "cpu", "paper"],
                       help="with --layout: whose results to show (default: the largest preset stored)")
    table.add_argument("--data-root", default=None, help="with --layout: dataset root, to say which datasets are not prepared")
    table.set_defaults(handler=cmd_table)

    leaderboard = commands.add_parser("leaderboard", help="regenerate the leaderboard block of BENCHMARK.md from stored results")
    leaderboard.add_argument("--results-dir", default="results", help="results directory to read (default: ./results)")
    leaderboard.add_argument("--file", default="BENCHMARK.md", help="markdown file with the block (default: BENCHMARK.md)")
    leaderboard.add_argument("--check", action="store_true", help="exit 1 if the block is stale instead of writing it (for CI)")
    leaderboard.set_defaults(handler=cmd_leaderboard)

    report = commands.add_parser("report", help="one self-contained HTML report (opens from disk) from stored results")
    report.add_argument("--results-dir", default="results", help="results directory to read (default: ./results)")
    report.add_argument("--out", default="results/report/report.html", help="HTML file to write (default: results/report/report.html)")
    report.add_argument("--screenshot", default=None, metavar="PNG", help="also save headless chromium's screenshot of the page here")
    report.set_defaults(handler=cmd_report)

    audit = commands.add_parser("audit", help="synthetic suite: logistic regression on trivial features per task; realism vs real records")
    audit.add_argument("--version", type=int, default=None, help="suite version (default: the current one)")
    audit.add_argument("--data-root", default=None, help="where the suite is generated/cached")
    audit.add_argument("--real", default=None, metavar="DIR", help="a folder of CinC 2021 .hea/.mat records to measure beside the suite")
    audit.add_argument("--results-dir", default=None, help="also each stored method (lr probe) against random-init: paired bootstrap, Holm")
    audit.add_argument("--real-ptbxl", default=None, metavar="DIR",
                       help="a PTB-XL folder (ptbxl_database.csv, records100/): how much of age its records and the suite's carry")
    audit.set_defaults(handler=cmd_audit)

    bench = commands.add_parser("bench", help="measure pretraining, loading, embedding and probe speed per method")
    bench.add_argument("--methods", default="all", help="'all' or comma-separated method names (default: all)")
    bench.add_argument("--preset", default="smoke", choices=["smoke", "cpu", "paper"], help="model scale (default: smoke)")
    bench.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto picks CUDA when present")
    bench.add_argument("--steps", type=int, default=10, help="timed optimiser steps per method (default: 10)")
    bench.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps (default: 3)")
    bench.add_argument("--batch-size", type=lambda v: v if v == "auto" else int(v), default=None,
                       help="override the preset batch size; 'auto': double it while a step fits in memory (CUDA)")
    bench.add_argument("--compile", action="store_true", help="also time torch.compile'd training steps (CUDA)")
    bench.add_argument("--probe-records", type=int, default=2000, help="embeddings per probe-fit timing (default: 2000)")
    bench.add_argument("--data", default=None, help="also compare prepared-store vs per-record wfdb loading for this dataset (e.g. ptbxl)")
    bench.add_argument("--data-root", default=None, help="dataset root for --data")
    bench.add_argument("--data-records", type=int, default=None, help="at most this many records for --data")
    bench.add_argument("--results-dir", default="results", help="bench JSON goes to <results-dir>/bench/ (default: ./results)")
    bench.add_argument("--out", default=None, help="write the JSON here instead")
    bench.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="method setting overrides, as for run")
    bench.set_defaults(handler=cmd_bench)
    _add_data_parser(commands)
    _add_check_parser(commands)
    _add_tune_parser(commands)
    _add_track_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for relaunching under torchrun
    try:
        return args.handler(args)
    except (UsageError, UnknownNameError) as error:
        print(f"ecgbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ecgbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except ConfigError as error:
        print(f"ecgbench: error: {error}", file=sys.stderr)
        return 2
    except RunFailed as error:
        print(f"ecgbench: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
