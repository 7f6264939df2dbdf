"""The synthetic ECG suite: shape, determinism, cache, patient-wise splits, label mechanisms."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, find_peaks, sosfiltfilt

from ecgbench.core.config import ConfigError, short_hash
from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.data.datasets import synthetic

SMALL = {"n_patients": 60}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return synthetic.load(tmp_path_factory.mktemp("synthetic"), **SMALL)


def cache_folder(root, **options):
    opts = synthetic.SyntheticOptions(**options)
    return root / f"synthetic-v{opts.version}-{synthetic.options_hash(opts)}"


REAL_SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "cinc2021-samples"


def test_signals_shape_dtype_and_range(small):
    x = np.asarray(small.signals)
    assert x.shape == (len(small.meta), 12, 5000)
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    assert np.abs(x).max() < 10.0  # mV
    lead_std = x.std(axis=(0, 2))
    assert ((lead_std > 0.05) & (lead_std < 2.0)).all(), lead_std


def test_recordings_fields(small):
    opts = synthetic.SyntheticOptions(**SMALL)
    assert small.name == "synthetic"
    assert small.version == f"{synthetic.VERSION}-{synthetic.options_hash(opts)}"
    assert small.fs == 500
    assert small.lead_names == STANDARD_LEADS
    assert isinstance(small.signals, np.memmap)
    assert small.meta["record_id"].is_unique


def test_limb_leads_obey_einthoven(small):
    x = np.asarray(small.signals[:5], dtype=np.float64)
    i, ii, iii, avr, avl, avf = (x[:, k] for k in range(6))
    np.testing.assert_allclose(iii, ii - i, atol=1e-5)
    np.testing.assert_allclose(avr + avl + avf, 0, atol=1e-5)


def test_one_to_four_records_per_patient(small):
    counts = small.meta.groupby("patient_id").size()
    assert len(counts) == SMALL["n_patients"]
    assert counts.between(1, 4).all()


def test_splits_are_disjoint_by_patient(small):
    meta = small.meta
    assert set(meta["split"]) == {"train", "val", "test"}
    assert (meta.groupby("patient_id")["split"].nunique() == 1).all()
    patients = meta.groupby("split")["patient_id"].nunique()
    assert (patients["train"], patients["val"], patients["test"]) == (33, 9, 18)  # version 3: 55/15/30%


def test_every_label_present_and_norm_exclusive(small):
    meta = small.meta
    for name in synthetic.SUPERCLASSES:
        assert set(meta[name]) == {0, 1}, name
    others = meta[list(synthetic.SUPERCLASSES[1:])].sum(axis=1)
    assert ((meta["NORM"] == 1) == (others == 0)).all()
    assert set(meta["rhythm"]) == set(synthetic.RHYTHMS)
    assert set(meta["sex"]) == {0, 1}
    assert meta["age"].between(18, 90).all()


def test_rhythm_heart_rates_are_ordered(small):
    rate = small.meta.groupby("rhythm")["heart_rate"]
    assert rate.mean()["SBRAD"] < rate.mean()["SR"] < rate.mean()["STACH"]
    assert rate.max()["SBRAD"] < 60 < rate.min()["SR"]
    assert rate.max()["SR"] < 100 < rate.min()["STACH"]


def _rr_cv_from_signal(record: np.ndarray, fs: int) -> float:
    """R peaks from the 5-30 Hz energy summed over leads; coefficient of variation of RR."""
    sos = butter(2, [5, 30], "bandpass", fs=fs, output="sos")
    energy = np.abs(sosfiltfilt(sos, record, axis=1)).sum(0)
    peaks, _ = find_peaks(energy, distance=fs // 4, height=0.35 * np.percentile(energy, 99))
    rr = np.diff(peaks)
    return float(rr.std() / rr.mean())


def test_af_is_irregular(small):
    meta = small.meta
    generated = meta.groupby("rhythm")["rr_cv"].mean()
    assert generated["AF"] > 3 * generated["SR"]
    cv = {rhythm: np.mean([_rr_cv_from_signal(np.asarray(small.signals[i]), small.fs)
                           for i in np.flatnonzero(meta["rhythm"] == rhythm)[:12]])
          for rhythm in ("AF", "SR")}
    assert cv["AF"] > 3 * cv["SR"], cv


def test_deterministic_per_seed(small, tmp_path):
    again = synthetic.load(tmp_path, **SMALL)
    np.testing.assert_array_equal(np.asarray(again.signals), np.asarray(small.signals))
    assert again.meta.equals(small.meta)
    other = synthetic.load(tmp_path, n_patients=60, seed=1)
    assert other.version != small.version
    assert not np.array_equal(np.asarray(other.signals[:3]), np.asarray(small.signals[:3]))


def test_string_options_are_coerced(tmp_path):
    from_cli = synthetic.load(tmp_path, n_patients="8")
    assert from_cli.version == synthetic.load(tmp_path, n_patients=8).version


def test_unknown_option_raises(tmp_path):
    with pytest.raises(ConfigError, match="n_patients"):
        synthetic.load(tmp_path, n_patient=10)


def test_cache_is_reused(tmp_path, monkeypatch):
    first = synthetic.load(tmp_path, n_patients=10)

    def fail(*args, **kwargs):
        raise AssertionError("regenerated a complete cache")

    monkeypatch.setattr(synthetic, "_generate_to", fail)
    start = time.perf_counter()
    second = synthetic.load(tmp_path, n_patients=10)
    assert time.perf_counter() - start < 1.0
    np.testing.assert_array_equal(np.asarray(second.signals), np.asarray(first.signals))


def test_interrupted_cache_is_regenerated(tmp_path):
    fresh = synthetic.load(tmp_path / "a", n_patients=10)
    folder = cache_folder(tmp_path / "b", n_patients=10)
    synthetic.load(tmp_path / "b", n_patients=10)
    (folder / "done.json").unlink()  # as if killed before the marker was written
    np.save(folder / "signals.npy", np.zeros((2, 12, 10), np.float32))
    stale = folder / "signals.tmp-999999999.npy"  # a temp file of a dead process
    stale.write_bytes(b"half written")
    again = synthetic.load(tmp_path / "b", n_patients=10)
    np.testing.assert_array_equal(np.asarray(again.signals), np.asarray(fresh.signals))
    assert json.loads((folder / "done.json").read_text())["records"] == len(fresh.meta)
    assert not stale.exists()


def test_patient_attributes_shift_physiology(small):
    meta = small.meta
    assert np.corrcoef(meta["age"], meta["pr_ms"].clip(upper=200))[0, 1] > 0.2
    assert meta.loc[meta["sex"] == 1, "qtc_ms"].mean() > meta.loc[meta["sex"] == 0, "qtc_ms"].mean()


def test_default_size(tmp_path):
    recordings = synthetic.load(tmp_path)
    meta = recordings.meta
    assert recordings.signals.shape[1:] == (12, 5000)
    assert len(meta) >= 2000
    assert meta["patient_id"].nunique() >= 600
    prevalence = meta[list(synthetic.SUPERCLASSES)].mean()
    for name, prior in {"NORM": 0.4, "MI": 0.25, "STTC": 0.25, "CD": 0.2, "HYP": 0.12}.items():
        assert abs(prevalence[name] - prior) < 0.05, prevalence
    rhythm = meta["rhythm"].value_counts(normalize=True)
    for name, prior in {"SR": 0.6, "AF": 0.15, "SBRAD": 0.12, "STACH": 0.13}.items():
        assert abs(rhythm[name] - prior) < 0.05, rhythm
    fractions = meta.groupby("split")["patient_id"].nunique() / meta["patient_id"].nunique()
    assert fractions["train"] == pytest.approx(0.55, abs=0.01) and fractions["test"] == pytest.approx(0.3, abs=0.01)


# ----- versions -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    return synthetic.load(tmp_path_factory.mktemp("synthetic-v2"), version=2, **SMALL)


def test_version_4_is_the_default(small):
    assert synthetic.VERSION == "4" and small.version.startswith("4-")


def test_versions_1_and_2_keep_their_keys(v2, tmp_path):
    """The keys results of versions 1 and 2 carry: the hash of the options as they were before
    the split fractions became version defaults (and, for version 1, before versions existed)."""
    before = {"n_patients": 60, "max_records_per_patient": 4, "seed": 0, "fs": 500, "seconds": 10,
              "train_fraction": 0.7, "val_fraction": 0.15, "noise": 1.0, "effect": 1.0, "individuality": 1.0}
    assert v2.version == f"2-{short_hash(before)}"
    assert synthetic.load(tmp_path, version=2, **SMALL, train_fraction=0.7).version == v2.version
    assert (v2.meta.groupby("split")["patient_id"].nunique()["train"]) == 42


def test_version_2_and_version_1_stay_selectable(v2, tmp_path):
    small = v2
    old = synthetic.load(tmp_path, version="1", **SMALL)  # as --set data.version=1 passes it
    # the key version-1 results carry: the hash of the options as they were before versions existed
    before = {"n_patients": 60, "max_records_per_patient": 4, "seed": 0, "fs": 500, "seconds": 10,
              "train_fraction": 0.7, "val_fraction": 0.15, "noise": 1.0, "effect": 1.0, "individuality": 1.0}
    assert old.version == f"1-{short_hash(before)}" == "1-f48e169697d6"
    assert synthetic.load(tmp_path, version=1, **SMALL).version == old.version
    assert (tmp_path / f"synthetic-v1-{old.version[2:]}").is_dir()
    assert "lead_swap" not in old.meta and "lead_swap" in small.meta
    assert not np.array_equal(np.asarray(old.signals[:2]), np.asarray(small.signals[:2]))
    # the labels are drawn from the same stream: only the signals and nuisances changed
    assert old.meta[list(synthetic.SUPERCLASSES)].equals(small.meta[list(synthetic.SUPERCLASSES)])


def test_unknown_version_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^data.version=5: must be one of 1, 2, 3, 4$"):
        synthetic.load(tmp_path, version="5", n_patients=5)


@pytest.fixture(scope="module")
def v3(tmp_path_factory):
    return synthetic.load(tmp_path_factory.mktemp("synthetic-v3"), version=3, **SMALL)


def test_version_3_is_deterministic_per_seed(v3, tmp_path):
    again = synthetic.load(tmp_path, version="3", **SMALL)
    assert again.version == v3.version and v3.version.startswith("3-")
    np.testing.assert_array_equal(np.asarray(again.signals), np.asarray(v3.signals))
    assert again.meta.equals(v3.meta)
    other = synthetic.load(tmp_path, version=3, n_patients=60, seed=1)
    assert not np.array_equal(np.asarray(other.signals[:3]), np.asarray(v3.signals[:3]))


def test_version_3_keeps_the_labels_and_tests_more_patients(v3, v2):
    small = v2
    """Same label stream as versions 1 and 2; 30% of patients in the test split instead of 15%."""
    columns = [*synthetic.SUPERCLASSES, "rhythm", "sex", "age", "mi_territory", "cd_type"]
    assert v3.meta[columns].equals(small.meta[columns])
    patients = v3.meta.groupby("split")["patient_id"].nunique()
    assert (patients["train"], patients["val"], patients["test"]) == (33, 9, 18)
    assert not np.array_equal(np.asarray(v3.signals[:2]), np.asarray(small.signals[:2]))


def test_split_fractions_are_options(tmp_path):
    explicit = synthetic.load(tmp_path, version=3, n_patients=20, train_fraction="0.55", val_fraction=0.15)
    assert explicit.version == synthetic.load(tmp_path, version=3, n_patients=20).version
    as_v2 = synthetic.load(tmp_path, version=3, n_patients=20, train_fraction=0.7)
    assert as_v2.version != explicit.version
    assert (as_v2.meta.groupby("split")["patient_id"].nunique()["train"]) == 14
    with pytest.raises(ConfigError, match=r"^data.train_fraction='half': must be a fraction in \(0, 1\)"):
        synthetic.load(tmp_path, train_fraction="half")


@pytest.mark.slow
def test_version_3_labels_do_not_follow_rate_or_gain(tmp_path):
    """Across 400 patients (records averaged per patient): no diagnostic label follows the heart
    rate, and only those that change voltage in real ECGs (hypertrophy up, female sex down)
    follow the recorded amplitude, weakly, since body, chest, device and contact gains vary apart
    from them. Rhythm is left out: its classes are defined by rate."""
    recordings = synthetic.load(tmp_path, version=3, n_patients=400)
    x = np.asarray(recordings.signals)
    log_amplitude = np.log(np.subtract(*np.percentile(x, [99, 1], axis=2))).mean(1)
    patients = recordings.meta.assign(log_amplitude=log_amplitude).groupby("patient_id").mean(numeric_only=True)
    bounds = {"NORM": 0.1, "MI": 0.1, "STTC": 0.12, "CD": 0.1, "HYP": 0.25, "sex": 0.2, "age": 0.15}
    for label, bound in bounds.items():
        rate = np.corrcoef(patients[label], patients["heart_rate"])[0, 1]
        amplitude = np.corrcoef(patients[label], patients["log_amplitude"])[0, 1]
        assert abs(rate) < 0.15, (label, rate)
        assert abs(amplitude) < bound, (label, amplitude)
    swapped = recordings.meta["lead_swap"] != "-"
    for name in synthetic.SUPERCLASSES:
        assert abs(swapped[recordings.meta[name] == 1].mean() - swapped[recordings.meta[name] == 0].mean()) < 0.06


def test_version_3_men_show_the_male_st_pattern(tmp_path):
    """ST elevation in V2 (mean 80-120 ms after the R peak, minus the PR baseline) is larger in
    young men than in young women (by about 1 mm in real ECGs), on sinus records without MI or STTC."""
    recordings = synthetic.load(tmp_path, version=3, n_patients=200)
    meta, x, fs = recordings.meta, np.asarray(recordings.signals), recordings.fs
    sos = butter(2, 0.5, "highpass", fs=fs, output="sos")
    v2 = sosfiltfilt(sos, x[:, STANDARD_LEADS.index("V2")], axis=1)
    ii = x[:, STANDARD_LEADS.index("II")]
    keep = np.flatnonzero((meta["age"] < 50) & (meta["MI"] == 0) & (meta["STTC"] == 0) & (meta["rhythm"] == "SR"))
    st = []
    for i in keep:
        peaks, _ = find_peaks(ii[i], distance=fs // 3, height=0.5 * np.percentile(ii[i], 99.5))
        peaks = peaks[(peaks > fs // 4) & (peaks < x.shape[2] - fs // 4)]
        j = [v2[i, p + int(0.08 * fs):p + int(0.12 * fs)].mean() - v2[i, p - int(0.09 * fs):p - int(0.07 * fs)].mean() for p in peaks]
        st.append(np.median(j) if j else np.nan)
    st = np.array(st)
    men, women = st[meta["sex"].to_numpy()[keep] == 0], st[meta["sex"].to_numpy()[keep] == 1]
    assert np.nanmedian(men) > np.nanmedian(women) + 0.04, (np.nanmedian(men), np.nanmedian(women))


def test_electrode_reversals():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 8, 50)).astype(np.float32)
    out = synthetic._reverse_electrodes(x, np.array([0, 1, 3]))
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_array_equal(out[1, 0], -x[1, 0])  # LA/RA: I inverted, II and III exchanged
    np.testing.assert_allclose(out[1, 1], x[1, 1] - x[1, 0])
    np.testing.assert_array_equal(out[2, [3, 4]], x[2, [4, 3]])  # code 3 = V2/V3 (channels 3, 4)
    assert synthetic.SWAPS[3] == "V2/V3"


def test_nuisances_do_not_follow_labels(small, tmp_path):
    meta = synthetic.load(tmp_path, n_patients=400).meta
    swapped = meta["lead_swap"] != "-"
    assert 0.02 < swapped.mean() < 0.12
    for name in synthetic.SUPERCLASSES:  # as often swapped with as without the label
        assert abs(swapped[meta[name] == 1].mean() - swapped[meta[name] == 0].mean()) < 0.06, name


@pytest.mark.skipif(not REAL_SAMPLES.is_dir(), reason=f"real CinC 2021 samples not found at {REAL_SAMPLES}")
def test_version_2_is_closer_to_real_ecgs_than_version_1(v2, tmp_path):
    """ecgbench.reporting.audit.realism on 100 records of each version and on the 50 real records: the
    summed relative distance to the real figures shrinks, and no figure moves more than 10% away."""
    from ecgbench.reporting import audit

    real = audit.realism(*audit.real_cinc_samples(REAL_SAMPLES))
    old = synthetic.load(tmp_path, version="1", **SMALL)
    figures = {v: audit.realism(np.asarray(r.signals[:100]), r.fs) for v, r in (("1", old), ("2", v2))}
    distance = {v: {k: abs(f[k] - real[k]) / abs(real[k]) for k in audit.REALISM_FIGURES} for v, f in figures.items()}
    assert sum(distance["2"].values()) < 0.5 * sum(distance["1"].values()), (figures, real)
    assert all(distance["2"][k] <= distance["1"][k] + 0.1 for k in audit.REALISM_FIGURES), (figures, real)


@pytest.mark.slow
@pytest.mark.skipif(not REAL_SAMPLES.is_dir(), reason=f"real CinC 2021 samples not found at {REAL_SAMPLES}")
def test_version_3_stays_as_close_to_real_ecgs_as_version_2(tmp_path):
    """ecgbench.reporting.audit.realism on 300 records of each version: version 3 keeps version 2's gain
    over version 1 (summed relative distance to the real figures). Medians over 300 records
    move by 0.1-0.2 of relative distance between suite sizes, so only the sum is compared."""
    from ecgbench.reporting import audit

    real = audit.realism(*audit.real_cinc_samples(REAL_SAMPLES))
    distance = {}
    for version in (1, 2, 3):
        recordings = synthetic.load(tmp_path, version=version, n_patients=130)
        figures = audit.realism(np.asarray(recordings.signals[:300]), recordings.fs)
        distance[version] = sum(abs(figures[k] - real[k]) / abs(real[k]) for k in audit.REALISM_FIGURES)
    assert distance[3] <= distance[2] + 0.15 and distance[3] < 0.6 * distance[1], distance


# ----- version 4: age as in real ECGs ---------------------------------------------------------------
PTBXL_SAMPLE = REAL_SAMPLES.parent / "ptb-xl"


PINS = Path(__file__).resolve().parent / "synthetic_pins.npz"


@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_versions_stay_as_their_results_were_made(tmp_path, version):
    """Every 250th sample of a 5-patient suite of versions 1-3, as the code before version 4 made
    them (tests/data/datasets/synthetic_pins.npz); the tolerance allows other CPUs' float rounding."""
    pinned = np.load(PINS)[f"v{version}"]
    signals = np.asarray(synthetic.load(tmp_path, version=version, n_patients=5).signals)[:, :, ::250]
    np.testing.assert_allclose(signals, pinned, rtol=1e-4, atol=1e-5)


