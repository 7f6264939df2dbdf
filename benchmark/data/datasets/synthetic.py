"""Synthetic 12-lead ECG suite: an offline, seeded stand-in for PTB-XL-like benchmarks.

This is generated data, not a clinical dataset. It exists so that every method and task of the
harness can be trained, probed and tested on a laptop without downloads, on signals whose
labels act through morphology and rhythm the way real ones do.

Physiological model
-------------------
Each beat is a sum of Gaussian waves (P, Q, R, S, a terminal R' wave, an ST "injury" wave and
T), the closed-form solution of the dynamical model of McSharry et al. 2003 ("A dynamical model
for generating synthetic electrocardiogram signals", IEEE Trans. Biomed. Eng. 50(3):289-294),
extended to three dimensions as in the vectorcardiographic ECGSYN variants: every wave carries a
3-D cardiac dipole (x left, y inferior, z anterior, in mV). The dipole is projected onto lead
vectors: I and II in the frontal plane, V1-V6 in the horizontal plane. III, aVR, aVL and aVF are
derived from I and II exactly as an electrocardiograph does (Einthoven / Goldberger), so the
leads are physiologically related. Beats are placed from an RR series with respiratory sinus
arrhythmia and a 0.1 Hz component; T waves move with the preceding RR (Fridericia QT
correction, QT = QTc * RR^(1/3)).

Individuality: each patient has a heart orientation (frontal axis, horizontal rotation, tilt),
a body gain, electrode placement offsets, per-wave amplitudes and directions, interval and
width factors; each record jitters these slightly, so records of one patient resemble each
other and splits must be (and are) patient-wise.

Noise, applied to the measured channels (I, II, V1-V6) before limb leads are derived: baseline
wander (1/f below 0.5 Hz plus a respiration sinusoid), bursty band-limited EMG (15-200 Hz),
50 or 60 Hz powerline interference. Levels vary log-normally between records.

Labels (metadata columns)
-------------------------
``NORM MI STTC CD HYP`` (0/1, multilabel; NORM only when none of the others):

* MI: an infarct territory (inferior, anterior or lateral) gives pathological Q waves (septal /
  Q dipole pointing away from it, widened), loss of R towards it, and in some records ST
  elevation (injury dipole towards it) and/or T inversion.
* STTC: ST depression (injury dipole away from the apex), T flattening or inversion, sometimes
  a long QT.
* CD: first-degree AV block (PR > 200 ms), right bundle branch block (terminal rightward-anterior
  R', slurred S), left bundle branch block (lost septal q, broad notched posterior-leftward R,
  discordant T) or left anterior fascicular block (left axis deviation).
* HYP: high, more posterior-leftward QRS voltage (deep S in V1-V2, tall R in V5-V6), sometimes
  a strain pattern or left atrial enlargement.

Severities vary per patient from subtle to obvious. Priors follow PTB-XL roughly and rise with
age (MI and HYP also with male sex).

``rhythm``: SR, AF (irregularly irregular RR, no P waves, fibrillatory f-waves of 4-8 Hz
strongest in V1), SBRAD (sinus < 60 bpm), STACH (sinus > 100 bpm); a patient tendency with
record-level variation.

Versions
--------
``load(root, version=...)`` (``--set data.version=1``); the version is the first part of
``Recordings.version`` and of every synthetic task's key (``synth-superclass@v2``), so results of
two versions are never compared. Labels are drawn from the same random stream in all of them.

* ``1``: the original suite, kept bit for bit (its results keep their keys).
* ``2``: the labels act where the PTB-XL statements put them, as in version 1, but
  hypertrophy changes *where* the QRS voltage points (tall R in V5-V6, deep S in V1-V2) far more
  than how large it is, and the nuisances vary independently of the labels and across
  patients and records: body gain (log-sd 0.18 -> 0.30) and a per-record amplifier gain
  (log-sd 0.15), precordial electrodes placed higher/lower and turned as a set per record,
  lead reversals (3% LA/RA, 3% two neighbouring V leads; ``lead_swap`` column), more
  beat-to-beat variation. Heart rate, lead voltages and noise levels move towards the real CinC
  2021 samples as measured by :func:`ecgbench.reporting.audit.realism` (see :class:`Profile`).
* ``3``: version 2's labels (same stream) with wider nuisances that real ECGs show apart from
  any label, from a random stream of their own: heart orientation as spread as in adults
  (frontal axis sd 30 degrees, was 18), a chest-wall gain of the precordial leads per patient
  (log-sd 0.25) apart from the limb leads, a per-record contact gain per electrode (log-sd 0.12),
  a wider device gain (0.2), precordial electrodes misplaced more (sd 11 degrees, 0.12 height),
  and noise levels spread wider across records (log-sd 0.9, same median). Sex also acts where
  it does in real ECGs beyond voltage and intervals: the "male pattern" ST elevation in V1-V4
  (about 1 mm in young men, fading with age, a quarter of it in women). 30% of patients are
  in the test split (15% before), for tighter confidence intervals. Rhythm classes stay
  defined by rate (SBRAD < 60 < SR < 100 < STACH; AF by irregular RR and missing P waves).
* ``4`` (default): version 3 (same labels, random streams and recording nuisances) with age
  acting about as strongly as in real ECGs. Version 3 hid age: simple median-beat measurements
  (:func:`ecgbench.reporting.audit.age_expression`) predict it with a cross-validated ridge R² of 0.10 on
  version 3 against 0.50 on the real PTB-XL sample in ``../shared/data`` (297 records). Version 4
  turns the QRS axis alone (conduction, not the heart's position: the T axis stays) leftwards by
  0.92 degrees a year, flattens T waves by 1.1% a year and lowers heart-rate variability by 2% a
  year (log), the directions and rough sizes reported across adult age bands (Mason et al. 2007,
  Rijnbeek et al. 2014, Umetani et al. 1998); the same measurements give R² 0.33 (its ages
  spread less than the sample's: sd 16 against 20 years). The whole-heart frontal spread narrows
  from 30 to 25 degrees, so that the QRS axis spreads across patients as in version 3. The QRS
  and T axes coincide on average near 60 years, so the frontal QRS-T angle grows with distance
  from 60 in either direction rather than with age (the real sample's angle grows with age).
  The effects were set on these measurements before any method ran on version 4.

``sex`` (0 male, 1 female, PTB-XL convention) and ``age`` (years) shift morphology subtly:
women have a slightly higher heart rate, lower voltage, narrower QRS and longer QTc; age lowers
voltage and heart-rate variability, lengthens PR and QTc, moves the axis leftwards and makes
pathology more frequent; from version 3 young men also show the "male pattern" ST elevation in
V1-V4; from version 4 age turns the QRS axis rather than the heart, flattens T waves and lowers
HRV log-linearly. Neither is predictable far above what real ECGs allow.

Also: ``heart_rate`` (bpm, measured from the generated beats), ``rr_cv`` (RR coefficient of
variation), ``pr_ms``, ``qrs_ms``, ``qtc_ms`` (generator truth), ``mi_territory`` and
``cd_type`` ("-" when absent); from version 2 also ``lead_swap`` ("-", "LA/RA", "V1/V2", ...).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgbench.core.config import apply_overrides, rule, short_hash
from ecgbench.core.contracts import STANDARD_LEADS, Recordings
from ecgbench.core.store import remove_stale_temps

NAME = "synthetic"
VERSION = "4"  # the default; "1" to "3" stay selectable (``--set data.version=3``) and bit-identical
VERSIONS = ("1", "2", "3", "4")
LICENSE = "MIT (generated)"

SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
RHYTHMS = ("SR", "AF", "SBRAD", "STACH")
MI_TERRITORIES = ("inferior", "anterior", "lateral")
CD_TYPES = ("AVB1", "RBBB", "LBBB", "LAFB")

CHUNK = 64  # records rendered together; part of the random stream layout, do not change lightly


@dataclass(frozen=True)
class Profile:
    """Constants in which the suite versions differ. Version 1 is the original suite, kept bit for
    bit; version 2 moves the nuisances towards the real CinC 2021 samples (``ecgbench.reporting.audit
    .realism``), widens them independently of the labels, and draws its extras (electrode
    misplacement, lead reversals, device gain) from a random stream of their own; version 3
    widens them further (orientation, chest and contact gains from a third stream), adds the
    male ST pattern and tests on more patients; version 4 makes age act as strongly as in real ECGs."""

    sinus_hr: tuple[float, float] = (72.0, 8.0)  # patient mean, sd (bpm)
    sinus_clip: tuple[float, float] = (63.0, 97.0)
    gain_sd: float = 0.18  # log-normal spread of the body gain across patients
    limb_gain: float = 0.8
    v_gains: tuple[float, ...] = (1.0, 1.3, 1.4, 1.4, 1.2, 0.9)
    bw: float = 0.08  # baseline wander amplitude (mV, median record)
    emg: float = 0.012
    beat_jitter: float = 0.015  # beat-to-beat amplitude variation
    hyp_voltage: tuple[float, float] = (0.3, 0.8)  # QRS voltage gain of hypertrophy: base, per severity
    hyp_turn: float = 0.5  # how far hypertrophy turns the R vector towards the left ventricle
    device_gain_sd: float = 0.0  # per-record amplifier / calibration spread
    electrode_sd: tuple[float, float] = (0.0, 0.0)  # per-record precordial shift: angle (rad), height
    swap_rate: tuple[float, float] = (0.0, 0.0)  # records with an LA/RA reversal, with 2 V leads swapped
    rotation_sd: tuple[float, float, float] = (0.32, 0.2, 0.14)  # heart orientation: frontal, horizontal, sagittal (rad)
    noise_spread: float = 0.6  # log-sd across records of the baseline-wander and EMG levels
    chest_gain_sd: float = 0.0  # per-patient precordial gain (chest wall), apart from the limb leads
    contact_gain_sd: float = 0.0  # per-record gain of each measured channel (electrode contact, position)
    male_st: float = 0.0  # J-point / ST elevation towards V1-V4 of young men, heart-dipole mV
    # ageing, per year above 60: the whole heart turns leftwards (rad), or only the QRS does (rad,
    # conduction rather than position: the T axis stays); T amplitude (log) falls; HRV
    # falls linearly (as a fraction of its value at 40) or, when ``hrv_age_log`` is set, log-linearly
    heart_turn_age: float = 0.006
    qrs_turn_age: float = 0.0
    t_age: float = 0.0
    hrv_age_log: float = 0.0
    splits: tuple[float, float] = (0.7, 0.15)  # default train and val fractions of patients


PROFILES = {
    "1": Profile(),
    "2": Profile(sinus_hr=(80.0, 11.0), sinus_clip=(61.0, 99.0), gain_sd=0.3, limb_gain=0.68,
                 v_gains=(1.1, 1.6, 1.55, 1.4, 1.15, 0.85), bw=0.05, emg=0.011, beat_jitter=0.03,
                 hyp_voltage=(0.1, 0.35), hyp_turn=0.9, device_gain_sd=0.15,
                 electrode_sd=(0.12, 0.08), swap_rate=(0.03, 0.03)),
    "3": Profile(sinus_hr=(80.0, 11.0), sinus_clip=(61.0, 99.0), gain_sd=0.3, limb_gain=0.68,
                 v_gains=(1.1, 1.6, 1.55, 1.4, 1.15, 0.85), bw=0.05, emg=0.0125, beat_jitter=0.03,
                 hyp_voltage=(0.1, 0.35), hyp_turn=0.9, device_gain_sd=0.2,
                 electrode_sd=(0.2, 0.12), swap_rate=(0.03, 0.03), rotation_sd=(0.52, 0.3, 0.2),
                 noise_spread=0.9, chest_gain_sd=0.25, contact_gain_sd=0.12, male_st=0.1,
                 splits=(0.55, 0.15)),
}
# the QRS's own age turn (0.92 degrees a year) is taken out of the age-free frontal spread, so the
# QRS axis spreads across patients as much as in version 3 (sd 30 degrees)
PROFILES["4"] = replace(PROFILES["3"], rotation_sd=(0.443, 0.3, 0.2),
                        heart_turn_age=0.0, qrs_turn_age=0.016, t_age=0.011, hrv_age_log=0.02)
SWAPS = ("-", "LA/RA", "V1/V2", "V2/V3", "V3/V4", "V4/V5", "V5/V6")


def _fraction_or_empty() -> dict[str, Any]:
    def check(value: Any) -> bool:
        try:
            return value is None or 0 < float(value) < 1
        except ValueError:
            return False

    return rule(check, "a fraction in (0, 1), or unset for the suite version's")


@dataclass(frozen=True)
class SyntheticOptions:
    """Generation settings; every field is part of the cache key and of ``Recordings.version``
    (``version`` as its prefix, the others hashed)."""

    version: int = field(default=int(VERSION), metadata=rule(lambda v: str(v) in VERSIONS,
                                                             "one of " + ", ".join(VERSIONS)))
    n_patients: int = 850
    max_records_per_patient: int = 4  # each patient gets 1..max records, uniformly
    seed: int = 0
    fs: int = 500
    seconds: int = 10
    # of patients, the rest is test; empty: the version's (0.7 and 0.15; 0.55 and 0.15 from v3)
    train_fraction: float | None = field(default=None, metadata=_fraction_or_empty())
    val_fraction: float | None = field(default=None, metadata=_fraction_or_empty())
    noise: float = 1.0  # multiplies every noise amplitude
    effect: float = 1.0  # multiplies pathology effect sizes
    individuality: float = 1.0  # multiplies the spread of per-patient morphology


# ----- public entry point --------------------------------------------------------------------
def load(root: Path | str, **options: Any) -> Recordings:
    """The suite for ``options`` (SyntheticOptions overrides), generated once, then cached.
    ``Recordings.version`` is ``"<suite version>-<hash of the other options>"``."""
    opts = resolved(apply_overrides(SyntheticOptions(), options, "data"))
    version = str(opts.version)
    key = options_hash(opts)
    folder = Path(root) / f"synthetic-v{version}-{key}"
    if not (folder / "done.json").exists():
        _generate_to(folder, opts)
    signals = np.load(folder / "signals.npy", mmap_mode="r")
    meta = pd.read_csv(folder / "meta.csv", dtype={"record_id": str, "split": str})
    return Recordings(name=NAME, version=f"{version}-{key}", signals=signals, meta=meta,
                      fs=opts.fs, lead_names=STANDARD_LEADS)


def resolved(opts: SyntheticOptions) -> SyntheticOptions:
    """``opts`` with the split fractions left unset filled in from the suite version."""
    train, val = PROFILES[str(opts.version)].splits
    return replace(opts, train_fraction=train if opts.train_fraction is None else float(opts.train_fraction),
                   val_fraction=val if opts.val_fraction is None else float(opts.val_fraction))


def options_hash(opts: SyntheticOptions) -> str:
    """Hash of every option (resolved) but the version (which prefixes it): version-1 keys stay as
    they were before versions existed."""
    return short_hash({k: v for k, v in asdict(resolved(opts)).items() if k != "version"})


def _generate_to(folder: Path, opts: SyntheticOptions) -> None:
    """Write signals.npy, meta.csv, then done.json, each atomically (temp name + os.replace)."""
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder)
    start = time.perf_counter()
    prof = PROFILES[str(opts.version)]
    meta, params = _plan(opts, prof)
    tmp = folder / f"signals.tmp-{os.getpid()}.npy"
    shape = (len(meta), 12, opts.fs * opts.seconds)
    signals = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
    measured = _render_all(signals, params, opts, prof)
    signals.flush()
    del signals
    os.replace(tmp, folder / "signals.npy")
    for column, values in measured.items():
        meta[column] = np.round(values, 4)
    _write_atomic(folder / "meta.csv", meta.to_csv(index=False))
    done = {"name": NAME, "version": str(opts.version), "options": asdict(opts), "records": len(meta),
            "patients": int(meta["patient_id"].nunique()),
            "seconds_to_generate": round(time.perf_counter() - start, 2)}
    _write_atomic(folder / "done.json", json.dumps(done, indent=2))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ----- patients and records ------------------------------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _patients(o: SyntheticOptions, rng: np.random.Generator, prof: Profile) -> dict[str, np.ndarray]:
    n, k = o.n_patients, o.individuality
    age = np.clip(rng.normal(60, 17, n), 18, 90)
    sex = (rng.random(n) < 0.48).astype(int)
    z_age, male = (age - 60) / 17, 1 - sex
    p: dict[str, np.ndarray] = {"age": age, "sex": sex}
    # (prior at age 60 for an average sex, age slope, male slope) on the logit scale
    for name, p0, b_age, b_male in (("MI", 0.235, 0.6, 0.6), ("STTC", 0.265, 0.4, 0.0),
                                    ("CD", 0.195, 0.5, 0.3), ("HYP", 0.115, 0.5, 0.4)):
        logit = np.log(p0 / (1 - p0)) + b_age * z_age + b_male * (male - 0.5)
        p[name] = rng.random(n) < _sigmoid(logit)
        p[f"{name}_sev"] = rng.uniform(0.1, 1.0, n)
    p["mi_territory"] = rng.choice(3, n, p=[0.5, 0.38, 0.12])
    p["mi_acute"], p["mi_tinv"] = rng.random(n) < 0.5, rng.random(n) < 0.6
    p["sttc_kind"] = rng.choice(3, n, p=[0.35, 0.4, 0.25])  # ST depression, T change, both
    p["sttc_qt"] = rng.random(n) < 0.25
    p["cd_type"] = rng.choice(4, n, p=[0.35, 0.3, 0.22, 0.13])
    p["hyp_strain"] = rng.random(n) < 0.3 + 0.4 * p["HYP_sev"]
    p["hyp_lae"] = rng.random(n) < 0.3
    af_weight = 0.125 * np.exp(0.9 * z_age)
    weights = np.stack([np.full(n, 0.6), af_weight, np.full(n, 0.12), np.full(n, 0.13)], 1)
    p["rhythm"] = _choice_rows(weights / weights.sum(1, keepdims=True), rng)
    p["hr"] = rng.normal(*prof.sinus_hr, n) + 3 * sex
    p["hrv"] = 0.035 * np.exp(rng.normal(0, 0.35, n)) * _hrv_ageing(age, prof)
    p["resp_hz"] = rng.uniform(0.15, 0.35, n)
    p["gain"] = np.exp(rng.normal(0, prof.gain_sd * k, n)) * np.where(sex == 1, 0.88, 1.0) \
        * (1 - 0.004 * (age - 60))
    p["qw"] = np.exp(rng.normal(0, 0.07 * k, n)) * np.where(sex == 1, 0.95, 1.0) \
        * (1 + 0.002 * (age - 60))
    p["tw"] = np.exp(rng.normal(0, 0.1 * k, n))
    p["pr"] = np.clip(rng.normal(0.150, 0.016 * k, n) + 0.0006 * (age - 60), 0.11, 0.20)
    p["qtc"] = rng.normal(0.405, 0.016 * k, n) + 0.012 * sex + 0.0004 * (age - 60)
    # heart orientation (radians): frontal axis, horizontal rotation, sagittal tilt
    spread = np.array(prof.rotation_sd) * k
    p["rotation"] = np.stack([rng.normal(0, spread[0], n) - prof.heart_turn_age * (age - 60),
                              rng.normal(0, spread[1], n), rng.normal(0, spread[2], n)], 1)
    p["wave_amp"] = np.exp(rng.normal(0, 0.15 * k, (n, len(WAVES))))
    p["wave_dir"] = rng.normal(0, 0.12 * k, (n, 3, len(WAVES)))
    p["leads"] = _lead_offsets(n, k, rng)
    return p


def _hrv_ageing(age: np.ndarray, prof: Profile) -> np.ndarray:
    """HRV factor: linear in age up to version 3; log-linear from version 4, equal at 60."""
    if prof.hrv_age_log:
        return 0.76 * np.exp(-prof.hrv_age_log * (age - 60))
    return np.clip(1 - 0.012 * (age - 40), 0.25, 1.5)


def _choice_rows(prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of a (n, classes) probability matrix."""
    return (rng.random((len(prob), 1)) > np.cumsum(prob, 1)[:, :-1]).sum(1)


