"""One handler per subcommand: it reads its parsed arguments and calls the one function of the
layer that does the work (heavy libraries load inside those, so ``--help`` and ``list`` answer at
once); what it prints is that function's answer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ecgbench.cli.arguments import (
    UsageError,
    launch_torchrun,
    run_request,
)
from ecgbench.core.registry import METHODS, TASKS, did_you_mean

if TYPE_CHECKING:
    from ecgbench.running.plan import RunRequest

LISTABLE = ("methods", "tasks", "probes", "protocols")


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
    elif what == "tasks" and getattr(args, "verbose", False):
        from ecgbench.data.datasets import data_root
        from ecgbench.data.manage import describe_tasks

        print(describe_tasks(TASKS.names(), data_root(getattr(args, "data_root", None))))
        return 0
    else:
        return _list_registry(METHODS if what == "methods" else TASKS)
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0


def _list_registry(registry) -> int:
    """Name and description; with external entries present, also where each comes from."""
    entries = [registry.entry(name) for name in registry.names()]
    width = max((len(e.name) for e in entries), default=0)
    external = any(e.digest for e in entries)
    described = max((len(e.description) for e in entries), default=0) if external else 0
    for e in entries:
        source = f"  [{e.source}]" if external else ""
        print(f"{e.name:<{width}}  {e.description:<{described}}{source}".rstrip())
    return 0


def cmd_new_method(args: argparse.Namespace) -> int:
    from ecgbench.tools.plugins import new_method

    path = new_method(args.name, Path(args.out))
    print(f"ecgbench: wrote {path}; check it with 'ecgbench check-method {path}', "
          f"run it with 'ecgbench run --include-path {path.parent} --methods {args.name}'", file=sys.stderr)
    return 0


def cmd_check_method(args: argparse.Namespace) -> int:
    from ecgbench.tools.plugins import check_method_file

    failures = check_method_file(Path(args.file), print)
    return 1 if failures else 0


def cmd_run(args: argparse.Namespace) -> int:
    if getattr(args, "nproc", None) is not None:  # first: one torchrun then runs the whole command, layouts too
        return launch_torchrun(args.argv, args.nproc)
    if getattr(args, "layout", None):
        return cmd_run_layout(args)
    if getattr(args, "dry_run", False):
        from ecgbench.running import dry_run

        request = run_request(args)
        print(dry_run.render(dry_run.plan_rows(request), request))
        return 0
    from ecgbench.running.run_grid import run_grid

    run_grid(run_request(args))
    return 0


def cmd_run_layout(args: argparse.Namespace) -> int:
    """``run --layout NAME``: run exactly the methods x tasks x probes the layout needs (one grid
    per reported table), report what cannot run, then write the layout table (and log it to
    MLflow). --methods/--tasks/--probes are replaced by the layout's."""
    from ecgbench.running.run_layout import dry_run, run_layout

    chosen = [flag for flag in ("methods", "tasks", "probes") if getattr(args, flag, None) is not None]
    if chosen:
        raise UsageError(f"--layout {args.layout} runs the layout's own rows, tasks and probes; drop "
                         f"{', '.join('--' + flag for flag in chosen)} (or run without --layout)")
    if getattr(args, "dry_run", False):
        return dry_run(args.layout, args.preset, args.data_root)

    def request_for(job, plan) -> RunRequest:
        return run_request(args, plan.settings, methods=",".join(job.methods), tasks=",".join(job.tasks),
                           probes=",".join(job.probes) or "all", protocols=plan.protocol,
                           pretrain_data=job.pretrain)

    params = {"layout": args.layout, "preset": args.preset, "seeds": args.seeds}
    log_run = None if args.no_tracking else {"tracking_uri": args.tracking_uri, "params": params}
    run_layout(args.layout, args.preset, args.data_root, args.results_dir, request_for, log_run)
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    if getattr(args, "layout", None):
        return cmd_table_layout(args)
    from ecgbench.core.store import ResultStore
    from ecgbench.reporting.tables import render

    store = ResultStore(args.results_dir)
    if not (store.root / "runs").exists():
        raise UsageError(f"no results under {store.root}; run 'ecgbench run' first or pass --results-dir")
    from ecgbench.data.folds import is_fold_result

    tasks = TASKS.select(args.tasks) if args.tasks else None
    text = render([r for r in store.results() if not is_fold_result(r)], tasks)  # folds: inputs of pooled results
    if args.out:
        from ecgbench.core.store import atomic_write

        atomic_write(Path(args.out), lambda tmp: tmp.write_text(text, encoding="utf-8"))
        print(f"ecgbench: table: {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_table_layout(args: argparse.Namespace) -> int:
    """``table --layout NAME``: a paper's table with our stored numbers beside the reported ones."""
    from ecgbench.reporting.layouts import LayoutError, list_layouts
    from ecgbench.running.run_layout import layout_text, write_text

    if args.layout == "list":
        try:
            print(list_layouts())
        except LayoutError as error:
            raise UsageError(str(error)) from None
        return 0
    text = layout_text(args.layout, args.results_dir, args.preset, args.data_root)
    if args.out:
        write_text(Path(args.out), text)
        print(f"ecgbench: layout table: {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Regenerate (or with --check, verify) the leaderboard block of BENCHMARK.md."""
    from ecgbench.reporting.leaderboard import LeaderboardError, refresh

    try:
        current, message = refresh(args.results_dir, Path(args.file), args.check)
    except LeaderboardError as error:
        raise UsageError(str(error)) from None
    print(message if current else f"ecgbench: {message}", file=sys.stdout if current else sys.stderr)
    return 0 if current else 1


def cmd_report(args: argparse.Namespace) -> int:
    """One self-contained HTML report (tables, CI plots, CD diagram, curves) from stored results."""
    from ecgbench.reporting.report import browser_binary, screenshot, write_report

    if args.screenshot:  # refused before the report is built, not after
        try:
            browser_binary()
        except FileNotFoundError as error:
            raise UsageError(f"--screenshot: {error}") from None
    page = write_report(args.results_dir, args.out or Path(args.results_dir) / "report" / "report.html")
    print(f"ecgbench: report: {page}")
    if args.screenshot:
        print(f"ecgbench: screenshot: {screenshot(page, Path(args.screenshot))}")
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
    from ecgbench.core.config import parse_assignments
    from ecgbench.tools.bench import BenchSettings, bench_and_write

    settings = BenchSettings(preset=args.preset, device=args.device, steps=args.steps, warmup=args.warmup,
                             batch_size=args.batch_size, compile=args.compile,
                             probe_records=args.probe_records, overrides=parse_assignments(args.set))
    bench_and_write(METHODS.select(args.methods), settings, args.results_dir, args.out, args.data, args.data_root,
                    args.data_records)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """``data list | download | prepare | info`` (:mod:`ecgbench.data.manage`)."""
    from ecgbench.core.config import parse_assignments
    from ecgbench.data import manage
    from ecgbench.data.datasets import data_root

    root = data_root(args.data_root)
    if args.data_command == "list":
        print(manage.list_datasets(root))
        return 0
    action = {"download": manage.download, "prepare": manage.prepare, "info": manage.info}[args.data_command]
    print(action(args.name, root, parse_assignments(args.set)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``check``: fresh results against the committed reference, within per-metric tolerances."""
    from ecgbench.reporting.check import check_results, update_reference

    reference = Path(args.reference)
    try:
        if args.update:
            count = update_reference(Path(args.results_dir), reference)
            print(f"reference {reference} now holds {count} results from {args.results_dir}")
            return 0
        passed, text = check_results(Path(args.results_dir), reference, args.tolerance, args.failures_only)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from None
    print(text)
    return 0 if passed else 1


def cmd_track_sync(args: argparse.Namespace) -> int:
    """Log into MLflow the JSON results it lacks (a server was down, a database was rebuilt)."""
    from ecgbench.running.tracking import sync

    counts = sync(args.results_dir, args.tracking_uri)
    print(f"ecgbench: track sync: {counts['logged']} logged, {counts['present']} already there, "
          f"{counts['skipped']} skipped" + ("; tracking failed (see the warning)" if counts["failed"] else ""),
          file=sys.stderr)
    return 1 if counts["failed"] else 0


def cmd_tune(args: argparse.Namespace) -> int:
    import os

    from ecgbench.core.config import parse_assignments
    from ecgbench.core.registry import INCLUDE_ENV, include_paths
    from ecgbench.tools.tune import TuneRequest, run_search

    if include_paths():  # Ray's trial processes start from this environment, not from our arguments
        os.environ[INCLUDE_ENV] = os.pathsep.join(map(str, include_paths()))
    run_search(TuneRequest(
        method=METHODS.get(args.method).name, task=TASKS.get(args.task).name, trials=args.trials,
        preset=args.preset, seed=args.seed, results_dir=Path(args.results_dir),
        data_root=Path(args.data_root) if args.data_root else None, overrides=parse_assignments(args.set),
        probe=args.probe, protocol=args.protocol, reports=args.reports, reduction_factor=args.reduction_factor,
        ray_address=args.ray_address, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        resume=args.resume, tracking_uri=args.tracking_uri, track=not args.no_tracking,
    ))
    return 0

