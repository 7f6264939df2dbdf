"""The training loop's divergence check, which on CUDA reads losses back once per window."""

from __future__ import annotations

import pytest
import torch

from ecgbench.models.train import TrainingDiverged, _check_finite


def test_check_finite_returns_the_last_loss():
    assert _check_finite([torch.tensor(3.0), torch.tensor(2.5)], "m", 1) == 2.5


def test_check_finite_names_the_first_bad_step_of_the_window():
    losses = [torch.tensor(1.0), torch.tensor(float("inf")), torch.tensor(float("nan"))]
    # the window ends at step 9, so its three losses are steps 7, 8, 9
    with pytest.raises(TrainingDiverged, match="m: loss became inf at step 8"):
        _check_finite(losses, "m", 9)


def test_batched_fetch_equals_item_by_item():
    import numpy as np

    from ecgbench.models.train import WindowDataset

    rng = np.random.default_rng(0)
    data = WindowDataset(rng.standard_normal((10, 2, 5)).astype(np.float32), np.arange(10) // 2,
                         np.arange(10) + 100, labels=rng.integers(0, 3, 10))
    order = [7, 2, 2, 9]
    batch = data.__getitems__(order)
    for key in ("signal", "patient_id", "record_index", "label"):
        expected = torch.stack([data[i][key] for i in order])
        assert torch.equal(batch[key], expected), key
    assert batch["signal"].dtype == torch.float32 and batch["signal"].shape == (4, 2, 5)


# ----- exact resume ----------------------------------------------------------------------------

class Interrupted(Exception):
    """Stands in for a kill between two partial checkpoints."""


def _smoke_method(name: str, init_seed: int):
    import dataclasses

    from ecgbench.core.registry import METHODS

    cls = METHODS.get(name)
    config = dataclasses.replace(cls.Config(), **{**cls.preset_overrides("smoke"), "max_steps": STEPS})
    torch.manual_seed(init_seed)
    return cls(config)


def _windows(method, n: int):
    import numpy as np

    from ecgbench.models.train import WindowDataset

    spec = method.input_spec
    rng = np.random.default_rng(1)
    signal = rng.standard_normal((n, len(spec.leads), spec.n_samples)).astype(np.float32)
    return WindowDataset(signal, np.arange(n) // 2, np.arange(n))


def _train(name: str, n_windows: int, partial, every: int, stop_at: int | None = None, init_seed: int = 0):
    from ecgbench.models.train import pretrain

    method = _smoke_method(name, init_seed)

    def on_step(step: int, loss: float) -> None:
        if step == stop_at:
            raise Interrupted

    stats = pretrain(method, _windows(method, n_windows), 7, torch.device("cpu"), partial,
                     on_step=on_step, checkpoint_every=every)
    return method, stats


STEPS = 40  # a loss-curve point every 40 // 20 = 2 steps, a partial checkpoint every 3:
EVERY = 3  # the checkpoint at step 3 holds a loss the next curve point still needs
WINDOWS = {  # batch 16 of the smoke preset
    "epoch-end": 48,  # 3 batches an epoch: the checkpoint falls at an epoch's end
    "mid-epoch": 40,  # 2 batches an epoch, 8 windows left over: the checkpoint is mid-epoch
}


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("name", ["simclr", "byol", "st-mem"])
@pytest.mark.parametrize("where", sorted(WINDOWS))
def test_a_run_resumed_from_a_partial_checkpoint_equals_the_uninterrupted_run(tmp_path, name, where):
    import random

    import numpy as np

    n_windows = WINDOWS[where]
    whole, whole_stats = _train(name, n_windows, tmp_path / "whole.pt", every=10**6)
    partial = tmp_path / "partial.pt"
    with pytest.raises(Interrupted):  # killed two steps after the first checkpoint
        _train(name, n_windows, partial, EVERY, stop_at=EVERY + 2)
    assert torch.load(partial, weights_only=False)["step"] == EVERY
    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # a fresh process's states
    resumed, resumed_stats = _train(name, n_windows, partial, EVERY, init_seed=5)
    assert resumed_stats.resumed_from_step == EVERY
    assert resumed_stats.loss_curve == whole_stats.loss_curve
    whole_state, resumed_state = whole.state_dict(), resumed.state_dict()
    assert whole_state.keys() == resumed_state.keys()
    for key, value in whole_state.items():
        assert torch.equal(value, resumed_state[key]), key


def test_the_first_epoch_keeps_torchs_seeded_shuffle_order():
    from torch.utils.data import RandomSampler

    from ecgbench.models.train import ShuffleSampler

    data = list(range(11))
    mine, torchs = ShuffleSampler(data, 3), RandomSampler(data, generator=torch.Generator().manual_seed(3))
    assert [list(mine) for _ in range(3)] == [list(torchs) for _ in range(3)]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("kind, says", [("older", "partial checkpoint from an older version"), ("garbage", "unreadable")])
def test_a_partial_checkpoint_that_cannot_resume_exactly_restarts_training(tmp_path, capsys, kind, says):
    partial = tmp_path / "partial.pt"
    if kind == "older":  # what the trainer wrote before it saved the data position
        torch.save({"model": _smoke_method("simclr", 0).state_dict(), "step": 4}, partial)
    else:
        partial.write_bytes(b"not a checkpoint")
    _, stats = _train("simclr", 48, partial, every=10**6)
    assert stats.resumed_from_step == 0
    assert f"{partial}: {says}" in capsys.readouterr().out
