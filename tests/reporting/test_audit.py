"""ecgbench.reporting.audit: realism figures on signals whose answers are known, the shortcut audit's
scoring on features that do and do not carry the label, and the audit of the synthetic suite."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.contracts import STANDARD_LEADS, Recordings
from ecgbench.core.registry import TASKS
from ecgbench.reporting import audit

FS = 500


def pulse_train(rate_bpm: float, amplitudes: np.ndarray, seconds: int = 10, wander: float = 0.0) -> np.ndarray:
    """(12, T): a narrow Gaussian 'R wave' per beat with per-lead amplitude, plus a 0.2 Hz wave."""
    t = np.arange(seconds * FS) / FS
    beats = np.arange(0.4, seconds, 60.0 / rate_bpm)
    wave = np.exp(-0.5 * ((t[None, :] - beats[:, None]) / 0.012) ** 2).sum(0)
    return amplitudes[:, None] * wave[None, :] + wander * np.sin(2 * np.pi * 0.2 * t)[None, :]


def test_record_figures_on_a_known_signal():
    amplitudes = np.ones(12)
    amplitudes[STANDARD_LEADS.index("V2")] = 2.0
    figures = audit.record_figures(pulse_train(75, amplitudes), FS)
    assert figures["heart_rate_bpm"] == pytest.approx(75, abs=1)
    assert figures["lead_ii_p2p_mv"] == pytest.approx(1.0, abs=0.15)
    assert figures["v2_p2p_mv"] == pytest.approx(2 * figures["lead_ii_p2p_mv"], rel=0.01)
    assert figures["beat_correlation"] > 0.99
    assert figures["power_below_0p5hz"] < 0.01 and figures["power_above_40hz"] < 0.05
    wandering = audit.record_figures(pulse_train(75, amplitudes, wander=1.0), FS)
    assert wandering["power_below_0p5hz"] > 0.3  # the 0.2 Hz wave dominates the power


def test_realism_is_the_median_over_records():
    records = np.stack([pulse_train(rate, np.ones(12)) for rate in (60, 75, 120)])
    assert audit.realism(records, FS)["heart_rate_bpm"] == pytest.approx(75, abs=1)
    table = audit.realism_table({"a": audit.realism(records, FS), "b": audit.realism(records[:1], FS)})
    lines = table.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["figure", "a", "b"]
    assert [line.split("|")[1].strip() for line in lines[2:]] == list(audit.REALISM_FIGURES)


def small_recordings(n_patients: int = 120, seed: int = 0) -> Recordings:
    """A hand-made binary dataset: one record per patient, 'sex' drawn at random; the signal is a
    pulse train whose amplitude carries nothing about the label."""
    rng = np.random.default_rng(seed)
    sex = rng.integers(0, 2, n_patients)
    signals = np.stack([pulse_train(rng.uniform(55, 100), rng.uniform(0.5, 1.5) * np.ones(12), seconds=4)
                        for _ in range(n_patients)]).astype(np.float32)
    split = np.array(["train", "val", "test"])[np.arange(n_patients) % 3]
    meta = pd.DataFrame({"record_id": [f"r{i}" for i in range(n_patients)], "patient_id": np.arange(n_patients),
                         "split": split, "sex": sex, "age": rng.uniform(20, 80, n_patients)})
    return Recordings("toy", "1", signals, meta, FS, STANDARD_LEADS)


def test_trivial_features_are_rate_amplitude_and_spread():
    recordings = small_recordings(12)
    features, columns = audit.trivial_features(recordings)
    assert features.shape == (12, 25) and columns[0] == "heart_rate"
    assert columns[1] == "amplitude_I" and columns[13] == "std_I"
    x = np.asarray(recordings.signals)
    np.testing.assert_allclose(features[:, 13:], x.std(axis=2), rtol=1e-5)
    assert np.all((features[:, 0] > 50) & (features[:, 0] < 105))  # detected on lead II (no meta column)
    recordings.meta["heart_rate"] = 61.0
    assert np.all(audit.trivial_features(recordings)[0][:, 0] == 61.0)  # the dataset's own measurement


def test_shortcut_audit_scores_like_a_probe():
    recordings = small_recordings()
    task = TASKS.get("synth-sex")
    y = recordings.meta["sex"].to_numpy()
    rng = np.random.default_rng(1)
    leaky = np.column_stack([y + 0.1 * rng.normal(size=len(y)), rng.normal(size=len(y))])
    result = audit.shortcut_audit(task, recordings, leaky, bootstrap=100)
    assert result["value"] > 0.95 and result["ci"][0] <= result["value"] <= result["ci"][1]
    assert result["task_key"] == task.key and result["n_test"] == 40 and result["probe_params"]
    blind = audit.shortcut_audit(task, recordings, rng.normal(size=(len(y), 5)), bootstrap=100)
    assert blind["value"] < 0.75


@pytest.mark.slow
@pytest.mark.parametrize("version", [2, 3])
def test_trivial_features_stay_clearly_below_ceiling_on_the_suite(tmp_path, version):
    """On suite versions 2 and 3, heart rate and per-lead amplitude/spread leave the diagnostic
    and demographic tasks far from solved (rhythm, defined by rate, is the expected exception)."""
    results = {r["task"]: r for r in audit.suite_audit(tmp_path, version, n_patients=400, bootstrap=200)}
    assert all(r["task_key"].endswith(f"@v{version}") for r in results.values())
    assert results["synth-superclass"]["ci"][1] < 0.8, results["synth-superclass"]
    assert results["synth-sex"]["ci"][1] < 0.85, results["synth-sex"]
    assert results["synth-age"]["value"] > 8.0, results["synth-age"]  # MAE in years; sd of age is 17
    # the generator-truth intervals measure what the labels are made of: rate and RR variability
    # define rhythm; QRS, PR and QTc carry part of the superclasses and of sex
    intervals = {task: r["intervals"]["value"] for task, r in results.items()}
    assert intervals["synth-rhythm"] > 0.95, intervals
    assert intervals["synth-sex"] > results["synth-sex"]["value"], intervals


def test_methods_against_the_control_are_paired_and_holm_corrected(tmp_path):
    """Two methods stored beside the control on one task: the one whose scores carry the label
    differs significantly from the untrained control; the one equal to it does not."""
    from ecgbench.core.store import ResultStore, write_json
    from ecgbench.evaluation.metrics import metric_value
    from ecgbench.evaluation.stats import write_predictions

    rng = np.random.default_rng(0)
    y, groups = rng.integers(0, 2, 200), np.repeat(np.arange(100), 2)
    scores = {"random-init": rng.normal(size=200), "trained": y + rng.normal(0, 0.5, 200)}
    scores["copy"] = scores["random-init"]
    scores["random-init-lead2"] = y + rng.normal(0, 2.0, 200)  # another control: not a hypothesis of its own
    for method, score in scores.items():
        path = ResultStore(tmp_path).result_path(f"{method}-0", "synth-sex@v3", "frozen-probe-lr-0")
        write_predictions(path.with_suffix(".npz"), np.arange(200), groups, y, (score > 0.5).astype(int), score)
        write_json(path, {"key": f"{method}-0/synth-sex@v3/frozen-probe-lr-0", "run_id": f"{method}-0",
                          "method": method, "task": "synth-sex", "task_key": "synth-sex@v3", "task_kind": "binary",
                          "main_metric": "macro_auroc", "probe": "lr", "protocol": "frozen-probe", "preset": "cpu",
                          "seed": 0, "val_score": 0.5, "predictions": path.with_suffix(".npz").name,
                          "metrics": {"macro_auroc": metric_value("binary", "macro_auroc", y, (score > 0.5).astype(int), score)}})
    audit_rows = [{"task_key": "synth-sex@v3", "metric": "macro_auroc", "value": 0.6},
                  {"task_key": "synth-age@v3", "metric": "mae", "value": 12.0}]  # no results: left out
    rows = {r["method"]: r for r in audit.against_control(audit_rows, tmp_path)}
    assert set(rows) == {"trained", "copy"} and rows["trained"]["preset"] == "cpu"
    assert rows["trained"]["significant"] and rows["trained"]["ci"][0] > 0 < rows["trained"]["difference"]
    assert not rows["copy"]["significant"] and rows["copy"]["difference"] == 0
    # one seed each: resampling seeds has nothing to draw, so both tests agree
    assert rows["trained"]["significant_seeds"] and rows["trained"]["ci_seeds"] == pytest.approx(rows["trained"]["ci"])
    control = metric_value("binary", "macro_auroc", y, (scores["random-init"] > 0.5).astype(int), scores["random-init"])
    assert rows["trained"]["control"] == pytest.approx(control) and rows["trained"]["trivial"] == 0.6
    table = audit.control_table(list(rows.values()))
    assert "random-init" in table.splitlines()[0] and " *" in table and "synth-age" not in table
    # a second control, e.g. the single-lead one, compared only with the methods it is given
    matched = audit.against_control(audit_rows, tmp_path, control="random-init-lead2", methods=lambda m: m == "trained")
    assert [(r["method"], r["control_method"]) for r in matched] == [("trained", "random-init-lead2")]
    assert "random-init-lead2" in audit.control_table(matched).splitlines()[0]


def test_control_summary_names_the_best_self_supervised_method_on_validation():
    """Only self-supervised methods count (not label-using ones); for MAE lower is better; the
    best is the best validation score, never the best test score."""
    def row(task, metric, method, value, difference, significant, val=None):
        return {"task_key": task, "preset": "cpu", "metric": metric, "trivial": 0.6 if metric != "mae" else 13.0,
                "control": value - difference, "method": method, "value": value, "seeds": 3,
                "difference": difference, "ci": [difference - 0.01, difference + 0.01],
                "p_holm": 0.01 if significant else 0.5, "significant": significant,
                "ci_seeds": [difference - 0.02, difference + 0.02], "p_holm_seeds": 0.02 if significant else 0.6,
                "significant_seeds": significant, "val": value if val is None else val}

    rows = [row("synth-sex@v3", "macro_auroc", "simclr", 0.70, 0.10, True),
            row("synth-sex@v3", "macro_auroc", "byol", 0.50, -0.10, True),
            row("synth-sex@v3", "macro_auroc", "supervised-resnet", 0.90, 0.30, True),
            row("synth-age@v3", "mae", "simclr", 12.0, -1.0, True),
            row("synth-age@v3", "mae", "byol", 13.5, 0.5, False)]
    lines = audit.control_summary(rows).splitlines()
    sex = next(line for line in lines if "synth-sex" in line)
    age = next(line for line in lines if "synth-age" in line)
    assert "simclr (3 seeds): 0.700" in sex and "supervised-resnet" not in sex and "1 / 1 of 2" in sex
    assert "simclr (3 seeds): 12.00" in age and "-1.00" in age and "1 / 0 of 2 (better: simclr)" in age
    assert "[-1.02, -0.98], p = 0.020 *" in age and "seeds resampled" in lines[0] and "on validation" in lines[0]
    # Validation and test disagree: byol is best on validation, simclr on test. byol is named.
    rows[1]["val"], rows[4]["val"] = 0.95, 11.0
    lines = audit.control_summary(rows).splitlines()
    assert "byol (3 seeds): 0.500" in next(line for line in lines if "synth-sex" in line)
    assert "byol (3 seeds): 13.50" in next(line for line in lines if "synth-age" in line)


def test_validation_means_are_the_probes_own_over_seeds():
    def result(method, seed, val, probe="lr", **extra):
        return {"task_key": "synth-sex@v4", "preset": "cpu", "probe": probe, "method": method, "seed": seed,
                "val_score": val, **extra}

    results = [result("simclr", 0, 0.6), result("simclr", 1, 0.8), result("simclr", 2, 0.9, probe="svc"),
               result("simclr", 3, 0.1, label_fraction=0.1), result("simclr", 4, 0.1, protocol="linear"),
               result("byol", 0, float("nan"))]
    assert audit.validation_means(results, "synth-sex@v4", "cpu", "lr") == {"simclr": pytest.approx(0.7)}


def test_baseline_summary_counts_every_method_and_names_none_by_its_test_score():
    """Against the classical features: better / not separable / worse, seeds fixed and resampled;
    the method with the best test score is not singled out unless it is significantly better."""
    def row(method, value, difference, significant, significant_seeds):
        return {"task_key": "synth-age@v4", "preset": "cpu", "metric": "mae", "trivial": 12.0,
                "control_method": "ecg-features", "control": value - difference, "method": method, "value": value,
                "seeds": 3, "difference": difference, "ci": [difference - 0.3, difference + 0.3],
                "p_holm": 0.01, "significant": significant, "ci_seeds": [difference - 0.5, difference + 0.5],
                "p_holm_seeds": 0.04, "significant_seeds": significant_seeds}

    rows = [row("st-mem", 9.5, -0.5, False, False),  # the best test score, not separable
            row("simclr", 9.8, -0.2, False, False),
            row("byol", 12.0, 2.0, True, True),
            row("supervised-resnet", 8.0, -2.0, True, True)]  # label-using: not counted
    table = audit.baseline_summary(rows)
    header, _, line = table.splitlines()
    assert "ecg-features" in header and "better / not separable / worse (seeds fixed)" in header
    assert "| 10.00 " in line and "| 3 " in line and "0 / 2 / 1" in line and line.rstrip(" |").endswith("none")
    assert "st-mem" not in line and "supervised-resnet" not in line
    rows[0]["significant"] = True  # st-mem now significantly lower MAE than the features
    line = audit.baseline_summary(rows).splitlines()[2]
    assert "1 / 1 / 1" in line and "0 / 2 / 1" in line and line.rstrip(" |").endswith("st-mem")


# ----- age expression -----------------------------------------------------------------------------
LEAD_ANGLES = np.deg2rad([0, 60, 120, -150, -30, 90])  # I, II, III, aVR, aVL, aVF in the frontal plane


def dipole_beats(qrs_deg: float, t_deg: float, t_size: float = 0.3, rate: float = 60.0,
                 fs: int = audit.AGE_FS, p_size: float = 0.0) -> np.ndarray:
    """(12, 10 s): a QRS and, 0.3 s later, a T wave per beat, each a frontal dipole projected on
    the limb leads (chest leads: the QRS alone); a P wave 0.16 s before each QRS if ``p_size``."""
    t = np.arange(10 * fs) / fs
    beats = np.arange(0.5, 10, 60.0 / rate)
    bump = lambda delay, width: np.exp(-0.5 * ((t[None] - beats[:, None] - delay) / width) ** 2).sum(0)  # noqa: E731
    x = np.zeros((12, len(t)))
    x[:6] = np.cos(LEAD_ANGLES - np.deg2rad(qrs_deg))[:, None] * bump(0, 0.012) \
        + t_size * np.cos(LEAD_ANGLES - np.deg2rad(t_deg))[:, None] * bump(0.3, 0.05)
    x[6:] = bump(0, 0.012)[None]
    x[:6] += p_size * np.cos(LEAD_ANGLES - np.deg2rad(50))[:, None] * bump(-0.16, 0.02)
    return x


def test_beat_measurements_read_axes_rate_and_t_of_known_dipoles():
    record = dipole_beats(qrs_deg=60, t_deg=-10, rate=75, p_size=0.15) + 0.5  # a DC offset the baseline removes
    measured = audit.beat_measurements(record)
    assert measured["heart_rate"] == pytest.approx(75, abs=1.5) and measured["rr_cv"] < 0.02
    assert measured["qrs_axis"] == pytest.approx(60, abs=8) and measured["t_axis"] == pytest.approx(-10, abs=8)
    assert measured["qrs_t_angle"] == pytest.approx(70, abs=12)
    assert measured["t_I"] == pytest.approx(0.3 * np.cos(np.deg2rad(10)), rel=0.2)
    assert measured["t_aVR"] < 0 < measured["t_aVL"]
    assert audit.beat_measurements(dipole_beats(0, 0)[:, :150]) is None  # 1.5 s: fewer than 3 beats


def test_age_expression_finds_a_planted_age_effect_and_nothing_in_shuffled_ages():
    """40 patients with 2 records each (same age and axis, each record its own jitter); the
    folds keep a patient's records together, so a model cannot look a patient up."""
    rng = np.random.default_rng(0)
    ages = np.repeat(rng.uniform(20, 90, 40), 2)
    patients = np.repeat(np.arange(40), 2)
    axis = np.repeat(rng.normal(0, 10, 40), 2)
    signals = np.stack([dipole_beats(60 - 0.8 * (a - 55) + turn + rng.normal(0, 2), 40,
                                     t_size=0.4 * np.exp(-0.01 * (a - 55)) * rng.lognormal(0, 0.05))
                        for a, turn in zip(ages, axis)])
    found = audit.age_expression(signals, audit.AGE_FS, ages, patients)
    assert found["n"] == 80 and found["r2"] > 0.5, found
    assert found["correlations"]["qrs_axis"] < -0.6 and found["correlations"]["t_II"] < -0.6
    shuffled = audit.age_expression(signals, audit.AGE_FS, np.repeat(rng.permutation(ages[::2]), 2), patients)
    assert shuffled["r2"] < 0.15 and abs(shuffled["correlations"]["qrs_axis"]) < 0.3
    table = audit.age_expression_table({"planted": found, "shuffled": shuffled})
    assert "ridge R²" in table and "planted" in table.splitlines()[0]


