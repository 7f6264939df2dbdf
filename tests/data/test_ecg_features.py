"""Classical ECG features per record (benchmark/data/ecg_features.py): known signals, an
independent HRV implementation, the fill rule, and the cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.contracts import STANDARD_LEADS, InputSpec, Recordings
from ecgbench.data import ecg_features
from ecgbench.data.ecg_features import BANDS_HZ, LEAD_STATISTICS, RHYTHM, columns, feature_table, record_features

FS = 250


def _ecg(heart_rate: int = 70, seconds: int = 10, fs: int = FS, seed: int = 0) -> np.ndarray:
    """12 leads, lead II a simulated ECG (neurokit2), lead I half of it, the rest flat."""
    import neurokit2 as nk

    lead_ii = nk.ecg_simulate(duration=seconds, sampling_rate=fs, heart_rate=heart_rate, random_state=seed)
    signal = np.zeros((12, seconds * fs))
    signal[1], signal[0] = lead_ii, 0.5 * lead_ii
    return signal


def _row(signal: np.ndarray, fs: int = FS, leads: tuple[str, ...] = STANDARD_LEADS) -> dict[str, float]:
    table = feature_table([signal], fs, leads, n_jobs=1)
    return dict(zip(columns(InputSpec(leads, fs, signal.shape[1])), table[0]))


def test_columns_per_lead_rhythm_intervals_and_beats():
    names = columns(InputSpec(STANDARD_LEADS, 100, 250))
    assert len(names) == 12 * len(LEAD_STATISTICS) + len(RHYTHM) + 5 + 12 * 2 + 1 == 171
    assert names[-1] == "n_filled" and len(set(names)) == len(names)
    assert len(columns(InputSpec(("II",), 100, 1000))) == len(LEAD_STATISTICS) + len(RHYTHM) + 5 + 2 + 1


def test_a_simulated_ecg_measures_its_rate_intervals_and_amplitudes():
    row = _row(_ecg(70))
    assert row["heart_rate_bpm"] == pytest.approx(70, abs=3)
    assert row["beats_per_10s"] == pytest.approx(70 / 6, abs=1.5)
    assert 100 <= row["pr_ms"] <= 250 and 60 <= row["qrs_ms"] <= 200 and 300 <= row["qt_ms"] <= 500
    assert row["II_qrs_p2p"] > 0.5 and row["II_t_amplitude"] > 0.05  # an upright T wave
    assert row["I_qrs_p2p"] == pytest.approx(0.5 * row["II_qrs_p2p"], rel=1e-6)  # lead I is half of II
    faster = _row(_ecg(100))
    assert faster["heart_rate_bpm"] == pytest.approx(100, abs=4) and faster["rr_mean_ms"] < row["rr_mean_ms"]


def test_rr_variability_matches_neurokit2_hrv_time():
    """An independent implementation of the same statistics on the same R peaks."""
    import neurokit2 as nk

    signal = _ecg(75, seconds=60, seed=3)
    peaks = ecg_features.r_peaks(signal, FS, STANDARD_LEADS)
    ours = dict(zip(RHYTHM, ecg_features.rhythm(peaks, FS, signal.shape[1])))
    theirs = nk.hrv_time(peaks, sampling_rate=FS).iloc[0]
    assert ours["rr_mean_ms"] == pytest.approx(theirs["HRV_MeanNN"], rel=1e-9)
    assert ours["sdnn_ms"] == pytest.approx(theirs["HRV_SDNN"], rel=1e-9)
    assert ours["rmssd_ms"] == pytest.approx(theirs["HRV_RMSSD"], rel=1e-9)
    assert ours["rr_cv"] == pytest.approx(theirs["HRV_CVNN"], rel=1e-9)
    assert ours["pnn50"] * 100 == pytest.approx(theirs["HRV_pNN50"], rel=1e-9)
    assert (ours["rr_min_ms"], ours["rr_max_ms"]) == pytest.approx((theirs["HRV_MinNN"], theirs["HRV_MaxNN"]))


@pytest.mark.parametrize("hertz, band", [(0.2, 0), (2.0, 1), (10.0, 2), (25.0, 3)])
def test_a_sine_puts_its_power_in_its_band_and_its_moments_are_known(hertz, band):
    t = np.arange(20 * FS) / FS
    signal = 2.0 * np.sin(2 * np.pi * hertz * t)[None, :]
    stats = dict(zip(LEAD_STATISTICS, ecg_features.lead_statistics(signal, FS)[0]))
    powers = [stats[f"log_power_{low:g}_{high:g}hz"] for low, high in BANDS_HZ]
    assert int(np.argmax(powers)) == band
    assert stats["mean"] == pytest.approx(0, abs=0.01) and stats["std"] == pytest.approx(2 / np.sqrt(2), rel=0.01)
    assert stats["skew"] == pytest.approx(0, abs=0.05) and stats["kurtosis"] == pytest.approx(-1.5, abs=0.05)
    if hertz <= 10:  # at 25 Hz the 10 samples per period miss the sine's crest
        assert stats["p95"] == pytest.approx(2 * np.sin(np.pi / 2 * 0.9), abs=0.02)


def test_what_cannot_be_measured_is_filled_and_counted_never_raised():
    table = feature_table([np.zeros((12, 10 * FS)), _ecg(70)], FS, STANDARD_LEADS, n_jobs=1)
    assert np.isfinite(table).all() and table.dtype == np.float32
    flat = dict(zip(columns(InputSpec(STANDARD_LEADS, FS, 10 * FS)), table[0]))
    assert flat["heart_rate_bpm"] == RHYTHM["heart_rate_bpm"] and flat["qt_ms"] == 400.0
    assert flat["II_qrs_p2p"] == 0.0
    # 12 leads x (skew, kurtosis) + 9 rhythm + 5 intervals + 12 leads x 2 beat amplitudes
    assert flat["n_filled"] == 24 + 9 + 5 + 24
    assert table[1, -1] < flat["n_filled"]


def _recordings() -> Recordings:
    signals = np.stack([_ecg(rate, seconds=10, fs=500) for rate in (60, 80, 100)]).astype(np.float32)
    meta = pd.DataFrame({"record_id": ["a", "b", "c"], "patient_id": range(3), "split": ["train", "val", "test"]})
    return Recordings("toy", "1", signals, meta, 500, STANDARD_LEADS)


def test_record_features_are_measured_once_per_record_and_cached(tmp_path, monkeypatch):
    data, spec = _recordings(), InputSpec(STANDARD_LEADS, 100, 250)
    calls = []
    original = ecg_features.ecg_features
    monkeypatch.setattr(ecg_features, "ecg_features",
                        lambda s, fs, leads: calls.append(s.shape) or original(s, fs, leads))
    first = record_features(data, spec, tmp_path, n_jobs=1)
    assert first.shape == (3, 171) and calls == [(12, 1000)] * 3  # the whole record at 100 Hz
    rate = columns(spec).index("heart_rate_bpm")
    assert first[:, rate] == pytest.approx([60, 80, 100], abs=4)
    again = record_features(data, spec, tmp_path, n_jobs=1)
    assert len(calls) == 3 and np.array_equal(first, again)
    assert len(list(tmp_path.glob("ecg-features-toy-1-*-x1.npz"))) == 1


def test_the_method_embeds_the_cached_columns_and_measures_windows_without_them(tmp_path):
    import torch

    from ecgbench.core.registry import METHODS

    cls = METHODS.get("ecg-features")
    method = cls(cls.Config(n_samples=1000))
    data = _recordings()
    table = method.derive_inputs(data, tmp_path)
    windows = torch.from_numpy(np.stack([ecg_features_input(data, i) for i in range(3)]))
    given = method.embed(windows, features=torch.from_numpy(table))
    assert torch.equal(given, torch.from_numpy(table))
    assert torch.allclose(method.embed(windows), given, atol=1e-4)  # the same measurement, on the window


def ecg_features_input(data: Recordings, index: int) -> np.ndarray:
    """Record ``index`` at the method's input: 12 leads at 100 Hz, one 10 s window."""
    from scipy.signal import resample_poly

    return resample_poly(data.signals[index], 1, 5, axis=-1).astype(np.float32)
