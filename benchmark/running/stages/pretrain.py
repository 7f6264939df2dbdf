"""Pretraining stage: one run per (method, seed) -- per task too for a label-using method --
keyed by its full config, trained once (resuming a partial checkpoint) and reused after."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.config import RunConfig, RunFailed, derive_seed
from ecgbench.core.contracts import Task
from ecgbench.core.registry import METHODS
from ecgbench.core.store import RUN_FIELDS, cached_record, warn, write_json
from ecgbench.models import distributed
from ecgbench.models.method import WithDerivedInput, run_key_config
from ecgbench.running.stages import record
from ecgbench.running.stages.context import RunContext

ARTIFACT_BATCH = 8  # training windows handed to a method's ``artifacts`` hook


def n_outputs(task: Task) -> int:
    """Label-head width for ``Method.setup_task``: one logit for binary and regression."""
    return len(task.classes) if task.kind in ("multiclass", "multilabel") else 1


def training_labels(task: Task, y: np.ndarray) -> np.ndarray:
    """Labels as the batches carry them: int64 classes, float32 multilabel targets, float32
    regression targets standardised with the (training) values given."""
    if task.kind in ("multiclass", "binary"):
        return y.astype(np.int64)
    if task.kind == "multilabel":
        return y.astype(np.float32)
    y = y.astype(np.float64)
    return ((y - y.mean()) / (y.std() or 1.0)).astype(np.float32)


def run_config(ctx: RunContext, method: str, seed: int, task: Task | None = None) -> RunConfig:
    """A label-using method's run is per task (trained on its training labels); a
    frozen-encoder variant's run names the run of its base method."""
    cls = METHODS.get(method)
    if cls.uses_labels and task is None:
        raise ValueError(f"{method} uses labels: its run config needs a task")
    data = ctx.dataset(task.dataset if cls.uses_labels else ctx.request.pretrain_dataset)
    base_run_id = base_run(ctx, cls, seed, task)[0].run_id if cls.base_method else None
    return RunConfig(
        method=method,
        method_version=cls.version,
        method_config=run_key_config(ctx.plan.method_configs[method]),
        preset=ctx.request.preset,
        pretrain_data=f"{data.name}@{data.version}:train" + ("" if cls.uses_labels else ctx.pretraining.key),
        seed=seed,
        task=task.key if cls.uses_labels else None,
        base_run_id=base_run_id,
        method_source=_source_digest(method),
    )


def _source_digest(method: str) -> str | None:
    """An external method's file hash (None for a built-in, or a class served without an entry)."""
    entry = METHODS.entries.get(method)
    return entry.digest if entry is not None else None


def base_run(ctx: RunContext, cls, seed: int, task: Task | None) -> tuple[RunConfig, Task | None]:
    """The run a frozen-encoder variant starts from, and the task it is trained on (the
    variant's task if the base method uses labels too, else none)."""
    base_task = task if METHODS.get(cls.base_method).uses_labels else None
    return run_config(ctx, cls.base_method, seed, base_task), base_task


def pretrained(ctx: RunContext, config: RunConfig, task: Task | None = None):
    """Build the method and load its checkpoint, training it first if there is none.

    ``task``: the task whose training labels a label-using method learns from. A variant
    with a ``base_method`` starts from that method's run (trained first if not cached); on
    reuse its own checkpoint holds everything, so the base is not loaded again.
    """
    import torch

    cls = METHODS.get(config.method)
    run_id = config.run_id

    def build():
        torch.manual_seed(derive_seed(config.seed, "init"))
        built = cls(ctx.plan.method_configs[config.method])
        if cls.uses_labels:
            built.setup_task(task.kind, n_outputs(task))
        return built

    method = build()
    checkpoint = ctx.store.checkpoint(run_id)
    # Rank 0 holds the run's lock and decides for every rank whether to train or reuse.
    lock = ctx.store.lock(run_id) if distributed.is_main() else contextlib.nullcontext()
    with lock:
        run_record = cached_record(ctx.store.run_record(run_id), RUN_FIELDS) if checkpoint.exists() else None
        cached = distributed.agree(run_record is not None and _loaded(method, checkpoint))
        if cached:
            ctx.console.log(f"reusing pretrained [bold]{run_id}[/]")
        else:
            if checkpoint.exists():  # a damaged cache may have half-loaded: start from the seeded init
                method = build()
            run_record = _pretrain_and_save(ctx, method, config, task)
    record.log_pretraining(ctx, run_id, run_record)
    return method


def _loaded(method, checkpoint: Path) -> bool:
    """Load the checkpoint into ``method``; a damaged one is retrained, with a warning."""
    from ecgbench.models.train import load_checkpoint

    try:
        load_checkpoint(method, checkpoint)
    except RunFailed as error:
        warn(f"{error}; retraining it")
        return False
    return True


def _pretrain_and_save(ctx: RunContext, method, config: RunConfig, task: Task | None) -> dict[str, Any]:
    """Train (after the base run, for a frozen-encoder variant), then write the checkpoint
    and run record; under torchrun rank 0 writes and the others wait for it."""
    from ecgbench.models.train import save_checkpoint

    cls, run_id = type(method), config.run_id
    if cls.base_method:
        base_config, base_task = base_run(ctx, cls, config.seed, task)
        method.init_from_base(pretrained(ctx, base_config, base_task))
    stats, artifacts = train(ctx, method, config, task) if cls.needs_training else (None, [])
    run_record = _run_record(ctx, method, config, stats)
    run_record["artifacts"] = artifacts
    if distributed.is_main():
        save_checkpoint(method, ctx.store.checkpoint(run_id), {"run_config": config.to_dict()})
        write_json(ctx.store.run_record(run_id), run_record)
        ctx.store.partial_checkpoint(run_id).unlink(missing_ok=True)
    distributed.barrier()
    return run_record


