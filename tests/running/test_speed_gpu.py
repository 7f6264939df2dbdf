"""GPU readiness, checked on the CPU where it can be.

* No host syncs in the training steps: each step runs on the ``meta`` device, where every
  read of a device value (``.item()``, ``bool()``/``float()`` of a tensor, ``nonzero``, boolean-mask
  indexing) raises, while the host-side draws (masks made on the CPU) still run; scalars made
  into device tensors (``torch.tensor(x, device=...)``) and copies from the host outside the
  pinned-memory helpers are refused too. On CUDA the same is checked with
  ``torch.cuda.set_sync_debug_mode("error")``.
* Every transformer attention goes through ``F.scaled_dot_product_attention`` (fused kernels).
* ECG-JEPA's compiled step serves every mask size with one graph (``backend="aot_eager"``: no
  C++ compiler needed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys

import pytest
import torch
from torch import nn

from ecgbench.core.registry import METHODS
from ecgbench.models.masking import mask_indices, n_masked

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The pretraining methods whose step must never wait for the device (issue 13).
SYNC_FREE = ["ecg-jepa", "ecg-jepa-mb", "ecg-jepa-hybrid", "st-mem", "simclr", "byol", "nerula",
             "nerula-ladder-byol", "nerula-ladder-masking", "nerula-ladder-latent", "simclr-lead2",
             "nerula-resnet-clocs"]
ATTENTION = ["st-mem", "ecg-jepa", "ecg-jepa-mb", "dual-view-seqaug"]
HOST_TO_DEVICE_HELPERS = {"to_device", "mask_indices"}  # pinned, non_blocking on CUDA


def smoke(name: str, **overrides) -> nn.Module:
    cls = METHODS.get(name)
    config = dataclasses.replace(cls.Config(), **{**cls.preset_overrides("smoke"), **overrides})
    torch.manual_seed(0)
    return cls(config)


def device_batch(method, batch_size: int, device: str) -> dict[str, torch.Tensor]:
    spec = method.input_spec
    batch = {"signal": torch.randn(batch_size, len(spec.leads), spec.n_samples),
             "patient_id": torch.arange(batch_size) // 2, "record_index": torch.arange(batch_size)}
    if method.derived_input == "clinical":
        batch["clinical"] = torch.tensor([[70.0, 160, 90, 400, 420, 45, 0]]).expand(batch_size, -1)
    return {k: v.to(device) for k, v in batch.items()}


class _MetaAutocast(torch.autocast):
    """torch.autocast has no 'meta' device type; the losses' full-precision regions ask for it."""

    def __init__(self, device_type: str, *args, **kwargs):
        super().__init__("cpu" if device_type == "meta" else device_type, *args, **kwargs)


@contextlib.contextmanager
def device_reads_refused():
    """While open, steps run on 'meta' can read no device value (meta tensors hold none); host
    scalars made into device tensors and host copies into the device outside the pinned-memory
    helpers are recorded in the list it yields (Tensor.item anywhere too)."""
    refused: list[str] = []

    def guard_factory(factory):
        def made(*args, **kwargs):
            out = factory(*args, **kwargs)
            if out.device.type == "meta":
                refused.append(f"{factory.__name__} from a host value")
            return out
        return made

    plain_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        out = plain_to(self, *args, **kwargs)
        if self.device.type == "cpu" and out.device.type == "meta":
            caller = sys._getframe(1).f_code.co_name
            if caller not in HOST_TO_DEVICE_HELPERS:
                refused.append(f"host-to-device copy in {caller}")
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "autocast", _MetaAutocast)
        for name in ("tensor", "as_tensor", "scalar_tensor"):
            patch.setattr(torch, name, guard_factory(getattr(torch, name)))
        patch.setattr(torch.Tensor, "to", to)
        patch.setattr(torch.Tensor, "item", lambda self: refused.append("Tensor.item") or 0.0)
        yield refused


def test_mask_indices_are_the_visible_and_masked_positions():
    mask = torch.tensor([True, False, False, True, True, False])
    visible, masked = mask_indices(mask, "cpu")
    assert visible.tolist() == [1, 2, 5] and masked.tolist() == [0, 3, 4]


def test_ecg_jepa_random_masking_draws_a_fixed_small_set_of_mask_sizes():
    """At the paper's 50 patches and ratios 0.6-0.7 the sizes over 200 steps stay within
    round(0.6 * 50) .. round(0.7 * 50): six sizes, all served by one compiled graph."""
    method = smoke("ecg-jepa")
    assert method.context_encoder.n_patches == 50
    sizes = {int(method.sample_mask(torch.device("cpu")).sum()) for _ in range(200)}
    allowed = set(range(n_masked(50, 0.6), n_masked(50, 0.7) + 1))
    assert sizes <= allowed and len(allowed) == 6


@pytest.mark.parametrize("name", SYNC_FREE)
def test_training_step_never_reads_the_device(name):
    method = smoke(name).train()
    batch = device_batch(method, 4, "cpu")
    method.to("meta")
    batch = {k: torch.empty_like(v, device="meta") for k, v in batch.items()}
    with device_reads_refused() as refused:
        outputs = method.training_step(batch)
        outputs["loss"].backward()
        method.on_train_step_end(3, 10)
    assert refused == [], f"{name}: {refused}"
    assert outputs["loss"].device.type == "meta"


