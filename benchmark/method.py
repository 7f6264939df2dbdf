"""The Method contract: one self-supervised (or control) pretraining method.

A method is one small subclass in ``methods/`` (solo-learn style). It declares

* ``name`` (registry key), ``version`` (bump when its behaviour changes: the version is part of
  every run key, so old and new numbers never mix), ``paper`` (citation);
* ``Config``: a dataclass subclass of :class:`MethodConfig` whose defaults are the paper's
  values, and ``presets``: per-preset overrides (``smoke``, ``cpu``; ``paper`` is the defaults);
* ``__init__(config)``: builds ``self.encoder`` (see :mod:`ecgbench.encoders` for the encoder
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ecgbench.api import InputSpec


@dataclass
class MethodConfig:
    """Fields every method has. Subclasses add their own and change defaults to the paper's."""

    # Input the encoder consumes (the harness adapts records to it).
    leads: tuple[str, ...] = ("II",)
    fs: int = 256
    n_samples: int = 2560
    # Optimisation.
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 256
    max_steps: int = 10_000
    warmup_steps: int = 0
    grad_clip: float = 3.0  # max gradient norm; 0 disables clipping


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
        :class:`ecgbench.api.NotApplicable` for a task kind the method cannot learn from.
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
