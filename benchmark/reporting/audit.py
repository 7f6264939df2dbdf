"""Audits of the synthetic suite: how ECG-like it looks, and how far trivial features get.

* :func:`realism` measures a set of recordings with one fixed piece of code (heart rate, lead II
  and V2 peak-to-peak voltage, the share of power below 0.5 Hz and above 40 Hz, beat-to-beat
  correlation), so the synthetic suite and the real CinC 2021 samples are compared like for like.
* :func:`shortcut_audit` fits the harness's own probe (logistic or ridge regression, C chosen on
  validation, test metric with a patient bootstrap CI) on trivial features: heart rate and each
  lead's amplitude and standard deviation. A suite on which these features reach the ceiling
  cannot tell representations apart. Beside it, the same probe on the generator's own interval
  measurements (:func:`interval_features`): what exact heart rate, RR variability, PR, QRS and QTc
  would give, a reference for how much of each label a reader of intervals could reach.
* :func:`age_expression` measures how much of age simple median-beat measurements carry (QRS and
  T amplitude per lead, QRS and T axes, rate and RR variability): their Spearman correlation with
  age and a cross-validated ridge R², for the suite and the real PTB-XL sample alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.contracts import STANDARD_LEADS, Recordings, Task

REALISM_FIGURES = ("heart_rate_bpm", "lead_ii_p2p_mv", "v2_p2p_mv", "power_below_0p5hz",
                   "power_above_40hz", "beat_correlation")


# ----- realism --------------------------------------------------------------------------------
def _r_peaks(lead: np.ndarray, fs: int) -> np.ndarray:
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
    peaks = _r_peaks(ii, fs)
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


# ----- age expression -------------------------------------------------------------------------
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
    peaks = _r_peaks(np.sqrt((x[orthogonal] ** 2).sum(0)), fs)
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


# ----- shortcut audit ---------------------------------------------------------------------------
def trivial_features(recordings: Recordings) -> tuple[np.ndarray, list[str]]:
    """Heart rate plus each lead's robust amplitude (1st to 99th percentile) and standard
    deviation: what a model can learn without looking at a waveform's shape. The heart rate is
    the metadata's ``heart_rate`` where a dataset records it (the synthetic suite measures it on
    the generated beats: an upper bound on what a detector would find), else detected on lead II."""
    x = np.asarray(recordings.signals, dtype=np.float32)
    low, high = np.percentile(x, [1, 99], axis=2)
    if "heart_rate" in recordings.meta:
        rate = recordings.meta["heart_rate"].to_numpy(dtype=float)
    else:
        ii = recordings.lead_names.index("II") if "II" in recordings.lead_names else 0
        rate = np.array([_heart_rate(np.asarray(record[ii], dtype=np.float64), recordings.fs) for record in x])
    names = recordings.lead_names
    columns = ["heart_rate"] + [f"amplitude_{n}" for n in names] + [f"std_{n}" for n in names]
    return np.nan_to_num(np.column_stack([rate, high - low, x.std(axis=2)])), columns


INTERVALS = ("heart_rate", "rr_cv", "pr_ms", "qrs_ms", "qtc_ms")


def interval_features(recordings: Recordings) -> tuple[np.ndarray, list[str]] | None:
    """The generator-truth rate and intervals of each record (the synthetic suite stores them in
    its metadata), or None for a dataset that lacks them."""
    if not set(INTERVALS) <= set(recordings.meta.columns):
        return None
    return recordings.meta[list(INTERVALS)].to_numpy(dtype=float), list(INTERVALS)


def _heart_rate(lead: np.ndarray, fs: int) -> float:
    peaks = _r_peaks(lead, fs)
    return 60.0 * fs / np.median(np.diff(peaks)) if len(peaks) > 2 else float("nan")


def shortcut_audit(task: Task, recordings: Recordings, features: np.ndarray, bootstrap: int = 1000,
                   seed: int = 0, grid: str = "full") -> dict[str, Any]:
    """The ``lr`` probe of :mod:`ecgbench.evaluation.probes` on ``features``, on the task's own splits, scored
    as the runner scores probes: C (alpha) chosen on validation by the main metric, the test
    main metric with a patient-level bootstrap 95% CI."""
    from ecgbench.evaluation import metrics, probes

    y, usable = task.labels(recordings.meta)
    split = {s: recordings.indices(s) for s in ("train", "val", "test")}
    split = {s: idx[usable[idx]] for s, idx in split.items()}
    fit = probes.fit_probe("lr", task.kind, features[split["train"]], y[split["train"]],
                           features[split["val"]], y[split["val"]], task.main_metric, seed, grid,
                           n_classes=len(task.classes) if task.kind == "multiclass" else None)
    test = split["test"]
    prediction = probes.predict(fit, features[test], task.kind)
    value = metrics.metric_value(task.kind, task.main_metric, y[test], prediction.y_pred, prediction.scores)
    low, high = metrics.bootstrap_ci(task.kind, task.main_metric, y[test], prediction.y_pred,
                                     prediction.scores, recordings.meta["patient_id"].to_numpy()[test],
                                     bootstrap, seed)
    return {"task": task.name, "task_key": task.key, "metric": task.main_metric, "value": value,
            "ci": [low, high], "probe_params": fit.params, "n_features": int(features.shape[1]),
            "n_test": int(len(test))}


def suite_audit(root: str | Path, version: int | None = None, bootstrap: int = 1000, seed: int = 0,
                **options: Any) -> list[dict[str, Any]]:
    """The shortcut audit of every synthetic task on one suite version (default: the current),
    each task at that version (its key says which); each row also holds, under ``intervals``, the
    same probe on the generator-truth intervals (:func:`interval_features`)."""
    from ecgbench.core.registry import TASKS
    from ecgbench.data.datasets import synthetic

    recordings = synthetic.load(root, **options, **({} if version is None else {"version": version}))
    version = recordings.version.split("-")[0]
    features, _ = trivial_features(recordings)
    intervals, _ = interval_features(recordings)
    names = [e.name for e in TASKS.entries.values() if e.module == "ecgbench.tasks.synthetic"]
    rows = []
    for name in sorted(names):
        task = TASKS.get(name).at_data_options({"version": version})
        row = shortcut_audit(task, recordings, features, bootstrap, seed)
        row["intervals"] = shortcut_audit(task, recordings, intervals, bootstrap, seed)
        rows.append(row)
    return rows


def audit_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per task of :func:`suite_audit`."""
    from tabulate import tabulate

    def cell(result: dict[str, Any] | None, metric: str) -> str:
        if result is None:
            return "–"
        d = 2 if metric == "mae" else 3
        return f"{result['value']:.{d}f} [{result['ci'][0]:.{d}f}, {result['ci'][1]:.{d}f}]"

    body = [[r["task_key"], r["metric"], cell(r, r["metric"]), cell(r.get("intervals"), r["metric"]), r["n_test"]]
            for r in rows]
    return tabulate(body, headers=["task", "metric", "trivial features: test [95% CI]",
                                   "generator-truth intervals: test [95% CI]", "test records"],
                    tablefmt="github", disable_numparse=True)


