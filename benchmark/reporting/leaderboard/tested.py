"""The leaderboard's significance tests, stored beside the results they test.

Each task board's :class:`ecgbench.evaluation.separation.Separation` is kept in
``<results>/leaderboard-tests.json`` under the board (preset, protocol, task key), together with a
digest of everything it was computed from: the separation's version and settings, the source of
:mod:`ecgbench.evaluation.metrics`, and per row (method and config) its chosen probe, seeds, validation scores and
the sha256 of each stored test-predictions file. ``ecgbench leaderboard`` recomputes a board's
tests only when that digest changed and rewrites the file; ``ecgbench leaderboard --check`` only
reads it: a missing or outdated entry makes the block stale, so CI verifies the committed
numbers in seconds and writes nothing into the checkout. The recomputation itself is checked
against the stored file by a test on a small task (tests/reporting/test_leaderboard.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecgbench.core.rows import row_of
from ecgbench.core.store import atomic_write

FILE = "leaderboard-tests.json"


class StaleTests(Exception):
    """A board's stored tests do not match its inputs (``--check`` never recomputes)."""


def board_key(preset: str, protocol: str, task_key: str) -> str:
    return f"{preset} · {protocol} · {task_key}"


def inputs_digest(records: list[dict[str, Any]], results_dir: Path, settings: dict[str, Any]) -> str:
    """A sha256 over the separation's settings, the metrics' source and each record's method,
    probe, seed, validation score and stored predictions (their bytes)."""
    import ecgbench.evaluation.metrics
    from ecgbench.evaluation.stats import predictions_path

    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(Path(ecgbench.evaluation.metrics.__file__).read_bytes())
    for record in sorted(records, key=lambda r: (row_of(r), r["probe"], r["seed"])):
        digest.update(repr((row_of(record), record["probe"], record["seed"], record.get("val_score"))).encode())
        path = predictions_path(record, results_dir) if record.get("predictions") else None
        digest.update(path.read_bytes() if path is not None and path.is_file() else b"\0no predictions\0")
    return digest.hexdigest()


class StoredTests:
    """The tests file of one results folder: read once, looked up per board, written back only
    by :meth:`save` (never in check mode)."""

    def __init__(self, results_dir: str | Path, check: bool, progress: Callable[[str], None] | None = None) -> None:
        self.path = Path(results_dir) / FILE
        self.check = check
        self.progress = progress  # told each board's key as it is looked up
        self.entries: dict[str, dict[str, Any]] = self._read()
        self.used: set[str] = set()
        self.stale: list[str] = []

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable: every board is recomputed (or stale under --check)
        return data if isinstance(data, dict) else {}

    def lookup(self, key: str, digest: str) -> dict[str, Any] | None:
        """The stored separation of ``key`` if it was computed from ``digest``."""
        self.used.add(key)
        if self.progress is not None:
            self.progress(key)
        entry = self.entries.get(key)
        if isinstance(entry, dict) and entry.get("inputs") == digest:
            return entry.get("separation")
        if self.check:
            self.stale.append(key)
        return None

    def store(self, key: str, digest: str, separation: dict[str, Any]) -> None:
        self.entries[key] = {"inputs": digest, "separation": separation}

    def save(self) -> bool:
        """Write the entries of the boards looked up this time (others are dropped); True when
        the file changed. Nothing is written in check mode."""
        if self.check:
            return False
        kept = {key: self.entries[key] for key in sorted(self.used) if key in self.entries}
        text = json.dumps(kept, indent=1, sort_keys=True, allow_nan=True) + "\n"
        if self.path.is_file() and self.path.read_text(encoding="utf-8") == text:
            return False
        if not kept and not self.path.is_file():
            return False
        atomic_write(self.path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return True