def test_the_meta_check_catches_a_sync():
    """The check can fail: reading a device value raises, a host scalar copied in (the old
    BYOL tau) and an item() are recorded."""
    x = torch.ones(3, device="meta")
    with device_reads_refused() as refused:
        with pytest.raises(RuntimeError, match="meta"):
            bool(x.sum() > 0)
        torch.tensor(0.99, device=x.device)
        torch.arange(3).to(x.device)
        x.item()
    assert refused == ["tensor from a host value", "host-to-device copy in test_the_meta_check_catches_a_sync",
                       "Tensor.item"]


@pytest.mark.parametrize("name", ["byol", "nerula", "ecg-jepa"])
def test_logged_tau_follows_the_momentum_schedule(name):
    method = smoke(name).train()
    method.training_step(device_batch(method, 4, "cpu"))["loss"].backward()
    method.on_train_step_end(40, 100)
    assert method.training_step(device_batch(method, 4, "cpu"))["tau"].item() == pytest.approx(method.tau)
    assert method.tau > (method.config.ema[0] if name == "ecg-jepa" else method.config.tau_base)


@pytest.mark.parametrize("name", ATTENTION)
def test_every_transformer_attention_is_fused(name, monkeypatch):
    """Each attention a training step runs is one F.scaled_dot_product_attention call."""
    fused = torch.nn.functional.scaled_dot_product_attention
    calls = {"sdpa": 0, "attention": 0}

    def counted(*args, **kwargs):
        calls["sdpa"] += 1
        return fused(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counted)
    method = smoke(name).train()
    for module in method.modules():
        if isinstance(module, nn.MultiheadAttention):
            module.register_forward_hook(lambda *_: calls.__setitem__("attention", calls["attention"] + 1))
    method.training_step(device_batch(method, 2, "cpu"))["loss"].backward()
    assert calls["attention"] > 0 and calls["sdpa"] == calls["attention"], calls


@pytest.mark.parametrize("name", ["ecg-jepa", "ecg-jepa-mb"])
def test_ecg_jepa_compiles_once_for_every_mask_size(name, monkeypatch):
    """Masks of 12 to 44 of the 50 patches (both maskings' ranges) run through one graph (a
    recompilation would raise) and give the eager step's losses."""
    from torch._dynamo.testing import CompileCounterWithBackend

    method = smoke(name).train()
    sizes = [30, 35, 12, 44, 31]

    def sample_mask(device):
        mask = torch.zeros(50, dtype=torch.bool)
        mask[torch.randperm(50)[: sizes[len(drawn)]]] = True
        drawn.append(int(mask.sum()))
        return mask

    monkeypatch.setattr(method, "sample_mask", sample_mask)
    batch = device_batch(method, 2, "cpu")

    def losses(step) -> list[torch.Tensor]:
        out = []
        for seed in range(len(sizes)):
            torch.manual_seed(seed)
            out.append(step(batch)["loss"])
        return out

    drawn: list[int] = []
    eager = losses(method.training_step)
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("aot_eager")
    drawn = []
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled = losses(torch.compile(method.training_step, backend=counter))
        compiled[-1].backward()
    torch._dynamo.reset()
    assert drawn == sizes and counter.frame_count == 1
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(eager, compiled))


def test_the_loader_feeds_a_cuda_step_pinned_whole_batches_from_workers():
    """SimCLR/BYOL at 4,096: one fancy-indexed copy per batch, pinned, prepared by workers
    while the device computes; the augmentations then run on the device (the meta check)."""
    import numpy as np

    from ecgbench.models.train import WindowDataset, make_loader

    windows = np.zeros((8192, 12, 250), dtype=np.float32)
    data = WindowDataset(windows, np.arange(8192) // 2, np.arange(8192))
    loader = make_loader(data, 4096, 0, torch.device("cuda"))  # built, not iterated: no CUDA needed
    assert loader.pin_memory and loader.num_workers >= 1 and loader.persistent_workers
    batch = loader.collate_fn(data.__getitems__(list(range(4096))))
    assert batch["signal"].shape == (4096, 12, 250) and batch["signal"].is_contiguous()
    cpu_loader = make_loader(data, 4096, 0, torch.device("cpu"))
    assert not cpu_loader.pin_memory and cpu_loader.num_workers == 0


def test_to_device_is_a_plain_copy_off_cuda():
    from ecgbench.models.train import to_device

    mask = torch.tensor([True, False, True])
    assert torch.equal(to_device(mask, torch.device("cpu")), mask)
    assert to_device(mask, torch.device("meta")).device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_device_copies_through_pinned_memory_without_a_sync():
    from ecgbench.models.train import to_device

    mask = torch.rand(256, 5000) < 0.5
    torch.cuda.set_sync_debug_mode("error")
    try:
        moved = to_device(mask, torch.device("cuda"))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.equal(moved.cpu(), mask)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="host-sync detection needs CUDA")
@pytest.mark.parametrize("name", SYNC_FREE)
def test_training_step_does_not_sync_the_host(name):
    method = smoke(name).cuda().train()
    optimizer = method.configure_optimizer()
    batch = device_batch(method, 8, "cuda")
    method.training_step(batch)["loss"].backward()  # warm-up: lazy initialisations may sync
    optimizer.step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = method.training_step(batch)["loss"]
        loss.backward()
        optimizer.step()
        method.on_train_step_end(1, 10)
    finally:
        torch.cuda.set_sync_debug_mode("default")