CONTROL = "random-init"
SINGLE_LEAD_CONTROL = "random-init-lead2"  # simclr-lead2's encoder, untrained: the control of single-lead methods
BASELINE = "ecg-features"  # the classical features every representation must beat (methods/ecg_features.py)


def against_control(rows: list[dict[str, Any]], results_dir: str | Path, probe: str = "lr",
                    control: str = CONTROL, methods: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """Per task of :func:`suite_audit`, preset and method stored in ``results_dir`` (frozen
    ``probe``; only those ``methods`` accepts, by default every one but the controls): the
    method's mean test value over seeds and the paired-bootstrap difference to the untrained
    ``control`` on the same test records, Holm-corrected over the task's methods at that preset
    (:func:`ecgbench.evaluation.stats.compare_methods`), with seeds held fixed and, stricter, with seeds
    resampled too (``*_seeds``)."""
    from ecgbench.core.store import ResultStore
    from ecgbench.evaluation.stats import compare_methods

    accept = methods or (lambda method: not is_control(method))
    results = list(ResultStore(Path(results_dir)).results())
    compared = sorted({r.get("method") for r in results if r.get("method") != control and accept(r.get("method"))})
    out = []
    for row in rows:
        presets = sorted({r.get("preset") for r in results
                          if r.get("task_key") == row["task_key"] and r.get("method") == control})
        for preset in presets:
            comparison = compare_methods(results, row["task_key"], results_dir, preset=preset, probe=probe,
                                         reference=control, resample_seeds=True, methods=compared)
            out += [_against_control_row(row, preset, control, test) for test in comparison.rows]
    return out


def is_control(method: str) -> bool:
    """An untrained control row (registered with ``needs_training = False``; unknown names: False)."""
    cls = _registered(method)
    return cls is not None and not cls.needs_training


def single_lead(method: str, preset: str = "cpu") -> bool:
    """A registered method whose encoder takes one lead at ``preset`` (unknown names: False)."""
    import dataclasses

    cls = _registered(method)
    return cls is not None and len(dataclasses.replace(cls.Config(), **cls.preset_overrides(preset)).leads) == 1


def _registered(method: str):
    from ecgbench.core.registry import METHODS

    try:
        return METHODS.get(method)
    except (KeyError, ValueError):
        return None


def _against_control_row(row: dict[str, Any], preset: str, control: str, test: dict[str, Any]) -> dict[str, Any]:
    return {"task_key": row["task_key"], "preset": preset, "metric": row["metric"], "trivial": row["value"],
            "control_method": control, "control": test["value_a"], "method": test["method_b"], "value": test["value_b"],
            "seeds": test["seeds_b"], "difference": test["value_b"] - test["value_a"],
            "ci": [-test["ci_high"], -test["ci_low"]], "p_holm": test["p_holm"], "significant": test["significant"],
            "ci_seeds": [-test["ci_high_seeds"], -test["ci_low_seeds"]], "p_holm_seeds": test["p_holm_seeds"],
            "significant_seeds": test["significant_seeds"]}


def control_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per task and method of :func:`against_control`."""
    from tabulate import tabulate

    def fmt(value: float, metric: str) -> str:
        return f"{value:.{2 if metric == 'mae' else 3}f}"

    body = [[r["task_key"], r["preset"], r["metric"], fmt(r["trivial"], r["metric"]), fmt(r["control"], r["metric"]),
             r["method"], r["seeds"], fmt(r["value"], r["metric"]),
             (f"{r['difference']:+.{2 if r['metric'] == 'mae' else 3}f} [{fmt(r['ci'][0], r['metric'])}, "
              f"{fmt(r['ci'][1], r['metric'])}]"), _p_cell(r["p_holm"], r["significant"]),
             _p_cell(r["p_holm_seeds"], r["significant_seeds"])]
            for r in rows]
    return tabulate(body, headers=["task", "preset", "metric", "trivial features", _control_name(rows), "method", "seeds",
                                   "method (test)", "method - control [95% CI]", "p (Holm)",
                                   "p (Holm), seeds resampled"],
                    tablefmt="github", disable_numparse=True)


def _p_cell(p_value: float, significant: bool) -> str:
    return f"{p_value:.3f}" + (" *" if significant else "")


def self_supervised(method: str) -> bool:
    """Trained without labels: neither a control nor a label-using method (unknown names: False)."""
    cls = _registered(method)
    return cls is not None and cls.needs_training and not cls.uses_labels


def control_summary(rows: list[dict[str, Any]]) -> str:
    """Markdown: per task and preset of :func:`against_control`, the trivial features, the control,
    the best self-supervised method with its difference to the control (Holm p), and how many
    self-supervised methods are significantly better / worse than the control."""
    from tabulate import tabulate

    from ecgbench.core.contracts import HIGHER_IS_BETTER

    body = []
    for (task, preset), group in _grouped(rows).items():
        metric, d = group[0]["metric"], 2 if group[0]["metric"] == "mae" else 3
        sign = 1 if HIGHER_IS_BETTER[metric] else -1
        ssl = [r for r in group if self_supervised(r["method"])]
        if not ssl:
            continue
        best = max(ssl, key=lambda r: sign * r["value"])
        better = sorted(r["method"] for r in ssl if r["significant"] and sign * r["difference"] > 0)
        worse = [r for r in ssl if r["significant"] and sign * r["difference"] < 0]
        body.append([task, preset, metric, f"{group[0]['trivial']:.{d}f}", f"{group[0]['control']:.{d}f}",
                     f"{best['method']} ({best['seeds']} seeds): {best['value']:.{d}f}",
                     f"{best['difference']:+.{d}f} [{best['ci'][0]:.{d}f}, {best['ci'][1]:.{d}f}], "
                     f"p = {_p_cell(best['p_holm'], best['significant'])}",
                     f"[{best['ci_seeds'][0]:.{d}f}, {best['ci_seeds'][1]:.{d}f}], "
                     f"p = {_p_cell(best['p_holm_seeds'], best['significant_seeds'])}",
                     f"{len(better)} / {len(worse)} of {len(ssl)}" + (f" (better: {', '.join(better)})" if better else "")])
    return tabulate(body, headers=["task", "preset", "metric", "trivial features", _control_name(rows),
                                   "best self-supervised (test)", "best - control [95% CI], Holm p",
                                   "seeds resampled too: [95% CI], Holm p",
                                   "self-supervised significantly better / worse than the control"],
                    tablefmt="github", disable_numparse=True)


def baseline_summary(rows: list[dict[str, Any]]) -> str:
    """Markdown: per task and preset of :func:`against_control` with ``control=BASELINE``, the
    baseline's score and how many self-supervised methods are significantly better, not separable
    from it, or significantly worse (paired patient bootstrap, Holm; seeds fixed, then resampled
    too). Every method is counted and none is singled out by its test score."""
    from tabulate import tabulate

    from ecgbench.core.contracts import HIGHER_IS_BETTER

    def counts(ssl: list[dict[str, Any]], significant: str, sign: int) -> tuple[list[str], str]:
        better = sorted(r["method"] for r in ssl if r[significant] and sign * r["difference"] > 0)
        worse = sum(1 for r in ssl if r[significant] and sign * r["difference"] < 0)
        return better, f"{len(better)} / {len(ssl) - len(better) - worse} / {worse}"

    body = []
    for (task, preset), group in _grouped(rows).items():
        metric, d = group[0]["metric"], 2 if group[0]["metric"] == "mae" else 3
        sign = 1 if HIGHER_IS_BETTER[metric] else -1
        ssl = [r for r in group if self_supervised(r["method"])]
        if not ssl:
            continue
        better, fixed = counts(ssl, "significant", sign)
        _, resampled = counts(ssl, "significant_seeds", sign)
        body.append([task, preset, metric, f"{group[0]['control']:.{d}f}", str(len(ssl)), fixed, resampled,
                     ", ".join(better) or "none"])
    return tabulate(body, headers=["task", "preset", "metric", _control_name(rows), "self-supervised methods",
                                   "better / not separable / worse (seeds fixed)",
                                   "better / not separable / worse (seeds resampled too)", "better (seeds fixed)"],
                    tablefmt="github", disable_numparse=True)


def _control_name(rows: list[dict[str, Any]]) -> str:
    return rows[0].get("control_method", CONTROL) if rows else CONTROL


def _grouped(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["task_key"], row["preset"]), []).append(row)
    return groups


def report_text(data_root: str | Path, version: int | None = None, real: str | Path | None = None,
                results_dir: str | Path | None = None, real_ptbxl: str | Path | None = None) -> str:
    """``ecgbench audit``: the shortcut audit of one suite version; with ``results_dir``, beside
    the control and each method stored there; with ``real``, the realism figures of the suite
    (first 300 records) beside those of the real records in that folder; with ``results_dir``, also
    what the stored methods' cached embeddings hold of the generator's truth (:mod:`ecgbench.evaluation.decoding`);
    with ``real_ptbxl`` (a PTB-XL folder), how much of age the suite's records and that folder's
    carry (:func:`age_expression`)."""
    from ecgbench.data.datasets import synthetic
    from ecgbench.evaluation.decoding import decoding_table, what_embeddings_hold

    rows = suite_audit(data_root, version)
    if results_dir or real or real_ptbxl:
        recordings = synthetic.load(data_root, **({} if version is None else {"version": version}))
    parts = [audit_table(rows)]
    if results_dir:
        compared = against_control(rows, results_dir)
        parts += [control_summary(compared), control_table(compared)]
        matched = against_control(rows, results_dir, control=SINGLE_LEAD_CONTROL,
                                  methods=lambda method: single_lead(method) and not is_control(method))
        if matched:  # single-lead methods beside the untrained single-lead encoder
            parts += [control_summary(matched), control_table(matched)]
        baseline = against_control(rows, results_dir, control=BASELINE)
        if baseline:  # every self-supervised method against the classical features
            parts.append(baseline_summary(baseline))
        parts.append(decoding_table(what_embeddings_hold(recordings, results_dir)))
    if real:
        x, fs = real_cinc_samples(real)
        parts.append(realism_table({f"synthetic v{recordings.version.split('-')[0]} (first 300)":
                                    realism(np.asarray(recordings.signals[:300]), recordings.fs),
                                    f"{Path(real).name} ({len(x)})": realism(x, fs)}))
    if real_ptbxl:
        meta = recordings.meta
        suite = age_expression(recordings.signals, recordings.fs, meta["age"].to_numpy(dtype=float),
                               meta["patient_id"].to_numpy())
        sample = age_expression(*real_ptbxl_sample(real_ptbxl))
        parts.append(age_expression_table({f"synthetic v{recordings.version.split('-')[0]}": suite,
                                           f"{Path(real_ptbxl).name} sample": sample}))
    return "\n\n".join(parts)
