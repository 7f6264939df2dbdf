"""The whole run request checked before any work, in seconds.

:func:`ecgbench.running.plan.resolve` checks every setting against its rule (the field metadata of
:class:`ecgbench.core.config.EvalSettings` and :class:`ecgbench.models.method.MethodConfig`); around it,
:func:`validate_request` (before the methods' code is imported) and :func:`validate_plan`
(after) check what lies outside the configs: probes, seeds, device, folders, the tracking URI,
the ``data.<key>`` options and the presence of every dataset the run will load -- so a
missing PTB-XL is reported before the synthetic suite is generated, not minutes later. Every
failure is a one-line :class:`ConfigError` (exit code 2) naming the option, key or file and
what would be valid.
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ecgbench.core.config import ConfigError, RunFailed, apply_overrides, did_you_mean
from ecgbench.core.store import warn

# Tracking-store schemes MLflow serves (a database scheme may name a driver: postgresql+psycopg2).
TRACKING_SCHEMES = ("file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")
# The functions by which a dataset module finds its release under the data root, cheaply.
_LOCATORS = ("find_source", "find_records", "find_file")


def validate_request(request: Any) -> None:
    """What needs no method code (so no torch import, about a second from a fresh process):
    selection, folders, tracking URI, ``eval.*`` settings, the tasks' datasets."""
    from ecgbench.core.config import EVAL_PRESETS, EvalSettings
    from ecgbench.core.registry import TASKS
    from ecgbench.data.datasets import data_root

    check_selection(request)
    check_folder(Path(request.results_dir), "--results-dir")
    check_tracking_uri(request.tracking_uri, request.track)  # even with --no-tracking: a wrong URI is a slip
    evaluation = {key[len("eval."):]: value for key, value in request.overrides.items() if key.startswith("eval.")}
    from ecgbench.evaluation.protocols import check_protocols, split_protocol_overrides  # eval.<protocol>.<field>

    evaluation, _ = split_protocol_overrides(evaluation, check_protocols(request.protocols))
    apply_overrides(EvalSettings(**EVAL_PRESETS[request.preset]), evaluation, "eval")
    root = data_root(request.data_root)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--data-root {root}: is a file, not a folder; pass the folder that holds the datasets")
    tasks = [TASKS.get(task) for task in request.tasks]
    data_options = {key[len("data."):]: value for key, value in request.overrides.items() if key.startswith("data.")}
    for name in dict.fromkeys(task.dataset for task in tasks):
        check_option_values(name, tasks, data_options)  # a bad value is named before a missing folder
        check_present(name, root)


def validate_plan(plan: Any) -> None:
    """What needs the resolved plan: the device, the ``data.*`` options, the pretraining data."""
    from ecgbench.data.datasets import data_root

    check_device(plan.request.device)
    needed = datasets_needed(plan)
    check_data_options(plan.data_options, needed)
    for name in needed:
        check_option_values(name, plan.tasks, plan.data_options)
        check_present(name, data_root(plan.request.data_root))


def check_option_values(name: str, tasks: list[Any], data_options: dict[str, str]) -> None:
    """The values of a dataset's load options (its tasks' and ``--set data.<name>.*``), checked by
    the dataset's own ``check_options`` where it has one, and the options every dataset takes
    (``limit``, ``cv_folds`` / ``cv_fold``): a bad value is one line, exit 2, before any loading."""
    from ecgbench.data.datasets import GENERIC_OPTIONS, dataset_module
    from ecgbench.data.folds import check_fold
    from ecgbench.data.subset import check_limit
    from ecgbench.running.plan import data_overrides

    options: dict[str, Any] = {}
    for task in tasks:
        if task.dataset == name:
            options.update(task.dataset_options)
    options.update(data_overrides(data_options, name))
    if "limit" in options:
        check_limit(options["limit"], name)
    if "cv_folds" in options or "cv_fold" in options:
        check_fold(options.get("cv_folds"), options.get("cv_fold"), name)
    check = getattr(dataset_module(name), "check_options", None)
    if check is not None:
        check(**{k: v for k, v in options.items() if k not in GENERIC_OPTIONS})


def check_selection(request: Any) -> None:
    from ecgbench.evaluation.probes import PROBES

    for option, chosen, choices in (("--methods", request.methods, "see 'ecgbench list methods'"),
                                    ("--tasks", request.tasks, "see 'ecgbench list tasks'"),
                                    ("--probes", request.probes, "all or " + ",".join(PROBES))):
        if not chosen:
            raise ConfigError(f"{option}: nothing selected; name at least one ({choices})")
        repeated = sorted({name for name in chosen if chosen.count(name) > 1})
        if repeated:
            raise ConfigError(f"{option}: {', '.join(map(str, repeated))} given twice; name each once")
    if len(set(request.seeds)) != len(request.seeds):
        raise ConfigError(f"--seeds {','.join(map(str, request.seeds))}: a seed is given twice; name each once")


