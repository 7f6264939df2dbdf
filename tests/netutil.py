"""Loopback helpers the tests share (imported by name: tests/ is on sys.path under pytest), and
scripts/fault_trials.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mlflow_server(root: Path, timeout: float = 120,
                        env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """A real ``mlflow server`` (sqlite backend ``root/mlflow.db``) on a free port, in its own
    process group; returns (process, uri) once /health answers."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--artifacts-destination", str(root / "artifacts")]
    log_path = root / f"server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return process, uri
        except OSError:
            time.sleep(0.5)
    stop_server(process, signal.SIGKILL)
    raise RuntimeError(f"mlflow server did not start: {log_path.read_text()[-2000:]}")


def stop_server(process: subprocess.Popen, how: int = signal.SIGTERM) -> None:
    """Stop the server's whole process group (SIGKILL if it outlives 20 s of ``how``)."""
    try:
        os.killpg(process.pid, how)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
