"""Vision-transformer pieces for multi-lead ECG: one token per (lead, patch of time).

Shared by ST-MEM (Na et al., ICLR 2024) and ECG-JEPA (Kim, arXiv:2410.08559, 2024). Every
lead is cut into non-overlapping patches of ``patch_size`` samples and each patch is linearly
projected to a token (one projection shared by all leads); tokens carry a position (of the
patch in time) and, optionally, a learned lead embedding. ST-MEM also puts a learned [SEP]
token at both ends of every lead; ECG-JEPA restricts attention to tokens of the same lead or
the same time patch (cross-pattern attention, CroPA). The transformer is
:class:`ecgbench.models.encoders.TransformerEncoder1d` over all (lead, patch) tokens.

Token tensors keep the lead axis: ``(B, L, K, D)`` = batch, leads, patches per lead, width;
masked-modelling methods select a subset of K patches per lead before :meth:`LeadTimeViT.encode`.
Tested in tests/models/test_vit.py.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ecgbench.models.encoders import TransformerEncoder1d, sinusoidal_positions


def patchify(x: Tensor, patch_size: int) -> Tensor:
    """(B, L, T) -> (B, L, T / patch_size, patch_size): non-overlapping patches of each lead."""
    b, n_leads, t = x.shape
    if t % patch_size:
        raise ValueError(f"{t} samples are not a whole number of {patch_size}-sample patches")
    return x.reshape(b, n_leads, t // patch_size, patch_size)


def sincos_2d_positions(n_rows: int, n_cols: int, dim: int) -> Tensor:
    """Fixed 2-D sine/cosine table (MAE's 2-D form): (n_rows, n_cols, dim); the first half of
    the channels encodes the row (lead), the second half the column (time patch)."""
    if dim % 2:
        raise ValueError(f"2-D sine/cosine positions need an even width, got {dim}")
    rows = sinusoidal_positions(n_rows, dim // 2)[:, None, :].expand(n_rows, n_cols, dim // 2)
    cols = sinusoidal_positions(n_cols, dim // 2)[None, :, :].expand(n_rows, n_cols, dim // 2)
    return torch.cat([rows, cols], dim=-1)


def cross_pattern_mask(lead_index: Tensor, time_index: Tensor) -> Tensor:
    """ECG-JEPA's cross-pattern attention: token i may attend to token j only when both lie in
    the same lead or in the same time patch. ``lead_index``, ``time_index``: (S,) per token.
    Returns (S, S) bool, True = blocked (the convention of ``torch.nn`` attention masks)."""
    same_lead = lead_index[:, None] == lead_index[None, :]
    same_time = time_index[:, None] == time_index[None, :]
    return ~(same_lead | same_time)


class BandpassStandardize(nn.Module):
    """Zero-phase Butterworth band-pass, then per-sample standardisation, on tensors.

    The filter is applied in the frequency domain with the squared magnitude response of a
    ``scipy.signal.butter`` band-pass, which is what ``scipy.signal.sosfiltfilt`` (forward and
    backward) applies, except that the window is treated as periodic instead of padded at its
    ends. Standardisation uses the mean and standard deviation of each sample over all its
    leads and time steps, keeping the leads' relative amplitudes. Runs in float32 on the
    input's device, also inside an autocast region.
    """

    def __init__(self, fs: float, n_samples: int, band: tuple[float, float] = (0.67, 40.0),
                 order: int = 2, standardize: bool = True):
        super().__init__()
        from scipy.signal import butter, sosfreqz

        low, high = (float(f) for f in band)
        if not 0.0 < low < high < fs / 2:
            raise ValueError(f"band-pass {band} Hz does not fit below Nyquist ({fs / 2} Hz)")
        sos = butter(int(order), [low, high], btype="bandpass", fs=fs, output="sos")
        _, response = sosfreqz(sos, worN=np.fft.rfftfreq(int(n_samples), d=1.0 / fs), fs=fs)
        self.register_buffer("gain", torch.tensor(np.abs(response) ** 2, dtype=torch.float32),
                             persistent=False)
        self.n_samples = int(n_samples)
        self.standardize = bool(standardize)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.n_samples:
            raise ValueError(f"band-pass built for {self.n_samples} samples, got {x.shape[-1]}")
        with torch.autocast(x.device.type, enabled=False):
            y = torch.fft.irfft(torch.fft.rfft(x.float(), dim=-1) * self.gain, n=self.n_samples)
            if self.standardize:
                mean = y.mean(dim=(-2, -1), keepdim=True)
                std = y.std(dim=(-2, -1), keepdim=True)
                y = (y - mean) / (std + 1e-6)  # a flat window stays zero
        return y


class LeadTimeViT(nn.Module):
    """ViT over (lead, time-patch) tokens; the encoder contract's ``forward`` mean-pools them.

    ``positions``: ``"learned"`` (one table over patch positions shared by the leads, ST-MEM),
    ``"sincos-2d"`` (fixed table over (lead, patch), ECG-JEPA) or ``"stored-2d"`` (a fixed
    (lead, patch) table kept in the state dict, so a published one loads; sincos-2d until
    then). ``lead_embedding`` adds a learned vector per lead; ``sep_tokens`` puts a learned
    [SEP] token (with the first and last position) before and after every lead's patches;
    ``cross_pattern`` restricts attention to the same lead or the same time patch.
    ``preprocess`` runs on the raw window first. The published encoders' variants:
    ``patch_norm`` (LayerNorm before and after the patch projection) and ``pooled_norm`` (the
    final LayerNorm after mean pooling, not per token) are ST-MEM's code; ``readd_positions``
    (positions added again before every block) is ECG-JEPA's code.

    * ``tokens(x)``: preprocessed (B, L, T) -> (B, L, N, D) patch tokens with positions;
    * ``encode(tokens, time_index)``: the transformer over a (visible) subset, (B, L, K, D) ->
      (B, L, K, D), [SEP] outputs removed; ``time_index`` (K,) names the patches kept (needed
      by cross-pattern attention; default all N in order);
    * ``pooled(x)``: preprocessed (B, L, T) -> (B, D), all patches, mean over leads and patches;
    * ``forward(x)``: ``pooled(preprocess(x))``.
    """

    def __init__(self, n_leads: int, n_samples: int, patch_size: int, dim: int, depth: int,
                 heads: int, mlp_ratio: float = 4.0, *, positions: str = "learned",
                 lead_embedding: bool = True, sep_tokens: bool = False,
                 cross_pattern: bool = False, dropout: float = 0.0,
                 preprocess: nn.Module | None = None, patch_norm: bool = False,
                 pooled_norm: bool = False, readd_positions: bool = False):
        super().__init__()
        if n_samples % patch_size:
            raise ValueError(f"window of {n_samples} samples is not a whole number of "
                             f"{patch_size}-sample patches")
        if sep_tokens and (cross_pattern or readd_positions):
            raise ValueError("cross-pattern attention and re-added positions are defined for "
                             "patch tokens only, not [SEP]")
        self.n_leads, self.patch_size = int(n_leads), int(patch_size)
        self.n_patches = int(n_samples) // int(patch_size)
        self.preprocess = preprocess if preprocess is not None else nn.Identity()
        self.patch_embed = nn.Linear(patch_size, dim)
        nn.init.xavier_uniform_(self.patch_embed.weight)
        nn.init.zeros_(self.patch_embed.bias)
        self.patch_norm_in = nn.LayerNorm(patch_size) if patch_norm else None
        self.patch_norm_out = nn.LayerNorm(dim) if patch_norm else None
        n_positions = self.n_patches + (2 if sep_tokens else 0)
        if positions == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(n_positions, dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        elif positions in ("sincos-2d", "stored-2d"):
            self.pos_embed = None
            self.register_buffer("pos_table", sincos_2d_positions(n_leads, n_positions, dim),
                                 persistent=positions == "stored-2d")
        else:
            raise ValueError(f"positions must be 'learned', 'sincos-2d' or 'stored-2d', "
                             f"got {positions!r}")
        self.lead_embed = nn.Parameter(torch.zeros(n_leads, dim)) if lead_embedding else None
        self.sep_token = nn.Parameter(torch.zeros(dim)) if sep_tokens else None
        for p in (self.lead_embed, self.sep_token):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)
        self.cross_pattern = bool(cross_pattern)
        self.pooled_norm, self.readd_positions = bool(pooled_norm), bool(readd_positions)
        self.transformer = TransformerEncoder1d(dim, depth, heads, mlp_ratio, dropout)
        self.embedding_dim = int(dim)

    def position_table(self) -> Tensor:
        """(L, positions, D): position (+ lead) embedding of every slot, [SEP] slots included."""
        if self.pos_embed is not None:
            table = self.pos_embed[None].expand(self.n_leads, -1, -1)
        else:
            table = self.pos_table
        if self.lead_embed is not None:
            table = table + self.lead_embed[:, None, :]
        return table

    def tokens(self, x: Tensor) -> Tensor:
        if x.shape[1] != self.n_leads:
            raise ValueError(f"encoder built for {self.n_leads} leads, got {x.shape[1]}")
        patches = patchify(x, self.patch_size)
        if self.patch_norm_in is not None:
            patches = self.patch_norm_out(self.patch_embed(self.patch_norm_in(patches)))
        else:
            patches = self.patch_embed(patches)  # (B, L, N, D)
        first = 1 if self.sep_token is not None else 0
        table = self.position_table()[:, first:first + self.n_patches]
        return patches + table.to(patches.dtype)

    def encode(self, tokens: Tensor, time_index: Tensor | None = None,
               normalize: bool = True) -> Tensor:
        b, n_leads, k, d = tokens.shape
        sequence = tokens
        if self.sep_token is not None:
            table = self.position_table()
            left = (self.sep_token + table[:, 0]).to(tokens.dtype)  # (L, D)
            right = (self.sep_token + table[:, -1]).to(tokens.dtype)
            sequence = torch.cat([left[None, :, None].expand(b, -1, -1, -1), tokens,
                                  right[None, :, None].expand(b, -1, -1, -1)], dim=2)
        attn_mask = None
        times = time_index if time_index is not None else torch.arange(k, device=tokens.device)
        times = times.to(tokens.device)
        if self.cross_pattern:
            leads = torch.arange(n_leads, device=tokens.device).repeat_interleave(k)
            attn_mask = cross_pattern_mask(leads, times.repeat(n_leads))
        readd = self.position_table()[:, times].reshape(-1, d) if self.readd_positions else None
        per_lead = sequence.shape[2]
        out = self.transformer(sequence.reshape(b, n_leads * per_lead, d), attn_mask=attn_mask,
                               readd=readd, normalize=normalize)
        out = out.reshape(b, n_leads, per_lead, d)
        return out[:, :, 1:-1] if self.sep_token is not None else out

    def pooled(self, x: Tensor) -> Tensor:
        """Preprocessed (B, L, T) -> (B, D): all patches, mean over leads and patches."""
        if self.pooled_norm:
            return self.transformer.norm(self.encode(self.tokens(x), normalize=False).mean(dim=(1, 2)))
        return self.encode(self.tokens(x)).mean(dim=(1, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.pooled(self.preprocess(x))  # (B, D)


def vit_paper_sizes() -> dict[str, int]:
    """Parameter counts of the paper-size ViT encoders, built on the meta device (no memory)."""
    from ecgbench.models.encoders import count_parameters

    with torch.device("meta"):
        st_mem = LeadTimeViT(12, 2250, 75, 768, 12, 12, sep_tokens=True)
        jepa = LeadTimeViT(8, 2500, 50, 768, 12, 16, positions="sincos-2d",
                           lead_embedding=False, cross_pattern=True)
    return {"ST-MEM ViT-B/75": count_parameters(st_mem), "ECG-JEPA encoder": count_parameters(jepa)}