def train(ctx: RunContext, method, config: RunConfig, task: Task | None = None):
    """Pretrain on the training split; a label-using method sees ``task``'s training
    records that carry a usable label, and their labels. Returns (stats, artifacts)."""
    from ecgbench.models.train import pretrain

    dataset = training_windows(ctx, method, task)
    bar = ctx.progress.add_task(f"pretrain {config.run_id}", total=method.config.max_steps)
    stats = pretrain(
        method, dataset, derive_seed(config.seed, "pretrain"), ctx.device,
        ctx.store.partial_checkpoint(config.run_id),
        on_step=lambda step, loss: ctx.progress.update(bar, completed=step, description=f"pretrain {config.run_id} loss {loss:.3f}"),
        compile=ctx.request.compile,
    )
    ctx.progress.remove_task(bar)
    ctx.console.log(
        f"pretrained [bold]{config.run_id}[/]: {stats.steps} steps in {stats.seconds:.0f} s, "
        f"final loss {stats.final_loss:.4f}"
    )
    # the other torchrun ranks would only draw the same files again
    return stats, _artifacts(ctx, method, config, dataset) if distributed.is_main() else []


def training_windows(ctx: RunContext, method, task: Task | None = None):
    """The windows a run trains on, as a :class:`ecgbench.models.train.WindowDataset`: the
    pretraining selection (or ``task``'s usable training records), padding windows dropped."""
    from ecgbench.models.train import WindowDataset

    data = ctx.dataset(task.dataset if task else ctx.request.pretrain_dataset)
    each = each_channel(data, method.input_spec)
    adapted = ctx.adapt(data, method.input_spec, each)
    # pretraining never sees validation or test patients, nor records of evaluated datasets
    rows = data.indices("train") if task else ctx.pretraining.indices
    labels = None
    if task is not None:
        y, usable = task.labels(data.meta)
        rows = rows[usable[rows]]
        labels = training_labels(task, y[rows])
    channels = len(data.lead_names) if each else 1  # adapt_each_channel: row i * C + c is channel c of i
    if each:
        rows = (rows[:, None] * channels + np.arange(channels)).reshape(-1)
        labels = None if labels is None else np.repeat(labels, channels, axis=0)
    w = adapted.windows.shape[1]  # windows (N, W, leads, T), gathered once below
    position = np.repeat(np.arange(len(rows)), w)  # record-major, as the windows lie
    window = np.tile(np.arange(w), len(rows))
    keep = adapted.valid[rows].reshape(-1)  # padding windows of short records never train
    position, window = position[keep], window[keep]
    records = rows[position]
    windows = WindowDataset(
        adapted.windows.reshape(-1, *adapted.windows.shape[2:])[records * w + window],
        data.meta["patient_id"].to_numpy()[records // channels],
        records // channels,
        labels=None if labels is None else labels[position],
    )
    for key, table in derived_inputs(ctx, method, data).items():
        windows = WithDerivedInput(windows, key, table)
    return windows


def derived_inputs(ctx: RunContext, method, data) -> dict[str, np.ndarray]:
    """The method's per-record derived input for ``data`` ({} for most methods), computed once
    per record and dataset version and cached beside the datasets (see :func:`derived_cache`)."""
    if not method.derived_input:
        return {}
    return {method.derived_input: method.derive_inputs(data, derived_cache(ctx))}


def derived_cache(ctx: RunContext) -> Path:
    """The data root's ``derived`` folder, shared by every results folder; the results folder's
    cache where the data root is read-only (a shared copy)."""
    import os

    from ecgbench.data.datasets import data_root

    shared = data_root(ctx.request.data_root) / "derived"
    writable = shared if shared.exists() else shared.parent
    if writable.exists() and os.access(writable, os.W_OK):
        return shared
    return ctx.store.root / "cache" / "derived"


def each_channel(data, spec) -> bool:
    """A single-lead encoder on a corpus of several channels, none of them its lead (DREAMER's
    two ECG channels): every channel trains as a record of its own, as tasks with
    ``channels="each"`` embed them."""
    return len(spec.leads) == 1 and len(data.lead_names) > 1 and spec.leads[0] not in data.lead_names


def _artifacts(ctx: RunContext, method, config: RunConfig, dataset) -> list[str]:
    """Run the method's ``artifacts`` hook on the first training windows; paths relative
    to the run's folder."""
    import torch

    run_dir = ctx.store.run_dir(config.run_id)
    first = dataset.__getitems__(list(range(min(ARTIFACT_BATCH, len(dataset)))))
    batch = {k: v.to(ctx.device) for k, v in first.items()}
    method.to(ctx.device).eval()
    with torch.no_grad():
        paths = method.artifacts(batch, run_dir / "artifacts")
    return [str(Path(p).resolve().relative_to(run_dir.resolve())) for p in paths]


def _run_record(ctx: RunContext, method, config: RunConfig, stats) -> dict[str, Any]:
    train_stats = dataclasses.asdict(stats) if stats else {"steps": 0, "note": "not trained (control)"}
    return {
        "run_id": config.run_id,
        "run_config": config.to_dict(),
        "method": config.method,
        "paper": type(method).paper,
        "parameters": sum(p.numel() for p in method.encoder.parameters()),
        "embedding_dim": method.embedding_dim,
        "device": str(ctx.device),
        "train": train_stats,
        "leakage": None if type(method).uses_labels else ctx.pretraining.record(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **ctx.provenance,
    }


def pretrain_seconds(ctx: RunContext, run_id: str) -> float:
    """Pretraining time from run.json (0 for controls that are not trained)."""
    found = cached_record(ctx.store.run_record(run_id)) or {}
    return round(float(found.get("train", {}).get("seconds", 0.0)), 3)
