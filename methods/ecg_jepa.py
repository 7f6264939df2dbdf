"""ECG-JEPA: predict the latent representations of masked time patches of an 8-lead ECG.

S. Kim, "Learning General Representation of 12-Lead Electrocardiogram with a Joint-Embedding
Predictive Architecture", arXiv:2410.08559, 2024, https://arxiv.org/abs/2410.08559; code:
github.com/sehunfromdaegu/ECG_JEPA. Not the ECG-JEPA of K. Weimann and T. O. F. Conrad
(arXiv:2410.13867, 2024), a different method with the same name. Built on I-JEPA (Assran et al.,
CVPR 2023).

Method. Leads I, II and V1-V6 (the other four limb leads are linear combinations of I and II),
10 s at 250 Hz (2,500 samples), cut into 50-sample patches: 8 x 50 tokens, one linear
projection shared by the leads, fixed 2-D sine/cosine positions over (lead, patch). A ViT
encoder (width 768, 12 layers, 16 heads) uses cross-pattern attention (CroPA): a token attends
only to tokens of its own lead or of its own time patch. Masks act on time patches and hide
the same patches in every lead: random masking (ratio drawn from 0.6-0.7) for ``ecg-jepa``,
multi-block masking (4 contiguous blocks, each 0.175-0.225 of the window) for
``ecg-jepa-mb``. The context encoder sees the visible patches; the target encoder (an EMA of
the context encoder, momentum linear from 0.996 to 1) sees the whole window, and its outputs
are layer-normalised. A lead-wise predictor (width 384, 6 layers, 12 heads; each lead's
context tokens plus mask tokens at the masked positions, 1-D sine/cosine positions) predicts
the target representations of the masked patches; the loss is the smooth-L1 distance. The
representation is the context encoder's output averaged over all tokens. AdamW, lr 2.5e-5 at
batch 128, weight decay 0.05.

``ecg-jepa-hybrid`` (the seed project's report on encoder-embedding enhancements): the same
pretraining; the evaluated representation is the ECG-JEPA features concatenated with clinical
ECG parameters of the window (heart rate, PR, QRS duration, QT, QTc (Bazett), frontal QRS
axis) from neurokit2's delineation (``ecg_peaks`` and the DWT ``ecg_delineate``) on lead II,
the axis from the net QRS deflections of leads I and aVF (= II - I / 2). A parameter that
cannot be measured (no beats found, delineation error, or outside a plausible range) is
filled with a typical adult value (75 bpm, 160, 95, 400, 410 ms, 45 degrees), and a last
column counts the filled parameters, so the probe can tell measured from filled.

Departures:
- Positions are added once at the input (ViT); the authors' code re-adds them before every block.
- No stochastic depth (the code's drop-path 0.1): the shared transformer blocks have none.
- Weight decay on all parameters; the code exempts biases and norms.
- Learning-rate warm-up and cosine decay are the harness's; the harness default clip 3.0 is switched off (none in the code).
- qkv projections carry biases (torch's transformer layer); the code has none (2,304 parameters a layer).
- One mask per batch as in the code (the paper leaves it open); ratios use round(), the code int().
- ecg-jepa-hybrid pretrains its own ECG-JEPA run (same objective and seed as ecg-jepa) instead of reusing ecg-jepa's checkpoint.
- Presets smoke/cpu use a larger lr (1e-3 / 1e-4) for their few hundred steps.
"""

from __future__ import annotations

import os

import copy
import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecgbench.ema import ema_update, linear_tau
from ecgbench.encoders import TransformerEncoder1d, sinusoidal_positions
from ecgbench.masking import multi_block_mask, random_time_mask
from ecgbench.method import Method, MethodConfig
from ecgbench.vit import LeadTimeViT

JEPA_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


