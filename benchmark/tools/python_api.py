"""The Python API: ``ecgbench.evaluate(encoder, ...)`` for any encoder object, and
``ecgbench.load_results(results_dir)``.

``evaluate`` wraps the encoder (a ``torch.nn.Module`` or any callable mapping a ``(B, leads,
samples)`` float tensor to ``(B, D)``) as a method that is not trained (``max_steps=0``: the
pretraining stage stores its weights as they are), registers it under ``name`` for this process,
and runs the same grid as ``ecgbench run``: the same input adaptation, embedding cache, probes,
statistics, result records, tables and (``track=True``) MLflow logging. Its run id names a hash
of the module's architecture and weights (or of ``version`` for a plain callable), so another
encoder never reuses its results. The grid runs in this process (worker processes would not
know the encoder). It returns one row per result, as :func:`load_results` does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ecgbench.core.contracts import InputSpec
from ecgbench.core.registry import METHODS, Entry
from ecgbench.core.store import DEFAULT_RESULTS_DIR, ResultStore

COLUMNS = ("key", "method", "task", "protocol", "probe", "seed", "preset", "metric", "value", "ci_low", "ci_high",
           "val_score", "n_test")


def load_results(results_dir: str | Path = DEFAULT_RESULTS_DIR) -> Any:
    """Every scored result stored under ``results_dir`` as a pandas DataFrame, one row each:
    its key, method, task key, protocol, probe, seed, preset, main metric and value with its
    95% CI, validation score and test records."""
    import pandas as pd

    store = ResultStore(results_dir)
    rows = [] if not (store.root / "runs").exists() else [_row(r) for r in store.results() if "metrics" in r
                                                             and r.get("status") in (None, "ok")]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _row(record: dict[str, Any]) -> dict[str, Any]:
    ci = record.get("ci") or {}
    return {"key": record.get("key"), "method": record["method"], "task": record["task_key"],
            "protocol": record.get("protocol"), "probe": record.get("probe"), "seed": record.get("seed"),
            "preset": record.get("preset"), "metric": record["main_metric"],
            "value": record["metrics"].get(record["main_metric"]), "ci_low": ci.get("low"), "ci_high": ci.get("high"),
            "val_score": record.get("val_score"), "n_test": (record.get("n") or {}).get("test")}


def evaluate(encoder: Callable[[Any], Any], *, name: str, input_spec: InputSpec, tasks: Iterable[str],
             probes: Iterable[str] = ("lr",), protocols: Iterable[str] = ("frozen-probe",),
             seeds: Iterable[int] = (0,), preset: str = "smoke", results_dir: str | Path = DEFAULT_RESULTS_DIR,
             data_root: str | Path | None = None, settings: dict[str, Any] | None = None,
             track: bool = False, version: str | None = None) -> Any:
    """Probe ``encoder`` on ``tasks`` as ``ecgbench run`` probes a method; the results as a
    DataFrame (:func:`load_results`' columns). ``settings``: ``--set`` keys (``data.n_patients``,
    ``eval.bootstrap``, ...)."""
    from ecgbench.running.plan import RunRequest
    from ecgbench.running.run_grid import run_grid

    register(encoder, name, input_spec, version)
    request = RunRequest(methods=[name], tasks=list(tasks), probes=list(probes), seeds=[int(s) for s in seeds],
                         preset=preset, results_dir=Path(results_dir),
                         data_root=Path(data_root) if data_root else None,
                         overrides={str(k): _setting(v) for k, v in (settings or {}).items()},
                         protocols=list(protocols), track=track, jobs=1)
    results = run_grid(request)
    import pandas as pd

    return pd.DataFrame([_row(r) for r in results if "metrics" in r and r.get("status") in (None, "ok")],
                        columns=list(COLUMNS))


def _setting(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def register(encoder: Callable[[Any], Any], name: str, input_spec: InputSpec, version: str | None = None) -> str:
    """Register ``encoder`` as method ``name`` for this process; its identity hash."""
    if name in METHODS.entries and METHODS.entries[name].origin != "python api":
        raise ValueError(f"evaluate: name {name!r} is a registered method ({METHODS.entries[name].source}); "
                         "choose another name")
    digest = identity(encoder, version)
    module = types.ModuleType(f"ecgbench_python_api_{digest}")
    module.Provided = provided_method(encoder, name, input_spec)
    sys.modules[module.__name__] = module  # the registry and the pretraining stage look it up by name
    METHODS.entries[name] = Entry(name, module.__name__, "Provided", f"encoder given to ecgbench.evaluate ({digest})",
                                  Path("<python>"), origin="python api", digest=digest)
    return digest


def identity(encoder: Any, version: str | None = None) -> str:
    """A hash of a module's class, architecture and weights; of ``version`` for a plain callable."""
    digest = hashlib.sha256()
    if version is not None:
        digest.update(f"version:{version}".encode())
    elif hasattr(encoder, "state_dict"):
        digest.update(f"{type(encoder).__module__}.{type(encoder).__qualname__}\n{encoder}".encode())
        for key, tensor in encoder.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    else:
        raise ValueError("evaluate: a plain callable has no weights to hash; pass version='...' naming it")
    return digest.hexdigest()[:12]


def provided_method(encoder: Any, name: str, spec: InputSpec) -> type:
    """A method class around ``encoder``: its input ``spec``, no training, ``embed`` = the encoder."""
    import torch
    from torch import nn

    from ecgbench.models.method import Method, MethodConfig

    @dataclasses.dataclass
    class ProvidedConfig(MethodConfig):
        leads: tuple[str, ...] = tuple(spec.leads)
        fs: int = spec.fs
        n_samples: int = spec.n_samples
        max_steps: int = 0  # evaluated as given: nothing is trained
        batch_size: int = 16  # never used to train; kept below any split size the checks compare it with

    class Provided(Method):
        """An encoder given to ecgbench.evaluate, probed without training."""

        Config = ProvidedConfig

        @classmethod
        def preset_overrides(cls, preset: str) -> dict[str, Any]:
            return {}  # the encoder is what it is at every preset (the presets' steps would train it)

        def __init__(self, config: MethodConfig):
            super().__init__(config)
            self.encoder = encoder if isinstance(encoder, nn.Module) else _Wrapped(encoder)
            with torch.no_grad():
                probe = torch.zeros(1, len(config.leads), config.n_samples)
                self._dim = int(self.encoder(probe).reshape(1, -1).shape[1])

        @property
        def embedding_dim(self) -> int:
            return self._dim

        def training_step(self, batch: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError(f"{name} is evaluated as given (max_steps=0); it has no training step")

        def embed(self, x: Any) -> Any:
            return self.encoder(x).reshape(len(x), -1)

    Provided.name = name
    Provided.__qualname__ = Provided.__name__ = "Provided"
    return Provided


class _Wrapped:
    """A plain callable where the method expects a module (no parameters, no state)."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function

    def __call__(self, x: Any) -> Any:
        return self.function(x)
