"""Plain PyTorch pretraining loop: AMP (bf16) and pinned memory on CUDA, gradient clipping,
linear warm-up, partial checkpoints from which a resumed run equals the uninterrupted one bit for bit
on CPU (same data order and random states; tests/models/test_train.py), a hard stop on a non-finite loss, and
DistributedDataParallel when launched by torchrun (:mod:`ecgbench.models.distributed`).
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from ecgbench.core.config import RunFailed
from ecgbench.core.store import atomic_write
from ecgbench.models import distributed
from ecgbench.models.method import Method


class TrainingDiverged(RunFailed):
    """The loss became NaN or infinite; the run stops instead of writing a broken encoder."""


class WindowDataset(Dataset):
    """Pretraining windows as dict samples (never positional tuples).

    ``__getitems__`` serves a whole batch with one fancy index per array (the DataLoader uses it
    when present), so a 4,096-window batch is one copy, not 4,096 small tensors to collate.
    """

    def __init__(self, windows: np.ndarray, patient_ids: np.ndarray, record_index: np.ndarray,
                 labels: np.ndarray | None = None):
        self.windows = windows  # (M, leads, T)
        self.patient_ids = np.asarray(patient_ids, dtype=np.int64)
        self.record_index = np.asarray(record_index, dtype=np.int64)
        self.labels = labels  # (M,) int64 / float32 or (M, C) float32, for label-using methods

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {
            "signal": torch.from_numpy(np.asarray(self.windows[i], dtype=np.float32)),  # (leads, T)
            "patient_id": torch.tensor(self.patient_ids[i]),
            "record_index": torch.tensor(self.record_index[i]),
        }
        if self.labels is not None:
            item["label"] = torch.as_tensor(self.labels[i])  # () or (C,)
        return item

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        order = np.asarray(indices, dtype=np.int64)
        batch = {
            "signal": torch.from_numpy(np.ascontiguousarray(self.windows[order], dtype=np.float32)),  # (B, leads, T)
            "patient_id": torch.from_numpy(self.patient_ids[order]),
            "record_index": torch.from_numpy(self.record_index[order]),
        }
        if self.labels is not None:
            batch["label"] = torch.as_tensor(np.asarray(self.labels)[order])  # (B,) or (B, C)
        return batch


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor drawn during a step (e.g. a mask) on ``device`` without stalling the host:
    on CUDA the copy goes through pinned memory with ``non_blocking`` (a copy from pageable
    memory waits for every queued kernel); elsewhere a plain ``.to``."""
    if torch.device(device).type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def already_batched(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The DataLoader's collate step for :meth:`WindowDataset.__getitems__` (nothing left to do)."""
    return batch


@dataclass
class TrainStats:
    steps: int = 0
    seconds: float = 0.0
    samples_per_second: float = 0.0
    loss_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss)
    final_loss: float = float("nan")
    resumed_from_step: int = 0
    peak_memory_mb: float | None = None  # CUDA: torch.cuda.max_memory_allocated during training
    compiled: bool = False  # the step ran through torch.compile
    compile_error: str | None = None  # why it fell back to eager, if it did


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but CUDA is not available on this machine")
    return torch.device(choice)


class ShuffleSampler(RandomSampler):
    """Torch's seeded shuffle, replayable: it remembers its generator's state at the start of
    each epoch, so a resumed run replays the interrupted epoch's order from where it stopped."""

    def __init__(self, data: Dataset, seed: int):
        super().__init__(data, generator=torch.Generator().manual_seed(seed))
        self.epoch_state = self.generator.get_state()
        self.skip = 0  # indices of the next epoch already consumed before an interruption

    def __iter__(self):
        self.epoch_state = self.generator.get_state()
        skip, self.skip = self.skip, 0
        return itertools.islice(super().__iter__(), skip, None)

    def position(self) -> dict:
        return {"generator": self.epoch_state}

    def replay(self, position: dict, skip: int) -> None:
        self.generator.set_state(position["generator"])
        self.skip = skip


class ShardSampler(DistributedSampler):
    """Each rank's share of a (seed, epoch) shuffle, replayable from ``skip`` indices in."""

    skip = 0

    def __iter__(self):
        skip, self.skip = self.skip, 0
        return itertools.islice(super().__iter__(), skip, None)

    def position(self) -> dict:
        return {}  # the order is a function of (seed, epoch) alone

    def replay(self, position: dict, skip: int) -> None:
        self.skip = skip