def _records(o: SyntheticOptions, rng: np.random.Generator, prof: Profile) -> tuple[pd.DataFrame, dict]:
    """Patient table expanded to records (1..max each), with labels and record-level jitter."""
    pat = _patients(o, rng, prof)
    counts = rng.integers(1, o.max_records_per_patient + 1, o.n_patients)
    pidx = np.repeat(np.arange(o.n_patients), counts)
    r = {key: value[pidx] for key, value in pat.items()}
    r["patient"] = pidx
    n = len(pidx)
    # STTC is partly transient; rhythm is a patient tendency
    r["STTC"] = np.where(rng.random(n) < 0.88, r["STTC"], rng.random(n) < 0.15)
    redraw = rng.random(n) < 0.15
    r["rhythm"] = np.where(redraw, rng.choice(4, n, p=[0.6, 0.15, 0.12, 0.13]), r["rhythm"])
    for name in ("MI", "STTC", "CD", "HYP"):
        r[f"{name}_sev"] = np.clip(r[f"{name}_sev"] * np.exp(rng.normal(0, 0.1, n)), 0.05, 1.2)
    r["hr"] = _record_rate(r, rng, prof)
    meta = _meta(o, pidx, r, rng)
    return meta, r


def _record_rate(r: dict, rng: np.random.Generator, prof: Profile) -> np.ndarray:
    n = len(r["hr"])
    sinus = np.clip(r["hr"] * np.exp(rng.normal(0, 0.06, n)), *prof.sinus_clip)
    af = np.clip(rng.normal(95, 18, n), 60, 160)
    brady = rng.uniform(40, 57, n)
    tachy = 102 + rng.gamma(2.0, 9.0, n).clip(0, 48)
    return np.choose(r["rhythm"], [sinus, af, brady, tachy])


