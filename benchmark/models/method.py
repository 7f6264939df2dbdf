"""The Method contract: one self-supervised (or control) pretraining method.

A method is one small subclass in ``methods/`` (solo-learn style). It declares

* ``name`` (registry key), ``version`` (bump when its behaviour changes: the version is part of
  every run key, so old and new numbers never mix), ``paper`` (citation);
* ``Config``: a dataclass subclass of :class:`MethodConfig` whose defaults are the paper's
  values, and ``presets``: per-preset overrides (``smoke``, ``cpu``; ``paper`` is the defaults);
* ``__init__(config)``: builds ``self.encoder`` (see :mod:`ecgbench.models.encoders` for the encoder
  contract) and any heads;
* ``training_step(batch) -> {"loss": ..., other scalars}`` where ``batch`` is a dict with
  named keys, at least ``"signal"``: ``(B, leads, T)`` float32, already adapted to
  ``input_spec``; ``"patient_id"``: ``(B,)`` int64 and ``"record_index"``: ``(B,)`` int64 are
  always present too;
* optionally ``on_train_step_end(step, max_steps)`` for EMA updates, ``setup_task`` (methods
  with ``uses_labels``), ``init_from_base`` (variants with a ``base_method``) and
  ``artifacts(batch, out_dir)`` (figures written once after pretraining).

``embed(x)`` gives pooled frozen features ``(B, D)`` from the encoder alone; heads, predictors
and target networks never take part in evaluation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ecgbench.core.config import at_least, one_of, positive, rule
from ecgbench.core.contracts import InputSpec, Recordings


@dataclass
class MethodConfig:
    """Fields every method has. Subclasses add their own and change defaults to the paper's."""

    # Input the encoder consumes (the harness adapts records to it). Metadata: the range a
    # ``--set`` value must fall in (ecgbench.core.config.check_fields; subclasses inherit it).
    leads: tuple[str, ...] = field(default=("II",), metadata=rule(lambda v: len(v) > 0, "at least one lead"))
    fs: int = field(default=256, metadata=positive("a sampling rate in Hz"))
    n_samples: int = field(default=2560, metadata=positive("a number of samples"))
    # Optimisation.
    optimizer: str = field(default="adam", metadata=one_of("adam", "adamw", "sgd"))
    lr: float = field(default=1e-3, metadata=positive("a learning rate"))
    weight_decay: float = field(default=0.0, metadata=at_least(0))
    betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=rule(
        lambda v: len(v) == 2 and all(0 <= b < 1 for b in v), "two numbers in [0, 1), e.g. 0.9,0.999"))
    batch_size: int = field(default=256, metadata=positive("an integer"))
    max_steps: int = field(default=10_000, metadata=at_least(0, "an integer"))
    warmup_steps: int = field(default=0, metadata=at_least(0, "an integer"))
    grad_clip: float = field(default=3.0, metadata=at_least(0))  # max gradient norm; 0 disables clipping


# A field whose metadata says ``run_key: "unless-default"`` (added after run ids were first
# written) is left out of the run key at its default, so earlier run ids stay valid; one that
# says ``run_key: False`` never enters it (e.g. a file path, whose content hash does).
def run_key_config(config: MethodConfig) -> dict[str, Any]:
    """The fields of ``config`` that name its pretraining run (``RunConfig.method_config``)."""
    plain = dataclasses.asdict(config)
    for item in dataclasses.fields(config):
        keep = item.metadata.get("run_key", True)
        if keep is False or (keep == "unless-default" and getattr(config, item.name) == item.default):
            del plain[item.name]
    return plain


def unless_default() -> dict[str, Any]:
    return {"run_key": "unless-default"}


# Schedule-level overrides that apply to every method; a method's own ``presets`` refine them.
BASE_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"batch_size": 16, "max_steps": 12},
    "cpu": {"batch_size": 64, "max_steps": 400},
    "paper": {},
}