class BatchStream:
    """An endless stream of epochs that knows its place: (epoch, batches taken in it).

    The first epoch's iterator is made at once: making it draws the loader's base seed from
    torch's RNG, a draw that a resumed run must make before restoring the saved RNG states.
    """

    def __init__(self, loader: DataLoader, epoch: int = 0, taken: int = 0):
        self.loader, self.epoch, self.taken = loader, epoch, taken
        self._iterator = self._start_epoch()

    def _start_epoch(self):
        if hasattr(self.loader.sampler, "set_epoch"):
            self.loader.sampler.set_epoch(self.epoch)
        return iter(self.loader)

    def __next__(self) -> dict[str, torch.Tensor]:
        while True:
            try:
                batch = next(self._iterator)
            except StopIteration:  # the sampler reshuffles for the next epoch
                self.epoch, self.taken = self.epoch + 1, 0
                self._iterator = self._start_epoch()
                continue
            self.taken += 1
            return batch

    def position(self) -> dict:
        return {"epoch": self.epoch, "taken": self.taken, "sampler": self.loader.sampler.position()}

    @classmethod
    def resume(cls, loader: DataLoader, position: dict) -> "BatchStream":
        loader.sampler.replay(position["sampler"], position["taken"] * loader.batch_size)
        return cls(loader, position["epoch"], position["taken"])


def make_loader(data: Dataset, batch_size: int, seed: int, device: torch.device) -> DataLoader:
    """The pretraining loader: seeded shuffle, whole-batch fetches, and on CUDA pinned memory
    and worker processes so that loading overlaps the GPU's work (``ecgbench bench`` reports
    the busy fraction this gives)."""
    workers = min(4, (os.cpu_count() or 1) // 2) if device.type == "cuda" else 0
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=_sampler(data, seed),
        drop_last=True,
        pin_memory=device.type == "cuda",
        collate_fn=already_batched if hasattr(data, "__getitems__") else None,
        num_workers=workers,
        persistent_workers=workers > 0,
    )


def _sampler(data: Dataset, seed: int) -> ShuffleSampler | ShardSampler:
    """A seeded shuffle; under torchrun each rank takes its share of every global batch."""
    if distributed.is_distributed():
        return ShardSampler(data, num_replicas=distributed.world_size(), rank=distributed.rank(),
                            shuffle=True, seed=seed, drop_last=True)
    return ShuffleSampler(data, seed)


