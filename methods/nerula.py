"""NERULA: non-contrastive alignment of complementary masked views plus signal reconstruction.

G. Manimaran, S. Puthusserypady, H. Domínguez, A. Atienza and J. E. Bardram, "NERULA: A
Dual-Pathway Self-Supervised Learning Framework for Electrocardiogram Signal Analysis",
arXiv:2405.19348, 2024, https://arxiv.org/abs/2405.19348. Encoder after the authors'
Local-Lead Attention model (G. Manimaran et al., CinC 2023; BSD-2 code
github.com/cph-cachet/LocalLeadAttention, read to check details, not copied):
:class:`ecgbench.models.encoders.LocalLeadEncoder`.

Method. A binary temporal mask m hides exactly 50 % of a single-lead (lead II) signal in 15-30
contiguous patches of random lengths (:func:`ecgbench.models.masking.complementary_patch_mask`); the
two views are x_i = m * x and x_j = (1 - m) * x, complementary halves of one signal. The
non-contrastive pathway is BYOL's: an online encoder, projector and predictor predict the
projection an EMA target network gives the other view, and the loss is the negative cosine
similarity between them, over both directions. The encoder masks its latents too: m, resized
to each layer's length, zeroes the hidden positions after every layer, and attention never
looks at hidden keys; no view is ever entirely hidden at any layer
(:func:`ecgbench.models.masking.resize_mask` keeps a visible position for each of two complementary
masks). The final latent is a masked vector of 128 positions (Sec. 4.2.2, :class:`FinalLatent`):
the last layer's latents resampled to 128 positions and multiplied by the mask at that length,
so the two views' final latents are non-zero at complementary positions. The generative
pathway decodes each view's final latent back to the whole signal, scored with the Huber loss.
L = 1 * L_nc + 10 * L_recon; Adam, lr 1e-4. The representation is the mean of the final latent
over its visible positions (all of them, unmasked, at evaluation), 128-d.

Ablation ladder (the paper's Table 2), one registered method per row, each adding one thing:
``nerula-ladder-byol`` (BYOL with its augmentations and a 1-D ResNet, lead II),
``nerula-ladder-masking`` (the complementary masked views replace the augmentations),
``nerula-ladder-latent`` (the LocalLead encoder with latent masking) and ``nerula`` (the
reconstruction pathway). All rungs share the input, the optimiser and BYOL's heads and EMA.

Input. Lead II at 500 Hz, 10 s windows (5,000 samples). The paper's rate and length are not
in the material we could check; the LLA code resamples to 500 Hz and pads or crops records to
8,192 samples, and the PhysioNet 2020 records NERULA pretrains on are mostly 10 s long.

Departures:
- Input 500 Hz x 5,000 samples (see Input): the LLA code's rate, a 10 s window instead of its 8,192-sample padded crops.
- No band-pass filter or per-record z-scoring (the LLA code's preprocessing): every method in the harness sees the same signals.
- Projector/predictor sizes, the EMA schedule (tau 0.996 -> 1, cosine) and batch 256 are BYOL's/the harness's: the paper's values were not available to us.
- The decoder (linear upsampling of the last-layer latents, three conv stages that double the length, 96/48/24 channels, kernel 9) is ours: the paper's decoder was not available to us.
- Both views are reconstructed (the mean of the two Huber losses); Fig. 2 reconstructs "one of the signals". Huber delta 1 (the paper gives no delta).
- L_nc is the negative cosine averaged over the two directions; the BYOL rung keeps BYOL's 2 - 2 cos summed over them, an affine map of it (same optimum, same Adam steps up to epsilon).
- The encoder follows the LLA code (arch (2, 2, 8), windows 19 then 3 global layers, 1x1 conv 96 -> 128, resize to 1,152 steps, batch-norm "layer norms"); leads are input channels (one lead here), not the LLA lead axis.
- No gradient clipping (none stated); the harness default is 3.0.
- Eq. 7's cosine is taken between BYOL's online prediction and EMA-target projection of the pooled final latents, not directly between the two 128-position masked vectors (complementary, hence orthogonal as they stand).
- nerula-ladder-byol's augmentations are BYOL's module's (time flip, negation, resized crop, noise); the paper also names time warping, which is not applied.
- The final 128-position latent is the last layer (5 positions at the paper preset) resampled linearly to 128, then masked: the paper gives the length, not how it arises.
- Masks are resized per layer by majority over each position's span (ties: its centre sample), keeping a visible position for each view; the paper says "interpolate" only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ecgbench.methods.byol import BYOL
from ecgbench.models.encoders import (
    LOCAL_LEAD_PRESETS,
    RESNET1D_PRESETS,
    LocalLeadConfig,
    LocalLeadEncoder,
    ResNet1dConfig,
    local_lead_from_config,
    resnet1d_from_config,
)
from ecgbench.models.losses import huber_reconstruction, negative_cosine
from ecgbench.models.masking import complementary_patch_mask, resize_mask
from ecgbench.models.method import Method, MethodConfig
from ecgbench.models.train import to_device

PAPER = ("Manimaran et al., NERULA: A Dual-Pathway Self-Supervised Learning Framework for "
         "Electrocardiogram Signal Analysis, arXiv:2405.19348, 2024")


@dataclass
class NerulaConfig(MethodConfig):
    """What every rung of the ladder shares: input, optimiser, BYOL heads and EMA."""

    leads: tuple[str, ...] = ("II",)
    fs: int = 500
    n_samples: int = 5000
    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 256
    grad_clip: float = 0.0
    proj_hidden_dim: int = 4096
    proj_dim: int = 256
    pred_hidden_dim: int = 4096
    tau_base: float = 0.996


@dataclass
class MaskedViewsConfig(NerulaConfig):
    mask_ratio: float = 0.5
    n_patches: tuple[int, int] = (15, 30)


def _presets(encoder_presets: dict[str, dict[str, Any]], **extra: dict[str, Any]
             ) -> dict[str, dict[str, Any]]:
    """Per-preset overrides: input and heads shared by the ladder, then the encoder's sizes."""
    shared = {
        "smoke": {"fs": 50, "n_samples": 500, "proj_hidden_dim": 32, "proj_dim": 16,
                  "pred_hidden_dim": 32},
        "cpu": {"fs": 100, "n_samples": 1000, "proj_hidden_dim": 512, "proj_dim": 128,
                "pred_hidden_dim": 512},
    }
    return {p: {**shared[p], **encoder_presets[p], **extra.get(p, {})} for p in shared}


