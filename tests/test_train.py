"""The training loop's divergence check, which on CUDA reads losses back once per window."""

from __future__ import annotations

import pytest
import torch

from ecgbench.train import TrainingDiverged, _check_finite


def test_check_finite_returns_the_last_loss():
    assert _check_finite([torch.tensor(3.0), torch.tensor(2.5)], "m", 1) == 2.5


def test_check_finite_names_the_first_bad_step_of_the_window():
    losses = [torch.tensor(1.0), torch.tensor(float("inf")), torch.tensor(float("nan"))]
    # the window ends at step 9, so its three losses are steps 7, 8, 9
    with pytest.raises(TrainingDiverged, match="m: loss became inf at step 8"):
        _check_finite(losses, "m", 9)


def test_batched_fetch_equals_item_by_item():
    import numpy as np

    from ecgbench.train import WindowDataset

    rng = np.random.default_rng(0)
    data = WindowDataset(rng.standard_normal((10, 2, 5)).astype(np.float32), np.arange(10) // 2,
                         np.arange(10) + 100, labels=rng.integers(0, 3, 10))
    order = [7, 2, 2, 9]
    batch = data.__getitems__(order)
    for key in ("signal", "patient_id", "record_index", "label"):
        expected = torch.stack([data[i][key] for i in order])
        assert torch.equal(batch[key], expected), key
    assert batch["signal"].dtype == torch.float32 and batch["signal"].shape == (4, 2, 5)
