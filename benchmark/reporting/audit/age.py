"""How much of age simple median-beat measurements carry (QRS and T amplitude per lead, QRS and
T axes, rate and RR variability): Spearman correlation and cross-validated ridge R², for the
suite and the real PTB-XL sample alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.reporting.audit.realism import r_peaks

AGE_FS = 100  # every set is measured at PTB-XL's low rate, so real and synthetic compare like for like
_BEAT = (-0.3, 0.5)  # median-beat window around each R peak (s)


def beat_measurements(signal: np.ndarray, fs: int = AGE_FS,
                      lead_names: tuple[str, ...] = STANDARD_LEADS) -> dict[str, float] | None:
    """Median-beat measurements of one 12-lead record ``(leads, T)`` in mV at ``fs``: heart rate,
    RR variability, QRS peak-to-peak and T peak (signed, from the PR baseline) per lead, frontal
    QRS and T axes (from the net QRS and T areas of I and aVF) and their angle. R peaks come from
    the spatial magnitude of I, aVF and V2 (a left axis can leave lead II small); the T window
    ends before the next QRS at fast rates. None when fewer than three whole beats are found."""
    from scipy.signal import butter, sosfiltfilt

    x = sosfiltfilt(butter(2, [0.5, 40], "bandpass", fs=fs, output="sos"), signal, axis=1)
    before, after = int(-_BEAT[0] * fs), int(_BEAT[1] * fs)
    # the spatial magnitude of three near-orthogonal leads: its QRS peak stands out whatever the axis
    orthogonal = [lead_names.index(name) for name in ("I", "aVF", "V2")]
    peaks = r_peaks(np.sqrt((x[orthogonal] ** 2).sum(0)), fs)
    peaks = peaks[(peaks >= before) & (peaks + after <= x.shape[1])]
    if len(peaks) < 3:
        return None
    rr = np.diff(peaks) / fs
    t_end = float(np.clip(0.8 * np.median(rr) - 0.05, 0.25, 0.45))
    beat = np.median(np.stack([x[:, p - before:p + after] for p in peaks]), 0)
    at = lambda seconds: before + int(round(seconds * fs))  # noqa: E731 - sample of a time from R
    beat = beat - beat[:, at(-0.08):at(-0.05)].mean(1, keepdims=True)
    qrs, t = beat[:, at(-0.06):at(0.07)], beat[:, at(0.15):at(t_end)]
    t_peak = t[np.arange(len(t)), np.abs(t).argmax(1)]
    out = {"heart_rate": 60.0 / float(np.median(rr)), "rr_cv": float(rr.std() / rr.mean())}
    for i, name in enumerate(lead_names):
        out[f"qrs_{name}"] = float(np.ptp(qrs[i]))
        out[f"t_{name}"] = float(t_peak[i])
    lead_i, avf = lead_names.index("I"), lead_names.index("aVF")
    qrs_axis = np.degrees(np.arctan2(qrs[avf].sum(), qrs[lead_i].sum()))
    t_axis = np.degrees(np.arctan2(t[avf].sum(), t[lead_i].sum()))
    out.update(qrs_axis=float(qrs_axis), t_axis=float(t_axis),
               qrs_t_angle=float(abs((qrs_axis - t_axis + 180) % 360 - 180)))
    return out


def age_expression(signals: np.ndarray, fs: int, ages: np.ndarray, patients: np.ndarray,
                   lead_names: tuple[str, ...] = STANDARD_LEADS, folds: int = 5) -> dict[str, Any]:
    """How much of age the :func:`beat_measurements` of records ``(N, leads, T)`` carry: each
    measurement's Spearman correlation with age, and the R² and MAE of a ridge regression on all
    of them (each measurement's ranks mapped to a normal; alpha by efficient leave-one-out on each
    training fold), predicted out of fold with patient-wise folds. Records without an age or
    without three beats are left out (``n`` says how many remain)."""
    from scipy.signal import resample_poly
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import QuantileTransformer

    rows, keep = [], []
    for i, record in enumerate(signals):
        record = np.asarray(record, dtype=np.float64)
        if fs != AGE_FS:
            record = resample_poly(record, AGE_FS, fs, axis=1)
        measured = beat_measurements(record, AGE_FS, lead_names) if np.isfinite(ages[i]) else None
        if measured is not None and all(np.isfinite(list(measured.values()))):
            rows.append(measured)
            keep.append(i)
    if len(rows) < 2 * folds:
        raise ValueError(f"age expression: only {len(rows)} of {len(signals)} records have an age and "
                         f"three whole beats; at least {2 * folds} are needed")
    names = list(rows[0])
    x = np.array([[row[n] for n in names] for row in rows])
    y, groups = np.asarray(ages, dtype=float)[keep], np.asarray(patients)[keep]
    # ranks made normal (fitted on each training fold): a few mismeasured beats cannot dominate
    model = make_pipeline(QuantileTransformer(n_quantiles=min(200, len(y) // 2), output_distribution="normal"),
                          RidgeCV(alphas=np.logspace(-2, 4, 25)))
    predicted = cross_val_predict(model, x, y, cv=GroupKFold(folds), groups=groups)
    return {"n": len(y), "age_sd": float(y.std()),
            "r2": float(1 - ((predicted - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()),
            "mae": float(np.abs(predicted - y).mean()), "mae_of_median": float(np.abs(y - np.median(y)).mean()),
            "correlations": {n: _spearman(x[:, j], y) for j, n in enumerate(names)}}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho; NaN, without a warning, for a constant measurement."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0]) if np.ptp(a) > 0 else float("nan")


def real_ptbxl_sample(folder: str | Path) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """The 100 Hz records present in a PTB-XL folder, read by :func:`ecgbench.data.datasets.ptbxl.load`
    (its prepared cache in a temporary folder: the source may be read-only): ``(N, 12, T)`` mV,
    fs, age (NaN where missing or a placeholder) and patient id."""
    import tempfile

    from ecgbench.data.datasets import ptbxl

    with tempfile.TemporaryDirectory() as cache:
        recordings = ptbxl.load(folder, fs=AGE_FS, allow_subset=True, cache_dir=cache)
        signals = np.array(recordings.signals, dtype=np.float64)
    meta = recordings.meta
    return signals, AGE_FS, meta["age"].to_numpy(dtype=float), meta["patient_id"].to_numpy()


AGE_MEASUREMENTS = ("qrs_axis", "qrs_t_angle", "t_I", "t_II", "t_aVR", "t_V5", "t_V6", "qrs_II", "qrs_aVL", "rr_cv")


def age_expression_table(measured: dict[str, dict[str, Any]]) -> str:
    """Markdown: ridge R² and MAE of age and the main measurements' correlations, one column per set."""
    from tabulate import tabulate

    names = list(measured)
    rows = [["records", *[str(measured[n]["n"]) for n in names]],
            ["age sd (years)", *[f"{measured[n]['age_sd']:.1f}" for n in names]],
            ["ridge R² (patient-wise 5-fold)", *[f"{measured[n]['r2']:.2f}" for n in names]],
            ["ridge MAE / MAE of the median (years)",
             *[f"{measured[n]['mae']:.1f} / {measured[n]['mae_of_median']:.1f}" for n in names]]]
    rows += [[f"Spearman ρ(age, {m})", *[f"{measured[n]['correlations'][m]:+.2f}" for n in names]]
             for m in AGE_MEASUREMENTS]
    return tabulate(rows, headers=["age expression", *names], tablefmt="github", disable_numparse=True)
