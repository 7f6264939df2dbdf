"""Frozen feature extraction: one embedding per record, the mean over its valid windows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ecgbench.core.config import RunFailed
from ecgbench.models.method import Method


@torch.no_grad()
def embed_windows(
    method: Method,
    windows: np.ndarray,
    device: torch.device,
    batch_size: int = 256,
    on_batch: Callable[[int], None] | None = None,
    valid: np.ndarray | None = None,
    derived: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """(N, W, leads, T) windows -> (N, D) record embeddings, the mean over each record's valid
    windows (``valid``: (N, W) bool, default all; padding windows of short records are never
    embedded). ``derived``: the method's per-record derived input, (N, k) under its name;
    every window gets its record's row as that keyword of ``embed``."""
    method.to(device).eval()
    n_records, n_windows = windows.shape[:2]
    valid = np.ones((n_records, n_windows), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != (n_records, n_windows) or not valid.any(axis=1).all():
        raise RunFailed(f"{method.name}: the window mask must be (N, W) with a valid window per record")
    record, slot = np.nonzero(valid)  # the windows to embed, record by record
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    parts = []
    for start in range(0, len(record), batch_size):
        rows = slice(start, start + batch_size)
        batch = torch.from_numpy(np.ascontiguousarray(windows[record[rows], slot[rows]])).to(device)
        extra = {k: torch.from_numpy(np.asarray(v[record[rows]])).to(device) for k, v in (derived or {}).items()}
        with autocast:
            features = method.embed(batch, **extra)  # (B, D)
        parts.append(features.float().cpu().numpy())
        if on_batch:
            on_batch(len(batch))
    features = np.concatenate(parts)  # (valid windows, D)
    if valid.all():  # the equal-length path, computed exactly as before masks existed
        embeddings = features.reshape(n_records, n_windows, -1).mean(axis=1)
    else:
        sums = np.zeros((n_records, features.shape[1]), dtype=np.float64)
        np.add.at(sums, record, features)
        embeddings = sums / valid.sum(axis=1, keepdims=True)
    if not np.isfinite(embeddings).all():
        raise RunFailed(f"{method.name}: the encoder produced non-finite embeddings")
    return embeddings.astype(np.float32)
