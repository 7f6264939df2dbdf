"""Classical ECG features per record: what a cardiologist's measurements and a feature pipeline
give without any learning, the baseline every representation must beat.

Per lead: mean, standard deviation, skewness, kurtosis, the 5th, 50th and 95th percentiles and
the log band power in 0-0.5 (baseline wander), 0.5-5 (P and T waves, rhythm), 5-15 (QRS) and
15-40 Hz (sharp QRS, noise) from a Welch spectrum (scipy.signal). Rhythm, from the R peaks of
lead II (the only lead of a single-lead input): heart rate, mean, minimum and maximum RR, SDNN,
RMSSD, the RR coefficient of variation and pNN50 (neurokit2's ``ecg_peaks`` and ``hrv_time``),
and beats per 10 s. Intervals and axis: PR, QRS, QT, QTc and the frontal QRS axis of
:mod:`ecgbench.data.clinical` (neurokit2's DWT delineation). Per lead, from the median beat
around those R peaks: the QRS peak-to-peak amplitude (R +- 60 ms) and the T-wave amplitude
(the largest deflection 150-400 ms after R from the PR baseline, 250-150 ms before R).

A value that cannot be measured (a flat or beatless signal, a failed delineation) is filled:
rhythm and intervals by a typical adult value, statistics and amplitudes by 0, and the last
column counts the filled values, so a model can tell measured from filled. On non-ECG channels
(UCI HAR's accelerometers) only the statistics and band powers carry information. Tables are
measured once per record and cached (:mod:`ecgbench.data.record_tables`).
"""

from __future__ import annotations

import warnings

import numpy as np

from ecgbench.core.contracts import InputSpec
from ecgbench.data.clinical import FIELDS as CLINICAL_FIELDS
from ecgbench.data.clinical import TYPICAL_VALUES as CLINICAL_TYPICAL
from ecgbench.data.clinical import cleaned_r_peaks, parameters_from_peaks
from ecgbench.data.record_tables import Extractor, map_rows, record_table

EXTRACTOR_VERSION = 1  # bump when a measurement changes: it is part of every cache key
BANDS_HZ: tuple[tuple[float, float], ...] = ((0.0, 0.5), (0.5, 5.0), (5.0, 15.0), (15.0, 40.0))
LEAD_STATISTICS = ("mean", "std", "skew", "kurtosis", "p5", "p50", "p95",
                   *(f"log_power_{low:g}_{high:g}hz" for low, high in BANDS_HZ))
RHYTHM: dict[str, float] = {  # name -> typical adult value, used where it cannot be measured
    "heart_rate_bpm": 75.0, "rr_mean_ms": 800.0, "rr_min_ms": 750.0, "rr_max_ms": 850.0, "sdnn_ms": 40.0,
    "rmssd_ms": 30.0, "rr_cv": 0.05, "pnn50": 0.1, "beats_per_10s": 12.5,
}
INTERVALS = tuple(name for name in CLINICAL_FIELDS if name != "heart_rate_bpm")  # PR, QRS, QT, QTc, axis
BEAT = ("qrs_p2p", "t_amplitude")
BEAT_WINDOWS_S = {"qrs": (-0.06, 0.06), "t": (0.15, 0.40), "baseline": (-0.25, -0.15)}


def columns(spec: InputSpec) -> tuple[str, ...]:
    leads = tuple(spec.leads)
    return (*(f"{lead}_{name}" for lead in leads for name in LEAD_STATISTICS), *RHYTHM, *INTERVALS,
            *(f"{lead}_{name}" for lead in leads for name in BEAT), "n_filled")