def check_device(device: str) -> None:
    if device != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible here; use --device cpu (or auto, "
                          "which picks CUDA when present)")


def check_folder(path: Path, option: str) -> None:
    """``path`` is (or can be made) a folder this process can write into: created if missing and
    probed with a temporary file, so a read-only or misplaced folder fails now, not after the
    work."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: is a file, not a folder; pass a folder (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ConfigError(f"{option} {path}: not writable ({error.strerror or error}); "
                          "pass a folder you can write to") from None


def check_tracking_uri(uri: str | None, track: bool = True) -> None:
    """A URI MLflow can serve: a local path, or one of :data:`TRACKING_SCHEMES`; when tracking,
    a local store's folder must be writable (a sqlite database's folder, a file store)."""
    if not uri:
        return
    parsed = urlparse(uri)
    scheme = parsed.scheme.split("+")[0].lower()
    if scheme and len(scheme) > 1 and scheme not in TRACKING_SCHEMES:  # one letter: a Windows drive
        raise ConfigError(f"--tracking-uri {uri}: unknown scheme {scheme!r}; use a local folder, "
                          f"{', '.join(s + '://' for s in TRACKING_SCHEMES)}, or --no-tracking")
    if not track:
        return
    if scheme == "sqlite" and parsed.path[1:] not in ("", ":memory:"):  # sqlite:///rel.db, sqlite:////abs.db
        check_folder(Path(parsed.path[1:]).parent, f"--tracking-uri {uri}: the database folder")
    elif scheme == "file" or not scheme or len(scheme) == 1:
        check_folder(Path(parsed.path if scheme == "file" else uri), f"--tracking-uri {uri}: the store")


def datasets_needed(plan: Any) -> list[str]:
    """The datasets the run loads: every task's, and the pretraining dataset unless every
    selected method learns from task labels only."""
    from ecgbench.core.registry import METHODS

    names = [task.dataset for task in plan.tasks]
    if any(not METHODS.get(name).uses_labels for name in plan.method_configs):
        names.insert(0, plan.request.pretrain_dataset)
    return list(dict.fromkeys(names))


def check_data_options(options: dict[str, str], needed: list[str]) -> None:
    """``data.<dataset>.<option>`` must name a dataset and an option its loader takes (a dataset
    this run does not load is a warning); a plain ``data.<option>`` is the synthetic suite's
    (checked against its type too)."""
    from ecgbench.data.datasets import GENERIC_OPTIONS
    from ecgbench.data.datasets.catalog import scan

    known = sorted(scan())
    synthetic: dict[str, str] = {}
    for key, value in options.items():
        dataset, dot, option = key.partition(".")
        if not dot:
            dataset, option = "synthetic", key
        if dataset not in known:
            raise ConfigError(f"--set data.{key}: {dataset!r} is not a dataset.{did_you_mean(dataset, known)}"
                              " A plain data.<option> sets the synthetic suite.")
        if option in GENERIC_OPTIONS:  # every dataset takes them (ecgbench.data.datasets.load_dataset)
            pass
        elif dataset == "synthetic":
            synthetic[option] = value
        else:
            names = loader_options(dataset)
            if option not in names:
                raise ConfigError(f"--set data.{key}: {dataset} has no option {option!r}."
                                  f"{did_you_mean(option, names)} Options: {', '.join(names)}")
        if dataset not in needed:  # a warning: one --set may serve several runs (run --layout)
            warn(f"--set data.{key}: this run loads no {dataset} (it loads {', '.join(needed)}); ignored")
    if synthetic:
        from ecgbench.data.datasets import synthetic as suite

        apply_overrides(suite.SyntheticOptions(), synthetic, "data")


def loader_options(dataset: str) -> list[str]:
    """The keyword options of a dataset's ``load(root, ...)``."""
    from ecgbench.data.datasets import dataset_module

    parameters = list(inspect.signature(dataset_module(dataset).load).parameters.values())[1:]
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_present(dataset: str, root: Path) -> None:
    """The dataset's release is where its loader will look (generated datasets always are)."""
    from ecgbench.data.datasets import dataset_module

    module = dataset_module(dataset)
    release = getattr(module, "RELEASE", None)
    try:
        if release is not None:  # a PhysioNet challenge release, read by the cinc2021 module
            from ecgbench.data.datasets.cinc2021 import find_source

            find_source(release, root)
            return
        locate = next((getattr(module, name) for name in _LOCATORS if hasattr(module, name)), None)
        if locate is not None:
            locate(root)
    except (RunFailed, OSError) as error:
        raise ConfigError(str(error)) from None
