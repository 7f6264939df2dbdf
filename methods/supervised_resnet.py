"""Supervised reference: a 1-D ResNet trained end to end with one task's labels.

Not a self-supervised method: the supervised context row of NERULA's Table 3 ("ResNet
(supervised)"; G. Manimaran et al., "NERULA: A Dual-Pathway Self-Supervised Learning Framework
for Electrocardiogram Signal Analysis", arXiv:2405.19348, 2024) and of the seed project's
dual-view transformer report. It shows what labels buy on a task; tables mark it
``(supervised)``.

Method. The harness trains one run per (seed, task) on that task's training split, only on
records with a usable label (``uses_labels``); ``setup_task`` puts a linear head on the
encoder's pooled features: cross-entropy for multiclass tasks, binary cross-entropy for
multilabel (one logit per class) and binary (one logit) tasks, mean squared error for regression
(the runner standardises regression targets with the training split's mean and std). After
training the head is discarded and the frozen encoder is probed like every other method, on the
task it was trained for only.

Encoder: :class:`ecgbench.models.encoders.ResNet1d` (a 1-D ResNet-18, global average pooling) with the
sizes per preset of simclr, byol and random-init (``RESNET1D_PRESETS``), so the rows compare
like for like.

``supervised-resnet50``: the "1D ResNet-50" NERULA's Table 3 caption names, 2,048-d features
(:class:`ecgbench.models.encoders.Bottleneck1d` blocks (3, 4, 6, 3)), Adam at NERULA's lr 1e-4; the
row of the ``nerula-table3`` layout.

Input. ``supervised-resnet``: lead II only, NERULA's single-lead setting, so the row exists on
every task whose dataset has lead II (single-lead rhythm tasks included). ``supervised-resnet-
12lead``: all 12 leads, the 12-lead context of the dual-view report. Both at 100 Hz, 10 s
(1,000 samples), the dual-view transformer's input.

Departures:
- ResNet-50 row: kernel 7 in every block's middle conv (the harness ResNet's; 2-D ResNet-50 uses 3), 100 Hz x 10 s (not the nerula ladder's 500 Hz x 5,000), batch 256, weight decay 1e-4: NERULA gives depth and Adam 1e-4 only.
- NERULA gives no architecture, input rate or schedule for its supervised ResNet: ResNet-18 (harness ResNet1d), 100 Hz x 10 s, Adam lr 1e-3, weight decay 1e-4, batch 256, no augmentation, no label smoothing, are our choices.
- Frozen-probe evaluation of the trained encoder (NERULA reports its supervised row's own predictions); the harness compares every row under the same probes.
- Multilabel and binary tasks use sigmoid/BCE heads; multiclass uses softmax/CE.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from ecgbench.core.contracts import KINDS, STANDARD_LEADS
from ecgbench.models.encoders import RESNET1D_PRESETS, ResNet1d, ResNet1dConfig, resnet1d_from_config
from ecgbench.models.method import Method, MethodConfig


class SupervisedResNet(Method):
    """Supervised reference: a 1-D ResNet-18 on lead II trained with the task's labels."""

    name = "supervised-resnet"
    version = 1
    paper = ("supervised reference: 1-D ResNet trained with the task's labels (context row of "
             "NERULA, Manimaran et al., arXiv:2405.19348, Table 3)")
    uses_labels = True

    @dataclass
    class Config(MethodConfig, ResNet1dConfig):
        leads: tuple[str, ...] = ("II",)
        fs: int = 100
        n_samples: int = 1000
        optimizer: str = "adam"
        lr: float = 1e-3
        weight_decay: float = 1e-4
        batch_size: int = 256

    presets = {"smoke": dict(RESNET1D_PRESETS["smoke"]), "cpu": dict(RESNET1D_PRESETS["cpu"])}

    def __init__(self, config: Config):
        super().__init__(config)
        self.encoder = self.build_encoder(config)
        self.head: nn.Linear | None = None
        self.kind: str | None = None

    def build_encoder(self, config: Config) -> nn.Module:
        return resnet1d_from_config(config, in_leads=len(config.leads))

    def setup_task(self, kind: str, n_outputs: int) -> None:
        if kind not in KINDS:
            raise ValueError(f"{self.name}: unknown task kind {kind!r} (one of {KINDS})")
        self.kind = kind
        self.head = nn.Linear(self.encoder.embedding_dim, int(n_outputs))

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.head is None:
            raise RuntimeError(f"{self.name}: setup_task must be called before training")
        logits = self.head(self.encoder(batch["signal"]))  # (B, n_outputs)
        label = batch["label"]  # (B,) or (B, C)
        if self.kind == "multiclass":
            return {"loss": F.cross_entropy(logits.float(), label)}
        if self.kind == "multilabel":
            return {"loss": F.binary_cross_entropy_with_logits(logits.float(), label.float())}
        if self.kind == "binary":
            return {"loss": F.binary_cross_entropy_with_logits(logits[:, 0].float(), label.float())}
        return {"loss": F.mse_loss(logits[:, 0].float(), label.float())}


class SupervisedResNet50(SupervisedResNet):
    """Supervised reference: a 1-D ResNet-50 (bottleneck blocks) on lead II, NERULA Table 3's row."""

    name = "supervised-resnet50"
    paper = ("supervised reference: the 1-D ResNet-50 of NERULA's Table 3 caption (Manimaran et al., "
             "arXiv:2405.19348), trained with the task's labels")

    @dataclass
    class Config(SupervisedResNet.Config):
        blocks: tuple[int, ...] = (3, 4, 6, 3)  # bottleneck blocks per stage: ResNet-50
        lr: float = 1e-4  # NERULA: Adam at 1e-4 "for all experiments"

    presets = {"smoke": {**RESNET1D_PRESETS["smoke"], "blocks": (1, 1, 1, 1)},
               "cpu": {**RESNET1D_PRESETS["cpu"], "blocks": (3, 4, 6, 3)}}

    def build_encoder(self, config: Config) -> nn.Module:
        c = config
        return ResNet1d(len(c.leads), width=float(c.width), blocks=tuple(int(b) for b in c.blocks),
                        kernel_size=int(c.kernel_size), bottleneck=True)


class SupervisedResNet12Lead(SupervisedResNet):
    """Supervised reference: the same 1-D ResNet-18 on all 12 leads (dual-view report context)."""

    name = "supervised-resnet-12lead"

    @dataclass
    class Config(SupervisedResNet.Config):
        leads: tuple[str, ...] = STANDARD_LEADS
