"""The Python API (ecgbench.evaluate, ecgbench.load_results): the README's example run exactly
as printed, the encoder's weights in its run id, and what a plain callable needs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- python-api:start -->", 1)[1].split("<!-- python-api:end -->", 1)[0]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def test_the_readme_example_runs_as_printed(tmp_path, monkeypatch, capsys, one_torch_thread):
    monkeypatch.chdir(tmp_path)  # its results go to ./ecgbench-results, as a user's would
    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("ECGBENCH_RESULTS", raising=False)
    exec(compile(readme_example(), "README.md (Python API)", "exec"), {})
    out = capsys.readouterr().out
    assert "my-cnn" in out and "synth-sex@v" in out and "macro_auroc" in out
    runs = list((tmp_path / "ecgbench-results" / "runs").glob("my-cnn-*/run.json"))
    assert len(runs) == 1 and "0/0" not in out


def test_other_weights_are_another_run_and_a_callable_needs_a_version():
    import torch

    from ecgbench.tools.python_api import identity

    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    assert identity(a) != identity(b)
    with torch.no_grad():
        b.load_state_dict(a.state_dict())
    assert identity(a) == identity(b)
    with pytest.raises(ValueError, match="pass version="):
        identity(lambda x: x)
    assert identity(lambda x: x, version="v1") == identity(lambda x: x * 2, version="v1")


def test_a_registered_name_is_refused():
    import torch

    from ecgbench.api import InputSpec
    from ecgbench.tools.python_api import register

    with pytest.raises(ValueError, match="'simclr' is a registered method"):
        register(torch.nn.Linear(3, 2), "simclr", InputSpec(("I",), 100, 100))
