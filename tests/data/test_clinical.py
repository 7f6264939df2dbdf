"""Clinical ECG parameters per record, measured once and cached (benchmark/data/clinical.py, benchmark/data/record_tables.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.contracts import InputSpec, Recordings
from ecgbench.data import clinical, record_tables
from ecgbench.data.clinical import (
    FIELDS,
    N_COLUMNS,
    TYPICAL_VALUES,
    cache_path,
    clinical_features,
    clinical_parameters,
    record_features,
)

LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


def _simulated(heart_rate: int = 70, seconds: int = 10, fs: int = 250) -> np.ndarray:
    import neurokit2 as nk

    lead_ii = nk.ecg_simulate(duration=seconds, sampling_rate=fs, heart_rate=heart_rate, random_state=0)
    signal = np.zeros((8, seconds * fs))
    signal[1] = lead_ii
    signal[0] = 0.5 * lead_ii  # lead I: aVF = II - I / 2 = 0.75 II
    return signal


def test_clinical_parameters_of_a_simulated_ecg():
    values = dict(zip(FIELDS, clinical_parameters(_simulated(70), 250, LEADS)))
    assert values["heart_rate_bpm"] == pytest.approx(70, abs=3)
    assert 100 <= values["pr_ms"] <= 250 and 60 <= values["qrs_ms"] <= 200
    assert 300 <= values["qt_ms"] <= 500
    rr = 60 / values["heart_rate_bpm"]
    assert values["qtc_ms"] == pytest.approx(values["qt_ms"] / math.sqrt(rr))
    # net QRS in I is 0.5 n and in aVF 0.75 n: the axis is atan2(0.75, 0.5) for positive n
    assert values["qrs_axis_deg"] == pytest.approx(math.degrees(math.atan2(0.75, 0.5)), abs=0.01)


def test_failed_delineation_is_filled_and_counted_never_raised():
    features = clinical_features([np.zeros((8, 2500)), _simulated(70)], 250, LEADS)
    assert features.shape == (2, N_COLUMNS) and np.isfinite(features).all()
    assert features[0, :-1].tolist() == list(TYPICAL_VALUES) and features[0, -1] == 6
    assert features[1, -1] == 0
    assert np.isnan(clinical_parameters(np.zeros((2, 2500)), 250, ("I", "V1"))).all()


def _recordings(tmp_version: str = "v1") -> Recordings:
    # Four 20 s records at 500 Hz with 12 leads: II at 60, 70, 80 bpm and one flat line.
    signals = np.zeros((4, 12, 10_000), dtype=np.float32)
    lead_names = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    for i, rate in enumerate((60, 70, 80)):
        s = _simulated(rate, seconds=20, fs=500)
        signals[i, 0], signals[i, 1] = s[0], s[1]
    meta = pd.DataFrame({"record_id": [f"r{i}" for i in range(4)], "patient_id": range(4),
                         "split": ["train", "train", "val", "test"]})
    return Recordings("toy", tmp_version, signals, meta, 500, lead_names)


def test_record_features_are_measured_once_per_record_and_read_back(tmp_path, monkeypatch):
    data = _recordings()
    spec = InputSpec(LEADS, 250, 2500)  # two 10 s windows per record, joined again to measure
    calls = []
    original = clinical.clinical_parameters
    monkeypatch.setattr(clinical, "clinical_parameters",
                        lambda s, fs, leads: calls.append(s.shape) or original(s, fs, leads))
    first = record_features(data, spec, tmp_path)
    assert first.shape == (4, N_COLUMNS) and first.dtype == np.float32
    assert calls == [(8, 5000)] * 4  # one measurement per record, on the whole record
    assert first[:3, 0] == pytest.approx([60, 70, 80], abs=3) and first[3, -1] == 6
    path = cache_path(data, spec, tmp_path)
    assert path.exists() and path.with_suffix(".json").exists()
    assert not list(tmp_path.glob("*.tmp*"))
    again = record_features(data, spec, tmp_path)
    assert len(calls) == 4 and np.array_equal(first, again)  # read back, not measured again
    # The key names what the table was built from: another version, content or spec.
    assert cache_path(_recordings("v2"), spec, tmp_path) != path
    assert cache_path(dataclasses.replace(data, fingerprint="abc"), spec, tmp_path) != path
    assert cache_path(data, InputSpec(LEADS, 500, 5000), tmp_path) != path
    assert f"x{clinical.EXTRACTOR_VERSION}" in path.name


def test_a_subset_measures_only_the_records_the_table_lacks(tmp_path, monkeypatch):
    data, spec = _recordings(), InputSpec(LEADS, 250, 2500)
    calls = []
    original = clinical.clinical_parameters
    monkeypatch.setattr(clinical, "clinical_parameters",
                        lambda s, fs, leads: calls.append(float(s[1].sum())) or original(s, fs, leads))
    rows = [2, 0]
    subset = dataclasses.replace(data, signals=data.signals[rows], meta=data.meta.iloc[rows].reset_index(drop=True))
    part = record_features(subset, spec, tmp_path, n_jobs=1)
    assert len(calls) == 2
    whole = record_features(data, spec, tmp_path, n_jobs=1)
    assert len(calls) == 4  # records 1 and 3 only
    assert np.array_equal(whole[rows], part)
    assert np.array_equal(whole, clinical_features(
        [np.concatenate([s[:, :2500], s[:, 2500:5000]], axis=-1) for s in _adapted_signals(data, spec)],
        250, LEADS, n_jobs=1))


def _adapted_signals(data, spec):
    from ecgbench.data.adapt import adapt

    adapted = adapt(data, spec)
    return [np.concatenate(list(w[v]), axis=-1) for w, v in zip(adapted.windows, adapted.valid)]


def test_a_truncated_cache_is_recomputed(tmp_path, caplog):
    data, spec = _recordings(), InputSpec(LEADS, 250, 2500)
    path = cache_path(data, spec, tmp_path)
    path.write_bytes(b"PK\x03\x04")  # a killed writer's leftover
    with caplog.at_level("WARNING"):
        features = record_features(data, spec, tmp_path, n_jobs=1)
    assert features.shape == (4, N_COLUMNS)
    with np.load(path) as table:
        assert table["features"].shape == (4, N_COLUMNS) and len(table["record_id"]) == 4
    assert "measuring again" in caplog.text


def test_many_records_are_measured_in_worker_processes_with_the_same_values():
    signals = [_simulated(rate, seconds=10) for rate in (60, 75, 90, 105)] * 4  # 16: the parallel path
    assert len(signals) >= record_tables.PARALLEL_FROM
    parallel = clinical_features(signals, 250, LEADS, n_jobs=2)
    assert np.array_equal(parallel, np.tile(clinical_features(signals[:4], 250, LEADS, n_jobs=1), (4, 1)))
