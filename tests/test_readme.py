from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci_lines = [l for l in (ROOT / ".ci" / "run").read_text().splitlines() if l.startswith("python3 -m venv")]
    assert len(ci_lines) == 1
    assert ci_lines[0] in (ROOT / "README.md").read_text()


def test_readme_main_command_is_the_smoke_run():
    assert "ecgbench run --methods all --tasks synth-superclass --preset smoke" in (ROOT / "README.md").read_text()
