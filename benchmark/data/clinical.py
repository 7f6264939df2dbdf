"""Clinical ECG parameters per record: heart rate, PR, QRS, QT, QTc and the frontal QRS axis,
measured once per record with neurokit2 and cached on disk.

The parameters come from neurokit2's R-peak detection (``ecg_peaks``) and DWT delineation
(``ecg_delineate``) on lead II; QTc by Bazett; the axis from the net QRS deflections of leads
I and aVF (= II - I / 2). A parameter that cannot be measured (no beats found, delineation
error, or outside a plausible range) is filled with a typical adult value (75 bpm, 160, 95,
400, 410 ms, 45 degrees), and a last column counts the filled parameters, so a model can tell
measured from filled: :data:`N_COLUMNS` columns in all.

:func:`record_features` measures each record once, on the record as the encoder sees it, and
keeps the table by record id (:mod:`ecgbench.data.record_tables`, keyed by dataset, input spec
and :data:`EXTRACTOR_VERSION`). The runner keeps the table beside the datasets (the data root's
``derived`` folder), so every results folder shares it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from ecgbench.core.contracts import InputSpec, Recordings
from ecgbench.data.record_tables import Extractor, map_rows, record_table, table_path

EXTRACTOR_VERSION = 1  # bump when the measurement changes: it is part of every cache key
FIELDS: tuple[str, ...] = ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms", "qrs_axis_deg")
TYPICAL_VALUES: tuple[float, ...] = (75.0, 160.0, 95.0, 400.0, 410.0, 45.0)
PLAUSIBLE: tuple[tuple[float, float], ...] = ((20, 300), (60, 400), (40, 250), (200, 700),
                                              (200, 700), (-180, 180))
N_COLUMNS = len(FIELDS) + 1  # the parameters, then how many of them were filled


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


def cleaned_r_peaks(lead: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray] | None:
    """neurokit2's cleaned lead and its R peaks (sample indices); None where detection fails."""
    import neurokit2 as nk

    with warnings.catch_warnings():  # neurokit2 warns on short or noisy signals
        warnings.simplefilter("ignore")
        try:
            clean = nk.ecg_clean(np.asarray(lead, dtype=float), sampling_rate=int(fs))
            _, info = nk.ecg_peaks(clean, sampling_rate=int(fs))
        except Exception as error:  # noqa: BLE001 - no peaks is a missing value, never an error
            logging.getLogger(__name__).debug("R-peak detection failed: %s", error)
            return None
    return clean, np.asarray(info["ECG_R_Peaks"], dtype=int)


def clinical_parameters(signal: np.ndarray, fs: float, leads: tuple[str, ...]) -> np.ndarray:
    """(leads, T) -> (6,) heart rate, PR, QRS, QT, QTc, QRS axis; NaN where not measurable."""
    if "II" not in leads:
        return np.full(len(FIELDS), np.nan)
    return parameters_from_peaks(signal, fs, leads, cleaned_r_peaks(signal[leads.index("II")], fs))


def parameters_from_peaks(signal: np.ndarray, fs: float, leads: tuple[str, ...],
                          found: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """:func:`clinical_parameters` from lead II's :func:`cleaned_r_peaks` (``found``), for callers
    that detected them already."""
    import neurokit2 as nk

    out = np.full(len(FIELDS), np.nan)
    if found is None:
        return out
    clean, peaks = found
    peaks = peaks.astype(float)
    lead_ii = signal[leads.index("II")].astype(float)
    with warnings.catch_warnings():  # neurokit2 warns on short or noisy signals
        warnings.simplefilter("ignore")
        try:
            if len(peaks) < 2:
                return out
            rr = float(np.median(np.diff(peaks))) / fs  # seconds
            out[0] = 60.0 / rr
            if not PLAUSIBLE[0][0] <= out[0] <= PLAUSIBLE[0][1]:
                return np.full(len(FIELDS), np.nan)  # no rhythm: skip the delineation
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
        lead_i = signal[leads.index("I")].astype(float)
        net_i = _net_qrs(lead_i, r_on, r_off)
        net_avf = _net_qrs(lead_ii - lead_i / 2.0, r_on, r_off)
        if np.isfinite(net_i) and np.isfinite(net_avf) and (net_i or net_avf):
            out[5] = float(np.degrees(np.arctan2(net_avf, net_i)))
    for i, (low, high) in enumerate(PLAUSIBLE):
        if not low <= out[i] <= high:
            out[i] = np.nan
    return out


def clinical_features(signals: list[np.ndarray] | np.ndarray, fs: float,
                      leads: tuple[str, ...], n_jobs: int = -1) -> np.ndarray:
    """One (leads, T_i) signal per row -> (rows, 7): the six parameters with missing ones
    filled by typical values, then the number filled. Many rows run in parallel (worker processes)."""
    rows = map_rows(clinical_parameters, list(signals), fs, leads, n_jobs)
    values = np.stack(rows).reshape(len(signals), len(FIELDS))
    missing = np.isnan(values)
    filled = np.where(missing, np.asarray(TYPICAL_VALUES)[None, :], values)
    return np.concatenate([filled, missing.sum(axis=1, keepdims=True)], axis=1).astype(np.float32)


CLINICAL = Extractor("clinical", EXTRACTOR_VERSION, lambda spec: (*FIELDS, "n_filled"),
                     lambda signals, fs, leads, n_jobs: clinical_features(signals, fs, leads, n_jobs))


def cache_path(data: Recordings, spec: InputSpec, cache_dir: Path) -> Path:
    """The table of ``data``'s dataset (name, version, content fingerprint) for ``spec``."""
    return table_path(data, spec, cache_dir, CLINICAL)


def record_features(data: Recordings, spec: InputSpec, cache_dir: Path,
                    n_jobs: int = -1) -> np.ndarray:
    """(N, 7) clinical features of every record of ``data`` as ``spec`` adapts it, each record
    measured once per dataset version and input spec (:mod:`ecgbench.data.record_tables`)."""
    return record_table(data, spec, cache_dir, CLINICAL, n_jobs)
