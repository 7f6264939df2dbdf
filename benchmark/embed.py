"""Frozen feature extraction: one embedding per record, pooled over its windows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ecgbench.config import RunFailed
from ecgbench.method import Method


@torch.no_grad()
def embed_windows(
    method: Method,
    windows: np.ndarray,
    device: torch.device,
    batch_size: int = 256,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(N, W, leads, T) windows -> (N, D) record embeddings (mean over the W windows)."""
    method.to(device).eval()
    n_records, n_windows = windows.shape[:2]
    flat = windows.reshape(n_records * n_windows, *windows.shape[2:])  # (N*W, leads, T)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    parts = []
    for start in range(0, len(flat), batch_size):
        batch = torch.from_numpy(flat[start : start + batch_size]).to(device)
        with autocast:
            features = method.embed(batch)  # (B, D)
        parts.append(features.float().cpu().numpy())
        if on_batch:
            on_batch(len(batch))
    embeddings = np.concatenate(parts).reshape(n_records, n_windows, -1).mean(axis=1)
    if not np.isfinite(embeddings).all():
        raise RunFailed(f"{method.name}: the encoder produced non-finite embeddings")
    return embeddings.astype(np.float32)
