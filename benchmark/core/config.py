"""Run configuration: typed defaults, presets, ``--set`` overrides, canonical hashes, seeds.

Defaults live in typed code (each method's ``Config`` dataclass holds its paper's values);
a preset selects a scale; ``--set key=value`` overrides last. The resolved config is frozen,
saved with every result and hashed into the run id, so a changed field gives a new key and
stale and fresh numbers never mix. A field's range lives beside it, as its metadata
(``field(default=..., metadata=positive())``, see :func:`rule`), and is checked whenever
overrides are applied, so a bad value is one line before any work.

``--set`` keys:

* ``lr=3e-4``: every selected method whose Config has ``lr``;
* ``simclr.temperature=0.2``: one method;
* ``eval.bootstrap=500``, ``eval.probe_grid=full``: evaluation settings (:class:`EvalSettings`);
* ``data.n_records=4000``: options of the synthetic suite (:mod:`ecgbench.data.datasets.synthetic`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecgbench.core.registry import did_you_mean as spelling_hint

PRESETS = ("smoke", "cpu", "paper")


class ConfigError(ValueError):
    """Bad configuration input; the message is one line meant for the user."""


class RunFailed(RuntimeError):
    """A run stopped for a reason the user can act on (diverged loss, bad data file...);
    the message is one line naming the method or file and the problem."""


# ----- rules: what a setting may hold, declared beside the field as its metadata ----------
def rule(check: Callable[[Any], bool], valid: str) -> dict[str, Any]:
    """Field metadata: ``check(value)`` must hold; ``valid`` says what would (for the error)."""
    return {"check": check, "valid": valid}


def at_least(low: float, kind: str = "a number") -> dict[str, Any]:
    return rule(lambda v: v >= low, f"{kind} >= {low}")


def positive(kind: str = "a number") -> dict[str, Any]:
    return rule(lambda v: v > 0, f"{kind} > 0")


def one_of(*choices: str) -> dict[str, Any]:
    return rule(lambda v: v in choices, "one of " + ", ".join(choices))


def fractions() -> dict[str, Any]:
    return rule(lambda v: len(v) > 0 and all(0 < x <= 1 for x in v) and len(set(v)) == len(v),
                "distinct fractions in (0, 1], e.g. 0.1,1")


def _field_rule(cls: type, name: str) -> dict[str, Any] | None:
    """The rule of field ``name``, from the nearest class in the MRO that declares one (a
    subclass that only changes a default re-declares the field without its metadata)."""
    for klass in cls.__mro__:
        declared = getattr(klass, "__dataclass_fields__", {}).get(name)
        if declared is not None and "check" in declared.metadata:
            return declared.metadata
    return None


def check_fields(obj: Any, owner: str) -> None:
    """Raise a one-line ConfigError for the first field of dataclass ``obj`` that breaks its rule
    (or is a NaN / infinite number), then run the config's own ``validate()`` if it has one."""
    for item in dataclasses.fields(obj):
        value = getattr(obj, item.name)
        numbers = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise ConfigError(f"{owner}.{item.name}={value!r}: must be a finite number")
        found = _field_rule(type(obj), item.name)
        try:
            ok = found is None or found["check"](value)
        except TypeError:  # e.g. a string compared with a number
            ok = False
        if not ok:
            raise ConfigError(f"{owner}.{item.name}={value!r}: must be {found['valid']}")
    if callable(getattr(obj, "validate", None)):
        obj.validate()


@dataclass(frozen=True)
class EvalSettings:
    """How embeddings are probed and scored (not part of the pretraining run id)."""

    # patient-level bootstrap resamples for the main metric's CI
    bootstrap: int = field(default=1000, metadata=at_least(1, "an integer"))
    # "full" or "small" hyper-parameter grids, chosen on validation
    probe_grid: str = field(default="full", metadata=one_of("full", "small"))
    embed_batch_size: int = field(default=256, metadata=at_least(1, "an integer"))
    # analysis extras (ecgbench.evaluation.analysis); off in the smoke preset so CI stays fast
    clustering: bool = False  # Davies-Bouldin / silhouette / Calinski-Harabasz of test embeddings
    embedding_plot: bool = False  # t-SNE PNG per method and task (results dir + MLflow artifact)
    # fractions of training patients whose labels the probe sees
    label_fractions: tuple = field(default=(1.0,), metadata=fractions())
    # K >= 3: patient-wise K-fold cross-validation (ecgbench.data.folds), every record tested once,
    # one pretraining per fold, the folds' test predictions pooled (ecgbench.running.cross_validation);
    # 0: the dataset's own train / val / test split
    cv: int = field(default=0, metadata=rule(lambda v: v == 0 or v >= 3, "0 (the dataset's split) or K >= 3 folds"))


EVAL_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"bootstrap": 200, "probe_grid": "small"},
    "cpu": {"bootstrap": 1000, "probe_grid": "full", "clustering": True, "embedding_plot": True},
    "paper": {"bootstrap": 1000, "probe_grid": "full", "clustering": True, "embedding_plot": True},
}


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def canonical_json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})  # exact types: np.float64 is not here


def _plain(value: Any) -> Any:
    if type(value) in _JSON_SCALARS:  # the bulk of a big key (file stamps), returned unchanged
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def short_hash(value: Any, length: int = 12) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def derive_seed(seed: int, stage: str) -> int:
    """An independent 32-bit seed for one stage (pretrain, probe, bootstrap...) of a replicate."""
    sequence = np.random.SeedSequence([int(seed), zlib.crc32(stage.encode())])
    return int(sequence.generate_state(1)[0])


