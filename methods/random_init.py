"""Random-init control: the ResNet1d encoder of SimCLR and BYOL, never trained.

Not a method from a paper: a control row. Probing features of an untrained encoder shows how
much of a score the architecture and the probe give on their own; a self-supervised method is
only worth its pretraining where it beats this row. The encoder, its sizes per preset
(``ecgbench.models.encoders.RESNET1D_PRESETS``) and its input (12 leads, 100 Hz, 250 samples) are
those of simclr and byol, so the rows compare like for like. Its weights are PyTorch's
default initialisation (Kaiming-normal convolutions), drawn from the run's seed.

``random-init-lead2`` is the same control for single-lead methods: simclr-lead2's encoder at
its input (lead II, NERULA's rate and window), so single-lead datasets such as CinC 2017, where
no 12-lead encoder applies, have an untrained row too (the one lead of a single-lead dataset
feeds it whatever its name, as for every single-lead encoder: ``ecgbench.data.adapt``).

Departures:
- None (no paper); flagged in every table through ``needs_training = False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.methods.nerula import NerulaConfig
from ecgbench.methods.nerula_comparisons import NERULA_INPUT
from ecgbench.models.encoders import RESNET1D_PRESETS, ResNet1dConfig, resnet1d_from_config
from ecgbench.models.method import Method, MethodConfig


class RandomInit(Method):
    """Control row: the untrained ResNet1d encoder of simclr/byol (random weights)."""

    name = "random-init"
    version = 1
    paper = "control: untrained encoder"
    needs_training = False

    @dataclass
    class Config(MethodConfig, ResNet1dConfig):
        leads: tuple[str, ...] = STANDARD_LEADS
        fs: int = 100
        n_samples: int = 250
        max_steps: int = 0

    presets = {
        "smoke": {**RESNET1D_PRESETS["smoke"], "max_steps": 0},
        "cpu": {**RESNET1D_PRESETS["cpu"], "max_steps": 0},
    }

    def __init__(self, config: Config):
        super().__init__(config)
        self.encoder = resnet1d_from_config(config, in_leads=len(config.leads))

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Nothing to learn: a constant zero loss without gradient."""
        return {"loss": torch.zeros((), device=batch["signal"].device)}


class RandomInitLeadII(RandomInit):
    """Control row for single-lead methods: simclr-lead2's encoder (lead II), never trained."""

    name = "random-init-lead2"
    version = 1

    @dataclass
    class Config(RandomInit.Config):
        leads: tuple[str, ...] = NerulaConfig.leads
        fs: int = NerulaConfig.fs
        n_samples: int = NerulaConfig.n_samples

    presets = {preset: {**RandomInit.presets[preset], **NERULA_INPUT[preset]} for preset in NERULA_INPUT}
