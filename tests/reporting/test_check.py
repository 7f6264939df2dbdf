"""``ecgbench check``: identical results pass, a planted regression fails, a missing one fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ecgbench.cli import main
from ecgbench.data.datasets.synthetic import VERSION as SYNTHETIC_VERSION
from ecgbench.reporting.check import (
    DEFAULT_TOLERANCES,
    SMOKE_GRID,
    Tolerance,
    compare,
    load_results,
    parse_tolerances,
    update_reference,
)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "results" / "reference"


@pytest.fixture
def fresh(tmp_path) -> Path:
    """A copy of the committed reference, standing in for a fresh smoke run."""
    target = tmp_path / "fresh"
    shutil.copytree(REFERENCE / "runs", target / "runs")
    return target


def result_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "runs").glob("*/*/*.json"))


def plant(path: Path, metric: str, delta: float) -> float:
    record = json.loads(path.read_text())
    record["metrics"][metric] += delta
    path.write_text(json.dumps(record))
    return record["metrics"][metric]


def first_with(root: Path, task: str, probe: str) -> Path:
    return next(p for p in result_files(root) if task in str(p) and f"-{probe}-" in p.name)


def test_the_committed_reference_is_the_smoke_grid():
    results = load_results(REFERENCE, "reference")
    methods = set(SMOKE_GRID["methods"].split(","))
    tasks = {f"{t}@v{SYNTHETIC_VERSION}" for t in SMOKE_GRID["tasks"].split(",")}
    assert {r["method"] for r in results.values()} == methods
    assert {r["task_key"] for r in results.values()} == tasks
    assert {r["preset"] for r in results.values()} == {"smoke"} and {r["seed"] for r in results.values()} == {0}
    assert len(results) == len(methods) * len(tasks) * 5  # every probe
    assert all(key == r["key"] for key, r in results.items())


def test_identical_results_pass(fresh, capsys):
    assert main(["check", "--results-dir", str(fresh), "--reference", str(REFERENCE)]) == 0
    out = capsys.readouterr().out
    assert "PASS: 30 results compared, 0 outside tolerance, 0 missing" in out
    assert "| method" in out and "FAIL" not in out


def test_a_planted_regression_fails(fresh, capsys):
    path = first_with(fresh, "synth-superclass", "lr")
    plant(path, "macro_auroc", -0.05)
    assert main(["check", "--results-dir", str(fresh), "--reference", str(REFERENCE), "--failures-only"]) == 1
    out = capsys.readouterr().out
    assert "FAIL (worse)" in out and "1 outside tolerance" in out
    assert out.count("| random-init") + out.count("| simclr") + out.count("| transform-cnn") == 1


def test_regressions_in_either_direction_and_by_metric_kind(fresh):
    reference = load_results(REFERENCE, "reference")
    age = first_with(fresh, "synth-age", "rf")
    mae = json.loads(age.read_text())["metrics"]["mae"]
    plant(age, "mae", 0.005 * mae)  # half the 1% relative tolerance: passes
    assert compare(reference, load_results(fresh, "results")).passed
    plant(age, "mae", -0.03 * mae)  # now 2.5% lower (better) than the reference: a change, fails
    report = compare(reference, load_results(fresh, "results"))
    assert not report.passed and [r["status"] for r in report.rows if r["status"] != "ok"] == ["FAIL (better)"]


def test_a_missing_result_fails_and_extra_results_are_not_checked(fresh, capsys):
    removed = first_with(fresh, "synth-age", "svc")
    removed.unlink()
    extra = fresh / "runs" / "simclr-000000000000" / "synth-age@v1" / removed.name
    extra.parent.mkdir(parents=True)
    extra.write_text(json.dumps({**json.loads((REFERENCE / removed.relative_to(fresh)).read_text()),
                                 "key": "simclr-000000000000/synth-age@v1/x"}))
    assert main(["check", "--results-dir", str(fresh), "--reference", str(REFERENCE)]) == 1
    out = capsys.readouterr().out
    assert "MISSING" in out and removed.stem in out
    assert "29 results compared, 0 outside tolerance, 1 missing; 1 fresh results not in the reference" in out


def test_tolerance_overrides(fresh, capsys):
    plant(first_with(fresh, "synth-superclass", "knn"), "macro_auroc", 0.05)
    argv = ["check", "--results-dir", str(fresh), "--reference", str(REFERENCE)]
    assert main(argv) == 1
    assert main(argv + ["--tolerance", "macro_auroc=0.06"]) == 0
    assert main(argv + ["--tolerance", "macro_auroc=abs"]) == 2
    assert "--tolerance expects" in capsys.readouterr().err
    assert parse_tolerances(["mae=0.05"])["mae"] == Tolerance("rel", 0.05)  # keeps the default kind
    assert parse_tolerances(["mae=abs:0.5", "new=0.1"])["mae"] == Tolerance("abs", 0.5)
    assert parse_tolerances(["new=0.1"])["new"] == Tolerance("abs", 0.1)
    assert DEFAULT_TOLERANCES["macro_auroc_classes"].limit(5) == 0


def test_bad_stores_give_one_line(tmp_path, capsys):
    assert main(["check", "--results-dir", str(tmp_path / "nowhere"), "--reference", str(REFERENCE)]) == 2
    assert "nowhere: no results" in capsys.readouterr().err
    broken = tmp_path / "broken" / "runs" / "m-1" / "t@v1" / "r.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    assert main(["check", "--results-dir", str(tmp_path / "broken"), "--reference", str(REFERENCE)]) == 2
    assert "r.json: not valid JSON" in capsys.readouterr().err


def test_update_replaces_the_reference(fresh, tmp_path):
    reference = tmp_path / "reference"
    shutil.copytree(REFERENCE / "runs", reference / "runs")
    stale = reference / "runs" / "gone-1" / "t@v1" / "r.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    plant(first_with(fresh, "synth-age", "lr"), "r2", 0.5)
    assert update_reference(fresh, reference) == 30
    assert not stale.exists() and not list(reference.glob(".runs*"))
    assert compare(load_results(reference, "reference"), load_results(fresh, "results")).passed
