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

``ecg-jepa-hybrid`` (the seed project's report on encoder-embedding enhancements: "a dual-input
SSL framework that jointly processes raw multi-lead ECG signals and precomputed clinical
parameters"): the ECG-JEPA encoder takes a second input, the record's clinical parameters
(heart rate, PR, QRS, QT, QTc, frontal QRS axis and how many had to be filled; measured once
per record with neurokit2 and cached on disk by :mod:`ecgbench.data.clinical`). They are scaled by
fixed adult reference values, embedded by an MLP (7 -> D -> D) and added to every patch token
of the context and the target encoder, so the JEPA objective is learnt on both inputs. It
starts from the ``ecg-jepa`` run of the same seed and preset (encoder, target and predictor;
the report fine-tuned a pretrained ECG-JEPA) with the MLP's last layer at zero, so step 0 is
exactly ECG-JEPA, and continues the JEPA pretraining with the clinical input for
``max_steps``. The representation is the fused encoder's token mean concatenated with the
scaled clinical columns (the report's "hybrid input representation").

Published weights: ``--set ecg-jepa.init_from=FILE`` loads the authors' released encoder
(:mod:`ecgbench.models.published` maps their names onto ours, strictly) with their layout;
``--set ecg-jepa.max_steps=0`` then evaluates it as released, under a run id that names the
file's sha256.

Departures:
- Positions are added once at the input (ViT); the authors' code re-adds them before every block.
- No stochastic depth (the code's drop-path 0.1): the shared transformer blocks have none.
- Weight decay on all parameters; the code exempts biases and norms.
- Learning-rate warm-up and cosine decay are the harness's; the harness default clip 3.0 is switched off (none in the code).
- qkv projections carry biases (torch's transformer layer); the code has none (2,304 parameters a layer).
- One mask per batch as in the code (the paper leaves it open); ratios use round(), the code int().
- ecg-jepa-hybrid: the report does not say how the two inputs meet; we add an MLP embedding of the scaled parameters to every patch token (reference scales and 2,000 further steps are our choices).
- ecg-jepa-hybrid: parameters are measured per record (its windows joined) on lead II (and I for the axis), not per window.
- Seed 003 pretrains on Shaoxing (Ningbo + Chapman, 500 Hz) and evaluates on PTB-XL (AUROC, F1); data, resampling to 250 Hz and evaluation are the harness's.
- ecg-jepa-hybrid: seed 003 names no clinical parameters; HR, PR, QRS, QT, QTc, frontal axis and a fill count are our choice.
- Presets smoke/cpu use a larger lr (1e-3 / 1e-4) for their few hundred steps.
- init_from (the authors' released encoder) switches on their layout (readd_positions, stored_positions) and a zero qkv bias; pretraining from scratch keeps ours.
"""

from __future__ import annotations

import copy
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecgbench.core.contracts import Recordings
from ecgbench.data.clinical import FIELDS, N_COLUMNS, TYPICAL_VALUES, clinical_features, record_features
from ecgbench.models.ema import ema_update, linear_tau
from ecgbench.models.encoders import TransformerEncoder1d, sinusoidal_positions
from ecgbench.models.masking import mask_indices, multi_block_mask, random_time_mask
from ecgbench.models.method import Method, MethodConfig, unless_default
from ecgbench.models.published import load_init, resolve_init
from ecgbench.models.vit import LeadTimeViT

JEPA_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
# What the authors' released encoder was trained on (their ecg_data.py and pretraining script:
# leads I, II, V1-V6 resampled to 2,500 samples of 10 s, raw amplitudes, cross-pattern attention).
AUTHORS_INPUT = {"leads": JEPA_LEADS, "fs": 250, "n_samples": 2500, "cross_pattern": True}
AUTHORS_LAYOUT = {"readd_positions": True, "stored_positions": True}


def jepa_vit(c: "EcgJepa.Config") -> LeadTimeViT:
    """The ECG-JEPA encoder a config describes."""
    return LeadTimeViT(len(c.leads), c.n_samples, c.patch_size, c.embed_dim, c.depth, c.heads,
                       c.mlp_ratio, positions="stored-2d" if c.stored_positions else "sincos-2d",
                       lead_embedding=False, cross_pattern=c.cross_pattern,
                       readd_positions=c.readd_positions)


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


def outside_compile(fn):
    """``torch.compiler.disable(fn)``, applied once torch._dynamo is loaded (it is whenever
    something compiles): decorating with it at class definition imports torch._dynamo in every
    process that imports this module, about 2 s each."""
    disabled = None

    @functools.wraps(fn)
    def call(*args, **kwargs):
        nonlocal disabled
        if "torch._dynamo" not in sys.modules:
            return fn(*args, **kwargs)
        if disabled is None:
            disabled = torch.compiler.disable(fn)
        return disabled(*args, **kwargs)

    return call


class EcgJepa(Method):
    """ECG-JEPA: predict EMA-target latents of randomly masked time patches, cross-pattern ViT."""

    name = "ecg-jepa"
    version = 1
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
        # The authors' released encoder (ecgbench.models.published); "" = none. Its layout
        # options follow: positions re-added before every block, and their position table
        # kept in the state dict (their 2-D sine/cosine layout is not ours).
        init_from: str = field(default="", metadata={"run_key": False})
        init_sha256: str = field(default="", metadata=unless_default())  # set from the file
        readd_positions: bool = field(default=False, metadata=unless_default())
        stored_positions: bool = field(default=False, metadata=unless_default())
        takes_init: ClassVar[bool] = True

        def validate(self) -> None:
            resolve_init(self, "ecg-jepa", AUTHORS_INPUT, AUTHORS_LAYOUT, jepa_vit)

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
        vit = jepa_vit(c)
        load_init(vit, c, "ecg-jepa")
        self.encoder = self._build_encoder(vit)
        self.target_encoder = copy.deepcopy(self.context_encoder).requires_grad_(False)
        self.predictor = LeadwisePredictor(c.embed_dim, c.predictor_dim, c.predictor_depth,
                                           c.predictor_heads, c.mlp_ratio,
                                           self.context_encoder.n_patches)
        self.tau = float(c.ema[0])
        # tau on the device for the step's outputs, filled in place: no host copy per step
        self.register_buffer("tau_now", torch.tensor(self.tau), persistent=False)

    def _build_encoder(self, vit: LeadTimeViT) -> nn.Module:
        """The evaluated encoder; the hybrid variant wraps the ViT."""
        return vit

    @property
    def context_encoder(self) -> LeadTimeViT:
        return self.encoder

    def tokens(self, encoder: LeadTimeViT, batch: dict[str, Tensor]) -> Tensor:
        """The patch tokens (B, L, N, D) of a batch for the context or target encoder."""
        return encoder.tokens(batch["signal"])

    def sample_mask(self, device: torch.device) -> Tensor:
        """(N,) bool over the time patches, True = masked (the same for every lead and sample)."""
        c, n = self.config, self.context_encoder.n_patches
        if c.masking == "random":
            return random_time_mask(n, tuple(c.mask_ratio), device=device)
        return multi_block_mask(n, c.n_blocks, tuple(c.block_ratio), device=device)

    @outside_compile
    def draw_mask(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """This step's mask: the visible and masked patch positions on ``device`` and the masked
        fraction (a CPU scalar). Drawn on the CPU, outside torch.compile, so no host sync; the
        position counts are marked dynamic, so one compiled graph serves every mask size."""
        mask = self.sample_mask(torch.device("cpu"))
        visible, masked = mask_indices(mask, device)
        if "torch._dynamo" in sys.modules:  # compiling: mark the counts dynamic
            for positions in (visible, masked):
                torch._dynamo.maybe_mark_dynamic(positions, 0)
        return visible, masked, mask.float().mean()

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        visible, masked, mask_ratio = self.draw_mask(batch["signal"].device)
        loss = self.jepa_loss(batch, visible, masked)
        return {"loss": loss, "mask_ratio": mask_ratio, "tau": self.tau_now.clone()}

    def jepa_loss(self, batch: dict[str, Tensor], visible: Tensor, masked: Tensor) -> Tensor:
        """Smooth-L1 between the predicted and the (layer-normalised) target latents of the
        ``masked`` patches of every lead, the context encoder seeing the ``visible`` ones."""
        with torch.no_grad():
            target = self.target_encoder.encode(self.tokens(self.target_encoder, batch))  # (B, L, N, D)
            target = F.layer_norm(target.float(), target.shape[-1:])[:, :, masked]
        encoder = self.context_encoder
        context = encoder.encode(self.tokens(encoder, batch)[:, :, visible], time_index=visible)
        prediction = self.predictor(context, visible, masked)  # (B, L, M, D)
        return F.smooth_l1_loss(prediction.float(), target, beta=self.config.smooth_l1_beta)

    @torch.no_grad()
    def on_train_step_end(self, step: int, max_steps: int) -> None:
        """EMA update of the target encoder; the momentum rises linearly over training."""
        start, end = (float(v) for v in self.config.ema)
        self.tau = linear_tau(step, max_steps, start, end)
        self.tau_now.fill_(self.tau)
        ema_update(self.context_encoder, self.target_encoder, self.tau)


class EcgJepaMultiBlock(EcgJepa):
    """ECG-JEPA with multi-block masking: 4 contiguous time blocks of 17.5-22.5 % each."""

    name = "ecg-jepa-mb"

    @dataclass
    class Config(EcgJepa.Config):
        masking: str = "multi-block"


# ----- Hybrid: a dual-input ECG-JEPA (raw leads + clinical parameters) -----------------------
# Typical adult value and spread of each clinical column (heart rate bpm, PR, QRS, QT, QTc ms,
# axis degrees), and the filled-count column over its maximum: inputs near unit scale.
CLINICAL_CENTRE: tuple[float, ...] = (*TYPICAL_VALUES, 0.0)
CLINICAL_SCALE: tuple[float, ...] = (20.0, 40.0, 25.0, 50.0, 40.0, 60.0, float(len(FIELDS)))


class ClinicalFusion(nn.Module):
    """The ECG-JEPA ViT with a second input: the scaled clinical parameters, embedded by an MLP
    and added to every patch token. ``tokens(x, clinical)`` and ``encode`` serve the JEPA
    objective; ``forward(x, clinical)`` -> (B, D + 7): the token mean, then the scaled columns."""

    def __init__(self, vit: LeadTimeViT):
        super().__init__()
        self.vit = vit
        dim, n = vit.embedding_dim, N_COLUMNS
        self.register_buffer("centre", torch.tensor(CLINICAL_CENTRE), persistent=False)
        self.register_buffer("scale", torch.tensor(CLINICAL_SCALE), persistent=False)
        self.clinical_embed = nn.Sequential(nn.Linear(n, dim), nn.GELU(), nn.Linear(dim, dim))
        nn.init.zeros_(self.clinical_embed[-1].weight)  # step 0 is the ECG-JEPA it starts from
        nn.init.zeros_(self.clinical_embed[-1].bias)
        self.n_patches = vit.n_patches
        self.embedding_dim = dim + n

    def scaled(self, clinical: Tensor) -> Tensor:
        return (clinical.float() - self.centre) / self.scale  # (B, 7)

    def tokens(self, x: Tensor, clinical: Tensor) -> Tensor:
        shift = self.clinical_embed(self.scaled(clinical))  # (B, D)
        return self.vit.tokens(x) + shift[:, None, None, :].to(x.dtype)

    def encode(self, tokens: Tensor, time_index: Tensor | None = None) -> Tensor:
        return self.vit.encode(tokens, time_index=time_index)

    def forward(self, x: Tensor, clinical: Tensor) -> Tensor:
        pooled = self.encode(self.tokens(x, clinical)).mean(dim=(1, 2))  # (B, D)
        return torch.cat([pooled, self.scaled(clinical).to(pooled.dtype)], dim=-1)


class EcgJepaHybrid(EcgJepa):
    """ECG-JEPA with a second input, clinical ECG parameters, pretrained on both from ECG-JEPA."""

    name = "ecg-jepa-hybrid"
    version = 2  # 2: dual-input pretraining from ecg-jepa's run (was: features appended afterwards)
    paper = ("ecgbench seed report, encoder-embedding enhancements (hybrid input on ECG-JEPA, "
             "Kim, arXiv:2410.08559, 2024)")
    base_method = "ecg-jepa"
    derived_input = "clinical"

    @dataclass
    class Config(EcgJepa.Config):
        max_steps: int = 2000  # further steps from ecg-jepa's run, with the clinical input
        takes_init: ClassVar[bool] = False  # the encoder comes from the ecg-jepa run
        from_base: ClassVar[tuple[str, ...]] = tuple(AUTHORS_LAYOUT)  # its layout follows the base's

    def _build_encoder(self, vit: LeadTimeViT) -> nn.Module:
        return ClinicalFusion(vit)

    def tokens(self, encoder: ClinicalFusion, batch: dict[str, Tensor]) -> Tensor:
        if "clinical" not in batch:
            raise KeyError(f"{self.name} trains on two inputs: the batch has no 'clinical' "
                           "(the runner adds it from ecgbench.data.clinical.record_features)")
        return encoder.tokens(batch["signal"], batch["clinical"])

    def derive_inputs(self, data: Recordings, cache_dir: Path) -> np.ndarray:
        return record_features(data, self.input_spec, cache_dir)

    def init_from_base(self, base: Method) -> None:
        """Start from the ECG-JEPA run: its context and target encoders and its predictor."""
        try:
            self.encoder.vit.load_state_dict(base.encoder.state_dict())
            self.target_encoder.vit.load_state_dict(base.target_encoder.state_dict())
            self.predictor.load_state_dict(base.predictor.state_dict())
        except RuntimeError as error:
            raise ValueError(
                f"{self.name}: the {base.name} run does not fit this variant's config (set the "
                f"same sizes for both): {str(error).splitlines()[0]}") from None

    @torch.no_grad()
    def embed(self, x: Tensor, clinical: Tensor | None = None) -> Tensor:
        """(B, leads, T) and the windows' records' clinical features (B, 7) -> (B, D + 7). The
        runner passes the cached per-record features; without them they are measured on the
        windows themselves (slow: neurokit2 per window)."""
        if clinical is None:
            windows = list(x.detach().float().cpu().numpy())
            clinical = torch.from_numpy(clinical_features(windows, self.config.fs,
                                                          tuple(self.config.leads)))
        return self.encoder(x, clinical.to(x.device))
