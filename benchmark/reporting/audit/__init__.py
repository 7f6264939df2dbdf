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
* :func:`against_control` sets each stored method beside a control row (the untrained encoders,
  the classical features), with the summaries BENCHMARK.md shows.

One module each (:mod:`.realism`, :mod:`.shortcut`, :mod:`.age`, :mod:`.controls`); this one
puts them together for ``ecgbench audit`` (:func:`report_text`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgbench.reporting.audit.age import (
    AGE_FS,
    AGE_MEASUREMENTS,
    age_expression,
    age_expression_table,
    beat_measurements,
    real_ptbxl_sample,
)
from ecgbench.reporting.audit.controls import (
    BASELINE,
    CONTROL,
    SINGLE_LEAD_CONTROL,
    against_control,
    baseline_summary,
    control_summary,
    control_table,
    is_control,
    self_supervised,
    single_lead,
    validation_means,
)
from ecgbench.reporting.audit.realism import (
    REALISM_FIGURES,
    r_peaks,
    real_cinc_samples,
    realism,
    realism_table,
    record_figures,
)
from ecgbench.reporting.audit.shortcut import (
    BOOSTING_GRID,
    INTERVALS,
    audit_table,
    baseline_audit,
    baseline_table,
    boosted_audit,
    interval_features,
    shortcut_audit,
    suite_audit,
    trivial_features,
)

__all__ = [
    "AGE_FS", "AGE_MEASUREMENTS", "BASELINE", "CONTROL", "INTERVALS", "REALISM_FIGURES", "SINGLE_LEAD_CONTROL",
    "BOOSTING_GRID", "against_control", "age_expression", "age_expression_table", "audit_table", "baseline_audit", "baseline_summary",
    "baseline_table", "boosted_audit",
    "beat_measurements", "control_summary", "control_table", "interval_features", "is_control", "r_peaks",
    "real_cinc_samples", "real_ptbxl_sample", "realism", "realism_table", "record_figures", "self_supervised",
    "shortcut_audit", "single_lead", "suite_audit", "trivial_features", "validation_means", "report_text",
]


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
    baselines = baseline_audit(data_root, version)
    for baseline, row in zip(baselines, rows):
        baseline["trivial"] = row
    parts = [audit_table(rows), baseline_table(baselines)]
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