def test_version_4_keeps_version_3_labels_and_nuisances(tmp_path, v3):
    v4 = synthetic.load(tmp_path, version=4, **SMALL)
    assert v4.version.startswith("4-") and v4.version[2:] == v3.version[2:]
    columns = [*synthetic.SUPERCLASSES, "rhythm", "sex", "age", "split", "lead_swap", "pr_ms", "qtc_ms"]
    assert v4.meta[columns].equals(v3.meta[columns])
    assert not np.array_equal(np.asarray(v4.signals[:2]), np.asarray(v3.signals[:2]))


def _heart(version: int, n_patients: int = 4000):
    """Records and their heart-frame morphology, drawn as ``_plan`` draws them."""
    opts = synthetic.resolved(synthetic.SyntheticOptions(version=version, n_patients=n_patients))
    prof = synthetic.PROFILES[str(version)]
    rng, body = np.random.default_rng([opts.seed, 0]), np.random.default_rng([opts.seed, 3])
    meta, r = synthetic._records(opts, rng, prof)
    return meta, r, synthetic._morphology(r, opts.effect, rng, prof, body)


def test_version_4_ages_the_qrs_axis_t_waves_and_hrv_by_its_stated_amounts():
    """On records without pathology: T dipoles are version 3's times exp(-0.011 (age - 60))
    exactly; the frontal QRS axis turns about 0.016 rad a year leftwards (version 3: 0.006, with
    the T axis), the T axis no longer follows age; HRV is 0.76 exp(-0.02 (age - 60))."""
    (meta, r3, m3), (_, r4, m4) = _heart(3), _heart(4)
    age, plain = meta["age"].to_numpy(), meta["NORM"].to_numpy() == 1
    ratio = np.linalg.norm(m4.vec[plain, :, synthetic.T], axis=1) / np.linalg.norm(m3.vec[plain, :, synthetic.T], axis=1)
    np.testing.assert_allclose(ratio, np.exp(-0.011 * (r4["age"][plain] - 60)), rtol=1e-9)
    expected = 0.76 * np.exp(-0.02 * (r4["age"] - 60)) / np.clip(1 - 0.012 * (r4["age"] - 40), 0.25, 1.5)
    np.testing.assert_allclose(r4["hrv"] / r3["hrv"], expected, rtol=1e-9)

    def slope(m, wave):  # frontal angle (x left, y inferior) against age, rad per year
        angle = np.arctan2(m.vec[plain, 1, wave], m.vec[plain, 0, wave])
        return np.polyfit(r4["age"][plain], angle, 1)[0]

    # 4,000 patients (no rendering: fast), as the age-free spread of 25-30 degrees hides a slope in a few hundred
    assert -0.018 < slope(m4, synthetic.R) < -0.014 and -0.008 < slope(m3, synthetic.R) < -0.004
    assert abs(slope(m4, synthetic.T)) < 0.002 and slope(m3, synthetic.T) < -0.004
    assert np.isclose(age, r4["age"], atol=0.05).all() and plain.sum() > 3000


