"""BYOL adapted to 12-lead ECG.

J.-B. Grill, F. Strub, F. Altché, C. Tallec, P. H. Richemond et al., "Bootstrap Your Own
Latent: A New Approach to Self-Supervised Learning", NeurIPS 2020,
https://arxiv.org/abs/2006.07733.
ECG setup after T. Mehari and N. Strodthoff, "Self-supervised representation learning from
12-lead ECG data", Computers in Biology and Medicine 141:105114, 2022,
https://arxiv.org/abs/2103.12676.

Method. Two augmented views v, v' of each window. The online network (encoder f_theta,
projector g_theta, predictor q_theta) predicts the target network's projection of the other
view; the target network (f_xi, g_xi) is an exponential moving average of the online one,
xi <- tau xi + (1 - tau) theta, with tau rising from 0.996 to 1 on the cosine schedule
tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2. The loss is the normalised MSE
2 - 2 cos(q_theta(g_theta(f_theta(v))), g_xi(f_xi(v'))), symmetrised over the two views;
gradients reach only the online network. Projector and predictor: Linear(4096) -> BN -> ReLU
-> Linear(256). f_theta's pooled features are the representation.

Augmentations (each view independently): time flip and amplitude flip (negation), each with
probability 0.5; random resized crop of 50-100 % of the window; Gaussian noise (SNR 15-30 dB)
with probability 0.5. Input: 12 leads at 100 Hz, 2.5 s windows (250 samples).

Departures:
- Adam with lr 1e-3 and the paper's weight decay 1.5e-6 on all parameters, not LARS (lr 0.2 x batch/256, bias/BN excluded): as Mehari & Strodthoff.
- No warmup/cosine learning-rate schedule of our own: the harness owns it. The tau schedule is kept.
- Encoder: 1-D ResNet-18 (ecgbench.models.encoders.ResNet1d), shared with SimCLR and random-init, not ResNet-50.
- ECG augmentations (above) instead of image crops/colour jitter/blur/solarisation.
- The EMA also copies batch-norm running statistics from the online network (buffers are not parameters).
- No gradient clipping (as in the paper); the harness default is 3.0.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.models import augment
from ecgbench.models.ema import cosine_tau, ema_update
from ecgbench.models.encoders import RESNET1D_PRESETS, ResNet1dConfig, resnet1d_from_config
from ecgbench.models.losses import byol_loss
from ecgbench.models.method import Method, MethodConfig


def bn_mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """BYOL's projector/predictor: Linear -> BatchNorm -> ReLU -> Linear."""
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, d_out),
    )


class BYOL(Method):
    """BYOL: predict an EMA target network's projection of another view, no negatives."""

    name = "byol"
    version = 1
    paper = ("Grill et al., Bootstrap Your Own Latent, NeurIPS 2020; "
             "ECG setup of Mehari & Strodthoff, CBM 2022")

    @dataclass
    class Config(MethodConfig, ResNet1dConfig):
        leads: tuple[str, ...] = STANDARD_LEADS
        fs: int = 100
        n_samples: int = 250
        optimizer: str = "adam"
        lr: float = 1e-3
        weight_decay: float = 1.5e-6
        batch_size: int = 4096
        grad_clip: float = 0.0
        proj_hidden_dim: int = 4096
        proj_dim: int = 256
        pred_hidden_dim: int = 4096
        tau_base: float = 0.996
        # Augmentations (each view independently).
        flip_p: float = 0.5
        negate_p: float = 0.5
        crop_scale: tuple[float, float] = (0.5, 1.0)
        noise_p: float = 0.5
        noise_snr_db: tuple[float, float] = (15.0, 30.0)

    presets = {
        "smoke": {**RESNET1D_PRESETS["smoke"], "proj_hidden_dim": 32, "proj_dim": 16,
                  "pred_hidden_dim": 32},
        "cpu": {**RESNET1D_PRESETS["cpu"], "proj_hidden_dim": 512, "proj_dim": 128,
                "pred_hidden_dim": 512},
    }

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        self.encoder = resnet1d_from_config(c, in_leads=len(c.leads))
        self._build_heads(c)
        self.augment = augment.Compose([
            (augment.time_flip, c.flip_p),
            (augment.negate, c.negate_p),
            (partial(augment.random_resized_crop, scale=c.crop_scale), 1.0),
            (partial(augment.gaussian_noise, snr_db=c.noise_snr_db), c.noise_p),
        ])

    def _build_heads(self, c: Config) -> None:
        """Projector, predictor and the EMA target copies around ``self.encoder``."""
        self.projector = bn_mlp(self.encoder.embedding_dim, c.proj_hidden_dim, c.proj_dim)
        self.predictor = bn_mlp(c.proj_dim, c.pred_hidden_dim, c.proj_dim)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.tau = c.tau_base
        # tau on the device for the step's outputs, filled in place: no host copy per step
        self.register_buffer("tau_now", torch.tensor(float(c.tau_base)), persistent=False)

    def _online(self) -> list[nn.Module]:
        return [self.encoder, self.projector]

    def _target(self) -> list[nn.Module]:
        return [self.target_encoder, self.target_projector]

    def trainable_parameters(self) -> list[nn.Parameter]:
        frozen = {id(p) for m in self._target() for p in m.parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in frozen]

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["signal"]  # (B, leads, T)
        v1, v2 = self.augment(x), self.augment(x)
        p1 = self.predictor(self.projector(self.encoder(v1)))  # (B, proj_dim)
        p2 = self.predictor(self.projector(self.encoder(v2)))
        with torch.no_grad():
            z1 = self.target_projector(self.target_encoder(v1))  # (B, proj_dim)
            z2 = self.target_projector(self.target_encoder(v2))
        loss = byol_loss(p1, z2) + byol_loss(p2, z1)
        return {"loss": loss, "tau": self.tau_now.clone()}

    @torch.no_grad()
    def on_train_step_end(self, step: int, max_steps: int) -> None:
        """EMA update of the target network with tau at this step of the cosine schedule.

        tau is a function of ``step`` alone, so a resumed run continues the same schedule.
        """
        self.tau = cosine_tau(step, max_steps, self.config.tau_base)
        self.tau_now.fill_(self.tau)
        for online, target in zip(self._online(), self._target()):
            ema_update(online, target, self.tau)
