"""NERULA's competitors as NERULA ran them: lead II, its input and optimiser, CinC 2020 pretraining.

G. Manimaran, S. Puthusserypady, H. Domínguez, A. Atienza and J. E. Bardram, "NERULA: A
Dual-Pathway Self-Supervised Learning Framework for Electrocardiogram Signal Analysis",
arXiv:2405.19348, 2024. Section 5.1: every method is pretrained on PhysioNet/CinC 2020, lead II
only; Section 5.2: Adam at lr 1e-4 "for all experiments".

The rows of NERULA's tables map to registered methods as follows (the ``nerula-*`` layouts in
``results/reported/nerula.yaml`` say so per row, and pretrain them on ``cinc2020``):

* BYOL (Tables 1-6): ``nerula-ladder-byol`` (methods/nerula.py), BYOL with its augmentations on
  a 1-D ResNet, lead II, NERULA's input; Table 2's first rung is the same model (its RF numbers
  equal Table 3's BYOL row).
* SimCLR (Tables 3-6): ``simclr-lead2`` below.
* CLOCS (Tables 3-6): ``clocs-cmsc``, already lead II, Adam 1e-4 ("we use only [the CMSC]
  version of CLOCS").
* CLOCS (Table 1, "ResNet as the encoder and a non-contrastive loss"): ``nerula-resnet-clocs``
  below: BYOL's loss between a window's two adjacent non-overlapping segments.
* Ti-MAE (Tables 3-6): ``ti-mae``, already lead II.

Input of the variants here: NERULA's (lead II, 500 Hz, 10 s windows; the rate and length are
our reading, see methods/nerula.py), batch 256, Adam 1e-4.

Departures:
- simclr-lead2: lead masking off (one lead: masking it would blank the whole view); the rest of SimCLR's augmentation pool and loss unchanged.
- nerula-resnet-clocs: a segment's features come from the ResNet on that 5 s segment; embed() averages the two segments' features (as clocs-cmsc), the harness needs one vector per window.
- simclr-lead2: SimCLR's encoder (ResNet-18), augmentations, temperature 0.5 and head are simclr's own (Mehari & Strodthoff): NERULA gives none; weight decay 0 (Adam 1e-4 only, NERULA's).
- Ti-MAE row: ``ti-mae`` keeps its own input (100 Hz x 1,000 samples) and optimiser (AdamW lr 1e-3, wd 0.05), not NERULA's Adam 1e-4 "for all experiments" or the 500 Hz x 5,000 reading.
- nerula-resnet-clocs: no same-patient positives (CLOCS's patient term is contrastive; Table 1 keeps only the positive-pair choice).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ecgbench.methods.clocs import SegmentLeadEncoder
from ecgbench.methods.nerula import PAPER, NerulaConfig, NerulaLadderByol
from ecgbench.methods.simclr import SimCLR
from ecgbench.models.encoders import resnet1d_from_config
from ecgbench.models.losses import byol_loss
from ecgbench.models.method import Method

# NERULA's input per preset (the smoke and cpu sizes of the nerula ladder).
NERULA_INPUT = {"smoke": {"fs": 50, "n_samples": 500}, "cpu": {"fs": 100, "n_samples": 1000}}


class SimCLRLeadII(SimCLR):
    """SimCLR on lead II at NERULA's input and optimiser (NERULA Tables 3-6's SimCLR row)."""

    name = "simclr-lead2"
    version = 1
    paper = f"{SimCLR.paper}; lead-II setting of {PAPER}"

    @dataclass
    class Config(SimCLR.Config):
        leads: tuple[str, ...] = NerulaConfig.leads
        fs: int = NerulaConfig.fs
        n_samples: int = NerulaConfig.n_samples
        lr: float = NerulaConfig.lr
        weight_decay: float = NerulaConfig.weight_decay
        batch_size: int = NerulaConfig.batch_size
        mask_p: float = 0.0  # one lead: lead masking would blank the view

    presets = {
        preset: {**SimCLR.presets[preset], **NERULA_INPUT[preset]} for preset in NERULA_INPUT
    }


class NerulaResNetClocs(NerulaLadderByol):
    """NERULA Table 1, CLOCS row: BYOL's loss between adjacent non-overlapping segments, ResNet."""

    name = "nerula-resnet-clocs"
    version = 1
    paper = PAPER

    def __init__(self, config: NerulaLadderByol.Config):
        Method.__init__(self, config)  # no augmentations: the two segments are the views
        if config.n_samples % 2:
            raise ValueError(f"{self.name}: n_samples {config.n_samples} does not split into two segments")
        self.encoder = SegmentLeadEncoder(resnet1d_from_config(config, in_leads=1), n_segments=2)
        self._build_heads(config)  # BYOL's projector, predictor and EMA targets

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["signal"]  # (B, 1, T)
        first, second = self.encoder.views(x)  # (B, D) each: the window's two halves
        p1, p2 = (self.predictor(self.projector(h)) for h in (first, second))
        with torch.no_grad():
            z1, z2 = (self.target_projector(h) for h in self.target_encoder.views(x))
        loss = byol_loss(p1, z2) + byol_loss(p2, z1)
        return {"loss": loss, "tau": self.tau_now.clone()}
