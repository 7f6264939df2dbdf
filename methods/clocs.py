"""CLOCS: patient-aware contrastive learning across ECG segments (time) and leads (space).

D. Kiyasseh, T. Zhu and D. A. Clifton, "CLOCS: Contrastive Learning of Cardiac Signals Across
Space, Time, and Patients", ICML 2021, https://arxiv.org/abs/2005.13249. Reimplemented from
the paper; no code from the authors' (non-commercial) repository.

Method. Views of an instance are its temporally adjacent, non-overlapping segments (CMSC,
Contrastive Multi-Segment Coding), its leads (CMLC, Multi-Lead Coding) or both (CMSMLC). One
single-lead encoder with shared weights embeds every view; for every ordered pair of views a
B x B cosine-similarity matrix / tau is built and -log softmax is averaged over all positive
pairs, where positives are the two views of the same instance and any views of instances of
the same patient (``batch["patient_id"]``): :func:`ecgbench.models.losses.patient_contrastive`.
No augmentations, no projection head: the encoder's output (256-d) is the representation.
Encoder (appendix): three blocks Conv1d(k=7, stride 3) -> BN -> ReLU -> MaxPool(2) ->
Dropout(0.1) with 4/16/32 channels, then a linear layer to 256 (:class:`ClocsCNN`). Adam,
lr 1e-4, batch 256, tau 0.1.

Input. CLOCS's frames are 2,500 samples, and its CNN's 320-wide flatten (32 x 10) is what a
2,500-sample segment gives. We use 500 Hz (PhysioNet 2020 / Chapman / PTB-XL's native rate):
a CMSC window is 5,000 samples = 10 s, split in the training step into two adjacent 2,500-
sample (5 s) segments, so one PTB-XL or Chapman record gives exactly one pair. CMSC uses
lead II; CMLC/CMSMLC use the paper's four leads II, V2, aVL, aVR (one 5 s segment per lead
for CMLC, two for CMSMLC).

Evaluation. ``embed(x)`` (and ``encoder(x)``) take the declared window, split it into its
segments and leads exactly as in training, encode each with the shared CNN and average the
features: the pooled representation of the whole window, 256-d whatever the variant.

Departures:
- Sampling rate 500 Hz with 2,500-sample segments: the paper's frame length and CNN; whether the paper resampled to 250 Hz could not be settled from the text we could check.
- CMSMLC contrasts every pair of distinct (segment, lead) views; the loss averages (not sums) over ordered view pairs, so its scale does not grow with the number of views.
- embed() averages the encoder's features over a window's segments and leads (the paper fine-tunes per frame); the harness needs one vector per window.
- No gradient clipping (none in the paper); the harness default is 3.0.
- The harness draws windows at random rather than one frame per patient epoch; same-patient windows in a batch are positives as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ecgbench.core.config import positive
from ecgbench.models.encoders import ClocsCNN
from ecgbench.models.losses import patient_contrastive
from ecgbench.models.method import Method, MethodConfig

CMLC_LEADS: tuple[str, ...] = ("II", "V2", "aVL", "aVR")  # CLOCS's four leads


class SegmentLeadEncoder(nn.Module):
    """A window -> its views (segments x leads) -> one shared single-lead CNN per view.

    ``views(x)``: (B, leads, T) -> (V, B, D) with V = n_segments * leads, ordered segment-major
    (view s * leads + l is segment s of lead l). ``forward(x)``: the mean over the V views,
    (B, D), the encoder contract's pooled features.
    """

    def __init__(self, backbone: ClocsCNN, n_segments: int):
        super().__init__()
        self.backbone = backbone
        self.n_segments = int(n_segments)
        self.embedding_dim = backbone.embedding_dim

    def split(self, x: Tensor) -> Tensor:
        """(B, leads, T) -> (V, B, 1, T / n_segments): adjacent non-overlapping segments."""
        b, n_leads, t = x.shape
        if t % self.n_segments:
            raise ValueError(f"{t} samples do not split into {self.n_segments} equal segments")
        segments = x.reshape(b, n_leads, self.n_segments, t // self.n_segments)
        return segments.permute(2, 1, 0, 3).reshape(-1, b, 1, t // self.n_segments)

    def views(self, x: Tensor) -> Tensor:
        parts = self.split(x)  # (V, B, 1, S)
        v, b = parts.shape[:2]
        features = self.backbone(parts.reshape(v * b, 1, -1))  # one pass: (V * B, D)
        return features.reshape(v, b, -1)

    def forward(self, x: Tensor) -> Tensor:
        return self.views(x).mean(dim=0)  # (B, D)


class CMSC(Method):
    """CLOCS-CMSC: adjacent segments of a record and same-patient windows are positives."""

    name = "clocs-cmsc"
    version = 1
    paper = ("Kiyasseh, Zhu & Clifton, CLOCS: Contrastive Learning of Cardiac Signals Across "
             "Space, Time, and Patients, ICML 2021")

    @dataclass
    class Config(MethodConfig):
        leads: tuple[str, ...] = ("II",)
        fs: int = 500
        n_samples: int = 5000  # n_segments x 2,500-sample segments
        n_segments: int = 2  # 2: CMSC / CMSMLC, 1: CMLC
        optimizer: str = "adam"
        lr: float = 1e-4
        batch_size: int = 256
        grad_clip: float = 0.0
        temperature: float = field(default=0.1, metadata=positive())  # > 0: it divides the logits
        embedding_dim: int = 256
        channels: tuple[int, ...] = (4, 16, 32)
        kernel_size: int = 7
        stride: int = 3
        dropout: float = 0.1

    presets = {
        # 400-sample segments are about the shortest the three stride-3 blocks accept.
        "smoke": {"n_samples": 800, "fs": 80, "embedding_dim": 32},
        "cpu": {},  # the paper's network is small: ~86k parameters
    }

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        if c.n_samples % c.n_segments:
            raise ValueError(f"{self.name}: n_samples {c.n_samples} is not a multiple of "
                             f"n_segments {c.n_segments}")
        if len(c.leads) * c.n_segments < 2:
            raise ValueError(f"{self.name}: needs at least two views (segments x leads)")
        backbone = ClocsCNN(
            segment_samples=c.n_samples // c.n_segments, in_leads=1,
            channels=tuple(int(ch) for ch in c.channels), kernel_size=int(c.kernel_size),
            stride=int(c.stride), dropout=float(c.dropout), embedding_dim=int(c.embedding_dim),
        )
        self.encoder = SegmentLeadEncoder(backbone, c.n_segments)

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["signal"]  # (B, leads, T)
        views = self.encoder.views(x)  # (V, B, D)
        loss = patient_contrastive(views, batch["patient_id"], self.config.temperature)
        return {"loss": loss, "positive_cosine": _paired_cosine(views)}


class CLOCS(CMSC):
    """CLOCS (alias of clocs-cmsc, the paper's default variant)."""

    name = "clocs"
    alias_of = "clocs-cmsc"


class CMLC(CMSC):
    """CLOCS-CMLC: the leads of an instance and same-patient instances are positives."""

    name = "clocs-cmlc"

    @dataclass
    class Config(CMSC.Config):
        leads: tuple[str, ...] = CMLC_LEADS
        n_samples: int = 2500
        n_segments: int = 1

    presets = {
        "smoke": {"n_samples": 400, "fs": 80, "embedding_dim": 32},
        "cpu": {},
    }


class CMSMLC(CMSC):
    """CLOCS-CMSMLC: adjacent segments and leads of an instance and its patient are positives."""

    name = "clocs-cmsmlc"

    @dataclass
    class Config(CMSC.Config):
        leads: tuple[str, ...] = CMLC_LEADS  # segments as CMSC, leads as CMLC


def _paired_cosine(views: Tensor) -> Tensor:
    """Mean cosine between an instance's views (all distinct view pairs), for logging."""
    with torch.no_grad():
        z = nn.functional.normalize(views.float(), dim=-1)  # (V, B, D)
        gram = torch.einsum("aid,bid->abi", z, z).mean(dim=-1)  # (V, V)
        v = gram.shape[0]
        return (gram.sum() - gram.diagonal().sum()) / (v * (v - 1))
