"""SimCLR adapted to 12-lead ECG.

T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A Simple Framework for Contrastive Learning
of Visual Representations", ICML 2020, https://arxiv.org/abs/2002.05709.
ECG adaptation after T. Mehari and N. Strodthoff, "Self-supervised representation learning
from 12-lead ECG data", Computers in Biology and Medicine 141:105114, 2022,
https://arxiv.org/abs/2103.12676 (code: https://github.com/tmehari/ecg-selfsupervised).

Method. Two views of every window are drawn by the same random augmentation pipeline, applied
in sequence: Gaussian noise, per-lead amplitude scaling, random resized crop, baseline wander
and lead masking. A shared encoder f (a 1-D ResNet-18, global average pooling) gives
h = f(x); a projection MLP g (Linear -> ReLU -> Linear to 128) gives z = g(h); NT-Xent over
the 2N projections (one positive and 2N - 2 negatives per anchor) is minimised. h is the
representation; g is discarded after pretraining.

Temperature 0.5: Mehari & Strodthoff's ECG SimCLR (``bolts_config.yaml``: ``temperature:
0.5``), the usual SimCLR baseline on PTB-XL, and SimCLR's own value for small-batch CIFAR-10;
0.1 is tuned for ImageNet with batches of 4096 and LARS. Input as in Mehari & Strodthoff:
12 leads at 100 Hz, 2.5 s windows (250 samples); crops cover 50-100 % of the window and are
resized back; channel scaling in [0.5, 2]; baseline wander amplitude up to 0.1.

Departures:
- Adam (as Mehari & Strodthoff), not LARS; lr 1e-3 and weight decay 1e-5 on all parameters (theirs: 2.29e-3 with warmup + cosine, bias/BN excluded).
- No warmup/cosine schedule of our own: the harness owns the schedule.
- Encoder: a 1-D ResNet-18 (ecgbench.models.encoders.ResNet1d) instead of their xresnet1d50, shared with BYOL and random-init.
- Projection head without batch norm (as Mehari & Strodthoff and the SimCLR paper's text).
- Augmentation pool: noise, scaling, crop, baseline wander, lead masking with per-view probabilities (ours); Mehari & Strodthoff's best pair was crop + time-out.
- Batch 4096 (Mehari & Strodthoff's); no gradient clipping (the harness default is 3.0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
from torch import Tensor, nn

from ecgbench.core.config import positive
from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.models import augment
from ecgbench.models.encoders import RESNET1D_PRESETS, ResNet1dConfig, resnet1d_from_config
from ecgbench.models.losses import nt_xent
from ecgbench.models.method import Method, MethodConfig


def projection_mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """SimCLR's g: one hidden layer with ReLU."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, d_out))


class SimCLR(Method):
    """SimCLR: contrast two augmented views of each ECG against the rest of the batch."""

    name = "simclr"
    version = 1
    paper = ("Chen et al., A Simple Framework for Contrastive Learning of Visual "
             "Representations, ICML 2020; ECG setup of Mehari & Strodthoff, CBM 2022")

    @dataclass
    class Config(MethodConfig, ResNet1dConfig):
        leads: tuple[str, ...] = STANDARD_LEADS
        fs: int = 100
        n_samples: int = 250
        optimizer: str = "adam"
        lr: float = 1e-3
        weight_decay: float = 1e-5
        batch_size: int = 4096
        grad_clip: float = 0.0
        temperature: float = field(default=0.5, metadata=positive())  # > 0: it divides the logits
        proj_hidden_dim: int = 0  # 0: the encoder's embedding_dim, as in SimCLR
        proj_dim: int = 128
        # Augmentations (each view independently): probability and parameters.
        noise_p: float = 0.5
        noise_snr_db: tuple[float, float] = (15.0, 30.0)
        scale_p: float = 0.5
        scale_range: tuple[float, float] = (0.5, 2.0)
        crop_p: float = 1.0
        crop_scale: tuple[float, float] = (0.5, 1.0)
        wander_p: float = 0.5
        wander_amplitude: float = 0.1
        mask_p: float = 0.5
        mask_lead_p: float = 0.25

    presets = {
        "smoke": {**RESNET1D_PRESETS["smoke"], "proj_dim": 16},
        "cpu": {**RESNET1D_PRESETS["cpu"], "proj_dim": 64},
    }

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        self.encoder = resnet1d_from_config(c, in_leads=len(c.leads))
        d = self.encoder.embedding_dim
        self.projector = projection_mlp(d, c.proj_hidden_dim or d, c.proj_dim)
        self.augment = augment.Compose([
            (partial(augment.gaussian_noise, snr_db=c.noise_snr_db), c.noise_p),
            (partial(augment.random_scale, low=c.scale_range[0], high=c.scale_range[1]),
             c.scale_p),
            (partial(augment.random_resized_crop, scale=c.crop_scale), c.crop_p),
            (partial(augment.baseline_wander, fs=c.fs, max_amplitude=c.wander_amplitude),
             c.wander_p),
            (partial(augment.lead_mask, p=c.mask_lead_p), c.mask_p),
        ])

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["signal"]  # (B, leads, T)
        z1 = self.projector(self.encoder(self.augment(x)))  # (B, proj_dim)
        z2 = self.projector(self.encoder(self.augment(x)))  # (B, proj_dim)
        loss = nt_xent(z1, z2, self.config.temperature)
        return {"loss": loss, "positive_cosine": _mean_cosine(z1, z2)}


@torch.no_grad()
def _mean_cosine(a: Tensor, b: Tensor) -> Tensor:
    return nn.functional.cosine_similarity(a, b, dim=-1).mean()
