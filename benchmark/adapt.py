"""Adapt recordings to what an encoder consumes (leads, sampling rate, window length).

Records are resampled with :func:`scipy.signal.resample_poly` (polyphase, anti-aliased),
then cut into non-overlapping windows of the encoder's length; a record shorter than one
window is zero-padded at the end. Every step taken is described in a dict that is stored
with each result, so a table can say exactly what its encoder saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ecgbench.api import InputSpec, NotApplicable, Recordings

_CHUNK = 256  # records per resampling chunk, to bound memory on 12-lead data


@dataclass
class Adapted:
    windows: np.ndarray  # (N, W, leads, n_samples) float32
    description: dict

    @property
    def n_windows(self) -> int:
        return self.windows.shape[1]


def lead_indices(recordings: Recordings, leads: tuple[str, ...]) -> list[int]:
    missing = [lead for lead in leads if lead not in recordings.lead_names]
    if missing:
        raise NotApplicable(
            f"{recordings.name}: the encoder needs leads {missing} which the dataset lacks "
            f"(it has {list(recordings.lead_names)})"
        )
    return [recordings.lead_names.index(lead) for lead in leads]


def resample(x: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Polyphase resampling along the last axis."""
    if fs_in == fs_out:
        return np.asarray(x, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(fs_out, fs_in)
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def adapt(recordings: Recordings, spec: InputSpec) -> Adapted:
    leads = lead_indices(recordings, spec.leads)
    chunks = [
        resample(np.asarray(recordings.signals[start : start + _CHUNK, leads, :]), recordings.fs, spec.fs)
        for start in range(0, len(recordings), _CHUNK)
    ]
    signals = np.concatenate(chunks)  # (N, leads, T')
    length = signals.shape[-1]
    if length >= spec.n_samples:
        n_windows = length // spec.n_samples
        dropped = length - n_windows * spec.n_samples
        signals = signals[..., : n_windows * spec.n_samples]
        padded = 0
    else:
        n_windows, dropped, padded = 1, 0, spec.n_samples - length
        signals = np.pad(signals, ((0, 0), (0, 0), (0, padded)))
    n, n_leads = signals.shape[:2]
    windows = signals.reshape(n, n_leads, n_windows, spec.n_samples).transpose(0, 2, 1, 3)
    description = {
        "leads": list(spec.leads),
        "resample": f"{recordings.fs} Hz -> {spec.fs} Hz (scipy.signal.resample_poly)"
        if recordings.fs != spec.fs
        else "none",
        "window_samples": spec.n_samples,
        "windows_per_record": n_windows,
        "samples_dropped_at_end": dropped,
        "zero_padded_samples": padded,
    }
    return Adapted(np.ascontiguousarray(windows, dtype=np.float32), description)