class NerulaLadderByol(BYOL):
    """NERULA ladder, BYOL: BYOL with its augmentations and a 1-D ResNet on lead II (Table 2)."""

    name = "nerula-ladder-byol"
    version = 1
    paper = PAPER

    @dataclass
    class Config(NerulaConfig, BYOL.Config):
        pass

    presets = _presets(RESNET1D_PRESETS)


class _MaskedViews(BYOL):
    """Rungs with complementary masked views: BYOL's online/target layout (so BYOL's EMA update
    and parameter split apply unchanged) around an encoder the subclass chooses."""

    latent_masking = False  # True: the encoder takes the keep mask and masks its latents

    def __init__(self, config: MaskedViewsConfig):
        Method.__init__(self, config)  # not BYOL.__init__: no ResNet-only build, no augmentations
        c = config
        self.encoder = self.build_encoder()
        self._build_heads(c)  # BYOL's projector, predictor and EMA targets

    def build_encoder(self) -> nn.Module:
        raise NotImplementedError

    def views(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The keep masks of the two views, (B, T) bool each: m and 1 - m."""
        c = self.config
        # drawn on the CPU: the draw reads its own sizes, which on CUDA would sync every step
        hidden = complementary_patch_mask(x.shape[0], x.shape[-1], c.mask_ratio,
                                          tuple(c.n_patches), device="cpu")
        hidden = to_device(hidden, x.device)
        return ~hidden, hidden

    def encode(self, encoder: nn.Module, x: Tensor, keep: Tensor) -> Tensor:
        """(B, leads, T), (B, T) -> (B, D): the view x * keep through ``encoder``."""
        if self.latent_masking:
            return encoder(x, keep)
        return encoder(x * keep[:, None].to(x.dtype))

    def non_contrastive(self, x: Tensor, keeps: tuple[Tensor, Tensor],
                        features: tuple[Tensor, Tensor]) -> Tensor:
        """Negative cosine between each view's online prediction and the other view's target
        projection, averaged over the two directions."""
        p1, p2 = (self.predictor(self.projector(h)) for h in features)  # (B, proj_dim)
        with torch.no_grad():
            z1, z2 = (self.target_projector(self.encode(self.target_encoder, x, k)) for k in keeps)
        return 0.5 * (negative_cosine(p1, z2) + negative_cosine(p2, z1))

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["signal"]  # (B, 1, T)
        keeps = self.views(x)
        features = tuple(self.encode(self.encoder, x, k) for k in keeps)
        loss = self.non_contrastive(x, keeps, features)
        return {"loss": loss, "tau": self.tau_now.clone()}


class NerulaLadderMasking(_MaskedViews):
    """NERULA ladder, + masking: BYOL on complementary 50% patch-masked views, 1-D ResNet."""

    name = "nerula-ladder-masking"
    version = 1
    paper = PAPER

    @dataclass
    class Config(MaskedViewsConfig, ResNet1dConfig):
        pass

    presets = _presets(RESNET1D_PRESETS)

    def build_encoder(self) -> nn.Module:
        return resnet1d_from_config(self.config, in_leads=len(self.config.leads))


class FinalLatent(nn.Module):
    """NERULA's final masked latent (Sec. 4.2.2): the encoder's last-layer latents (B, D, L)
    resampled linearly to ``length`` positions (128) and multiplied by the view's keep mask at
    that length, so two complementary views give vectors non-zero at complementary positions.

    ``sequence(x, keep)``: (B, D, length) final latents and their (B, length) keep mask;
    ``forward(x, keep=None)``: their mean over the visible positions, the encoder contract.
    """

    def __init__(self, backbone: LocalLeadEncoder, length: int):
        super().__init__()
        if length < 2:
            raise ValueError(f"NERULA: final_len must be at least 2 (one position per view), got {length}")
        self.backbone = backbone
        self.length = int(length)
        self.embedding_dim = backbone.embedding_dim

    def sequence(self, x: Tensor, keep: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if keep is None:
            keep = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool, device=x.device)
        latents, _ = self.backbone.sequence(x, keep)  # (B, D, L_last)
        final_keep = resize_mask(keep, self.length)  # (B, length)
        final = F.interpolate(latents, size=self.length, mode="linear", align_corners=False)
        return final * final_keep[:, None].to(final.dtype), final_keep

    pool = staticmethod(LocalLeadEncoder.pool)

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        return self.pool(*self.sequence(x, keep))


class NerulaLadderLatent(_MaskedViews):
    """NERULA ladder, + latent masking: masked views through the LocalLead attention encoder."""

    name = "nerula-ladder-latent"
    version = 2  # 2: the 128-position final latent; no view ever entirely hidden
    paper = PAPER
    latent_masking = True

    @dataclass
    class Config(MaskedViewsConfig, LocalLeadConfig):
        final_len: int = 128  # positions of the final masked latent (Sec. 4.2.2)

    presets = _presets(LOCAL_LEAD_PRESETS)

    def build_encoder(self) -> nn.Module:
        backbone = local_lead_from_config(self.config, in_leads=len(self.config.leads))
        return FinalLatent(backbone, int(self.config.final_len))


class SignalDecoder(nn.Module):
    """Latents (B, dim, L) -> signal (B, leads, T): linear upsampling to ceil(T / 2^n), a 1x1
    conv, then n stages of (x2 linear upsampling, conv k, batch norm, LeakyReLU), a last conv to
    the leads, cropped to T."""

    def __init__(self, dim: int, channels: tuple[int, ...], out_leads: int, kernel: int = 9):
        super().__init__()
        self.inp = nn.Conv1d(dim, channels[0], 1)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2, mode="linear", align_corners=False),
                          nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
                          nn.BatchNorm1d(c_out), nn.LeakyReLU())
            for c_in, c_out in zip(channels, channels[1:] + channels[-1:]))
        self.out = nn.Conv1d(channels[-1], out_leads, kernel, padding=kernel // 2)

    def forward(self, latents: Tensor, n_samples: int) -> Tensor:
        start = -(-n_samples // 2 ** len(self.stages))
        h = self.inp(F.interpolate(latents, size=start, mode="linear", align_corners=False))
        for stage in self.stages:
            h = stage(h)
        return self.out(h)[..., :n_samples]


class Nerula(NerulaLadderLatent):
    """NERULA: complementary masked views aligned non-contrastively + Huber reconstruction."""

    name = "nerula"
    version = 2  # 2: the 128-position final latent; no view ever entirely hidden
    paper = PAPER

    @dataclass
    class Config(NerulaLadderLatent.Config):
        decoder_channels: tuple[int, ...] = (96, 48, 24)
        decoder_kernel: int = 9
        huber_delta: float = 1.0
        nc_weight: float = 1.0
        recon_weight: float = 10.0

    presets = _presets(LOCAL_LEAD_PRESETS, smoke={"decoder_channels": (8, 8)},
                       cpu={"decoder_channels": (32, 16, 8)})

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        self.decoder = SignalDecoder(self.encoder.embedding_dim,
                                     tuple(int(ch) for ch in c.decoder_channels), len(c.leads),
                                     int(c.decoder_kernel))

    def reconstruct(self, x: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
        """One view through the online encoder: its pooled features (B, D) and the decoder's
        reconstruction of the whole signal (B, leads, T) from its final latent."""
        latents, keep_out = self.encoder.sequence(x, keep)  # (B, D, 128), (B, 128)
        return self.encoder.pool(latents, keep_out), self.decoder(latents, x.shape[-1])

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        c = self.config
        x = batch["signal"]  # (B, 1, T)
        keeps = self.views(x)
        (h1, r1), (h2, r2) = (self.reconstruct(x, k) for k in keeps)
        nc = self.non_contrastive(x, keeps, (h1, h2))
        recon = 0.5 * (huber_reconstruction(r1, x, c.huber_delta)
                       + huber_reconstruction(r2, x, c.huber_delta))
        loss = c.nc_weight * nc + c.recon_weight * recon
        return {"loss": loss, "non_contrastive": nc.detach(), "reconstruction": recon.detach(),
                "tau": self.tau_now.clone()}