def rng_states(device: torch.device) -> dict:
    """Every random state a training step may draw from (methods use the global generators)."""
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def _lr_factor(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


def pretrain(
    method: Method,
    data: WindowDataset,
    seed: int,
    device: torch.device,
    partial_path: Path,
    on_step: Callable[[int, float], None] | None = None,
    checkpoint_every: int = 200,
    compile: bool = False,
) -> TrainStats:
    """Train ``method`` in place for ``config.max_steps`` optimiser steps.

    ``compile``: run the training step through ``torch.compile`` on CUDA (``ecgbench run
    --compile``; ``ecgbench bench --compile`` measures where it helps: +59 % for ST-MEM on an
    H100 in results/bench/h100-paper-vit-compile.json; ECG-JEPA's varying mask sizes share one graph, its mask
    being drawn outside the compiled region). A step that fails to compile falls back to eager for the rest
    of the run, and the record says so.
    """
    config = method.config
    if len(data) < config.batch_size:
        raise ValueError(
            f"{method.name}: batch size {config.batch_size} exceeds the {len(data)} pretraining windows"
        )
    world = distributed.world_size()
    if config.batch_size % world:
        raise ValueError(f"{method.name}: batch size {config.batch_size} is not divisible by {world} processes")
    torch.manual_seed(seed)
    method.to(device).train()
    optimizer = method.configure_optimizer()
    stats = TrainStats()
    partial = _load_partial(partial_path)
    if partial:
        method.load_state_dict(partial["model"])
        optimizer.load_state_dict(partial["optimizer"])
        stats.loss_curve = [tuple(x) for x in partial["loss_curve"]]
        stats.resumed_from_step = int(partial["step"])
    start_step = stats.resumed_from_step
    model = distributed.wrap(method, device)  # DDP when launched by torchrun, else the bare step
    eager = model
    if compile and device.type == "cuda":
        if getattr(method, "compilable", True):
            model = torch.compile(model)
            stats.compiled = True
        else:
            stats.compile_error = f"{method.name} is marked not compilable; trained eagerly"
    loader = make_loader(data, config.batch_size // world, seed, device)  # global batch / ranks
    # A resumed run continues the same data order and random streams as if never interrupted.
    batches = BatchStream.resume(loader, partial["data"]) if partial else BatchStream(loader)
    window_losses, last_loss = [], float("nan")  # losses since the last loss-curve point
    if partial:
        set_rng_states(partial["rng"], device)
        window_losses = [loss.to(device) for loss in partial["window_losses"]]
        last_loss = partial["last_loss"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    clock, checked = time.perf_counter(), len(window_losses)
    curve_every = max(1, config.max_steps // 20)
    # On CUDA the loss is read back (a host-device sync) once per curve window, not every step;
    # a non-finite loss still stops the run before any checkpoint is written.
    sync_every = 1 if device.type != "cuda" else curve_every
    for step in range(start_step, config.max_steps):
        batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        for group in optimizer.param_groups:
            group["lr"] = config.lr * _lr_factor(step, config.warmup_steps)
        with autocast:
            try:
                outputs = model(batch)
            except Exception as error:  # torch.compile cannot handle every method: go on eagerly
                if model is eager:
                    raise
                stats.compiled, stats.compile_error = False, f"{type(error).__name__}: {str(error)[:200]}"
                model = eager
                outputs = model(batch)
        loss = outputs["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        window_losses.append(loss.detach())
        checkpoint_due = (step + 1) % checkpoint_every == 0
        if sync_every == 1 or (step + 1) % sync_every == 0 or checkpoint_due or step + 1 == config.max_steps:
            # every loss since the last check (a checkpoint is never written unchecked)
            last_loss = _check_finite(window_losses[checked:], method.name, step)
            checked = len(window_losses)
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(method.trainable_parameters(), config.grad_clip)
        optimizer.step()
        method.on_train_step_end(step, config.max_steps)
        if on_step:
            on_step(step + 1, last_loss)
        if (step + 1) % curve_every == 0 or step + 1 == config.max_steps:
            curve_point = distributed.mean_over_ranks(torch.stack(window_losses).float().mean())
            stats.loss_curve.append((step + 1, float(curve_point)))
            window_losses, checked = [], 0
        if checkpoint_due and step + 1 < config.max_steps:
            if distributed.is_main():  # one writer; the others wait so nobody reads it half-written
                _save_partial(partial_path, method, optimizer, step + 1, stats, batches, window_losses,
                              last_loss, device)
            distributed.barrier()
    stats.steps = config.max_steps
    stats.seconds = time.perf_counter() - clock
    done = config.max_steps - start_step
    stats.samples_per_second = done * config.batch_size / stats.seconds if stats.seconds > 0 else 0.0
    stats.final_loss = stats.loss_curve[-1][1] if stats.loss_curve else float("nan")
    if device.type == "cuda":
        stats.peak_memory_mb = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    method.eval()
    return stats


def _check_finite(losses: list[torch.Tensor], name: str, step: int) -> float:
    """The last of ``losses`` as a float; a non-finite one anywhere stops the run."""
    # the mean over ranks: every rank sees the same values and stops together
    values = distributed.mean_over_ranks(torch.stack(losses).float()).cpu()
    bad = (~torch.isfinite(values)).nonzero()
    if len(bad):
        first = int(bad[0])
        raise TrainingDiverged(
            f"{name}: loss became {float(values[first])} at step {step - len(losses) + 1 + first}; "
            f"lower the learning rate (--set {name}.lr=...) or check the input data"
        )
    return float(values[-1])


def _save_partial(path: Path, method: Method, optimizer, step: int, stats: TrainStats,
                  batches: BatchStream, window_losses: list[torch.Tensor], last_loss: float,
                  device: torch.device) -> None:
    """Everything the next steps depend on, so that resuming equals never stopping: weights
    (EMA targets included), optimiser moments, the data position and every random state. The
    learning rate and EMA momentum are functions of the step; bf16 autocast needs no scaler."""
    state = {
        "model": method.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "loss_curve": stats.loss_curve,
        "window_losses": [loss.detach().cpu() for loss in window_losses],
        "last_loss": last_loss,
        "data": batches.position(),
        "rng": rng_states(device),
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def _load_partial(path: Path) -> dict | None:
    """The partial checkpoint to resume from; one that cannot be resumed exactly (unreadable,
    or from a version that did not save the data position) is set aside: training restarts."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        print(f"warning: {path}: unreadable partial checkpoint ({type(error).__name__}); training from step 0")
        return None
    if not isinstance(state, dict) or not {"data", "rng", "window_losses"} <= state.keys():
        print(f"warning: {path}: partial checkpoint from an older version; training from step 0")
        return None
    return state


def save_checkpoint(method: Method, path: Path, extra: dict) -> None:
    state = {"model": method.state_dict(), **extra}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(method: Method, path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        method.load_state_dict(state["model"])
    except Exception as error:  # a corrupt cache must name the file, not fail deep in torch
        raise RunFailed(f"{path}: unreadable checkpoint ({error}); delete it to retrain") from None
    return state