def _meta(o: SyntheticOptions, pidx: np.ndarray, r: dict, rng: np.random.Generator) -> pd.DataFrame:
    order = rng.permutation(o.n_patients)
    n_train = round(o.train_fraction * o.n_patients)
    n_val = round(o.val_fraction * o.n_patients)
    split_of_patient = np.empty(o.n_patients, dtype=object)
    split_of_patient[order] = ["train"] * n_train + ["val"] * n_val \
        + ["test"] * (o.n_patients - n_train - n_val)
    abnormal = np.stack([r[c] for c in SUPERCLASSES[1:]], 1).astype(int)
    meta = pd.DataFrame({
        "record_id": [f"synth{i:05d}" for i in range(len(pidx))],
        "patient_id": pidx,
        "split": split_of_patient[pidx].astype(str),
        "age": np.round(r["age"], 1),
        "sex": r["sex"],
        "NORM": (abnormal.sum(1) == 0).astype(int),
    })
    for i, name in enumerate(SUPERCLASSES[1:]):
        meta[name] = abnormal[:, i]
    meta["rhythm"] = np.array(RHYTHMS)[r["rhythm"]]
    meta["mi_territory"] = np.where(r["MI"], np.array(MI_TERRITORIES)[r["mi_territory"]], "-")
    meta["cd_type"] = np.where(r["CD"], np.array(CD_TYPES)[r["cd_type"]], "-")
    return meta


