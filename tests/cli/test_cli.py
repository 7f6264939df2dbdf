import subprocess
import sys
from pathlib import Path

import pytest

from ecgbench.cli import main


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_is_light_and_name_first():
    """`ecgbench list` must not import torch, sklearn or mlflow (fast CLI)."""
    code = (
        "import sys\nfrom ecgbench.cli import main\n"
        "for what in ('methods', 'tasks', 'probes'):\n    main(['list', what])\n"
        "heavy = [m for m in ('torch', 'sklearn', 'mlflow') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[-1] == "HEAVY []"
    names = {line.split()[0] for line in lines[:-1]}
    assert {"simclr", "byol", "random-init", "synth-superclass", "synth-age", "svc", "knn"} <= names


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["table", "--help"], ["list", "--help"]])
def test_help_on_every_subcommand(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: ecgbench" in capsys.readouterr().out


def test_module_entry_point_works():
    result = subprocess.run([sys.executable, "-m", "ecgbench", "list", "probes"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith(("svc", "rf", "lr", "mlp", "knn"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["list", "metods"], "Did you mean 'methods'"),
        (["run", "--methods", "simclrr", "--no-tracking"], "Did you mean 'simclr'"),
        (["run", "--tasks", "synth-sex,synth-agee", "--no-tracking"], "Did you mean 'synth-age'"),
        (["run", "--probes", "svm", "--no-tracking"], "unknown probe 'svm'"),
        (["run", "--seeds", "a", "--no-tracking"], "--seeds expects"),
        (["run", "--methods", "simclr", "--set", "temprature=2", "--no-tracking"], "Did you mean 'temperature'"),
        (["run", "--methods", "simclr", "--set", "lr", "--no-tracking"], "key=value"),
        (["run", "--methods", "simclr", "--set", "lr=fast", "--no-tracking"], "expected a float"),
        (["run", "--methods", "simclr", "--set", "eval.bootstrp=3", "--no-tracking"], "Did you mean 'bootstrap'"),
        (["audit", "--real-ptbxl", "/nonexistent/ptb-xl"], "--real-ptbxl /nonexistent/ptb-xl: no ptbxl_database.csv"),
        (["run", "--nproc", "0", "--no-tracking"], "--nproc expects a positive number"),
        (["run", "--layout", "nerula-table3", "--methods", "simclr", "--no-tracking"], "drop --methods"),
        (["run", "--layout", "nerula-table3", "--tasks", "synth-sex", "--probes", "lr", "--dry-run"],
         "drop --tasks, --probes"),
        (["run", "--methods", "simclr", "--set", "eval.clustering=maybe", "--no-tracking"], "expected true or false"),
        (["run", "--methods", "clocs-cmsc", "--set", "clocs-cmsc.temperature=0", "--no-tracking"],
         "clocs-cmsc.temperature=0.0: must be a number > 0"),  # a zero temperature divides by zero at step 0
        (["run", "--methods", "random-init", "--tasks", "ptbxl-sex", "--set", "data.ptbxl.fs=123", "--no-tracking"],
         "ptbxl: fs must be 100 or 500"),  # dataset options checked before any loading
        (["run", "--methods", "random-init-lead2", "--tasks", "cinc2017-af", "--set", "data.cinc2017.labels=v9",
          "--no-tracking"], "cinc2017: labels must be one of v0, v1, v2, v3, folder"),
        (["run", "--methods", "random-init", "--tasks", "ptbxl-sex", "--set", "data.ptbxl.limit=0", "--no-tracking"],
         "ptbxl: limit=0: must be at least 1"),
    ],
)
def test_misuse_gives_one_line_error(argv, message, capsys, tmp_path):
    code, out, err = _run(argv + ["--results-dir", str(tmp_path)] if argv[0] == "run" else argv, capsys)
    assert code == 2
    assert err.startswith("ecgbench: error: ") and err.count("\n") == 1, err
    assert message in err


def test_table_without_results_is_one_line(capsys, tmp_path):
    code, _, err = _run(["table", "--results-dir", str(tmp_path / "none")], capsys)
    assert code == 2 and "no results" in err and err.count("\n") == 1


def test_a_binary_config_file_is_one_line(capsys, tmp_path):
    config = tmp_path / "best.yaml"
    config.write_bytes(bytes(range(256)))
    code, _, err = _run(["run", "--methods", "simclr", "--config", str(config), "--no-tracking",
                         "--results-dir", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1 and f"--config {config}: not UTF-8 text" in err, err


@pytest.mark.parametrize("value, expected", [("true", True), ("TRUE", True), ("1", True), (True, True),
                                             ("false", False), ("0", False), (" False ", False), (False, False)])
def test_flags_read_true_false_one_zero(value, expected):
    from ecgbench.core.config import flag

    assert flag(value, "data.ptbxl.allow_subset") is expected


@pytest.mark.parametrize("value", ["maybe", "yes", "", "2", "off"])
def test_any_other_flag_is_refused_never_read_as_false(value):
    from ecgbench.core.config import ConfigError, flag

    with pytest.raises(ConfigError, match="data.ptbxl.allow_subset=.*expected true or false"):
        flag(value, "data.ptbxl.allow_subset")


REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference"


def test_report_screenshot_without_chromium_is_refused_before_any_work(capsys, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    out = tmp_path / "report.html"
    code, _, err = _run(["report", "--results-dir", str(REFERENCE), "--out", str(out),
                         "--screenshot", str(tmp_path / "shot.png")], capsys)
    assert code == 2 and err.count("\n") == 1 and "--screenshot: chromium not found" in err, err
    assert not out.exists()  # refused before the report was built


@pytest.mark.parametrize("extra", [["--tasks", "synth-superclass"], ["--layout", "nerula-table4"]])
def test_table_out_says_where_it_wrote(capsys, tmp_path, extra):
    out = tmp_path / "table.md"
    code, stdout, err = _run(["table", "--results-dir", str(REFERENCE), "--out", str(out), *extra], capsys)
    assert code == 0 and out.read_text().strip() and not stdout
    assert err.strip().endswith(f"table: {out}"), err


def test_runs_never_write_into_the_committed_results_by_default(monkeypatch):
    """run, table, report, check, tune and track sync default to ./ecgbench-results (gitignored) or
    $ECGBENCH_RESULTS; only the leaderboard reads the committed results/ by default."""
    from ecgbench.cli.parser import build_parser

    monkeypatch.delenv("ECGBENCH_RESULTS", raising=False)
    parser = build_parser()
    for argv in (["run"], ["table"], ["report"], ["check"], ["tune", "--method", "simclr", "--task", "synth-superclass"],
                 ["track", "sync"]):
        assert parser.parse_args(argv).results_dir == "ecgbench-results", argv
    assert parser.parse_args(["leaderboard"]).results_dir == "results"
    monkeypatch.setenv("ECGBENCH_RESULTS", "/data/mine")
    assert build_parser().parse_args(["run"]).results_dir == "/data/mine"
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "ecgbench-results/" in ignored


def test_dry_run_prints_the_grid_and_trains_nothing(tmp_path, capsys):
    from ecgbench.cli import main

    results = tmp_path / "results"
    assert main(["run", "--methods", "random-init,simclr", "--tasks", "synth-superclass", "--probes", "lr",
                 "--seeds", "0,1", "--dry-run", "--results-dir", str(results), "--no-tracking"]) == 0
    out = capsys.readouterr().out
    assert "2 of 4 encoders would train; nothing ran" in out
    assert out.count("would train (12 steps)") == 2 and out.count("no training (control)") == 2
    assert not list(results.rglob("*.json")) and not list(results.rglob("*.pt"))  # nothing trained or scored


def test_list_tasks_verbose_says_what_each_task_is(tmp_path, capsys):
    import shutil

    from ecgbench.cli import main
    from ecgbench.data.datasets import load_dataset

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cinc2017"
    if not shared.is_dir():
        pytest.skip("shared CinC 2017 sample not found")
    shutil.copytree(shared, tmp_path / "cinc2017")
    load_dataset("cinc2017", tmp_path, {"labels": "v3"})  # prepared once
    assert main(["list", "tasks", "--verbose", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    block = out.split("cinc2017-af@v1: ")[1].split("\n\n")[0]
    assert "dataset: cinc2017 (version 1.0.0-p1)" in block and "main metric: macro_f1 (higher is better)" in block
    assert "classes: N, A, O, ~" in block and "Clifford GD" in block
    assert "n (usable records / patients): train 139 / 139 · val 30 / 30 · test 31 / 31" in block  # its seeded split
    assert "ptbxl not prepared under" in out.split("ptbxl-sex@v1: ")[1].split("\n\n")[0]


@pytest.mark.parametrize("value, message", [("0", "must be at least 1"), ("ten", "whole number")])
def test_limit_is_checked_before_any_work(value, message, capsys):
    from ecgbench.cli import main

    assert main(["run", "--limit", value, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
