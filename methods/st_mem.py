"""ST-MEM: spatio-temporal masked ECG modelling, and two frozen-encoder variants.

Y. Na, M. Park, Y. Tae and S. Joo, "Guiding Masked Representation Learning to Capture
Spatio-Temporal Relationship of Electrocardiogram", ICLR 2024, https://arxiv.org/abs/2402.09450.
The authors' code (github.com/bakqui/ST-MEM) is non-commercial; this is a reimplementation from
the paper on the shared pieces of ecgbench.models.vit, not a translation of that code.

Method. A 12-lead, 9 s window at 250 Hz (2,250 samples) is band-pass filtered (0.67-40 Hz) and
standardised, then every lead is cut into 30 patches of 75 samples; each patch becomes a token
(one linear projection shared by the leads) with a learned position embedding and a learned
lead embedding, and a learned [SEP] token opens and closes every lead. 75 % of the patches of
every lead are masked at random, counted as the authors' code counts (it keeps
int(30 x 0.25) = 7 patches: 23 of 30 masked); a ViT-B encoder (width 768, depth 12, 12 heads,
MLP 3072) sees the visible patches of all leads together (spatio-temporal attention). A lead-wise shared
decoder (width 256, depth 4) gets each lead's encoded patches back at their positions, a
learned mask token elsewhere, and predicts every patch; the loss is the MSE on the masked
patches against per-patch normalised targets. The representation is the encoder's output
averaged over all patch tokens of all leads ([SEP] outputs excluded). Optimiser AdamW with
betas (0.9, 0.95) at base lr 1.5e-4; the MAE scaling rule lr = base_lr x batch / 256 gives
1.5e-4 at the batch of 256 used here (change ``lr`` with ``batch_size`` accordingly).

Variants (the seed project's report on encoder-embedding enhancements; they start from the
pretrained ``st-mem`` run of the same seed and preset and keep its encoder frozen):

* ``st-mem-triplet``: a 768 -> 64 linear head, L2-normalised, trained with a triplet margin
  loss on the task's training split (anchors, positives that share the diagnosis, negatives
  that do not; one random positive and negative per anchor in each batch). For a multilabel
  task "shares a diagnosis" means the identical label set, a negative has no label in common;
  partial overlaps are neither. The representation is the normalised 64-d head output.
* ``st-mem-vqvae``: 768 -> 512 + LayerNorm + tanh latent, a 1,024-code vector quantiser with a
  straight-through gradient, and an MLP decoder (512 -> 768 -> 12 x 2,250) reconstructing the
  (filtered, standardised) input. The representation is the quantised code vector (as the
  report's embeddings). Each step returns the batch's code perplexity, the fraction of the
  codebook in use and ``codebook_collapsed`` (1 when the perplexity is below
  ``collapse_perplexity``, i.e. effectively one code), so collapse shows in the training
  record instead of stopping the run.

Where the preprocessing runs: inside the encoder (``ecgbench.models.vit.BandpassStandardize`` as its
first module), so pretraining, the variants and frozen embedding see the same input.

Published weights: ``--set st-mem.init_from=FILE`` loads the authors' released encoder
(:mod:`ecgbench.models.published` maps their names onto ours, strictly) with their layout;
``--set st-mem.max_steps=0`` then evaluates it as released, under a run id that names the
file's sha256.

Departures:
- Band-pass as a zero-phase order-2 Butterworth applied in the frequency domain (sosfiltfilt's response, periodic window edges), in torch on the device; the paper gives the band, not the filter.
- Per-sample standardisation over all leads and time together (keeps relative lead amplitudes); the paper does not say which axes.
- No random 9 s crop of 10 s records: the harness cuts non-overlapping 9 s windows.
- Encoder positions are a learned table (positions="learned") shared by the leads; the authors' code fixes (frozen) 1-D sine/cosine positions, [SEP] slots included; seed 003 does not say.
- Seed 003 pretrains on Shaoxing (Ningbo + Chapman, 500 Hz) and evaluates on PTB-XL's 5 superclasses (linear probe, KNN, DBI/silhouette/CHI); data and evaluation are the harness's.
- Patch projection is one linear layer (the paper's "flattened and linearly projected"); the final LayerNorm is applied per token before pooling.
- Decoder: fixed sine/cosine positions, 4 heads, no lead embedding (it sees one lead at a time); the paper gives only its width and depth.
- Decoder input drops the encoder's [SEP] outputs; the authors' code decodes them too (with their own sine/cosine slots) and discards their predictions.
- Weight decay 0.05 on all parameters (MAE's value; the authors' pretrain config uses 0.01); schedule (warm-up, cosine decay, epochs) is owned by the harness.
- No gradient clipping; the harness default is 3.0.
- init_from (the authors' released encoder) switches on their layout (patch_norm, pooled_norm) and positions; pretraining from scratch keeps ours.
- st-mem-triplet: margin 1.0 on squared distances as in the report's code; its extra 64 -> 9 layer is dropped so the head is the 768 -> 64 map the report describes.
- st-mem-triplet: the head output is L2-normalised; seed 003's printed model shows no normalisation.
- st-mem-triplet: multilabel positives = identical label set, negatives = no shared label (seed 003: "same diagnosis" over 5 superclasses, single-label).
- st-mem-triplet: Adam lr 1.5e-4, batch 128 are our choices (seed 003 gives none).
- st-mem-vqvae: codebook initialised uniform(-1/K, 1/K) (van den Oord et al.); commitment 0.05 and 1,024 codes are not in seed 003's printed model (our values).
- st-mem-vqvae: the representation is the quantised 512-d vector; seed 003 says "use the ENCODER" without saying whether before or after quantisation.
- st-mem-vqvae: AdamW lr 5e-4, batch 64 are our choices (seed 003 gives none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecgbench.core.contracts import STANDARD_LEADS, NotApplicable
from ecgbench.models.encoders import TransformerEncoder1d, sinusoidal_positions
from ecgbench.models.losses import (
    codebook_perplexity,
    diagnosis_pairs,
    masked_mse,
    sample_triplets,
    triplet_margin,
    vector_quantize,
)
from ecgbench.models.masking import gather_tokens, random_token_mask, scatter_tokens
from ecgbench.models.method import Method, MethodConfig, unless_default
from ecgbench.models.published import load_init, resolve_init
from ecgbench.models.vit import BandpassStandardize, LeadTimeViT, patchify


def st_mem_encoder(c: "StMem.Config") -> LeadTimeViT:
    """The ST-MEM ViT a config describes, with its preprocessing as the first module."""
    return LeadTimeViT(
        len(c.leads), c.n_samples, c.patch_size, c.embed_dim, c.depth, c.heads, c.mlp_ratio,
        positions="learned", lead_embedding=True, sep_tokens=True, dropout=c.dropout,
        preprocess=BandpassStandardize(c.fs, c.n_samples, tuple(c.band_hz), c.filter_order),
        patch_norm=c.patch_norm, pooled_norm=c.pooled_norm,
    )


# What the authors' released encoder was trained on (their configs/downstream/st_mem.yaml:
# 12 leads at 250 Hz, 2,250-sample crops, 0.67-40 Hz filters, standardised over leads and time).
AUTHORS_INPUT = {"leads": STANDARD_LEADS, "fs": 250, "n_samples": 2250, "band_hz": (0.67, 40.0)}
AUTHORS_LAYOUT = {"patch_norm": True, "pooled_norm": True}


def normalised_patches(x: Tensor, patch_size: int) -> Tensor:
    """MAE's normalised-pixel target: each patch minus its mean, over its std. (B, L, T) ->
    (B * L, N, patch_size)."""
    patches = patchify(x, patch_size).flatten(0, 1)
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + 1e-6).sqrt()


class StMem(Method):
    """ST-MEM: reconstruct 75 % masked patches of every lead, ViT with lead embeddings and [SEP]."""

    name = "st-mem"
    version = 2  # 2: 23 of 30 patches masked, the reference code's count (was 22)
    paper = ("Na et al., Guiding Masked Representation Learning to Capture Spatio-Temporal "
             "Relationship of Electrocardiogram, ICLR 2024")

    @dataclass
    class Config(MethodConfig):
        leads: tuple[str, ...] = STANDARD_LEADS
        fs: int = 250
        n_samples: int = 2250
        optimizer: str = "adamw"
        lr: float = 1.5e-4  # base lr 1.5e-4 x batch 256 / 256
        weight_decay: float = 0.05
        betas: tuple[float, float] = (0.9, 0.95)
        batch_size: int = 256
        grad_clip: float = 0.0
        band_hz: tuple[float, float] = (0.67, 40.0)
        filter_order: int = 2
        patch_size: int = 75
        embed_dim: int = 768
        depth: int = 12
        heads: int = 12
        mlp_ratio: float = 4.0
        dropout: float = 0.0
        decoder_dim: int = 256
        decoder_depth: int = 4
        decoder_heads: int = 4
        mask_ratio: float = 0.75
        norm_pix_loss: bool = True
        # The authors' released encoder (ecgbench.models.published); "" = none. Its layout
        # options follow: LayerNorm before and after the patch projection, and the final
        # LayerNorm after pooling instead of per token.
        init_from: str = field(default="", metadata={"run_key": False})
        init_sha256: str = field(default="", metadata=unless_default())  # set from the file
        patch_norm: bool = field(default=False, metadata=unless_default())
        pooled_norm: bool = field(default=False, metadata=unless_default())
        takes_init: ClassVar[bool] = True

        def validate(self) -> None:
            resolve_init(self, "st-mem", AUTHORS_INPUT, AUTHORS_LAYOUT, st_mem_encoder)

    presets = {
        "smoke": {"embed_dim": 32, "depth": 1, "heads": 2, "decoder_dim": 32,
                  "decoder_depth": 1, "decoder_heads": 2},
        "cpu": {"embed_dim": 128, "depth": 4, "heads": 4, "decoder_dim": 64,
                "decoder_depth": 2, "decoder_heads": 4},
    }

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        self.encoder = st_mem_encoder(c)
        load_init(self.encoder, c, "st-mem")
        self.decoder_embed = nn.Linear(c.embed_dim, c.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(c.decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.decoder = TransformerEncoder1d(c.decoder_dim, c.decoder_depth, c.decoder_heads,
                                            c.mlp_ratio, c.dropout)
        self.decoder_head = nn.Linear(c.decoder_dim, c.patch_size)
        self.register_buffer("decoder_positions",  # fixed: built once, not every step
                             sinusoidal_positions(self.encoder.n_patches, c.decoder_dim),
                             persistent=False)

    def reconstruct(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Preprocessed (B, L, T) -> (prediction (B * L, N, patch), mask (B * L, N) True = masked)."""
        tokens = self.encoder.tokens(x)  # (B, L, N, D)
        b, n_leads, n, d = tokens.shape
        keep_idx, mask = random_token_mask(b * n_leads, n, self.config.mask_ratio,
                                           device=x.device, count="keep-floor")  # per lead
        visible = gather_tokens(tokens.flatten(0, 1), keep_idx).reshape(b, n_leads, -1, d)
        latent = self.encoder.encode(visible)  # (B, L, K, D): visible patches of all leads
        per_lead = self.decoder_embed(latent).flatten(0, 1)  # (B * L, K, D_dec)
        full = scatter_tokens(per_lead, keep_idx, n, self.mask_token)  # (B * L, N, D_dec)
        full = full + self.decoder_positions.to(full.dtype)
        return self.decoder_head(self.decoder(full)), mask

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = self.encoder.preprocess(batch["signal"])  # (B, leads, T) filtered, standardised
        prediction, mask = self.reconstruct(x)
        if self.config.norm_pix_loss:
            target = normalised_patches(x, self.config.patch_size)
        else:
            target = patchify(x, self.config.patch_size).flatten(0, 1)
        loss = masked_mse(prediction, target, mask)
        with torch.no_grad():
            visible_mse = masked_mse(prediction, target, ~mask)
        return {"loss": loss, "visible_mse": visible_mse}


