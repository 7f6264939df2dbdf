"""Classical ECG features: the baseline a learned representation has to beat.

Not a method from a paper: a control row, as random-init is. Where random-init shows what an
untrained architecture and the probes give, this row shows what plain measurements give: the
per-lead amplitude statistics and band powers, rate and heart-rate variability, PR, QRS, QT,
QTc, the frontal axis and the QRS and T amplitudes of the median beat that cardiologists and
ECG feature pipelines use (neurokit2 and scipy.signal; the full list and its fill rules are in
:mod:`ecgbench.data.ecg_features`). Each record is measured once, on the whole record at the
input below, and cached beside the datasets; the probes then fit on these columns exactly as
they fit on any encoder's embeddings (a scaler in every probe's pipeline), so the row is
compared like for like with every other.

``ecg-features`` takes random-init's input (12 leads, 100 Hz); ``ecg-features-lead2`` takes
random-init-lead2's (lead II at NERULA's rate and window), for single-lead datasets and
per-channel tasks (on UCI HAR's accelerometer channels only the statistics and band powers
measure anything).

Departures:
- None (no paper); flagged in every table as a control through ``needs_training = False``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ecgbench.core.contracts import STANDARD_LEADS, Recordings
from ecgbench.data.ecg_features import columns, feature_table, record_features
from ecgbench.methods.nerula import NerulaConfig
from ecgbench.methods.nerula_comparisons import NERULA_INPUT
from ecgbench.models.method import Method, MethodConfig


class FeatureColumns(nn.Module):
    """The 'encoder' of a feature baseline: a record's measured columns, passed through."""

    def __init__(self, n_columns: int):
        super().__init__()
        self.embedding_dim = n_columns

    def forward(self, x: Tensor, features: Tensor) -> Tensor:
        return features.float()  # (B, n_columns)


class EcgFeatures(Method):
    """Control row: classical ECG features (statistics, band powers, rate and HRV, intervals, beat amplitudes)."""

    name = "ecg-features"
    version = 1
    paper = "control: classical ECG features, no learning"
    needs_training = False
    derived_input = "features"

    @dataclass
    class Config(MethodConfig):
        leads: tuple[str, ...] = STANDARD_LEADS
        fs: int = 100
        n_samples: int = 250
        max_steps: int = 0

    presets = {"smoke": {"max_steps": 0}, "cpu": {"max_steps": 0}}

    def __init__(self, config: Config):
        super().__init__(config)
        self.encoder = FeatureColumns(len(columns(self.input_spec)))

    def training_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Nothing to learn: a constant zero loss without gradient."""
        return {"loss": torch.zeros((), device=batch["signal"].device)}

    def derive_inputs(self, data: Recordings, cache_dir: Path) -> np.ndarray:
        return record_features(data, self.input_spec, cache_dir)

    @torch.no_grad()
    def embed(self, x: Tensor, features: Tensor | None = None) -> Tensor:
        """(B, leads, T) and the windows' records' features -> (B, columns). The runner passes
        the cached per-record features; without them the windows themselves are measured."""
        if features is None:
            windows = list(x.detach().float().cpu().numpy())
            features = torch.from_numpy(feature_table(windows, self.config.fs, tuple(self.config.leads), n_jobs=1))
        return self.encoder(x, features.to(x.device))


class EcgFeaturesLeadII(EcgFeatures):
    """Control row for single-lead methods: classical features of lead II (random-init-lead2's input)."""

    name = "ecg-features-lead2"
    version = 1

    @dataclass
    class Config(EcgFeatures.Config):
        leads: tuple[str, ...] = NerulaConfig.leads
        fs: int = NerulaConfig.fs
        n_samples: int = NerulaConfig.n_samples

    presets = {preset: {**EcgFeatures.presets[preset], **NERULA_INPUT[preset]} for preset in NERULA_INPUT}