# ----- morphology: dipoles per wave, leads -----------------------------------------------------
WAVES = ("P", "Q", "R", "S", "R2", "ST", "T")
P, Q, R, S, R2, ST, T = range(len(WAVES))
# Heart-frame dipole direction (x left, y inferior, z anterior) and amplitude (mV) of each wave.
_DIRS = np.array([
    [0.5, 0.8, 0.25],  # P
    [-0.7, 0.1, 0.7],  # Q: septal depolarisation, rightward-anterior
    [0.6, 0.7, -0.37],  # R: left ventricle, leftward-inferior-posterior
    [-0.35, -0.45, -0.8],  # S: basal, superior-posterior
    [-0.55, 0.1, 0.8],  # R2: terminal wave, used by bundle branch blocks
    [0.6, 0.65, -0.1],  # ST: injury current (zero unless a pathology sets it)
    [0.6, 0.55, 0.3],  # T
]).T
_DIRS = _DIRS / np.linalg.norm(_DIRS, axis=0)
_AMPS = np.array([0.16, 0.12, 1.6, 0.45, 0.0, 0.0, 0.38])
_WIDTHS = np.array([0.022, 0.009, 0.011, 0.011, 0.014, 1.0, 1.0])  # s; ST/T set per beat
_TERRITORY = np.array([[0.1, 1.0, -0.15], [-0.25, 0.0, 1.0], [1.0, -0.35, -0.1]])
_TERRITORY = _TERRITORY / np.linalg.norm(_TERRITORY, axis=1, keepdims=True)

# Measured channels I, II, V1..V6: precordial angle from +x towards +z, y component, gain
_V_ANGLES = np.deg2rad([115, 95, 75, 50, 20, 0])
_V_Y = np.array([-0.05, 0.0, 0.05, 0.15, 0.2, 0.2])


def _unit(v: np.ndarray, axis: int) -> np.ndarray:
    return v / np.linalg.norm(v, axis=axis, keepdims=True)


def _lead_offsets(n: int, k: float, rng: np.random.Generator) -> np.ndarray:
    """Per-patient electrode/torso variation: (n, 8, 3) = angle, y shift, log gain per channel."""
    offsets = np.zeros((n, 8, 3))
    offsets[:, :2, 0] = rng.normal(0, 0.07 * k, (n, 2))
    offsets[:, 2:, 0] = rng.normal(0, 0.1 * k, (n, 1)) + rng.normal(0, 0.07 * k, (n, 6))
    offsets[:, 2:, 1] = rng.normal(0, 0.05 * k, (n, 6))
    offsets[:, :, 2] = rng.normal(0, 0.1 * k, (n, 8))
    return offsets


