"""GPU readiness, checked on the CPU where it can be: no host syncs in ECG-JEPA's masking, a
bounded set of mask sizes for torch.compile; the sync check itself runs only on CUDA."""

from __future__ import annotations

import pytest
import torch

from ecgbench.masking import mask_indices, n_masked
from ecgbench.registry import METHODS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mask_indices_are_the_visible_and_masked_positions():
    mask = torch.tensor([True, False, False, True, True, False])
    visible, masked = mask_indices(mask, "cpu")
    assert visible.tolist() == [1, 2, 5] and masked.tolist() == [0, 3, 4]


def test_ecg_jepa_random_masking_draws_a_fixed_small_set_of_mask_sizes():
    """torch.compile specialises on the number of masked patches: at the paper's 50 patches and
    ratios 0.6-0.7 the sizes over 200 steps stay within round(0.6 * 50) .. round(0.7 * 50)."""
    cls = METHODS.get("ecg-jepa")
    method = cls(cls.Config(depth=1, embed_dim=32, heads=4, predictor_dim=16, predictor_depth=1,
                            predictor_heads=2))
    assert method.context_encoder.n_patches == 50
    sizes = {int(method.sample_mask(torch.device("cpu")).sum()) for _ in range(200)}
    allowed = set(range(n_masked(50, 0.6), n_masked(50, 0.7) + 1))
    assert sizes <= allowed and len(allowed) == 6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="host-sync detection needs CUDA")
@pytest.mark.parametrize("name", ["ecg-jepa", "st-mem", "simclr"])
def test_training_step_does_not_sync_the_host(name):
    from ecgbench.bench import _random_batch

    cls = METHODS.get(name)
    method = cls(cls.Config()).cuda().train()
    batch = _random_batch(method, 4, torch.device("cuda"), torch.Generator().manual_seed(0))
    method.training_step(batch)["loss"].backward()  # warm-up: lazy initialisations may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = method.training_step(batch)["loss"]
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
