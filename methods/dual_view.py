"""Dual-view transformer: channel tokens and time tokens joined by cross-attention, trained with
NT-Xent between two views of each ECG; three view strategies as registered variants.

"Dual-view transformer for ECG SSL", seed project presentation (internal; no public paper or
code). What the presentation fixes: a transformer with channel tokens (one per lead) and time
tokens (one per time step or patch across leads) joined by cross-attention; NT-Xent over a
projection head; view strategies ``dual-view-seqaug`` (sequential random augmentations, full
length), ``dual-view-interleave`` (even vs odd time steps) and ``dual-view-split`` (two
non-overlapping 5 s segments); per-sample normalisation in all three (first, for seqaug; of
each view, for the other two, before lead masking); random lead masking on the last two; a 5-epoch warm start; 12
leads, 10 s. Its reported numbers are in results/reported/dual-view.yaml. Everything else below
is our assumption, listed under Departures.

Architecture (:class:`DualViewEncoder`). A view ``(B, 12, T_v)`` gives
* channel tokens: each lead's whole signal through one shared ``Linear(T_v -> d)`` (as
  iTransformer embeds a variate), plus a learned lead embedding: ``(B, 12, d)``;
* time tokens: non-overlapping patches of ``patch_size`` samples across all leads through
  ``Linear(12 * patch_size -> d)``, plus sinusoidal positions: ``(B, T_v / patch_size, d)``.
Each of ``depth`` pre-norm blocks runs self-attention within each stream, then bidirectional
cross-attention (time tokens query channel tokens and channel tokens query time tokens), then a
GELU MLP per stream. The representation is the concatenation of the mean channel token and the
mean time token after a final LayerNorm each (``2 d``). A projection MLP (Linear -> ReLU ->
Linear) feeds NT-Xent (:func:`ecgbench.models.losses.nt_xent`); it is dropped after pretraining.

Normalisation (:func:`standardize_per_sample`): every view (the whole window, for seqaug) is
z-scored with one mean and one standard deviation over all its leads and samples, so views
differ in shape, not in gain or offset, and the leads keep their relative amplitudes. The
encoder applies it to the deterministic views it embeds, so evaluation sees it too.

Views. ``seqaug``: the normalised 10 s window, twice through the same sequential pipeline (Gaussian
noise, amplitude scaling, baseline wander, time warping, random resized crop; each with
probability 0.5). ``interleave``: samples 0, 2, 4, ... vs 1, 3, 5, ... (two 10 s views at half
the rate). ``split``: the first vs the second 5 s. The last two then mask each lead of each view
with probability ``lead_mask_p`` (at least one lead kept). A view has ``T_v`` = 1,000 samples
(seqaug) or 500 (interleave, split); interleave and split views are normalised before the
lead masking. Evaluation: the encoder embeds the same deterministic views
of a window (the window itself; its even and odd samples; its two halves) and averages them, so
the probe sees the kind of input the encoder was trained on.

Warm start: a linear learning-rate warm-up over 5 epochs, in steps: PTB-XL's training folds
1-8 hold 17,418 records, one 10 s window each, 68 batches of 256 per epoch, so 340 steps
(``warmup_steps``); the cpu preset: 5 epochs of the synthetic suite's training split (about
1,500 windows / 64 = 23 batches) = 115 steps; smoke: 2 of its 12 steps.

The cross-attention maps of the last block (head-averaged; time -> lead and lead -> time) for
the first training windows are written as a PNG after pretraining (:meth:`DualView.artifacts`).

Departures:
- No public paper or code: token embeddings, block layout, pooling, projection head and all sizes are our design from the presentation's description.
- 100 Hz, 1,000 samples (PTB-XL's low-rate release) chosen; the presentation says 12 leads, 10 s.
- Time tokens are 0.5 s patches (50 samples) across leads, not single time steps: 1,000 time tokens per view would not fit the CPU presets.
- Sizes (width 256, depth 4, 8 heads, MLP x4, dropout 0.1), AdamW lr 5e-4, weight decay 0.05, batch 256, temperature 0.5 (this harness's SimCLR value) and ~100 epochs (6,800 steps) are our choices.
- The seqaug pipeline and its probabilities, and lead-mask probability 0.25, are our choices.
- "Normalize per sample" read as one z-score per view over all leads and samples (the presentation names no axes; per-lead z-scores would erase relative lead amplitudes).
- "5-epoch warm start" read as a linear learning-rate warm-up over 5 epochs, expressed in steps (above).
- Evaluation embeds a window's deterministic views and averages them (above), instead of feeding a longer or denser window than training used.
- Seed 001 drops multi-label PTB-XL ECGs and evaluates by clustering, attention maps, linear probing and fine-tuning; task definition and evaluation are the harness's.
- ``dual-view`` is an alias of ``dual-view-seqaug`` (the strategy the presentation lists first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from ecgbench.core.config import positive
from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.core.store import atomic_write
from ecgbench.methods.simclr import projection_mlp
from ecgbench.models import augment
from ecgbench.models.encoders import _init_transformer_weights, sinusoidal_positions
from ecgbench.models.losses import nt_xent
from ecgbench.models.method import Method, MethodConfig

STRATEGIES = ("seqaug", "interleave", "split")


def standardize_per_sample(x: Tensor, eps: float = 1e-6) -> Tensor:
    """(B, leads, T) -> each sample minus its mean, over its standard deviation, both taken
    over all its leads and samples (a flat sample stays zero)."""
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), keepdim=True)
    return (x - mean) / (std + eps)


class DualViewBlock(nn.Module):
    """Self-attention in each stream, bidirectional cross-attention, an MLP per stream (pre-norm)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        streams = ("channel", "time")
        self.self_norm = nn.ModuleDict({s: nn.LayerNorm(dim) for s in streams})
        self.self_attn = nn.ModuleDict({s: self._attention(dim, heads, dropout) for s in streams})
        self.cross_norm = nn.ModuleDict({s: nn.LayerNorm(dim) for s in streams})
        self.cross_attn = nn.ModuleDict({s: self._attention(dim, heads, dropout) for s in streams})
        self.mlp_norm = nn.ModuleDict({s: nn.LayerNorm(dim) for s in streams})
        hidden = int(round(dim * mlp_ratio))
        self.mlp = nn.ModuleDict({
            s: nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                             nn.Linear(hidden, dim), nn.Dropout(dropout))
            for s in streams
        })

    @staticmethod
    def _attention(dim: int, heads: int, dropout: float) -> nn.MultiheadAttention:
        return nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, c: Tensor, t: Tensor, return_attention: bool = False
                ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """c: (B, L, d) channel tokens, t: (B, N, d) time tokens."""
        for name, x in (("channel", c), ("time", t)):
            h = self.self_norm[name](x)
            x = x + self.self_attn[name](h, h, h, need_weights=False)[0]
            if name == "channel":
                c = x
            else:
                t = x
        hc, ht = self.cross_norm["channel"](c), self.cross_norm["time"](t)
        c_out, c_map = self.cross_attn["channel"](hc, ht, ht, need_weights=return_attention)  # (B, L, N)
        t_out, t_map = self.cross_attn["time"](ht, hc, hc, need_weights=return_attention)  # (B, N, L)
        c, t = c + c_out, t + t_out
        c = c + self.mlp["channel"](self.mlp_norm["channel"](c))
        t = t + self.mlp["time"](self.mlp_norm["time"](t))
        maps = {"lead_to_time": c_map, "time_to_lead": t_map} if return_attention else {}
        return c, t, maps