def _lead_matrix(offsets: np.ndarray, gain: np.ndarray, prof: Profile) -> np.ndarray:
    """(n, 8, 3) lead vectors of I, II, V1..V6 with the given offsets; gain (n,)."""
    limb = np.deg2rad([0.0, 60.0]) + offsets[:, :2, 0]
    vang = _V_ANGLES + offsets[:, 2:, 0]
    lead = np.zeros(offsets.shape)
    lead[:, :2] = np.stack([np.cos(limb), np.sin(limb), np.zeros_like(limb)], -1) * prof.limb_gain
    lead[:, 2:] = np.stack([np.cos(vang), _V_Y + offsets[:, 2:, 1], np.sin(vang)], -1) \
        * np.array(prof.v_gains)[:, None]
    return lead * np.exp(offsets[:, :, 2:]) * gain[:, None, None]


def _rotation(angles: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations: frontal (about z), horizontal (about y), sagittal (about x)."""
    n = len(angles)
    mats = []
    for axis, (i, j) in enumerate(((0, 1), (0, 2), (1, 2))):
        m = np.tile(np.eye(3), (n, 1, 1))
        c, s = np.cos(angles[:, axis]), np.sin(angles[:, axis])
        m[:, i, i], m[:, j, j], m[:, i, j], m[:, j, i] = c, c, -s, s
        mats.append(m)
    return mats[0] @ mats[1] @ mats[2]


@dataclass
class _Morphology:
    vec: np.ndarray  # (n, 3, W) heart-frame dipole per wave, mV
    width: np.ndarray  # (n, W) Gaussian sigma, s
    offset: np.ndarray  # (n, W) centre relative to the R peak, s (P..R2)
    pr: np.ndarray  # (n,) s
    qtc: np.ndarray  # (n,) s
    qw: np.ndarray  # (n,) QRS width factor
    tw: np.ndarray  # (n,) T width factor


def _morphology(r: dict, effect: float, rng: np.random.Generator, prof: Profile,
                body: np.random.Generator) -> _Morphology:
    n = len(r["age"])
    jitter = np.exp(rng.normal(0, 0.05, (n, len(WAVES))))
    vec = _unit(_DIRS + r["wave_dir"], 1) * (_AMPS * r["wave_amp"] * jitter)[:, None, :]
    qw = r["qw"] * np.exp(rng.normal(0, 0.02, n))
    width = np.tile(_WIDTHS, (n, 1))
    width[:, Q:R2] *= qw[:, None]
    offset = np.zeros((n, len(WAVES)))
    offset[:, Q], offset[:, S], offset[:, R2] = -0.028 * qw, 0.028 * qw, 0.05
    pr = np.clip(r["pr"] + rng.normal(0, 0.005, n) - 0.0006 * (r["hr"] - 70), 0.1, 0.2)
    m = _Morphology(vec, width, offset, pr, r["qtc"] + rng.normal(0, 0.006, n), qw,
                    r["tw"] * np.exp(rng.normal(0, 0.03, n)))
    _add_ageing(m, r, prof)
    _add_mi(m, r, effect)
    _add_sttc(m, r, effect)
    _add_cd(m, r, effect)
    _add_hyp(m, r, effect, prof)
    if prof.male_st:
        _add_male_st(m, r, prof.male_st, body)
    m.vec[r["rhythm"] == 1, :, P] = 0.0  # AF: no P waves
    m.offset[:, P] = -m.pr
    m.vec = _rotation(r["rotation"] + rng.normal(0, 0.04, (n, 3))) @ m.vec
    return m


def _severity(r: dict, name: str, effect: float, extra: np.ndarray | bool = True) -> np.ndarray:
    """Effect size per record: 0 where the pathology (and ``extra`` condition) is absent."""
    return r[name] * np.asarray(extra) * r[f"{name}_sev"] * effect


def _add_male_st(m: _Morphology, r: dict, level: float, rng: np.random.Generator) -> None:
    """The "male pattern" (Surawicz & Parikh 2002): J-point / ST elevation in V1-V4 in most young
    men, fading with age, in few women; an anterior ST dipole whose size varies per patient."""
    n_patients = int(r["patient"].max()) + 1
    size = np.exp(rng.normal(0, 0.4, n_patients))[r["patient"]]
    youth = np.clip(1.5 - r["age"] / 60, 0.2, 1.2)
    anterior = _unit(np.array([0.3, 0.1, 0.95]), 0)
    m.vec[:, :, ST] += anterior * (level * np.where(r["sex"] == 1, 0.25, 1.0) * youth * size)[:, None]


def _add_ageing(m: _Morphology, r: dict, prof: Profile) -> None:
    """From version 4: with age the QRS axis turns leftwards while the T axis stays, and T waves
    flatten, as across adult age bands (Mason et al. 2007; Rijnbeek et al. 2014). Both are per
    year above 60, on every record, before any pathology's own change."""
    years = r["age"] - 60
    if prof.qrs_turn_age:
        turn = np.zeros((len(years), 3))
        turn[:, 0] = -prof.qrs_turn_age * years
        m.vec[:, :, Q:R2] = _rotation(turn) @ m.vec[:, :, Q:R2]
    if prof.t_age:
        m.vec[:, :, T] *= np.exp(-prof.t_age * years)[:, None]


def _add_mi(m: _Morphology, r: dict, effect: float) -> None:
    e = _severity(r, "MI", effect)
    on = (e > 0)[:, None]
    u = _TERRITORY[r["mi_territory"]]
    m.vec[:, :, Q] -= u * on * (0.12 + 0.45 * e)[:, None]
    m.width[:, Q] *= 1 + 0.7 * e
    toward = np.clip((m.vec[:, :, R] * u).sum(1), 0, None)
    m.vec[:, :, R] -= u * (0.6 * np.minimum(e, 1) * toward)[:, None]
    acute, tinv = r["mi_acute"] * on[:, 0], r["mi_tinv"] * on[:, 0]
    m.vec[:, :, ST] += u * (acute * (0.04 + 0.25 * e))[:, None]
    m.vec[:, :, T] -= u * (tinv * (0.08 + 0.3 * e))[:, None]


def _add_sttc(m: _Morphology, r: dict, effect: float) -> None:
    e = _severity(r, "STTC", effect)
    on = e > 0
    apex = _unit(np.array([0.6, 0.65, -0.1]), 0)
    st_dep = on & (r["sttc_kind"] != 1)
    t_change = on & (r["sttc_kind"] != 0)
    m.vec[:, :, ST] -= apex * (st_dep * (0.04 + 0.18 * e))[:, None]
    m.vec[:, :, T] *= (1 - t_change * (0.45 + 1.0 * e))[:, None]
    m.qtc += on * r["sttc_qt"] * 0.06 * e


def _add_cd(m: _Morphology, r: dict, effect: float) -> None:
    kind = r["cd_type"]
    avb, rbbb, lbbb, lafb = (_severity(r, "CD", effect, kind == i) for i in range(4))
    m.pr = np.where(avb > 0, 0.205 + 0.12 * avb, m.pr)
    # RBBB: late rightward-anterior R' (rsR' in V1), slurred S, secondary T change
    m.vec[:, :, R2] += _DIRS[:, R2] * (rbbb > 0)[:, None] * (0.25 + 0.6 * rbbb)[:, None]
    m.offset[:, R2] += 0.03 * rbbb
    m.width[:, R2] += 0.014 * rbbb
    m.width[:, S] *= 1 + 0.8 * rbbb
    m.vec[:, :, T] -= _DIRS[:, R2] * (0.12 * rbbb)[:, None]
    # LBBB: no septal q, broad notched leftward-posterior R, discordant T
    w = np.minimum(lbbb, 1)[:, None]
    left = _unit(np.array([0.75, 0.15, -0.65]), 0)
    r_size = np.linalg.norm(m.vec[:, :, R], axis=1, keepdims=True)
    m.vec[:, :, Q] *= 1 - w
    m.vec[:, :, R] = m.vec[:, :, R] * (1 - w) + left * r_size * w
    m.vec[:, :, R2] += left * r_size * 0.45 * w
    m.offset[:, R2] -= 0.015 * (lbbb > 0) - 0.03 * lbbb
    m.width[:, R] *= 1 + 1.3 * lbbb
    m.vec[:, :, S] *= 1 - 0.6 * w
    m.vec[:, :, T] = m.vec[:, :, T] * (1 - w) - left * 0.3 * w
    # LAFB: QRS axis turned leftwards by 90-120 degrees (to about -30..-60)
    turn = np.zeros((len(kind), 3))
    turn[:, 0] = np.where(lafb > 0, -(1.6 + 0.5 * lafb), 0.0)
    m.vec[:, :, Q:R2] = _rotation(turn) @ m.vec[:, :, Q:R2]


def _add_hyp(m: _Morphology, r: dict, effect: float, prof: Profile) -> None:
    e = _severity(r, "HYP", effect)
    on = (e > 0)[:, None]
    lv = _unit(np.array([0.7, 0.3, -0.65]), 0)
    r_size = np.linalg.norm(m.vec[:, :, R], axis=1, keepdims=True)
    blend = np.minimum(prof.hyp_turn * e, 0.6)[:, None]
    base, per_severity = prof.hyp_voltage
    m.vec[:, :, R] = (m.vec[:, :, R] * (1 - blend) + lv * r_size * blend) \
        * (1 + on * (base + per_severity * e[:, None]))
    m.vec[:, :, S] *= 1 + 0.8 * e[:, None]
    m.width[:, Q:R2] *= 1 + 0.12 * e[:, None]
    strain = (e * r["hyp_strain"])[:, None]
    m.vec[:, :, ST] -= lv * (on * r["hyp_strain"][:, None]) * (0.03 + 0.12 * strain)
    m.vec[:, :, T] -= lv * (on * r["hyp_strain"][:, None]) * (0.15 + 0.35 * strain)
    lae = (e > 0) & r["hyp_lae"]
    m.width[:, P] *= np.where(lae, 1.3, 1.0)
    m.vec[:, :, P] *= np.where(lae, 1.3, 1.0)[:, None]


# ----- plan: everything per record that rendering needs ------------------------------------------
def _plan(o: SyntheticOptions, prof: Profile) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng([o.seed, 0])
    body = np.random.default_rng([o.seed, 3])  # own stream: versions 1 and 2 never draw from it
    meta, r = _records(o, rng, prof)
    m = _morphology(r, o.effect, rng, prof, body)
    n = len(meta)
    gain = r["gain"] * np.exp(rng.normal(0, 0.06, n))
    offsets = r["leads"] + rng.normal(0, 0.03, r["leads"].shape) * [1, 0.5, 0.5]
    extra = np.random.default_rng([o.seed, 2])  # own stream: version 1 (all zero here) stays as it was
    gain, offsets, swap = _recording_nuisances(gain, offsets, prof, o.noise, extra)
    offsets = _chest_and_contact_gains(offsets, meta["patient_id"].to_numpy(), prof, o, body)
    lead = _lead_matrix(offsets, gain, prof)
    atrial = _unit(np.array([-0.3, 0.5, 0.8]) + rng.normal(0, 0.2, (n, 3)), 1)
    is_af = r["rhythm"] == 1
    params = {
        "proj": lead @ m.vec,  # (n, 8, W)
        "atrial": (lead @ atrial[:, :, None])[:, :, 0],  # (n, 8)
        "f_amp": is_af * rng.uniform(0.03, 0.12, n), "f_hz": rng.uniform(4.5, 8.0, n),
        "width": m.width, "offset": m.offset, "qtc": m.qtc, "qw": m.qw, "tw": m.tw,
        "hr": r["hr"], "af": is_af, "af_sigma": rng.uniform(0.12, 0.28, n),
        "hrv": r["hrv"] * np.where(r["rhythm"] == 3, 0.5, 1.0), "resp_hz": r["resp_hz"],
        "bw": prof.bw * np.exp(rng.normal(0, prof.noise_spread, n)) * o.noise,
        "emg": prof.emg * np.exp(rng.normal(0, prof.noise_spread, n)) * o.noise,
        "mains": 0.006 * np.exp(rng.normal(0, 0.7, n)) * o.noise,
        "mains_hz": np.where(rng.random(n) < 0.5, 50.0, 60.0),
    }
    meta["pr_ms"] = np.round(1000 * m.pr).astype(int)
    meta["qrs_ms"] = np.round(1000 * _qrs_duration(m)).astype(int)
    meta["qtc_ms"] = np.round(1000 * m.qtc).astype(int)
    if prof.swap_rate != (0.0, 0.0):
        params["swap"] = swap
        meta["lead_swap"] = np.array(SWAPS)[swap]
    return meta, params


def _recording_nuisances(gain: np.ndarray, offsets: np.ndarray, prof: Profile, noise: float,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-record amplifier gain, precordial electrodes placed higher or lower and turned as a
    set, and lead reversals (LA/RA, or two neighbouring V leads): all drawn without looking at
    any label. ``noise`` scales them like the other recording artefacts."""
    n = len(gain)
    gain = gain * np.exp(rng.normal(0, prof.device_gain_sd * noise, n))
    offsets = offsets.copy()
    offsets[:, 2:, 0] += rng.normal(0, prof.electrode_sd[0] * noise, (n, 1))
    offsets[:, 2:, 1] += rng.normal(0, prof.electrode_sd[1] * noise, (n, 1))
    arm, chest = np.minimum(np.array(prof.swap_rate) * noise, 0.5)
    u = rng.random(n)
    swap = np.where(u < arm, 1, np.where(u < arm + chest, 2 + rng.integers(0, 5, n), 0))
    return gain, offsets, swap


def _chest_and_contact_gains(offsets: np.ndarray, patient: np.ndarray, prof: Profile, o: SyntheticOptions,
                             rng: np.random.Generator) -> np.ndarray:
    """Log gains added per channel, drawn without looking at any label: the chest wall scales the
    precordial leads apart from the limb leads (per patient, a little per record), and each
    electrode's contact and position scale its channel per record."""
    if not (prof.chest_gain_sd or prof.contact_gain_sd):
        return offsets
    n = len(offsets)
    chest = rng.normal(0, prof.chest_gain_sd * o.individuality, o.n_patients)[patient] \
        + rng.normal(0, 0.3 * prof.chest_gain_sd * o.noise, n)
    offsets = offsets.copy()
    offsets[:, 2:, 2] += chest[:, None]
    offsets[:, :, 2] += rng.normal(0, prof.contact_gain_sd * o.noise, (n, 8))
    return offsets


def _qrs_duration(m: _Morphology) -> np.ndarray:
    """From 2 sigma before Q to 2 sigma after the last of S / R' (R' only where present)."""
    start = np.minimum(m.offset[:, Q] - 2 * m.width[:, Q], -2 * m.width[:, R])
    end = np.maximum(m.offset[:, S] + 2 * m.width[:, S], 2 * m.width[:, R])
    has_r2 = np.linalg.norm(m.vec[:, :, R2], axis=1) > 1e-6
    return np.where(has_r2, np.maximum(end, m.offset[:, R2] + 2 * m.width[:, R2]), end) - start


# ----- rendering --------------------------------------------------------------------------------
def _render_all(out: np.ndarray, params: dict[str, np.ndarray], o: SyntheticOptions, prof: Profile) -> dict:
    n = len(out)
    starts = list(range(0, n, CHUNK))
    measured = {"heart_rate": np.zeros(n), "rr_cv": np.zeros(n)}

    def work(index: int) -> None:
        sl = slice(starts[index], min(starts[index] + CHUNK, n))
        rng = np.random.default_rng([o.seed, 1, index])
        chunk = {key: value[sl] for key, value in params.items()}
        out[sl], measured["heart_rate"][sl], measured["rr_cv"][sl] = _render(chunk, o, rng, prof)

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        for _ in _progress(pool.map(work, range(len(starts))), len(starts)):
            pass
    return measured


def _progress(iterable: Any, total: int) -> Any:
    from rich.progress import track

    return track(iterable, total=total, description="generating synthetic ECGs", transient=True)


def _render(p: dict[str, np.ndarray], o: SyntheticOptions, rng: np.random.Generator,
            prof: Profile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, 12, T) float32 signals, measured heart rate and RR coefficient of variation."""
    n_samples = o.fs * o.seconds
    t = np.arange(n_samples, dtype=np.float32) / o.fs
    times, scale = _beats(p, o.seconds, rng, prof.beat_jitter)
    mu, sigma = _beat_waves(p, times)
    waves = _wave_sums(t, _pad_times(times), _pad(scale, 0.0), _pad(mu), _pad(sigma))
    x = np.matmul(p["proj"].astype(np.float32), waves)  # (B, 8, T)
    x += (p["atrial"] * p["f_amp"][:, None]).astype(np.float32)[:, :, None] \
        * _narrowband(p["f_hz"], 0.6, n_samples, o.fs, rng)[:, None, :]
    x += _noise(p, t, o.fs, rng)
    hr, rr_cv = _rate_stats(times, o.seconds)
    if "swap" in p:
        x = _reverse_electrodes(x, p["swap"])
    return _twelve_leads(x), hr, rr_cv


def _beats(p: dict, seconds: float, rng: np.random.Generator,
           jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times (B, K) covering [-2 s, seconds + 2 s] and a per-beat amplitude factor."""
    rr0 = 60.0 / p["hr"]
    b = len(rr0)
    phase = rng.uniform(0, 2 * np.pi, (b, 2))
    t = -2.0 - rng.uniform(0, 1, b) * rr0
    times = [t]
    while times[-1].min() < seconds + 2.0:
        tn = times[-1]
        wobble = np.sin(2 * np.pi * p["resp_hz"] * tn + phase[:, 0]) \
            + 0.6 * np.sin(2 * np.pi * 0.1 * tn + phase[:, 1])
        sinus = rr0 * (1 + p["hrv"] * wobble + rng.normal(0, 0.2, b) * p["hrv"])
        sig = p["af_sigma"]
        af = rr0 * np.exp(rng.normal(-sig**2 / 2, sig))
        times.append(tn + np.maximum(np.where(p["af"], af, sinus), 0.26))
    times = np.stack(times, 1)
    breath = np.sin(2 * np.pi * p["resp_hz"][:, None] * times + phase[:, :1])
    scale = 1 + 0.04 * breath + rng.normal(0, jitter, times.shape)
    return times, scale


def _beat_waves(p: dict, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wave centres and widths per beat (B, W, K); ST and T follow the preceding RR."""
    rr = np.diff(times, axis=1)
    rr = np.clip(np.concatenate([rr[:, :1], rr], 1), 0.3, 2.0)
    qt_scale = np.cbrt(rr)
    k = times.shape[1]
    mu = np.repeat(p["offset"][:, :, None], k, 2)
    sigma = np.repeat(p["width"][:, :, None], k, 2)
    sigma[:, T] = 0.04 * p["tw"][:, None] * qt_scale
    t_end = -0.04 * p["qw"][:, None] + p["qtc"][:, None] * qt_scale
    mu[:, T] = t_end - 2.5 * sigma[:, T]
    j_point = 0.045 * p["qw"][:, None]
    mu[:, ST] = (j_point + mu[:, T]) / 2
    sigma[:, ST] = np.maximum((mu[:, T] - j_point) / 3, 0.02)
    return mu, sigma


def _pad(a: np.ndarray, value: float | None = None) -> np.ndarray:
    """One sentinel beat on each side (edge values, or ``value``) along the beat axis."""
    widths = [(0, 0)] * (a.ndim - 1) + [(1, 1)]
    if value is None:
        return np.pad(a, widths, mode="edge")
    return np.pad(a, widths, constant_values=value)


def _pad_times(times: np.ndarray) -> np.ndarray:
    """Sentinel beats far outside the window, so every sample has a beat before and after."""
    far = np.full((len(times), 1), 1e3)
    return np.concatenate([-far, times, far], 1)


def _wave_sums(t: np.ndarray, times: np.ndarray, scale: np.ndarray, mu: np.ndarray,
               sigma: np.ndarray) -> np.ndarray:
    """(B, W, T): each wave summed over the beat before, the current and the next beat."""
    b, k = times.shape
    offsets = np.arange(b)[:, None] * 1e4
    flat = (times + offsets).ravel()
    last = np.searchsorted(flat, (t[None, :] + offsets).ravel(), side="right") - 1
    last = last.reshape(b, -1) - np.arange(b)[:, None] * k
    waves = np.zeros((b, mu.shape[1], len(t)), dtype=np.float32)
    for j in (last - 1, last, last + 1):
        j = np.clip(j, 0, k - 1)
        since = (t[None, :] - np.take_along_axis(times, j, 1)).astype(np.float32)
        amp = np.take_along_axis(scale, j, 1).astype(np.float32)
        z = since[:, None, :] - np.take_along_axis(mu, j[:, None, :], 2).astype(np.float32)
        z /= np.take_along_axis(sigma, j[:, None, :], 2).astype(np.float32)
        waves += amp[:, None, :] * np.exp(-0.5 * z * z)
    return waves


def _narrowband(centre_hz: np.ndarray, width_hz: float, n: int, fs: int,
                rng: np.random.Generator) -> np.ndarray:
    """(B, n) unit-RMS noise concentrated around ``centre_hz`` (Gaussian spectral bump)."""
    freqs = np.fft.rfftfreq(n, 1 / fs)
    band = np.flatnonzero((freqs > 0) & (freqs >= centre_hz.min() - 4 * width_hz)
                          & (freqs <= centre_hz.max() + 4 * width_hz))
    shape = np.exp(-0.5 * ((freqs[band] - centre_hz[:, None]) / width_hz) ** 2)
    spec = np.zeros((len(centre_hz), len(freqs)), np.complex64)
    spec[:, band] = shape * _complex_normal(rng, (len(centre_hz), len(band)))
    return _unit_rms(np.fft.irfft(spec, n))


def _complex_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape, np.float32) + 1j * rng.standard_normal(shape, np.float32)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-12)).astype(np.float32)


def _noise(p: dict, t: np.ndarray, fs: int, rng: np.random.Generator) -> np.ndarray:
    """(B, 8, T) baseline wander + bursty EMG + powerline for the measured channels."""
    b, n = len(p["hr"]), len(t)
    # baseline: 1/f below 0.5 Hz on a doubled length so it is not periodic in the window
    freqs = np.fft.rfftfreq(2 * n, 1 / fs)
    band = np.flatnonzero((freqs > 0) & (freqs <= 0.5))
    spec = np.zeros((b, 8, len(freqs)), np.complex64)
    spec[:, :, band] = _complex_normal(rng, (b, 8, len(band))) / (freqs[band] + 0.05)
    wander = _unit_rms(np.fft.irfft(spec, 2 * n)[:, :, :n])
    breath = np.sin(2 * np.pi * p["resp_hz"][:, None] * t + rng.uniform(0, 6.3, (b, 1)))
    wander += 0.4 * rng.uniform(0.2, 1.0, (b, 8, 1)).astype(np.float32) * breath[:, None, :]
    noise = wander * (p["bw"][:, None, None] * rng.uniform(0.5, 1.5, (b, 8, 1))).astype(np.float32)
    # EMG: 15-200 Hz, in bursts (slow log-normal envelope), stronger on limb leads
    freqs = np.fft.rfftfreq(n, 1 / fs)
    band = np.flatnonzero((freqs > 15) & (freqs < 200))
    spec = np.zeros((b, 8, len(freqs)), np.complex64)
    spec[:, :, band] = _complex_normal(rng, (b, 8, len(band)))
    emg = _unit_rms(np.fft.irfft(spec, n))
    envelope = np.exp(0.8 * _narrowband(np.full(b, 0.0), 0.4, n, fs, rng))
    envelope /= envelope.mean(1, keepdims=True)
    limb = np.array([1.5, 1.5] + [1.0] * 6, np.float32)[:, None]
    noise += emg * envelope[:, None, :] * limb * p["emg"][:, None, None].astype(np.float32)
    mains = np.sin(2 * np.pi * p["mains_hz"][:, None] * t + rng.uniform(0, 6.3, (b, 1)))
    amp = p["mains"][:, None, None] * rng.uniform(0.3, 1.5, (b, 8, 1))
    return noise + (amp * mains[:, None, :]).astype(np.float32)


def _rate_stats(times: np.ndarray, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean heart rate (bpm) and RR coefficient of variation of the RRs overlapping the window."""
    rr = np.diff(times, axis=1)
    inside = (times[:, 1:] > 0) & (times[:, :-1] < seconds)
    count = inside.sum(1)
    mean = (rr * inside).sum(1) / count
    std = np.sqrt((((rr - mean[:, None]) ** 2) * inside).sum(1) / count)
    return 60.0 / mean, std / mean


def _reverse_electrodes(x: np.ndarray, swap: np.ndarray) -> np.ndarray:
    """Measured channels (I, II, V1..V6) as a misconnected cable records them: LA/RA reversed
    gives -I and III in place of II; a V-lead swap exchanges two neighbouring chest channels."""
    x = x.copy()
    arms = swap == 1
    x[arms, 0], x[arms, 1] = -x[arms, 0], x[arms, 1] - x[arms, 0]
    for k in range(5):
        rows = np.flatnonzero(swap == 2 + k)
        x[rows, 2 + k], x[rows, 3 + k] = x[rows, 3 + k], x[rows, 2 + k].copy()
    return x


def _twelve_leads(x: np.ndarray) -> np.ndarray:
    """I, II, V1..V6 -> the 12 standard leads (III, aVR, aVL, aVF derived as a device does)."""
    i, ii = x[:, 0], x[:, 1]
    limb = np.stack([i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2], 1)
    return np.concatenate([limb, x[:, 2:]], 1).astype(np.float32)