def test_age_expression_needs_measurable_records():
    flat = np.zeros((12, 12, 1000))
    with pytest.raises(ValueError, match=r"only 0 of 12 records have an age and three whole beats"):
        audit.age_expression(flat, audit.AGE_FS, np.full(12, 50.0), np.arange(12))


@pytest.mark.parametrize("kind, metric", [("binary", "macro_auroc"), ("multiclass", "macro_f1"),
                                          ("multilabel", "macro_auroc"), ("regression", "mae")])
def test_the_boosted_baseline_is_chosen_on_validation_and_scored_once_on_test(kind, metric):
    """Gradient-boosted trees on features that carry the label: a good test score with its CI, the
    grid setting the validation split chose, for every task kind."""
    import pandas as pd

    from ecgbench.core.contracts import Recordings, Task
    from ecgbench.reporting.audit import BOOSTING_GRID, boosted_audit

    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=(n, 6))
    targets = {"binary": (x[:, 0] > 0).astype(int), "multiclass": np.digitize(x[:, 0], [-0.5, 0.5]),
               "multilabel": np.column_stack([x[:, 0] > 0, x[:, 1] > 0]).astype(int), "regression": 50 + 10 * x[:, 0]}
    y = targets[kind]
    meta = pd.DataFrame({"record_id": range(n), "patient_id": range(n),
                         "split": np.repeat(["train", "val", "test"], [180, 60, 60])})
    data = Recordings("toy", "1", np.zeros((n, 1, 4), np.float32), meta, 100, ("I",))
    task = Task("toy", 1, "toy", kind, lambda m: (y, np.ones(len(m), bool)), metric, "toy",
                classes=("a", "b", "c") if kind == "multiclass" else ("p", "q") if kind == "multilabel" else ())
    row = boosted_audit(task, data, x, bootstrap=100)
    assert row["probe_params"] in BOOSTING_GRID and row["n_test"] == 60
    good = row["value"] < 5 if kind == "regression" else row["value"] > 0.8
    assert good and row["ci"][0] <= row["value"] <= row["ci"][1]
