"""Embedding stage: a frozen encoder's pooled features for every window of a dataset,
computed once per (run, dataset version, input spec) and cached as .npy beside a JSON note."""

from __future__ import annotations

import numpy as np

from ecgbench.api import Task
from ecgbench.config import RunConfig, short_hash
from ecgbench.stages.context import RunContext
from ecgbench.store import read_json, write_json, write_npy


def embeddings(ctx: RunContext, method, config: RunConfig, task: Task) -> tuple[np.ndarray, dict]:
    """(embeddings per record, adaptation note) for ``task``'s dataset; per-channel tasks
    (``task.channels == "each"``) concatenate one embedding per channel."""
    data = ctx.dataset(task.dataset)
    spec = method.input_spec
    each = task.channels == "each"  # per-channel embeddings, concatenated (adapt_each_channel)
    path = ctx.store.embeddings(config.run_id, f"{data.name}-{data.version}-{short_hash(spec, 8)}"
                                + ("-each" if each else ""))
    adaptation = {"dataset": f"{data.name}@{data.version}", "source_fs": data.fs}
    if path.exists():
        meta = read_json(path.with_suffix(".json"))
        return np.load(path), meta["adaptation"]
    adapted = ctx.adapt(data, spec, each)
    adaptation.update(adapted.description)
    bar = ctx.progress.add_task(f"embed {config.run_id} on {data.name}", total=int(adapted.valid.sum()))
    from ecgbench.embed import embed_windows

    features = embed_windows(
        method, adapted.windows, ctx.device, ctx.plan.eval_settings.embed_batch_size,
        on_batch=lambda n: ctx.progress.advance(bar, n), valid=adapted.valid,
    )
    if each:
        features = features.reshape(len(data), -1)  # (N * C, D) -> (N, C * D)
    ctx.progress.remove_task(bar)
    write_json(path.with_suffix(".json"), {"adaptation": adaptation, "shape": list(features.shape)})
    write_npy(path, features)
    return features, adaptation
