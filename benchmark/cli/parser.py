"""The argument parser: every subcommand, its flags and their help, each bound to its handler in
:mod:`ecgbench.cli.commands`."""

from __future__ import annotations

import argparse

from ecgbench import __version__
from ecgbench.cli.commands import (
    cmd_audit,
    cmd_bench,
    cmd_check,
    cmd_check_method,
    cmd_data,
    cmd_leaderboard,
    cmd_list,
    cmd_new_method,
    cmd_report,
    cmd_run,
    cmd_table,
    cmd_track_sync,
    cmd_tune,
)
from ecgbench.core.store import DEFAULT_RESULTS_DIR, default_results_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecgbench",
        description="Benchmark self-supervised ECG representation learning methods on shared tasks.",
    )
    parser.add_argument("--version", action="version", version=f"ecgbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list registered methods, tasks, probes or protocols")
    listing.add_argument("what", metavar="{methods,tasks,probes,protocols}", help="what to list")
    listing.add_argument("--verbose", "-v", action="store_true",
                         help="tasks: dataset and version, kind, classes, metric, citation and n per split where prepared")
    listing.add_argument("--data-root", default=None, help="with tasks --verbose: where to look for prepared datasets")
    listing.set_defaults(handler=cmd_list)
    add_include_option(listing)

    run = commands.add_parser("run", help="pretrain, embed, probe and score a grid of methods x tasks")
    run.add_argument("--methods", default=None, help="'all' or comma-separated method names (default: all)")
    run.add_argument("--tasks", default=None, help="comma-separated task names (default: synth-superclass)")
    run.add_argument("--probes", default=None, help="'all' or comma-separated probes: svc,rf,lr,mlp,knn (default: all)")
    run.add_argument("--protocols", default="frozen-probe",
                     help="comma-separated evaluation protocols: frozen-probe,linear,head,finetune (default: frozen-probe; "
                          "settings: --set eval.<protocol>.<field>=...)")
    run.add_argument("--seeds", default="0", help="comma-separated replicate seeds (default: 0)")
    run.add_argument("--preset", default="smoke", choices=["smoke", "cpu", "paper"],
                     help="model and schedule scale: smoke (CI, minutes), cpu (small models), paper (papers' sizes)")
    run.add_argument("--results-dir", default=default_results_dir(),
                     help=f"where results, caches and the MLflow store go (default: $ECGBENCH_RESULTS or ./{DEFAULT_RESULTS_DIR}; "
                          "the repository's results/ holds the committed leaderboard)")
    run.add_argument("--data-root", default=None, help="dataset root (default: $ECGBENCH_DATA or ~/.cache/ecgbench/data)")
    run.add_argument("--pretrain-data", default=None, metavar="NAME",
                     help="dataset to pretrain on (its training split, minus records of evaluated datasets): "
                          "cinc2021, cinc2020, chapman, ptbxl, synthetic, ... (default: the dataset the tasks evaluate)")
    run.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite database in the results dir)")
    run.add_argument("--no-tracking", action="store_true", help="do not log to MLflow (JSON results are still written)")
    run.add_argument("--log-checkpoints", action="store_true",
                     help="also log each encoder's weights under its MLflow pretraining run (large)")
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
    run.add_argument("--limit", default=None, metavar="N",
                     help="try a task on the first N patients of each split of every dataset (marked in every key "
                          "as -limitN, so never mixed with full runs)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan and train nothing: per (method, seed) its run id, whether its encoder is "
                          "stored or would train, and how many results are stored; with --layout, the layout's plan "
                          "(method, pretraining data, leads, fs, window, task, probes per row)")
    run.set_defaults(handler=cmd_run)
    add_include_option(run)

    table = commands.add_parser("table", help="markdown tables from stored results (no recomputation)")
    table.add_argument("--results-dir", default=default_results_dir(), help=f"results directory to read (default: where run writes, ./{DEFAULT_RESULTS_DIR}; results = the committed leaderboard)")
    table.add_argument("--tasks", default=None, help="only these comma-separated tasks")
    table.add_argument("--out", default=None, help="write to this file instead of standard output")
    table.add_argument("--layout", default=None, metavar="NAME",
                       help="a paper's table with our numbers beside the reported ones; 'list' lists the layouts")
    table.add_argument("--preset", default=None, choices=["smoke", "cpu", "paper"],
                       help="with --layout: whose results to show (default: the largest preset stored)")
    table.add_argument("--data-root", default=None, help="with --layout: dataset root, to say which datasets are not prepared")
    table.set_defaults(handler=cmd_table)
    add_include_option(table)

    leaderboard = commands.add_parser("leaderboard", help="regenerate the leaderboard block of BENCHMARK.md from stored results")
    leaderboard.add_argument("--results-dir", default="results", help="results directory to read (default: ./results, the committed leaderboard)")
    leaderboard.add_argument("--file", default="BENCHMARK.md", help="markdown file with the block (default: BENCHMARK.md)")
    leaderboard.add_argument("--check", action="store_true", help="exit 1 if the block is stale instead of writing it (for CI)")
    leaderboard.set_defaults(handler=cmd_leaderboard)

    report = commands.add_parser("report", help="one self-contained HTML report (opens from disk) from stored results")
    report.add_argument("--results-dir", default=default_results_dir(), help=f"results directory to read (default: where run writes, ./{DEFAULT_RESULTS_DIR}; results = the committed leaderboard)")
    report.add_argument("--out", default=None, help="HTML file to write (default: <results-dir>/report/report.html)")
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
    add_include_option(bench)
    _add_data_parser(commands)
    _add_check_parser(commands)
    _add_tune_parser(commands)
    _add_track_parser(commands)
    _add_plugin_parsers(commands)
    return parser


