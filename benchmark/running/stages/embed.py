"""Embedding stage: a frozen encoder's pooled features for every window of a dataset,
computed once per (run, dataset version, input spec) and cached as .npy beside a JSON note."""

from __future__ import annotations

import numpy as np

from ecgbench.core.config import RunConfig, short_hash
from ecgbench.core.contracts import Task
from ecgbench.core.store import cached_array, cached_record, write_json, write_npy
from ecgbench.running.stages.context import RunContext
from ecgbench.running.stages.pretrain import derived_inputs


def embeddings(ctx: RunContext, method, config: RunConfig, task: Task) -> tuple[np.ndarray, dict]:
    """(embeddings per record, adaptation note) for ``task``'s dataset; per-channel tasks
    (``task.channels == "each"``) concatenate one embedding per channel."""
    data = ctx.dataset(task.dataset)
    spec = method.input_spec
    each = task.channels == "each"  # per-channel embeddings, concatenated (adapt_each_channel)
    path = ctx.store.embeddings(config.run_id, f"{data.name}-{data.version}-{short_hash(spec, 8)}"
                                + ("-each" if each else ""))
    adaptation = {"dataset": f"{data.name}@{data.version}", "source_fs": data.fs}
    note = cached_record(path.with_suffix(".json"), ("adaptation", "shape"))
    cached = cached_array(path, tuple(note["shape"])) if note else None
    if cached is not None:  # a missing, truncated or mis-shaped cache is recomputed
        return cached, note["adaptation"]
    adapted = ctx.adapt(data, spec, each)
    adaptation.update(adapted.description)
    bar = ctx.progress.add_task(f"embed {config.run_id} on {data.name}", total=int(adapted.valid.sum()))
    from ecgbench.evaluation.embedding import embed_windows

    copies = len(data.lead_names) if each else 1  # adapt_each_channel: C rows per record
    derived = {k: np.repeat(v, copies, axis=0) for k, v in derived_inputs(ctx, method, data).items()}
    features = embed_windows(
        method, adapted.windows, ctx.device, ctx.plan.eval_settings.embed_batch_size,
        on_batch=lambda n: ctx.progress.advance(bar, n), valid=adapted.valid, derived=derived,
    )
    if each:
        features = features.reshape(len(data), -1)  # (N * C, D) -> (N, C * D)
    ctx.progress.remove_task(bar)
    write_json(path.with_suffix(".json"), {"adaptation": adaptation, "shape": list(features.shape)})
    write_npy(path, features)
    return features, adaptation