class Method(nn.Module):
    name: ClassVar[str]
    version: ClassVar[int] = 1
    paper: ClassVar[str] = ""
    uses_labels: ClassVar[bool] = False  # supervised references are flagged in every table
    needs_training: ClassVar[bool] = True  # False for the random-init control
    # False where torch.compile cannot serve the training step (e.g. data-dependent token counts
    # recompile every step); ``--compile`` then leaves the method eager and the record says so.
    compilable: ClassVar[bool] = True
    # A frozen-encoder variant names the method whose pretrained run (same seed and preset) it
    # starts from; the runner trains or loads that run first and calls ``init_from_base``.
    base_method: ClassVar[str | None] = None
    # Per-record inputs beside the signal (e.g. clinical parameters): ``derived_input`` names
    # them; ``derive_inputs`` gives one row per record of a dataset (computed once, cached by
    # the method's own module) and the runner hands every window its record's row, in training
    # batches under that key and to ``embed`` as the keyword of that name.
    derived_input: ClassVar[str | None] = None
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    encoder: nn.Module

    def __init__(self, config: MethodConfig):
        super().__init__()
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name} expects a {self.Config.__name__}, got {type(config)}")
        self.config = config

    # ----- configuration -------------------------------------------------------------------
    @classmethod
    def preset_overrides(cls, preset: str) -> dict[str, Any]:
        if preset not in BASE_PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(BASE_PRESETS)}")
        return {**BASE_PRESETS[preset], **cls.presets.get(preset, {})}

    @classmethod
    def config_fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls.Config)]

    @classmethod
    def search_space(cls, config: MethodConfig) -> dict[str, tuple]:
        """What ``ecgbench tune`` searches, around ``config`` (the preset's): Config field ->
        ``("loguniform" | "uniform", low, high)``, ``("int", low, high)`` (inclusive) or
        ``("choice", values)``. The default, for methods that declare none: learning rate and
        batch size."""
        return {"lr": ("loguniform", config.lr / 10, config.lr * 10),
                "batch_size": ("choice", tuple(sorted({max(2, config.batch_size // 2), config.batch_size,
                                                       config.batch_size * 2})))}

    @property
    def input_spec(self) -> InputSpec:
        c = self.config
        return InputSpec(leads=tuple(c.leads), fs=int(c.fs), n_samples=int(c.n_samples))

    @property
    def embedding_dim(self) -> int:
        return int(self.encoder.embedding_dim)

    # ----- training --------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def on_train_step_end(self, step: int, max_steps: int) -> None:
        """Hook after each optimiser step (EMA target updates live here)."""

    def setup_task(self, kind: str, n_outputs: int) -> None:
        """Called before training on methods with ``uses_labels``: build the label head.

        Such methods are trained once per (seed, task) on the task's training split, and their
        batches carry ``"label"``: ``(B,)`` int64 for multiclass/binary, ``(B, C)`` float for
        multilabel, ``(B,)`` float for regression (only records with a usable label).
        Regression labels arrive standardised with the training split's mean and standard
        deviation, so one loss scale fits every task. Raise
        :class:`ecgbench.core.contracts.NotApplicable` for a task kind the method cannot learn from.
        """
        if self.uses_labels:
            raise NotImplementedError(f"{self.name} uses labels but does not define setup_task")

    def init_from_base(self, base: "Method") -> None:
        """Called before training on methods with a ``base_method``: take over its encoder.

        When the variant's own checkpoint exists the runner loads it without the base, so
        ``__init__`` must build every module the state dict holds (copy weights here).
        """
        if self.base_method:
            raise NotImplementedError(f"{self.name} has a base method but no init_from_base")

    def derive_inputs(self, data: Recordings, cache_dir: Path) -> np.ndarray:
        """(N, k) float32: the ``derived_input`` of every record of ``data``, for the method's
        ``input_spec``; ``cache_dir`` is where it may keep them between runs."""
        raise NotImplementedError(f"{self.name} declares no derived input")

    def artifacts(self, batch: dict[str, Tensor], out_dir: Path) -> list[Path]:
        """Optional: write figures about one fixed batch (e.g. attention maps) into ``out_dir``.

        Called by the runner once after pretraining, in eval mode under ``torch.no_grad()``,
        with a batch of training windows; the returned files are kept with the run and logged
        to MLflow. The default writes nothing.
        """
        return []

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def configure_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        params = self.trainable_parameters()
        # One fused kernel per step instead of one per parameter, where every parameter is on CUDA.
        fused = {"fused": True} if params and all(p.is_cuda for p in params) else {}
        if c.optimizer == "adam":
            return torch.optim.Adam(params, lr=c.lr, betas=tuple(c.betas), weight_decay=c.weight_decay, **fused)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, betas=tuple(c.betas), weight_decay=c.weight_decay, **fused)
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.lr, momentum=c.betas[0], weight_decay=c.weight_decay)
        raise ValueError(f"{self.name}: unknown optimizer {c.optimizer!r} (adam, adamw, sgd)")

    # ----- evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, x: Tensor) -> Tensor:
        """(B, leads, T) -> (B, D) pooled features from the frozen encoder."""
        return self.encoder(x)


class WithDerivedInput:
    """Training windows (:class:`ecgbench.models.train.WindowDataset`) whose items and batches also
    carry a method's derived input: ``table[record_index]`` under ``key``."""

    def __init__(self, windows, key: str, table: np.ndarray):
        self.windows, self.key, self.table = windows, key, np.asarray(table, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        item = self.windows[i]
        return {**item, self.key: torch.from_numpy(self.table[int(item["record_index"])])}

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        batch = self.windows.__getitems__(indices)
        return {**batch, self.key: torch.from_numpy(self.table[batch["record_index"].numpy()])}
