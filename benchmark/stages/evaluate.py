"""Evaluation stage: the frozen-probe protocol on cached embeddings. Each probe is fitted on
the training split, its hyper-parameters chosen on the validation split, and the test split
scored once with patient-level bootstrap CIs; test predictions are stored for significance
tests. A stored result is reused; a cell the method cannot run is recorded as not applicable."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone
from pathlib import Path

from ecgbench.api import Task
from ecgbench.config import RunConfig, derive_seed, short_hash
from ecgbench.registry import METHODS
from ecgbench.stages import record
from ecgbench.stages.context import RunContext
from ecgbench.stages.pretrain import pretrain_seconds
from ecgbench.store import read_json, write_json
from ecgbench.tables import NOT_APPLICABLE

PROTOCOL = "frozen-probe"


def result_location(ctx: RunContext, config: RunConfig, task: Task, probe: str,
                    label_fraction: float = 1.0) -> tuple[Path, str, dict]:
    """(path, key, probe spec) of one result; the spec is hashed into the key."""
    settings = ctx.plan.eval_settings
    probe_spec = {"protocol": PROTOCOL, "probe": probe, "grid": settings.probe_grid, "bootstrap": settings.bootstrap}
    if label_fraction != 1:  # only then, so full-label keys stay what they were
        probe_spec["label_fraction"] = float(label_fraction)
    name = f"{PROTOCOL}-{probe}-{short_hash(probe_spec, 8)}"
    return ctx.store.result_path(config.run_id, task.key, name), f"{config.run_id}/{task.key}/{name}", probe_spec


def not_applicable(ctx: RunContext, config: RunConfig, task: Task, reason: Exception) -> list[dict]:
    """One record per probe marking the cell not applicable, with the reason, no metrics.

    Rechecked on every run (the check is cheap), so a cell that becomes applicable is
    scored then; an unchanged record is not rewritten.
    """
    cls = METHODS.get(config.method)
    ctx.console.log(f"[yellow]not applicable[/]: {config.method} on {task.name}: {reason}")
    results = []
    for probe in ctx.request.probes:
        path, key, probe_spec = result_location(ctx, config, task, probe)
        stored = read_json(path) if path.exists() else {}
        if stored.get("status") == NOT_APPLICABLE and stored.get("reason") == str(reason):
            results.append(stored)
            continue
        result = {
            "key": key, "status": NOT_APPLICABLE, "reason": str(reason), "metrics": {},
            "run_id": config.run_id, "method": config.method, "method_version": cls.version,
            "control": not cls.needs_training, "uses_labels": cls.uses_labels,
            "task": task.name, "task_key": task.key, "task_kind": task.kind,
            "main_metric": task.main_metric, "probe": probe, "protocol": PROTOCOL,
            "preset": config.preset, "seed": config.seed, "probe_spec": probe_spec,
            "run_config": config.to_dict(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **ctx.provenance,
        }
        write_json(path, result)
        ctx.new_results += 1
        results.append(result)
        record.log_not_applicable(ctx, key, NOT_APPLICABLE, {
            "task": task.key, "run_id": config.run_id, "probe": probe_spec, "reason": str(reason)})
    return results


def evaluate(ctx: RunContext, config: RunConfig, method, task: Task, probe: str, embeddings, adaptation,
             label_fraction: float = 1.0) -> dict:
    """The stored result of (run, task, probe, label fraction), scored first if missing."""
    path, key, probe_spec = result_location(ctx, config, task, probe, label_fraction)
    stored = read_json(path) if path.exists() else None
    extras = ctx.analysis.get((config.run_id, task.key), {})
    if stored is not None and stored.get("status") != NOT_APPLICABLE:
        result = stored
        if any(k not in result for k in extras):  # analysis switched on after the result
            result.update(extras)
            write_json(path, result)
    else:
        result = score(ctx, config, method, task, probe, embeddings, adaptation, probe_spec, label_fraction)
        result["key"] = key
        result.update(extras)
        from ecgbench.stats import write_predictions

        write_predictions(path.with_suffix(".npz"), **result.pop("_predictions"))
        result["predictions"] = path.with_suffix(".npz").name
        write_json(path, result)
        result = read_json(path)  # the stored form (NaN -> null), same as a resumed run sees
        ctx.new_results += 1
    record.log_result(ctx, key, {"probe": probe_spec, "task": task.key, "run_id": config.run_id}, result, path)
    return result


def score(ctx: RunContext, config: RunConfig, method, task: Task, probe: str, embeddings, adaptation,
          probe_spec, label_fraction: float = 1.0) -> dict:
    """Fit ``probe`` on the (label-subset) training split, select on validation, score test."""
    from ecgbench import metrics, probes
    from ecgbench.analysis import fraction_label, label_subset

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
    clock = time.perf_counter()
    fit = probes.fit_probe(
        probe, task.kind, embeddings[split["train"]], y[split["train"]],
        embeddings[split["val"]], y[split["val"]], task.main_metric, probe_seed, settings.probe_grid,
        n_classes=len(task.classes) if task.kind == "multiclass" else None,
    )
    test = split["test"]
    prediction = probes.predict(fit, embeddings[test], task.kind)
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
        "protocol": PROTOCOL if label_fraction == 1 else f"{PROTOCOL}-{fraction_label(label_fraction)}-labels",
        "label_fraction": float(label_fraction),
        "preset": config.preset,
        "seed": config.seed,
        "probe_seed": probe_seed,
        "metrics": scores,
        "ci": {"metric": task.main_metric, "low": low, "high": high, "level": 0.95,
               "resamples": settings.bootstrap, "unit": "patient"},
        "probe_params": fit.params,
        "val_score": fit.val_score,
        "n": {s: int(len(idx)) for s, idx in split.items()},
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


def analyse(ctx: RunContext, config: RunConfig, task: Task, embeddings) -> None:
    """Analysis extras per (run, task) as EvalSettings switch them (ecgbench.analysis)."""
    from ecgbench.analysis import analyse as run_analysis

    plot_path = ctx.store.root / "plots" / config.run_id / f"{task.key}-tsne.png"
    extras, plot = run_analysis(ctx.plan.eval_settings, task, ctx.dataset(task.dataset), embeddings,
                                derive_seed(config.seed, f"analysis/{task.key}"), plot_path,
                                title=f"{config.run_id} on {task.key}: t-SNE of test embeddings")
    ctx.analysis[(config.run_id, task.key)] = extras
    record.log_analysis(ctx, f"{config.run_id}/{task.key}/analysis",
                        {"task": task.key, "run_id": config.run_id}, extras, plot)