class DualViewEncoder(nn.Module):
    """Channel and time tokens of a view, ``depth`` dual-view blocks, pooled to ``2 * dim``.

    ``forward(x)`` takes a whole window ``(B, leads, n_samples)``, encodes its deterministic
    views (:meth:`views`) and averages their features: the encoder contract's pooled output.
    """

    def __init__(self, n_leads: int, n_samples: int, strategy: str, patch_size: int, dim: int,
                 depth: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(f"dual-view: unknown view strategy {strategy!r} (one of {STRATEGIES})")
        self.strategy = strategy
        self.view_samples = n_samples if strategy == "seqaug" else n_samples // 2
        if (strategy != "seqaug" and n_samples % 2) or self.view_samples % patch_size:
            raise ValueError(f"dual-view-{strategy}: views of {self.view_samples} samples (from "
                             f"{n_samples}) do not split into patches of {patch_size}")
        self.n_samples, self.patch_size, self.dim = int(n_samples), int(patch_size), int(dim)
        self.channel_embed = nn.Linear(self.view_samples, dim)  # a lead's whole view -> one token
        self.lead_embed = nn.Parameter(torch.zeros(n_leads, dim))
        self.time_embed = nn.Linear(n_leads * patch_size, dim)  # one patch across leads -> one token
        self.blocks = nn.ModuleList(DualViewBlock(dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.ModuleDict({s: nn.LayerNorm(dim) for s in ("channel", "time")})
        self.embedding_dim = 2 * int(dim)
        self.apply(_init_transformer_weights)
        nn.init.trunc_normal_(self.lead_embed, std=0.02)

    def views(self, x: Tensor) -> list[Tensor]:
        """The deterministic views of a window (B, leads, n_samples), each normalised per sample."""
        if self.strategy == "interleave":
            views = [x[..., 0::2], x[..., 1::2]]
        elif self.strategy == "split":
            half = self.n_samples // 2
            views = [x[..., :half], x[..., half:]]
        else:
            views = [x]
        return [standardize_per_sample(v) for v in views]

    def encode(self, view: Tensor, return_attention: bool = False
               ) -> tuple[Tensor, dict[str, Tensor]]:
        """(B, leads, view_samples) -> (B, 2 dim) features and, if asked, the last block's
        head-averaged cross-attention maps."""
        B, L, T = view.shape
        if T != self.view_samples:
            raise ValueError(f"dual-view-{self.strategy}: a view must have {self.view_samples} samples, got {T}")
        c = self.channel_embed(view) + self.lead_embed  # (B, L, d)
        patches = view.unfold(-1, self.patch_size, self.patch_size)  # (B, L, N, P)
        n = patches.shape[2]
        t = self.time_embed(patches.permute(0, 2, 1, 3).reshape(B, n, L * self.patch_size))  # (B, N, d)
        t = t + sinusoidal_positions(n, self.dim, device=view.device).to(t.dtype)
        maps: dict[str, Tensor] = {}
        for i, block in enumerate(self.blocks):
            c, t, maps = block(c, t, return_attention and i == len(self.blocks) - 1)
        features = torch.cat([self.norm["channel"](c).mean(1), self.norm["time"](t).mean(1)], dim=-1)
        return features, maps

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([self.encode(v)[0] for v in self.views(x)]).mean(0)  # (B, 2 dim)


class DualViewSeqAug(Method):
    """Dual-view transformer, views by sequential random augmentations of the full window."""

    name = "dual-view-seqaug"
    version = 2  # 2: per-sample normalisation
    paper = "Dual-view transformer for ECG SSL, seed project presentation (no public paper)"
    strategy = "seqaug"

    @dataclass
    class Config(MethodConfig):
        leads: tuple[str, ...] = STANDARD_LEADS
        fs: int = 100
        n_samples: int = 1000
        optimizer: str = "adamw"
        lr: float = 5e-4
        weight_decay: float = 0.05
        batch_size: int = 256
        max_steps: int = 6800  # ~100 epochs of PTB-XL's 17,418 training records at batch 256
        warmup_steps: int = 340  # the 5-epoch warm start: 5 x 68 batches
        patch_size: int = 50
        dim: int = 256
        depth: int = 4
        heads: int = 8
        mlp_ratio: float = 4.0
        dropout: float = 0.1
        proj_dim: int = 128
        temperature: float = field(default=0.5, metadata=positive())  # > 0: it divides the logits
        lead_mask_p: float = 0.25  # interleave and split only
        # seqaug pipeline: each step with this probability, in this order.
        aug_p: float = 0.5
        noise_snr_db: tuple[float, float] = (15.0, 30.0)
        scale_range: tuple[float, float] = (0.5, 2.0)
        wander_amplitude: float = 0.1
        crop_scale: tuple[float, float] = (0.5, 1.0)

    presets = {
        "smoke": {"dim": 32, "depth": 1, "heads": 2, "proj_dim": 16, "warmup_steps": 2},
        "cpu": {"dim": 64, "depth": 2, "heads": 4, "proj_dim": 64, "warmup_steps": 115},
    }

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        self.encoder = DualViewEncoder(len(c.leads), c.n_samples, self.strategy, c.patch_size, c.dim,
                                       c.depth, c.heads, c.mlp_ratio, c.dropout)
        d = self.encoder.embedding_dim
        self.projector = projection_mlp(d, d, c.proj_dim)
        self.augment = augment.Compose([
            (partial(augment.gaussian_noise, snr_db=c.noise_snr_db), c.aug_p),
            (partial(augment.random_scale, low=c.scale_range[0], high=c.scale_range[1]), c.aug_p),
            (partial(augment.baseline_wander, fs=c.fs, max_amplitude=c.wander_amplitude), c.aug_p),
            (augment.time_warp, c.aug_p),
            (partial(augment.random_resized_crop, scale=c.crop_scale), c.aug_p),
        ])

    def make_views(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Two views of each window (B, leads, n_samples) for the contrastive loss: normalised,
        then augmented twice (seqaug) or lead-masked (interleave, split)."""
        if self.strategy == "seqaug":
            (window,) = self.encoder.views(x)
            return self.augment(window), self.augment(window)
        first, second = self.encoder.views(x)
        mask = partial(augment.lead_mask, p=self.config.lead_mask_p)
        return mask(first), mask(second)

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        v1, v2 = self.make_views(batch["signal"])  # (B, leads, T_v) each
        z1 = self.projector(self.encoder.encode(v1)[0])  # (B, proj_dim)
        z2 = self.projector(self.encoder.encode(v2)[0])
        return {"loss": nt_xent(z1, z2, self.config.temperature)}

    def artifacts(self, batch: dict[str, Tensor], out_dir: Path) -> list[Path]:
        """The last block's cross-attention maps for the first view of up to 4 windows."""
        from matplotlib.figure import Figure  # no pyplot: no global backend state

        view = self.encoder.views(batch["signal"][:4])[0]
        _, maps = self.encoder.encode(view, return_attention=True)
        leads = list(self.config.leads)
        n = view.shape[0]
        figure = Figure(figsize=(3.2 * n, 6.0), layout="constrained")
        axes = figure.subplots(2, n, squeeze=False)
        for i in range(n):
            for row, (key, title) in enumerate([("time_to_lead", "time tokens -> leads"),
                                                ("lead_to_time", "leads -> time tokens")]):
                weights = maps[key][i].float().cpu().numpy()  # (N, L) or (L, N)
                ax = axes[row, i]
                image = ax.imshow(weights, aspect="auto", cmap="viridis")
                ax.set_title(f"window {i}: {title}", fontsize=8)
                if key == "time_to_lead":
                    ax.set_xticks(range(len(leads)), leads, fontsize=6, rotation=90)
                    ax.set_ylabel(f"time patch ({self.config.patch_size} samples)", fontsize=7)
                else:
                    ax.set_yticks(range(len(leads)), leads, fontsize=6)
                    ax.set_xlabel(f"time patch ({self.config.patch_size} samples)", fontsize=7)
                figure.colorbar(image, ax=ax, shrink=0.8)
        figure.suptitle(f"{self.name}: cross-attention of the last block (head-averaged)", fontsize=9)
        path = Path(out_dir) / "cross_attention.png"
        atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
        return [path]


class DualView(DualViewSeqAug):
    """Dual-view transformer (alias of dual-view-seqaug)."""

    name = "dual-view"
    alias_of = "dual-view-seqaug"


class DualViewInterleave(DualViewSeqAug):
    """Dual-view transformer, views = even vs odd time steps, with random lead masking."""

    name = "dual-view-interleave"
    strategy = "interleave"


class DualViewSplit(DualViewSeqAug):
    """Dual-view transformer, views = the two non-overlapping 5 s halves, with lead masking."""

    name = "dual-view-split"
    strategy = "split"