# ----- parsing ``--set`` ---------------------------------------------------------------------
def parse_assignments(items: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed


FLAG_WORDS = {"true": True, "1": True, "false": False, "0": False}


def flag(value: Any, key: str) -> bool:
    """A yes/no setting: a bool, or one of ``true``, ``false``, ``1``, ``0`` (any case) as it
    arrives from ``--set``; anything else is refused in one line, never read as false."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in FLAG_WORDS:
        raise ConfigError(f"{key}={value!r}: expected true or false (or 1 / 0)")
    return FLAG_WORDS[word]


def coerce(raw: str, default: Any, key: str) -> Any:
    """Turn a ``--set`` string into the type of the field's default value."""
    if isinstance(default, bool):
        return flag(raw, f"--set {key}")
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            parts = [p.strip() for p in raw.strip("()[] ").split(",") if p.strip()]
            if default:
                return tuple(coerce(p, default[0], key) for p in parts)
            return tuple(_guess_scalar(p) for p in parts)  # an empty default says no type
        return raw
    except ValueError:
        raise ConfigError(
            f"--set {key}={raw!r}: expected a {type(default).__name__} like {default!r}"
        ) from None


def _guess_scalar(raw: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def apply_overrides(obj: Any, overrides: dict[str, Any], owner: str) -> Any:
    """A copy of dataclass ``obj`` with ``overrides`` applied (strings are coerced), checked
    against every field's rule."""
    fields = {f.name: f for f in dataclasses.fields(obj)}
    changes = {}
    for key, value in overrides.items():
        if key not in fields:
            raise ConfigError(f"--set {owner}.{key}: {owner} has no setting {key!r}."
                              f"{did_you_mean(key, list(fields))}")
        default = getattr(obj, key)
        changes[key] = coerce(value, default, f"{owner}.{key}") if isinstance(value, str) else value
    changed = dataclasses.replace(obj, **changes)
    check_fields(changed, owner)
    return changed


def _initials(name: str) -> str:
    return "".join(word[0] for word in name.split("_") if word)


def did_you_mean(name: str, choices: list[str]) -> str:
    """The registry's " Did you mean ...?" hint, but abbreviations win over spelling neighbours
    (``learning_rate`` -> ``lr``, ``wd`` -> ``weight_decay``)."""
    short = [c for c in choices if "_" in name and c == _initials(name) or "_" in c and _initials(c) == name]
    return f" Did you mean {', '.join(repr(c) for c in short[:3])}?" if short else spelling_hint(name, choices)


def split_overrides(
    assignments: dict[str, str], method_names: list[str], method_fields: dict[str, list[str]]
) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, str]]:
    """Route ``--set`` keys to methods, eval settings and data options.

    Returns (per-method overrides, eval overrides, data overrides). Unknown keys raise a
    one-line ConfigError with a "did you mean".
    """
    per_method: dict[str, dict[str, str]] = {m: {} for m in method_names}
    eval_overrides: dict[str, str] = {}
    data_overrides: dict[str, str] = {}
    all_fields = sorted({f for fields in method_fields.values() for f in fields})
    for key, value in assignments.items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix == "eval":
            eval_overrides[rest] = value
        elif dot and prefix == "data":
            data_overrides[rest] = value
        elif dot:
            if prefix not in per_method:
                raise ConfigError(
                    f"--set {key}: {prefix!r} is not a selected method."
                    f"{did_you_mean(prefix, method_names + ['eval', 'data'])}"
                )
            if rest not in method_fields[prefix]:
                raise ConfigError(f"--set {key}: {prefix} has no setting {rest!r}."
                                  f"{did_you_mean(rest, method_fields[prefix])}")
            per_method[prefix][rest] = value
        else:
            targets = [m for m in method_names if key in method_fields[m]]
            if not targets:
                raise ConfigError(f"--set {key}: no selected method has a setting {key!r}."
                                  f"{did_you_mean(key, all_fields)}")
            for method in targets:
                per_method[method][key] = value
    return per_method, eval_overrides, data_overrides


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one pretraining run; its hash is the run id."""

    method: str
    method_version: int
    method_config: dict[str, Any]
    preset: str
    pretrain_data: str  # dataset name@version and the split(s) pretraining may see
    seed: int
    # Only for methods with labels (``uses_labels``): the task whose training labels it sees.
    task: str | None = None
    # Only for frozen-encoder variants (``base_method``): the run their encoder comes from.
    base_run_id: str | None = None
    # Only for methods from outside the package: their file's content hash, so an edited file
    # never reuses the runs and results of the old one.
    method_source: str | None = None

    @property
    def run_id(self) -> str:
        """``<method>-<hash>``; a run that starts from a published checkpoint also names the
        file's hash: ``<method>-init<sha256[:12]>-<hash>``."""
        init = self.method_config.get("init_sha256")
        name = f"{self.method}-init{init[:12]}" if init else self.method
        return f"{name}-{short_hash(self.to_dict())}"

    def to_dict(self) -> dict[str, Any]:
        """The fields, without the optional ones left unset (so older run ids stay valid)."""
        plain = _plain(self)
        return {k: v for k, v in plain.items() if not (k in _OPTIONAL_RUN_FIELDS and v is None)}


_OPTIONAL_RUN_FIELDS = ("task", "base_run_id", "method_source")