def add_include_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--include-path", action="append", default=[], metavar="DIR",
                        help="also scan this folder for method and task files, like methods/ and tasks/ "
                             "(repeatable; also $ECGBENCH_INCLUDE_PATH, separated by os.pathsep)")


def _add_plugin_parsers(commands) -> None:
    new = commands.add_parser("new", help="write a template file to start a method of your own")
    kinds = new.add_subparsers(dest="new_kind", required=True, metavar="KIND")
    method = kinds.add_parser("method", help="a method file that passes 'ecgbench check-method' as written")
    method.add_argument("name", help="the method's registry name: lower-case letters, digits and dashes")
    method.add_argument("--out", default=".", metavar="DIR", help="folder to write <name>.py into (default: .)")
    method.set_defaults(handler=cmd_new_method)
    check = commands.add_parser("check-method", help="run the method contract checks on a method file")
    check.add_argument("file", help="a Python file with one or more method classes (name = \"...\")")
    check.set_defaults(handler=cmd_check_method)


def _add_data_parser(commands) -> None:
    data = commands.add_parser("data", help="list, download, prepare and describe the datasets")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    root_help = "data root (default: $ECGBENCH_DATA or ~/.cache/ecgbench/data)"
    listing = actions.add_parser("list", help="every dataset: version, size, licence, location, prepared or not")
    listing.add_argument("--data-root", "--root", dest="data_root", default=None, help=root_help)
    listing.set_defaults(handler=cmd_data)
    for action, text in (
        ("download", "fetch a dataset's official files, verified against its checksums"),
        ("prepare", "convert a dataset once into the fast on-disk cache"),
        ("info", "record and patient counts (per split, fold, class)"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("name", help="dataset name (see 'ecgbench data list')")
        sub.add_argument("--data-root", "--root", dest="data_root", default=None, help=root_help)
        sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a dataset option, e.g. fs=500 or allow_subset=true (ptbxl), labels=folder (cinc2017)")
        sub.set_defaults(handler=cmd_data)


def _add_check_parser(commands) -> None:
    from ecgbench.reporting.check import DEFAULT_REFERENCE

    check = commands.add_parser("check", help="compare fresh results with the reference results within tolerances (CI)")
    check.add_argument("--results-dir", default=default_results_dir(), help=f"fresh results to check (default: ./{DEFAULT_RESULTS_DIR})")
    check.add_argument("--reference", default=str(DEFAULT_REFERENCE),
                       help=f"reference results (default: {DEFAULT_REFERENCE}, the synthetic smoke grid)")
    check.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE",
                       help="override a tolerance: macro_auroc=0.03 (default kind), mae=rel:0.02, r2=abs:0.05")
    check.add_argument("--failures-only", action="store_true", help="print only the rows that fail")
    check.add_argument("--update", action="store_true",
                       help="replace the reference with the results in --results-dir (after an intended change)")
    check.set_defaults(handler=cmd_check)


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
    tune.add_argument("--results-dir", default=default_results_dir(), help=f"the search goes to <results-dir>/tune/<name>/ (default: ./{DEFAULT_RESULTS_DIR})")
    tune.add_argument("--data-root", default=None, help="dataset root (default: $ECGBENCH_DATA or ~/.cache/ecgbench/data)")
    tune.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite in the results dir)")
    tune.add_argument("--no-tracking", action="store_true", help="do not log trials to MLflow")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="fix a setting as for run (a searched one leaves the space), e.g. data.n_patients=90")
    tune.set_defaults(handler=cmd_tune)
    add_include_option(tune)


def _add_track_parser(commands) -> None:
    track = commands.add_parser("track", help="the MLflow view of a results folder")
    actions = track.add_subparsers(dest="action", required=True, metavar="ACTION")
    sync = actions.add_parser("sync", help="log the JSON results that the MLflow store lacks (e.g. after a server was down)")
    sync.add_argument("--results-dir", default=default_results_dir(), help=f"results directory to read (default: ./{DEFAULT_RESULTS_DIR})")
    sync.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite database in the results dir)")
    sync.set_defaults(handler=cmd_track_sync)