@pytest.mark.slow
@pytest.mark.skipif(not PTBXL_SAMPLE.is_dir(), reason=f"real PTB-XL sample not found at {PTBXL_SAMPLE}")
def test_version_4_carries_age_closer_to_the_real_ptbxl_sample(tmp_path):
    """ecgbench.reporting.audit.age_expression: the real PTB-XL sample's median beats carry age (ridge R²
    about 0.4; QRS axis, T amplitude and RR variability fall with age); version 3's carried
    little of it, version 4's carry clearly more, with the real signs, without overshooting."""
    from ecgbench.reporting import audit

    real = audit.age_expression(*audit.real_ptbxl_sample(PTBXL_SAMPLE))
    assert real["n"] >= 290 and real["r2"] > 0.3, real
    measured = {}
    for version in (3, 4):
        suite = synthetic.load(tmp_path, version=version, n_patients=300)
        meta = suite.meta
        measured[version] = audit.age_expression(suite.signals, suite.fs, meta["age"].to_numpy(dtype=float),
                                                 meta["patient_id"].to_numpy())
    assert measured[3]["r2"] < 0.2 < measured[4]["r2"] < real["r2"] + 0.05, (measured, real)
    for name in ("qrs_axis", "t_I", "t_II", "t_V5", "rr_cv"):
        rho = {v: m["correlations"][name] for v, m in measured.items()}
        assert real["correlations"][name] < -0.25 and rho[4] < min(rho[3], -0.15), (name, rho, real["correlations"][name])
