"""Old import paths of the flat layout (``ecgbench.runner``, ``ecgbench.datasets.ptbxl``, ...),
kept working for one release (0.1.x) and then removed: importing one warns once with its new
name and gives the very same module object, so a monkeypatch or an ``isinstance`` through the
old name acts on the new module. Nothing is imported until an old name is asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED: dict[str, str] = {
    "config": "core.config", "registry": "core.registry", "store": "core.store",
    "datasets": "data.datasets", "adapt": "data.adapt", "leakage": "data.leakage", "clinical": "data.clinical",
    "method": "models.method", "encoders": "models.encoders", "vit": "models.vit", "losses": "models.losses",
    "ema": "models.ema", "masking": "models.masking", "augment": "models.augment", "train": "models.train",
    "distributed": "models.distributed",
    "probes": "evaluation.probes", "metrics": "evaluation.metrics", "stats": "evaluation.stats",
    "decoding": "evaluation.decoding", "analysis": "evaluation.analysis", "embed": "evaluation.embedding",
    "protocols": "evaluation.protocols",
    "tables": "reporting.tables", "leaderboard": "reporting.leaderboard", "report": "reporting.report",
    "reported": "reporting.reported", "check": "reporting.check", "audit": "reporting.audit",
    "layouts": "reporting.layouts",
    "plan": "running.plan", "validate": "running.validate", "runner": "running.runner",
    "parallel": "running.parallel", "tracking": "running.tracking", "stages": "running.stages",
    "bench": "tools.bench", "tune": "tools.tune",
}  # fmt: skip


def new_name(old: str) -> str | None:
    """``ecgbench.datasets.ptbxl`` -> ``ecgbench.data.datasets.ptbxl``; None if not moved."""
    package, _, rest = old.partition(".")
    head, _, tail = rest.partition(".")
    if package != "ecgbench" or head not in MOVED:
        return None
    return f"ecgbench.{MOVED[head]}" + (f".{tail}" if tail else "")


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target
        self.spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self.spec  # the import system gave it the alias's spec in between


class MovedFinder(importlib.abc.MetaPathFinder):
    """Answers an old module name with the module at its new place (first on ``sys.meta_path``,
    so the old name never loads a second copy of a module)."""

    def find_spec(self, fullname, path=None, target=None):
        new = new_name(fullname)
        if new is None:
            return None
        warnings.warn(f"{fullname} moved to {new}; the old name goes after ecgbench 0.1", DeprecationWarning,
                      stacklevel=2)
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedFinder())
