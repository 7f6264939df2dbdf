"""Multi-process pretraining with torch DistributedDataParallel, launched by ``torchrun``.

``torchrun --nproc-per-node N -m ecgbench run ...`` (or ``ecgbench run --nproc N``, which
launches exactly that) starts N processes with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set. Every
process runs the same grid; pretraining is data-parallel (each rank sees ``batch_size / N``
windows of every global batch through a :class:`~torch.utils.data.DistributedSampler`), and
rank 0 alone writes checkpoints, run records, embeddings, results and MLflow runs, so the
results layout is the same as a single-process run's.

Contrastive losses call :func:`gather_with_grad` so that their negatives span the global batch
(SimCLR needs it): ``torch.distributed.nn.functional.all_gather`` sums the gathered gradient
back to its owner, which together with DDP's gradient averaging gives exactly the gradient of
the loss over the global batch (tests/running/test_distributed.py checks it against a single-process
run). Backend: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# torch is imported lazily: the runner imports this module, and the CLI must stay light.
Tensor = Any


def is_distributed() -> bool:
    if "torch" not in sys.modules:  # nothing can have joined a process group without torch
        return False
    import torch

    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world_size() -> int:
    import torch

    return torch.distributed.get_world_size() if is_distributed() else 1


def rank() -> int:
    import torch

    return torch.distributed.get_rank() if is_distributed() else 0


def is_main() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: Any) -> Any:
    """Join the process group torchrun describes; return this rank's device."""
    if not launched_by_torchrun() or is_distributed():
        return device
    import torch

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def barrier() -> None:
    if is_distributed():
        import torch

        torch.distributed.barrier()


def agree(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (a decision all ranks must follow); itself alone."""
    if not is_distributed() or world_size() == 1:
        return bool(flag)
    import torch

    decision = [bool(flag)]
    torch.distributed.broadcast_object_list(decision, src=0)
    return bool(decision[0])


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (B, ...) from every rank in rank order, keeping gradients; no-op alone."""
    if not is_distributed() or world_size() == 1:
        return x
    import torch
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


def gather(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank without gradients (ids, labels); no-op alone."""
    if not is_distributed() or world_size() == 1:
        return x
    import torch

    parts = [torch.empty_like(x) for _ in range(world_size())]
    torch.distributed.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def mean_over_ranks(x: Tensor) -> Tensor:
    """The mean of ``x`` over ranks (for logged losses); no-op alone."""
    if not is_distributed() or world_size() == 1:
        return x
    import torch

    x = x.detach().clone()
    torch.distributed.all_reduce(x, op=torch.distributed.ReduceOp.SUM)
    return x / world_size()


def wrap(method: Any, device: Any) -> Any:
    """DDP around the method (SyncBatchNorm on CUDA, where it exists), or the method's step alone.

    The wrapper routes ``forward`` to ``training_step``: DDP synchronises gradients only for
    what runs through its own forward.
    """
    import torch

    class StepModule(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.method = inner

        def forward(self, batch: dict) -> dict:
            return self.method.training_step(batch)

    step = StepModule(method)
    if not is_distributed() or world_size() == 1:
        return step
    if device.type == "cuda":
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
    from torch.nn.parallel import DistributedDataParallel

    # Heads that skip a step (variants, frozen parts) would stall a static reduction.
    return DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=True)