# ----- Frozen-encoder variants ----------------------------------------------------------------
class FrozenBackbone(nn.Module):
    """A frozen ST-MEM encoder followed by a trainable map; the encoder contract on the whole.

    The backbone never trains (``requires_grad`` off, always in eval mode); ``head`` maps its
    pooled (B, D) features to the representation the variant evaluates.
    """

    def __init__(self, backbone: LeadTimeViT, head: nn.Module, embedding_dim: int):
        super().__init__()
        self.backbone = backbone.requires_grad_(False)
        self.head = head
        self.embedding_dim = int(embedding_dim)

    def train(self, mode: bool = True) -> "FrozenBackbone":
        super().train(mode)
        self.backbone.eval()
        return self

    def features(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.backbone(x)  # (B, D)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class _FrozenStMemVariant(Method):
    """Shared plumbing of the variants: build the ST-MEM encoder, take the base run's weights."""

    base_method = "st-mem"

    def init_from_base(self, base: Method) -> None:
        """Copy the pretrained ST-MEM encoder into the frozen backbone."""
        try:
            self.encoder.backbone.load_state_dict(base.encoder.state_dict())
        except RuntimeError as error:
            raise ValueError(
                f"{self.name}: the {base.name} run's encoder does not fit this variant's encoder "
                f"config (set the same sizes for both): {str(error).splitlines()[0]}") from None
        self.encoder.backbone.requires_grad_(False)


def _variant_presets(extra: dict[str, dict]) -> dict[str, dict]:
    return {p: {**StMem.presets[p], **extra.get(p, {})} for p in ("smoke", "cpu")}


class StMemTriplet(_FrozenStMemVariant):
    """ST-MEM + triplet head: frozen encoder, 768->64 head pulled together by shared diagnoses."""

    name = "st-mem-triplet"
    version = 1
    uses_labels = True
    paper = ("ecgbench seed report, encoder-embedding enhancements (triplet head on ST-MEM, "
             "Na et al., ICLR 2024)")

    @dataclass
    class Config(StMem.Config):
        optimizer: str = "adam"
        lr: float = 1.5e-4
        weight_decay: float = 0.0
        betas: tuple[float, float] = (0.9, 0.999)
        batch_size: int = 128
        head_dim: int = 64
        margin: float = 1.0
        squared_distance: bool = True
        takes_init: ClassVar[bool] = False  # the encoder comes from the st-mem run
        from_base: ClassVar[tuple[str, ...]] = tuple(AUTHORS_LAYOUT)  # its layout follows the base's

    presets = _variant_presets({"smoke": {"head_dim": 8, "lr": 1e-3}, "cpu": {"head_dim": 32}})

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        head = nn.Sequential(nn.Linear(c.embed_dim, c.head_dim), _L2Normalize())
        self.encoder = FrozenBackbone(st_mem_encoder(c), head, c.head_dim)
        self.task_kind: str | None = None

    def setup_task(self, kind: str, n_outputs: int) -> None:
        if kind == "regression":
            raise NotApplicable(f"{self.name}: triplets need a diagnosis to share; "
                                "a regression target has none")
        self.task_kind = kind

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if "label" not in batch:
            raise KeyError(f"{self.name} trains on labels: the batch has no 'label' "
                           "(call setup_task and pass the task's training labels)")
        z = self.encoder(batch["signal"])  # (B, head_dim), unit norm
        positive, negative = diagnosis_pairs(batch["label"])
        a, p, n = sample_triplets(positive, negative)
        loss = triplet_margin(z[a], z[p], z[n], self.config.margin, self.config.squared_distance)
        return {"loss": loss, "triplets": torch.tensor(float(len(a)), device=z.device)}


class _L2Normalize(nn.Module):
    def forward(self, z: Tensor) -> Tensor:
        return F.normalize(z, dim=-1)


class QuantisedLatent(nn.Module):
    """768 -> latent (Linear, LayerNorm, tanh), then the nearest codebook vector."""

    def __init__(self, d_in: int, latent_dim: int, n_codes: int, commitment: float):
        super().__init__()
        self.to_latent = nn.Sequential(nn.Linear(d_in, latent_dim), nn.LayerNorm(latent_dim),
                                       nn.Tanh())
        self.codebook = nn.Parameter(torch.empty(n_codes, latent_dim))
        nn.init.uniform_(self.codebook, -1.0 / n_codes, 1.0 / n_codes)
        self.commitment = float(commitment)

    def quantise(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, d_in) -> (z_q (B, latent), VQ loss, code indices (B,))."""
        return vector_quantize(self.to_latent(features), self.codebook, self.commitment)

    def forward(self, features: Tensor) -> Tensor:
        return self.quantise(features)[0]


def vqvae_decoder(latent_dim: int, hidden: int, wide: int, out: int, dropout: float) -> nn.Sequential:
    """The report's printed decoder: Linear, LayerNorm, ReLU, Dropout, Linear, ReLU, Linear."""
    return nn.Sequential(nn.Linear(latent_dim, hidden), nn.LayerNorm(hidden), nn.ReLU(),
                         nn.Dropout(dropout), nn.Linear(hidden, wide), nn.ReLU(),
                         nn.Linear(wide, out))


class StMemVqvae(_FrozenStMemVariant):
    """ST-MEM + VQ-VAE: frozen encoder, quantised 512-d latent decoded back to the 12-lead input."""

    name = "st-mem-vqvae"
    version = 2  # 2: the report's decoder (was 512 -> 768 -> 27,000)
    paper = ("ecgbench seed report, encoder-embedding enhancements (VQ-VAE on ST-MEM, "
             "Na et al., ICLR 2024; van den Oord et al., NeurIPS 2017)")

    @dataclass
    class Config(StMem.Config):
        lr: float = 5e-4
        batch_size: int = 64
        latent_dim: int = 512
        n_codes: int = 1024
        commitment: float = 0.05
        decoder_hidden: int = 768
        decoder_wide: int = 1536
        decoder_dropout: float = 0.1
        collapse_perplexity: float = 2.0
        takes_init: ClassVar[bool] = False  # the encoder comes from the st-mem run
        from_base: ClassVar[tuple[str, ...]] = tuple(AUTHORS_LAYOUT)  # its layout follows the base's

    presets = _variant_presets({
        "smoke": {"latent_dim": 16, "n_codes": 32, "decoder_hidden": 32, "decoder_wide": 64,
                  "lr": 1e-3},
        "cpu": {"latent_dim": 64, "n_codes": 256, "decoder_hidden": 128, "decoder_wide": 256},
    })

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        head = QuantisedLatent(c.embed_dim, c.latent_dim, c.n_codes, c.commitment)
        self.encoder = FrozenBackbone(st_mem_encoder(c), head, c.latent_dim)
        self.decoder = vqvae_decoder(c.latent_dim, c.decoder_hidden, c.decoder_wide,
                                     len(c.leads) * c.n_samples, c.decoder_dropout)

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        c = self.config
        signal = batch["signal"]  # (B, leads, T)
        backbone = self.encoder.backbone
        with torch.no_grad():  # band-pass once: the target is what the encoder sees
            target = backbone.preprocess(signal)
            features = backbone.pooled(target)  # = features(signal)
        z_q, vq_loss, codes = self.encoder.head.quantise(features)
        reconstruction = self.decoder(z_q).view_as(target)
        recon_loss = F.mse_loss(reconstruction.float(), target.float())
        perplexity, usage = codebook_perplexity(codes, c.n_codes)
        return {
            "loss": recon_loss + vq_loss,
            "recon_mse": recon_loss.detach(),
            "vq_loss": vq_loss.detach(),
            "code_perplexity": perplexity,
            "codebook_usage": usage,
            "codebook_collapsed": (perplexity < c.collapse_perplexity).float(),
        }
