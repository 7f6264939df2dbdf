"""<Method name>: <one sentence on what it learns>.   (Copy to methods/<name>.py and fill in.)

<Authors>, "<Title>", <Venue> <Year>, <https://arxiv.org/abs/...>; code: <URL if any>.

Method. <Two to five sentences in the paper's terms: views/targets, encoder, heads, loss,
optimiser, what the representation is.>

Departures:
- <Where this implementation differs from the paper, and why; one line each.>
- <"None" if it does not.>

This file is skipped by discovery (leading underscore). A copy is found by scanning methods/:
a top-level class with ``name = "..."`` is registered, and its docstring's first line is its
description in ``ecgbench list methods``. Rules of the house:

* Build from shared pieces: encoders in ``ecgbench.models.encoders``, augmentations in
  ``ecgbench.models.augment``, losses in ``ecgbench.models.losses``; never copy a block between method files.
* ``Config`` defaults are the paper's values; ``presets["smoke"]`` must be tiny (the whole
  grid pretrains in seconds), ``presets["cpu"]`` small but meaningful (400 steps of batch 64 in
  a few minutes on 2 cores).
* ``training_step`` gets a dict: ``batch["signal"]`` (B, leads, T) float32 already adapted to
  ``input_spec``, plus ``batch["patient_id"]`` and ``batch["record_index"]`` (B,) int64.
  Create new tensors on ``x.device``; draw randomness from torch's RNG (the trainer seeds it).
* Bump ``version`` whenever the behaviour changes: it is part of every run key.
* tests/methods/test_method_contract.py covers the new method without new test code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from torch import Tensor, nn

from ecgbench.core.config import positive
from ecgbench.models import augment
from ecgbench.models.encoders import RESNET1D_PRESETS, ResNet1dConfig, resnet1d_from_config
from ecgbench.models.losses import nt_xent
from ecgbench.models.method import Method, MethodConfig


class TemplateMethod(Method):
    """<One line: what the method does; shown by `ecgbench list methods`.>"""

    name = "template"  # registry key: lower-case, dashes
    version = 1
    paper = "<Authors>, <Title>, <Venue> <Year>"

    @dataclass
    class Config(MethodConfig, ResNet1dConfig):
        # The paper's values. Input spec first, then optimisation, then the method's own.
        leads: tuple[str, ...] = ("II",)
        fs: int = 100
        n_samples: int = 250
        lr: float = 1e-3
        batch_size: int = 256
        temperature: float = field(default=0.5, metadata=positive())  # > 0: it divides the logits
        proj_dim: int = 128

    presets = {
        "smoke": {**RESNET1D_PRESETS["smoke"], "proj_dim": 16},
        "cpu": {**RESNET1D_PRESETS["cpu"], "proj_dim": 64},
    }

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        self.encoder = resnet1d_from_config(c, in_leads=len(c.leads))  # the evaluated part
        self.head = nn.Linear(self.encoder.embedding_dim, c.proj_dim)  # pretraining only
        self.augment = augment.Compose([
            (partial(augment.random_resized_crop, scale=(0.5, 1.0)), 1.0),
            (partial(augment.gaussian_noise, snr_db=(15.0, 30.0)), 0.5),
        ])

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["signal"]  # (B, leads, T)
        z1 = self.head(self.encoder(self.augment(x)))  # (B, proj_dim)
        z2 = self.head(self.encoder(self.augment(x)))  # (B, proj_dim)
        return {"loss": nt_xent(z1, z2, self.config.temperature)}

    # Optional: def on_train_step_end(self, step: int, max_steps: int) -> None  (EMA targets)