def lead_statistics(signal: np.ndarray, fs: float) -> np.ndarray:
    """(leads, T) -> (leads, 11): moments, percentiles and log band powers of each lead."""
    from scipy import signal as sps
    from scipy import stats

    x = np.asarray(signal, dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on the moments of a constant lead (NaN, filled later)
        moments = np.stack([x.mean(axis=1), x.std(axis=1), stats.skew(x, axis=1), stats.kurtosis(x, axis=1)], axis=1)
    percentiles = np.percentile(x, [5, 50, 95], axis=1).T
    frequencies, power = sps.welch(x, fs=fs, nperseg=min(x.shape[1], int(8 * fs)), axis=1)
    step = frequencies[1] - frequencies[0] if len(frequencies) > 1 else 1.0
    bands = np.stack([power[:, (frequencies >= low) & (frequencies < high)].sum(axis=1) * step
                      for low, high in BANDS_HZ], axis=1)
    return np.concatenate([moments, percentiles, np.log10(bands + 1e-12)], axis=1)


def r_peaks(signal: np.ndarray, fs: float, leads: tuple[str, ...]) -> np.ndarray:
    """Sample indices of the R peaks of lead II (else the first lead); empty if none are found."""
    found = cleaned_r_peaks(signal[leads.index("II") if "II" in leads else 0], fs)
    return np.zeros(0, dtype=int) if found is None else found[1]


def rhythm(peaks: np.ndarray, fs: float, n_samples: int) -> np.ndarray:
    """RR statistics of the R peaks (NaN where fewer than three beats)."""
    out = np.full(len(RHYTHM), np.nan)
    if len(peaks) < 3:
        return out
    rr = np.diff(peaks) / fs * 1000.0  # ms
    successive = np.abs(np.diff(rr))
    out[:] = (60_000.0 / np.median(rr), rr.mean(), rr.min(), rr.max(), rr.std(ddof=1),
              np.sqrt(np.mean(successive**2)), rr.std(ddof=1) / rr.mean(), np.mean(successive > 50.0),
              len(peaks) / (n_samples / fs) * 10.0)
    return out


def beat_amplitudes(signal: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """(leads, T) -> (leads, 2): QRS peak-to-peak and T-wave amplitude of each lead's median beat."""
    out = np.full((signal.shape[0], len(BEAT)), np.nan)
    offsets = {name: (int(round(a * fs)), int(round(b * fs))) for name, (a, b) in BEAT_WINDOWS_S.items()}
    start, stop = offsets["baseline"][0], offsets["t"][1]
    peaks = peaks[(peaks + start >= 0) & (peaks + stop < signal.shape[1])]
    if len(peaks) < 2:
        return out
    beats = np.stack([signal[:, p + start: p + stop + 1] for p in peaks])  # (beats, leads, window)
    median = np.median(beats, axis=0)  # (leads, window)

    def part(name: str) -> np.ndarray:
        a, b = offsets[name]
        return median[:, a - start: b - start + 1]

    baseline = np.median(part("baseline"), axis=1, keepdims=True)
    qrs, t_wave = part("qrs"), part("t") - baseline
    out[:, 0] = qrs.max(axis=1) - qrs.min(axis=1)
    out[:, 1] = t_wave[np.arange(len(t_wave)), np.abs(t_wave).argmax(axis=1)]
    return out


def ecg_features(signal: np.ndarray, fs: float, leads: tuple[str, ...]) -> np.ndarray:
    """(leads, T) -> one row of :func:`columns` without ``n_filled``; NaN where not measurable."""
    signal = np.asarray(signal, dtype=np.float64)
    found = cleaned_r_peaks(signal[leads.index("II") if "II" in leads else 0], fs)  # detected once, used twice
    peaks = np.zeros(0, dtype=int) if found is None else found[1]
    clinical = (parameters_from_peaks(signal, fs, leads, found) if "II" in leads
                else np.full(len(CLINICAL_FIELDS), np.nan))
    intervals = np.asarray([value for name, value in zip(CLINICAL_FIELDS, clinical) if name != "heart_rate_bpm"])
    return np.concatenate([lead_statistics(signal, fs).ravel(), rhythm(peaks, fs, signal.shape[1]), intervals,
                           beat_amplitudes(signal, peaks, fs).ravel()])


def fill_values(n_leads: int) -> np.ndarray:
    """What a value that cannot be measured becomes, column by column (``n_filled`` excluded)."""
    typical_intervals = [value for name, value in zip(CLINICAL_FIELDS, CLINICAL_TYPICAL) if name != "heart_rate_bpm"]
    return np.concatenate([np.zeros(n_leads * len(LEAD_STATISTICS)), list(RHYTHM.values()), typical_intervals,
                           np.zeros(n_leads * len(BEAT))])


def feature_table(signals: list[np.ndarray], fs: float, leads: tuple[str, ...], n_jobs: int = -1) -> np.ndarray:
    """One (leads, T_i) signal per row -> (rows, columns): missing values filled, then counted."""
    values = np.stack(map_rows(ecg_features, list(signals), fs, leads, n_jobs))
    missing = ~np.isfinite(values)
    filled = np.where(missing, fill_values(len(leads))[None, :], values)
    return np.concatenate([filled, missing.sum(axis=1, keepdims=True)], axis=1).astype(np.float32)


ECG_FEATURES = Extractor("ecg-features", EXTRACTOR_VERSION, columns, feature_table)


def record_features(data, spec: InputSpec, cache_dir, n_jobs: int = -1) -> np.ndarray:
    """(N, columns) ECG features of every record of ``data`` as ``spec`` adapts it, each record
    measured once per dataset version and input spec."""
    return record_table(data, spec, cache_dir, ECG_FEATURES, n_jobs)
