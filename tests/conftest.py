"""Shared fixtures: a real MLflow server on 127.0.0.1 for the whole session, the shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from netutil import start_mlflow_server, stop_server

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
# `ecgbench run` defaults to one worker process per core; tests that monkeypatch the runner
# need it in-process (tests/running/test_parallel.py runs the workers explicitly)
os.environ.setdefault("ECGBENCH_JOBS", "1")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` (sqlite backend) in its own process group, stopped at teardown."""
    process, uri = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), timeout=90)
    try:
        yield uri
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models: intra-op threads only add overhead (and stall on a busy 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fresh_registries(monkeypatch):
    """The registries with the package's entries only, before and after a test that includes
    folders of its own (tests/cli/test_cli_include.py, tests/core/test_registry_external.py)."""
    from ecgbench.core import registry

    monkeypatch.delenv(registry.INCLUDE_ENV, raising=False)
    monkeypatch.setattr(registry, "_INCLUDED", [])
    for r in (registry.METHODS, registry.TASKS):
        r.forget()
    yield
    for r in (registry.METHODS, registry.TASKS):
        r.forget()
