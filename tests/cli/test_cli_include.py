"""``ecgbench run --include-path``, ``list``, ``new method`` and ``check-method`` on files outside
the package, through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecgbench.cli import main
from ecgbench.core.registry import METHODS, TASKS

TASK = '''"""A task of one's own on the synthetic suite."""
from ecgbench.core.contracts import Task
from ecgbench.tasks._labels import sex_labels

MY_SEX = Task(name="my-synth-sex", version=1, dataset="synthetic", kind="binary", labels=sex_labels,
              main_metric="macro_auroc", classes=("male", "female"),
              description="Patient sex on the synthetic suite, from an include path.")
'''


pytestmark = pytest.mark.usefixtures("fresh_registries")  # tests/conftest.py


@pytest.fixture
def plugins(tmp_path) -> Path:
    """A folder outside the package with a method (the `new method` template) and a task."""
    folder = tmp_path / "plugins"
    assert main(["new", "method", "my-method", "--out", str(folder)]) == 0
    (folder / "my_task.py").write_text(TASK)
    return folder


@pytest.mark.slow
def test_run_with_an_include_path_end_to_end(plugins, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    results = tmp_path / "results"
    argv = ["run", "--include-path", str(plugins), "--methods", "my-method", "--tasks", "my-synth-sex",
            "--probes", "lr", "--preset", "smoke", "--no-tracking", "--results-dir", str(results),
            "--set", "data.n_patients=90", "--set", "eval.bootstrap=20"]
    assert main(argv) == 0
    assert "my-synth-sex" in capsys.readouterr().out
    digest = METHODS.entry("my-method").digest
    task_digest = TASKS.entry("my-synth-sex").digest
    [path] = list((results / "runs").glob("my-method-*/*/*.json"))
    record = json.loads(path.read_text())
    assert record["run_config"]["method_source"] == digest
    assert record["task_key"] == f"my-synth-sex#{task_digest}@v1" and record["metrics"]["macro_auroc"] >= 0


def test_list_shows_where_each_entry_comes_from(plugins, capsys):
    assert main(["list", "methods", "--include-path", str(plugins)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["my-method"].endswith(f"[{plugins / 'my_method.py'}]")
    assert lines["simclr"].endswith("[built-in]")
    assert main(["list", "tasks", "--include-path", str(plugins)]) == 0
    assert "my-synth-sex" in capsys.readouterr().out


@pytest.mark.parametrize("source, message", [
    ("class Broken(:\n", "bad.py:1: syntax error"),
    ("x = 1\n", "bad.py: defines no method"),
    ("class Clash:\n    name = 'byol'\n", "method name 'byol' clashes with the built-in method in byol.py"),
])
def test_a_bad_external_file_stops_before_any_work_in_one_line(tmp_path, capsys, source, message):
    (tmp_path / "bad.py").write_text(source)
    for argv in (["list", "methods"], ["run", "--methods", "simclr", "--no-tracking",
                                       "--results-dir", str(tmp_path / "results")]):
        assert main([*argv, "--include-path", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert message in err and str(tmp_path / "bad.py") in err and err.count("\n") == 1
        assert "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_new_method_refuses_a_bad_or_taken_name(tmp_path, capsys):
    assert main(["new", "method", "My_Method", "--out", str(tmp_path)]) == 2
    assert "lower-case letters and digits joined by dashes" in capsys.readouterr().err
    assert main(["new", "method", "simclr", "--out", str(tmp_path)]) == 2
    assert "clashes with the method in" in capsys.readouterr().err


@pytest.mark.slow
def test_new_method_output_passes_check_method(tmp_path, capsys):
    assert main(["new", "method", "fresh-idea", "--out", str(tmp_path)]) == 0
    written = tmp_path / "fresh_idea.py"
    text = written.read_text()
    assert 'name = "fresh-idea"' in text and "class FreshIdeaMethod(Method)" in text and "Departures:" in text
    capsys.readouterr()
    assert main(["check-method", str(written)]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok") == 5 and "FAILED" not in out


def test_check_method_reports_a_broken_method(tmp_path, capsys):
    assert main(["new", "method", "frozen-idea", "--out", str(tmp_path)]) == 0
    written = tmp_path / "frozen_idea.py"
    # a loss that never reaches the encoder: the contract names the checks that fail
    written.write_text(written.read_text().replace('return {"loss": nt_xent(z1, z2, self.config.temperature)}',
                                                   'return {"loss": (z1 * 0).sum().detach()}'))
    capsys.readouterr()
    assert main(["check-method", str(written)]) == 1
    out = capsys.readouterr().out
    assert "frozen-idea: declarations: ok" in out and "frozen-idea: training step: FAILED" in out
    assert main(["check-method", str(tmp_path / "missing.py")]) == 2


@pytest.mark.slow
def test_worker_processes_find_the_included_method(plugins, tmp_path, capsys, monkeypatch):
    """Workers are spawned fresh: the include paths travel with the request."""
    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    argv = ["run", "--include-path", str(plugins), "--methods", "my-method", "--tasks", "my-synth-sex",
            "--probes", "lr", "--seeds", "0,1", "--jobs", "2", "--no-tracking", "--results-dir", str(tmp_path / "r"),
            "--set", "data.n_patients=90", "--set", "eval.bootstrap=20"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "my-method seed 0: done" in err and "my-method seed 1: done" in err and "failed" not in err


def test_list_finds_a_method_registered_by_an_installed_entry_point(tmp_path, monkeypatch, capsys):
    """A tiny plugin distribution (a dist-info folder with entry_points.txt) on sys.path."""
    site = tmp_path / "site"
    (site / "plugcli").mkdir(parents=True)
    (site / "plugcli" / "__init__.py").write_text("")
    (site / "plugcli" / "my_method.py").write_text(
        '"""Departures:\\n- None."""\nclass Plugged:\n    """A method from an installed plugin."""\n    name = "plugged"\n')
    info = site / "plugcli-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugcli\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ecgbench.methods]\nplugged = plugcli.my_method\n")
    monkeypatch.syspath_prepend(str(site))
    assert main(["list", "methods"]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("plugged ")]
    assert "A method from an installed plugin." in line and line.endswith("[entry point plugcli]")
    (info / "entry_points.txt").write_text("[ecgbench.methods]\nplugged = plugcli.nowhere\n")
    METHODS.forget()
    assert main(["list", "methods"]) == 2
    assert "module 'plugcli.nowhere' not found" in capsys.readouterr().err
