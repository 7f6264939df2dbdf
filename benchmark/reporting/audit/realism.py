"""How ECG-like a set of recordings looks, measured by one fixed piece of code (heart rate,
lead II and V2 peak-to-peak voltage, power below 0.5 Hz and above 40 Hz, beat-to-beat
correlation), so the synthetic suite and real samples compare like for like."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgbench.core.contracts import STANDARD_LEADS

REALISM_FIGURES = ("heart_rate_bpm", "lead_ii_p2p_mv", "v2_p2p_mv", "power_below_0p5hz",
                   "power_above_40hz", "beat_correlation")


def r_peaks(lead: np.ndarray, fs: int) -> np.ndarray:
    import neurokit2 as nk

    cleaned = nk.ecg_clean(lead, sampling_rate=fs)
    _, info = nk.ecg_peaks(cleaned, sampling_rate=fs)
    return np.asarray(info["ECG_R_Peaks"], dtype=int)


def _band_power_shares(signal: np.ndarray, fs: int) -> tuple[float, float]:
    """Share of (mean-removed) power below 0.5 Hz and above 40 Hz, all leads together."""
    from scipy.signal import welch

    freqs, psd = welch(signal - signal.mean(-1, keepdims=True), fs=fs, nperseg=min(signal.shape[-1], 8 * fs))
    total = psd.sum()
    return float(psd[:, freqs < 0.5].sum() / total), float(psd[:, freqs > 40].sum() / total)


def _peak_to_peak(lead: np.ndarray, fs: int) -> float:
    """Robust peak-to-peak (0.5th to 99.5th percentile) after a 0.5 Hz high-pass."""
    from scipy.signal import butter, sosfiltfilt

    filtered = sosfiltfilt(butter(2, 0.5, "highpass", fs=fs, output="sos"), lead)
    low, high = np.percentile(filtered, [0.5, 99.5])
    return float(high - low)


def _beat_correlation(lead: np.ndarray, peaks: np.ndarray, fs: int) -> float:
    """Median correlation of each beat (-0.25 .. +0.45 s around R) with the median beat."""
    before, after = int(0.25 * fs), int(0.45 * fs)
    inside = peaks[(peaks >= before) & (peaks + after <= len(lead))]
    if len(inside) < 3:
        return float("nan")
    beats = np.stack([lead[p - before:p + after] for p in inside])
    template = np.median(beats, 0)
    return float(np.median([np.corrcoef(beat, template)[0, 1] for beat in beats]))


def record_figures(signal: np.ndarray, fs: int, lead_names: tuple[str, ...] = STANDARD_LEADS) -> dict[str, float]:
    """The realism figures of one 12-lead record ``(leads, T)`` in mV."""
    ii, v2 = signal[lead_names.index("II")], signal[lead_names.index("V2")]
    peaks = r_peaks(ii, fs)
    rate = 60.0 * fs / np.median(np.diff(peaks)) if len(peaks) > 2 else float("nan")
    low, high = _band_power_shares(signal, fs)
    return {"heart_rate_bpm": float(rate), "lead_ii_p2p_mv": _peak_to_peak(ii, fs),
            "v2_p2p_mv": _peak_to_peak(v2, fs), "power_below_0p5hz": low, "power_above_40hz": high,
            "beat_correlation": _beat_correlation(ii, peaks, fs)}


def realism(signals: np.ndarray, fs: int, lead_names: tuple[str, ...] = STANDARD_LEADS) -> dict[str, float]:
    """Median of each realism figure over records ``(N, leads, T)`` (mV)."""
    rows = [record_figures(np.asarray(record, dtype=np.float64), fs, lead_names) for record in signals]
    return {name: float(np.nanmedian([row[name] for row in rows])) for name in REALISM_FIGURES}


def real_cinc_samples(folder: str | Path) -> tuple[np.ndarray, int]:
    """The 12-lead records of a flat folder of CinC 2021 ``.hea``/``.mat`` pairs, first 10 s at
    their own rate (all must share it): ``(N, 12, T)`` mV and fs."""
    from ecgbench.data.datasets.cinc2021 import read_header, read_signal

    headers = [(path, read_header(path)) for path in sorted(Path(folder).glob("*.hea"))]
    rates = {int(round(h.fs)) for _, h in headers}
    if len(rates) != 1:
        raise ValueError(f"{folder}: records at several sampling rates {sorted(rates)}")
    fs = rates.pop()
    records = [read_signal(path, h)[:, :10 * fs] for path, h in headers]
    length = min(r.shape[-1] for r in records)
    return np.stack([r[:, :length] for r in records]), fs


def realism_table(measured: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per figure, one column per measured set."""
    from tabulate import tabulate

    names = list(measured)
    rows = [[figure] + [f"{measured[n][figure]:.3g}" for n in names] for figure in REALISM_FIGURES]
    return tabulate(rows, headers=["figure", *names], tablefmt="github")
