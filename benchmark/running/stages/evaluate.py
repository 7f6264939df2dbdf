"""Evaluation stage: a protocol (:mod:`ecgbench.evaluation.protocols`: frozen-probe, linear, head,
finetune) fits on the training split, selects on the validation split, and predicts the test
split once; this stage scores those predictions with patient-level bootstrap CIs, the same for
every protocol, and stores them for significance tests. A stored result is reused; a cell the
method cannot run is recorded as not applicable."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ecgbench.core.config import RunConfig, derive_seed, short_hash
from ecgbench.core.contracts import NotApplicable, Task
from ecgbench.core.registry import METHODS
from ecgbench.core.store import RESULT_FIELDS, cached_record, read_json, write_json
from ecgbench.evaluation import protocols
from ecgbench.reporting.tables import NOT_APPLICABLE
from ecgbench.running.stages import record
from ecgbench.running.stages.context import RunContext
from ecgbench.running.stages.pretrain import pretrain_seconds

PROTOCOL = protocols.FROZEN_PROBE


def result_location(ctx: RunContext, config: RunConfig, task: Task, probe: str,
                    label_fraction: float = 1.0, protocol: str = PROTOCOL) -> tuple[Path, str, dict]:
    """(path, key, probe spec) of one result; the spec, protocol included, is hashed into the key."""
    name, probe_spec = protocols.result_spec(
        protocol, probe, ctx.plan.protocol_settings.get(protocol), ctx.plan.eval_settings, label_fraction,
        data_tag(config, ctx.dataset(task.dataset)),  # only where the run id does not already name the data version
    )
    return ctx.store.result_path(config.run_id, task.key, name), f"{config.run_id}/{task.key}/{name}", probe_spec


def data_tag(config: RunConfig, data) -> str | None:
    """The data a result is scored on, for its key: ``name@version#fingerprint``; None where
    the run was pretrained on that very version (its run id names it already, so such keys,
    the synthetic grid's among them, stay what they were)."""
    if config.pretrain_data.startswith(f"{data.name}@{data.version}:"):
        return None
    return f"{data.name}@{data.version}#{data_fingerprint(data)}"


_FINGERPRINTS: dict[int, tuple[weakref.ref, str]] = {}  # id(meta) -> (meta, its hash)


def data_fingerprint(data) -> str:
    """The dataset's content fingerprint; until loaders provide one (``Recordings.fingerprint``),
    a hash of the metadata table (record ids, patients, splits, labels), once per table."""
    given = getattr(data, "fingerprint", None)
    if given:
        return str(given)
    known = _FINGERPRINTS.get(id(data.meta))
    if known is None or known[0]() is not data.meta:
        known = (weakref.ref(data.meta), short_hash(data.meta.to_csv(index=False), 8))
        _FINGERPRINTS[id(data.meta)] = known
    return known[1]


def not_applicable(ctx: RunContext, config: RunConfig, task: Task, reason: Exception) -> list[dict]:
    """One record per protocol and probe marking the cell not applicable, with the reason, no
    metrics.

    Rechecked on every run (the check is cheap), so a cell that becomes applicable is
    scored then; an unchanged record is not rewritten.
    """
    ctx.console.log(f"[yellow]not applicable[/]: {config.method} on {task.name}: {reason}")
    return [not_applicable_record(ctx, config, task, protocol, probe, reason)
            for protocol, probe in protocols.evaluations(ctx.request.protocols, ctx.request.probes)]


def not_applicable_record(ctx: RunContext, config: RunConfig, task: Task, protocol: str, probe: str,
                          reason: Exception, label_fraction: float = 1.0) -> dict:
    """The not-applicable record of one (protocol, probe, label fraction), written unless stored."""
    cls = METHODS.get(config.method)
    path, key, probe_spec = result_location(ctx, config, task, probe, label_fraction, protocol)
    stored = cached_record(path) or {}
    if stored.get("status") == NOT_APPLICABLE and stored.get("reason") == str(reason):
        return stored
    result = {
        "key": key, "status": NOT_APPLICABLE, "reason": str(reason), "metrics": {},
        "run_id": config.run_id, "method": config.method, "method_version": cls.version,
        "control": not cls.needs_training, "uses_labels": cls.uses_labels,
        "task": task.name, "task_key": task.key, "task_kind": task.kind,
        "main_metric": task.main_metric, "probe": probe, "protocol": protocols.protocol_label(protocol, label_fraction),
        "preset": config.preset, "seed": config.seed, "probe_spec": probe_spec,
        "run_config": config.to_dict(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **ctx.provenance,
    }
    write_json(path, result)
    ctx.new_results += 1
    record.log_result(ctx, key, {"probe": probe_spec, "task": task.key, "run_id": config.run_id}, result, path)
    return result


def evaluate(ctx: RunContext, config: RunConfig, method, task: Task, probe: str, embeddings, adaptation,
             label_fraction: float = 1.0, protocol: str = PROTOCOL) -> dict:
    """The stored result of (run, task, protocol, probe, label fraction), scored first if missing."""
    path, key, probe_spec = result_location(ctx, config, task, probe, label_fraction, protocol)
    stored = cached_record(path, RESULT_FIELDS)  # a damaged or foreign file is scored again
    extras = ctx.analysis.get((config.run_id, task.key), {})
    if stored is not None and stored.get("status") != NOT_APPLICABLE:
        result = stored
        if any(k not in result for k in extras):  # analysis switched on after the result
            result.update(extras)
            write_json(path, result)
    else:
        try:
            result = score(ctx, config, method, task, probe, embeddings, adaptation, probe_spec, label_fraction,
                           protocol, cache_key=key)
        except NotApplicable as reason:  # e.g. finetune on a per-channel task
            ctx.console.log(f"[yellow]not applicable[/]: {protocol} of {config.method} on {task.name}: {reason}")
            return not_applicable_record(ctx, config, task, protocol, probe, reason, label_fraction)
        result["key"] = key
        result.update(extras)
        from ecgbench.evaluation.stats import write_predictions

        write_predictions(path.with_suffix(".npz"), **result.pop("_predictions"))
        result["predictions"] = path.with_suffix(".npz").name
        write_json(path, result)
        result = read_json(path)  # the stored form (NaN -> null), same as a resumed run sees
        ctx.new_results += 1
    record.log_result(ctx, key, {"probe": probe_spec, "task": task.key, "run_id": config.run_id}, result, path)
    return result


def score(ctx: RunContext, config: RunConfig, method, task: Task, probe: str, embeddings, adaptation,
          probe_spec, label_fraction: float = 1.0, protocol: str = PROTOCOL, cache_key: str | None = None) -> dict:
    """Fit ``protocol`` (``probe``) on the (label-subset) training split, select on validation,
    score test. ``cache_key``: the store's checkpoint name for a protocol that trains an encoder."""
    from ecgbench.evaluation import metrics
    from ecgbench.evaluation.analysis import label_subset
    from ecgbench.evaluation.diagnostics import degenerate

    data = ctx.dataset(task.dataset)
    settings = ctx.plan.eval_settings
    y, usable = task.labels(data.meta)
    split = {s: data.indices(s) for s in ("train", "val", "test")}
    split = {s: idx[usable[idx]] for s, idx in split.items()}
    patients = data.meta["patient_id"].to_numpy()
    if label_fraction != 1:  # same patients for every method and probe of a replicate
        split["train"] = label_subset(split["train"], patients[split["train"]], label_fraction,
                                      derive_seed(config.seed, f"label-subset/{task.key}"))
    probe_seed = derive_seed(config.seed, f"probe/{task.key}/{probe}")
    implementation = protocols.get(protocol)
    inputs = protocols.EvalInputs(
        task, y, split, patients, probe_seed, embeddings=embeddings, method=method, device=ctx.device,
        windows=ctx.adapt(data, method.input_spec) if implementation.needs_windows else None,
        checkpoint=cache_key and ctx.store.checkpoint(cache_key),
        partial_checkpoint=cache_key and ctx.store.partial_checkpoint(cache_key),
    )
    clock = time.perf_counter()
    cell = f"{config.method} seed {config.seed} · {task.key} · {protocols.protocol_label(protocol, label_fraction)} {probe}"
    with epoch_progress(ctx, f"{protocol} {config.run_id} {task.name}", protocol != PROTOCOL) as inputs.on_epoch, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prediction = implementation.fit_predict(inputs, probe, ctx.plan.protocol_settings.get(protocol), settings)
    test = split["test"]
    _warn_about(cell, caught, degenerate(task.kind, y[split["train"]], y[test], prediction.y_pred,
                                                        task.classes))
    scores = metrics.score(task.kind, y[test], prediction.y_pred, prediction.scores, task.classes)
    low, high = metrics.bootstrap_ci(
        task.kind, task.main_metric, y[test], prediction.y_pred, prediction.scores,
        patients[test], settings.bootstrap, derive_seed(config.seed, f"bootstrap/{task.key}/{probe}"),
    )
    cls = type(method)
    return {
        "run_id": config.run_id,
        "method": config.method,
        "method_version": cls.version,
        "control": not cls.needs_training,
        "uses_labels": cls.uses_labels,
        "task": task.name,
        "task_key": task.key,
        "task_kind": task.kind,
        "main_metric": task.main_metric,
        "probe": probe,
        "protocol": protocols.protocol_label(protocol, label_fraction),
        "label_fraction": float(label_fraction),
        "preset": config.preset,
        "seed": config.seed,
        "probe_seed": probe_seed,
        "metrics": scores,
        "ci": {"metric": task.main_metric, "low": low, "high": high, "level": 0.95,
               "resamples": settings.bootstrap, "unit": "patient"},
        "probe_params": prediction.params,
        "val_score": prediction.val_score,
        **({"history": prediction.history} if prediction.history else {}),  # per epoch: loss, val score
        "n": {s: int(len(idx)) for s, idx in split.items()},
        "n_patients": {s: len(set(patients[idx].tolist())) for s, idx in split.items()},
        "adaptation": adaptation,
        "probe_spec": probe_spec,
        "run_config": config.to_dict(),
        "eval_settings": dataclasses.asdict(settings),
        "timings": {"probe_seconds": round(time.perf_counter() - clock, 3),
                    "pretrain_seconds": pretrain_seconds(ctx, config.run_id)},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **ctx.provenance,
        "_predictions": {"test_indices": test, "patient_ids": patients[test], "y_true": y[test],
                         "y_pred": prediction.y_pred, "scores": prediction.scores},  # -> .npz
    }


def _warn_about(cell: str, caught: list, degenerate: list[str]) -> None:
    """One line per degenerate probe, and one summarising third-party warnings (not one each)."""
    from ecgbench.core.store import warn

    if degenerate:
        warn(f"{cell}: degenerate probe: {'; '.join(degenerate)}")
    if caught:
        kinds = sorted({w.category.__name__ for w in caught})
        first = " ".join(str(caught[0].message).split())[:160]
        warn(f"{cell}: {len(caught)} library warnings while fitting ({', '.join(kinds)}; first: {first})")


@contextlib.contextmanager
def epoch_progress(ctx: RunContext, label: str, trains: bool = True) -> Iterator[Callable | None]:
    """A progress line for a trained protocol: epoch, training loss, validation score, best so far."""
    if ctx.progress is None or not trains:
        yield None
        return
    bar = ctx.progress.add_task(label, total=None)

    def on_epoch(log) -> None:
        ctx.progress.update(bar, completed=log.epoch, total=log.max_epochs, description=(
            f"{label} epoch {log.epoch}/{log.max_epochs} loss {log.train_loss:.3f} val {log.metric} "
            f"{log.val_score:.3f} (best {log.best_score:.3f} at {log.best_epoch})"))

    try:
        yield on_epoch
    finally:
        ctx.progress.remove_task(bar)


def analyse(ctx: RunContext, config: RunConfig, task: Task, embeddings) -> None:
    """Analysis extras per (run, task) as EvalSettings switch them (ecgbench.evaluation.analysis)."""
    from ecgbench.evaluation.analysis import analyse as run_analysis

    plot_path = ctx.store.root / "plots" / config.run_id / f"{task.key}-tsne.png"
    extras, plot = run_analysis(ctx.plan.eval_settings, task, ctx.dataset(task.dataset), embeddings,
                                derive_seed(config.seed, f"analysis/{task.key}"), plot_path,
                                title=f"{config.run_id} on {task.key}: t-SNE of test embeddings")
    ctx.analysis[(config.run_id, task.key)] = extras
    record.log_analysis(ctx, f"{config.run_id}/{task.key}/analysis",
                        {"task": task.key, "run_id": config.run_id}, extras, plot)
    said = analysis_line(extras, plot)
    if said:
        ctx.console.log(f"{config.method} seed {config.seed} · {task.key}: {said}")


def analysis_line(extras: dict[str, Any], plot: Path | None) -> str:
    """The clustering indices and the plot's path, as the run prints them."""
    parts = []
    clustering = extras.get("clustering") or {}
    shown = {k: v for k, v in clustering.items() if k in ("davies_bouldin", "silhouette", "calinski_harabasz")}
    if shown:
        parts.append("clustering " + ", ".join(f"{k} {v:.3g}" if isinstance(v, (int, float)) else f"{k} {v}"
                                               for k, v in shown.items()))
    if plot is not None:
        parts.append(f"t-SNE plot {plot}")
    return "; ".join(parts)