class LeadwisePredictor(nn.Module):
    """ECG-JEPA's predictor: every lead's context tokens and its mask tokens, one lead at a time.

    ``forward(context (B, L, K, D), visible (K,), masked (M,)) -> (B, L, M, D)``: context
    tokens are projected to the predictor width, mask tokens (one learned vector) sit at the
    masked patch positions, 1-D sine/cosine positions mark the patch of each, and the outputs
    at the mask tokens are projected back to the encoder width.
    """

    def __init__(self, dim: int, predictor_dim: int, depth: int, heads: int, mlp_ratio: float,
                 n_patches: int):
        super().__init__()
        self.embed = nn.Linear(dim, predictor_dim)
        self.mask_token = nn.Parameter(torch.zeros(predictor_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.register_buffer("positions", sinusoidal_positions(n_patches, predictor_dim),
                             persistent=False)
        self.transformer = TransformerEncoder1d(predictor_dim, depth, heads, mlp_ratio)
        self.proj = nn.Linear(predictor_dim, dim)

    def forward(self, context: Tensor, visible: Tensor, masked: Tensor) -> Tensor:
        b, n_leads, k, dim = context.shape
        ctx = self.embed(context).flatten(0, 1)  # (B * L, K, P)
        ctx = ctx + self.positions[visible].to(ctx.dtype)
        queries = (self.mask_token + self.positions[masked]).to(ctx.dtype)  # (M, P)
        sequence = torch.cat([ctx, queries.expand(ctx.shape[0], -1, -1)], dim=1)
        out = self.proj(self.transformer(sequence)[:, k:])  # (B * L, M, D)
        return out.reshape(b, n_leads, -1, dim)


class EcgJepa(Method):
    """ECG-JEPA: predict EMA-target latents of randomly masked time patches, cross-pattern ViT."""

    name = "ecg-jepa"
    version = 1
    compilable = False  # the mask size is drawn per step: torch.compile recompiled for minutes (H100)
    paper = ("Kim, Learning General Representation of 12-Lead Electrocardiogram with a "
             "Joint-Embedding Predictive Architecture, arXiv:2410.08559, 2024")

    @dataclass
    class Config(MethodConfig):
        leads: tuple[str, ...] = JEPA_LEADS
        fs: int = 250
        n_samples: int = 2500
        optimizer: str = "adamw"
        lr: float = 2.5e-5
        weight_decay: float = 0.05
        betas: tuple[float, float] = (0.9, 0.999)
        batch_size: int = 128
        grad_clip: float = 0.0
        patch_size: int = 50
        embed_dim: int = 768
        depth: int = 12
        heads: int = 16
        mlp_ratio: float = 4.0
        cross_pattern: bool = True
        predictor_dim: int = 384
        predictor_depth: int = 6
        predictor_heads: int = 12
        masking: str = "random"  # random | multi-block
        mask_ratio: tuple[float, float] = (0.6, 0.7)  # random masking
        n_blocks: int = 4  # multi-block masking
        block_ratio: tuple[float, float] = (0.175, 0.225)
        ema: tuple[float, float] = (0.996, 1.0)
        smooth_l1_beta: float = 1.0

    presets = {
        "smoke": {"embed_dim": 32, "depth": 1, "heads": 2, "predictor_dim": 16,
                  "predictor_depth": 1, "predictor_heads": 2, "lr": 1e-3},
        "cpu": {"embed_dim": 128, "depth": 4, "heads": 4, "predictor_dim": 64,
                "predictor_depth": 2, "predictor_heads": 4, "lr": 1e-4},
    }

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        if c.masking not in ("random", "multi-block"):
            raise ValueError(f"{self.name}: masking must be 'random' or 'multi-block', "
                             f"got {c.masking!r}")
        self.encoder = self._build_encoder(self._vit())
        self.target_encoder = copy.deepcopy(self.context_encoder).requires_grad_(False)
        self.predictor = LeadwisePredictor(c.embed_dim, c.predictor_dim, c.predictor_depth,
                                           c.predictor_heads, c.mlp_ratio,
                                           self.context_encoder.n_patches)
        self.tau = float(c.ema[0])

    def _vit(self) -> LeadTimeViT:
        c = self.config
        return LeadTimeViT(len(c.leads), c.n_samples, c.patch_size, c.embed_dim, c.depth,
                           c.heads, c.mlp_ratio, positions="sincos-2d", lead_embedding=False,
                           cross_pattern=c.cross_pattern)

    def _build_encoder(self, vit: LeadTimeViT) -> nn.Module:
        """The evaluated encoder; the hybrid variant wraps the ViT."""
        return vit

    @property
    def context_encoder(self) -> LeadTimeViT:
        return self.encoder

    def sample_mask(self, device: torch.device) -> Tensor:
        """(N,) bool over the time patches, True = masked (the same for every lead and sample)."""
        c, n = self.config, self.context_encoder.n_patches
        if c.masking == "random":
            return random_time_mask(n, tuple(c.mask_ratio), device=device)
        return multi_block_mask(n, c.n_blocks, tuple(c.block_ratio), device=device)

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["signal"]  # (B, 8, 2500)
        mask = self.sample_mask(torch.device("cpu"))  # drawn on the CPU: its indices need no GPU sync
        visible, masked = (torch.nonzero(m).flatten().to(x.device) for m in (~mask, mask))
        mask = mask.to(x.device)
        with torch.no_grad():
            target = self.target_encoder.encode(self.target_encoder.tokens(x))  # (B, L, N, D)
            target = F.layer_norm(target.float(), target.shape[-1:])[:, :, masked]
        encoder = self.context_encoder
        context = encoder.encode(encoder.tokens(x)[:, :, visible], time_index=visible)
        prediction = self.predictor(context, visible, masked)  # (B, L, M, D)
        loss = F.smooth_l1_loss(prediction.float(), target, beta=self.config.smooth_l1_beta)
        return {"loss": loss, "mask_ratio": mask.float().mean(),
                "tau": torch.tensor(self.tau, device=x.device)}

    @torch.no_grad()
    def on_train_step_end(self, step: int, max_steps: int) -> None:
        """EMA update of the target encoder; the momentum rises linearly over training."""
        start, end = (float(v) for v in self.config.ema)
        self.tau = linear_tau(step, max_steps, start, end)
        ema_update(self.context_encoder, self.target_encoder, self.tau)


class EcgJepaMultiBlock(EcgJepa):
    """ECG-JEPA with multi-block masking: 4 contiguous time blocks of 17.5-22.5 % each."""

    name = "ecg-jepa-mb"

    @dataclass
    class Config(EcgJepa.Config):
        masking: str = "multi-block"


# ----- Hybrid representation: ECG-JEPA features + clinical ECG parameters ------------------------
CLINICAL_FIELDS: tuple[str, ...] = ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms",
                                    "qrs_axis_deg")
TYPICAL_VALUES: tuple[float, ...] = (75.0, 160.0, 95.0, 400.0, 410.0, 45.0)
PLAUSIBLE: tuple[tuple[float, float], ...] = ((20, 300), (60, 400), (40, 250), (200, 700),
                                              (200, 700), (-180, 180))


def _median_ms(stop: np.ndarray, start: np.ndarray, fs: float) -> float:
    d = (np.asarray(stop, float) - np.asarray(start, float)) / fs * 1000.0
    d = d[np.isfinite(d) & (d > 0)]
    return float(np.median(d)) if len(d) else float("nan")


def _net_qrs(signal: np.ndarray, onsets: np.ndarray, offsets: np.ndarray) -> float:
    """Median over beats of the net QRS deflection (largest positive + largest negative swing
    from the QRS onset level)."""
    values = []
    for on, off in zip(onsets, offsets):
        if np.isfinite(on) and np.isfinite(off) and off > on:
            segment = signal[int(on): int(off) + 1] - signal[int(on)]
            values.append(segment.max() + segment.min())
    return float(np.median(values)) if values else float("nan")


def clinical_parameters(window: np.ndarray, fs: float, leads: tuple[str, ...]) -> np.ndarray:
    """(leads, T) -> (6,) heart rate, PR, QRS, QT, QTc, QRS axis; NaN where not measurable."""
    import neurokit2 as nk

    out = np.full(len(CLINICAL_FIELDS), np.nan)
    if "II" not in leads:
        return out
    lead_ii = window[leads.index("II")].astype(float)
    with warnings.catch_warnings():  # neurokit2 warns on short or noisy windows
        warnings.simplefilter("ignore")
        try:
            clean = nk.ecg_clean(lead_ii, sampling_rate=int(fs))
            _, info = nk.ecg_peaks(clean, sampling_rate=int(fs))
            peaks = np.asarray(info["ECG_R_Peaks"], dtype=float)
            if len(peaks) < 2:
                return out
            rr = float(np.median(np.diff(peaks))) / fs  # seconds
            out[0] = 60.0 / rr
            if not PLAUSIBLE[0][0] <= out[0] <= PLAUSIBLE[0][1]:
                return np.full(len(CLINICAL_FIELDS), np.nan)  # no rhythm: skip the delineation
            _, waves = nk.ecg_delineate(clean, peaks.astype(int), sampling_rate=int(fs),
                                        method="dwt")
        except Exception as error:  # noqa: BLE001 - any delineation failure is a missing value
            logging.getLogger(__name__).debug("delineation failed: %s", error)
            return out
    p_on, r_on, r_off, t_off = (np.asarray(waves.get(k, []), dtype=float) for k in
                                ("ECG_P_Onsets", "ECG_R_Onsets", "ECG_R_Offsets", "ECG_T_Offsets"))
    n = min(len(p_on), len(r_on), len(r_off), len(t_off))
    p_on, r_on, r_off, t_off = p_on[:n], r_on[:n], r_off[:n], t_off[:n]
    out[1] = _median_ms(r_on, p_on, fs)
    out[2] = _median_ms(r_off, r_on, fs)
    out[3] = _median_ms(t_off, r_on, fs)
    out[4] = out[3] / np.sqrt(rr)  # Bazett, RR in seconds
    if "I" in leads:
        lead_i = window[leads.index("I")].astype(float)
        net_i = _net_qrs(lead_i, r_on, r_off)
        net_avf = _net_qrs(lead_ii - lead_i / 2.0, r_on, r_off)
        if np.isfinite(net_i) and np.isfinite(net_avf) and (net_i or net_avf):
            out[5] = float(np.degrees(np.arctan2(net_avf, net_i)))
    for i, (low, high) in enumerate(PLAUSIBLE):
        if not low <= out[i] <= high:
            out[i] = np.nan
    return out


def clinical_features(windows: np.ndarray, fs: float, leads: tuple[str, ...]) -> np.ndarray:
    """(B, leads, T) -> (B, 7): the six parameters with missing ones filled by typical values,
    then the number filled."""
    if len(windows) >= 16 and (os.cpu_count() or 1) > 1:  # delineation is CPU-bound: use every core
        from joblib import Parallel, delayed

        rows = Parallel(n_jobs=-1)(delayed(clinical_parameters)(w, fs, leads) for w in windows)
    else:
        rows = [clinical_parameters(w, fs, leads) for w in windows]
    values = np.stack(rows)  # (B, 6)
    missing = np.isnan(values)
    filled = np.where(missing, np.asarray(TYPICAL_VALUES)[None, :], values)
    return np.concatenate([filled, missing.sum(axis=1, keepdims=True)], axis=1)


class ClinicalHybrid(nn.Module):
    """ECG-JEPA features (D) concatenated with 7 clinical columns: (B, leads, T) -> (B, D + 7)."""

    def __init__(self, backbone: LeadTimeViT, fs: float, leads: tuple[str, ...]):
        super().__init__()
        self.backbone = backbone
        self.fs, self.leads = float(fs), tuple(leads)
        self.embedding_dim = backbone.embedding_dim + len(CLINICAL_FIELDS) + 1

    def forward(self, x: Tensor) -> Tensor:
        features = self.backbone(x)  # (B, D)
        clinical = clinical_features(x.detach().float().cpu().numpy(), self.fs, self.leads)
        return torch.cat([features, torch.as_tensor(clinical).to(features)], dim=-1)


class EcgJepaHybrid(EcgJepa):
    """ECG-JEPA features + clinical ECG parameters (HR, PR, QRS, QT/QTc, axis) via neurokit2."""

    name = "ecg-jepa-hybrid"
    paper = ("ecgbench seed report, encoder-embedding enhancements (hybrid input on ECG-JEPA, "
             "Kim, arXiv:2410.08559, 2024)")

    def _build_encoder(self, vit: LeadTimeViT) -> nn.Module:
        return ClinicalHybrid(vit, self.config.fs, tuple(self.config.leads))

    @property
    def context_encoder(self) -> LeadTimeViT:
        return self.encoder.backbone
