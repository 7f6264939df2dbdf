"""Each stored method against a control row (the untrained encoders, the classical features):
paired patient bootstrap on the same test records, Holm over the task's methods, seeds fixed and
resampled; the summaries and per-method tables."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

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
    resampled too (``*_seeds``); ``val``: the method's mean validation score over seeds, the only
    score a summary may choose by."""
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
            validation = validation_means(results, row["task_key"], preset, probe)
            out += [{**_against_control_row(row, preset, control, test),
                     "val": validation.get(test["method_b"], math.nan)} for test in comparison.rows]
    return out


def validation_means(results: list[dict[str, Any]], task_key: str, preset: str, probe: str) -> dict[str, float]:
    """row (method, or method and config: :mod:`ecgbench.core.rows`) -> mean validation score (the
    task's main metric) of its frozen ``probe`` over seeds, all labels."""
    from ecgbench.core.rows import label_configs, row_of

    scores: dict[str, list[float]] = {}
    task = [r for r in results if (r.get("task_key"), r.get("preset")) == (task_key, preset)
            and r.get("protocol", "frozen-probe") == "frozen-probe" and r.get("label_fraction", 1.0) == 1.0
            and r.get("status") in (None, "ok")]
    for r in label_configs(task):  # the rows compare_methods names
        if (r.get("probe") == probe
                and isinstance(r.get("val_score"), (int, float)) and math.isfinite(r["val_score"])):
            scores.setdefault(row_of(r), []).append(float(r["val_score"]))
    return {method: float(np.mean(values)) for method, values in scores.items()}


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
    """The registered class of a method or of a config row's method."""
    from ecgbench.core.registry import METHODS
    from ecgbench.core.rows import method_of

    try:
        return METHODS.get(method_of(method))
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
    the best self-supervised method on validation (mean validation score over seeds; never the
    test score) with its test difference to the control (Holm p), and how many self-supervised
    methods are significantly better / worse than the control."""
    from tabulate import tabulate

    body = []
    for task, preset, metric, d, sign, group, ssl in _self_supervised_by_task(rows):
        best = max(ssl, key=lambda r: sign * r["val"] if math.isfinite(r.get("val", math.nan)) else -math.inf)
        better, worse = _better_worse(ssl, "significant", sign)
        body.append([task, preset, metric, f"{group[0]['trivial']:.{d}f}", f"{group[0]['control']:.{d}f}",
                     f"{best['method']} ({best['seeds']} seeds): {best['value']:.{d}f}",
                     f"{best['difference']:+.{d}f} [{best['ci'][0]:.{d}f}, {best['ci'][1]:.{d}f}], "
                     f"p = {_p_cell(best['p_holm'], best['significant'])}",
                     f"[{best['ci_seeds'][0]:.{d}f}, {best['ci_seeds'][1]:.{d}f}], "
                     f"p = {_p_cell(best['p_holm_seeds'], best['significant_seeds'])}",
                     f"{len(better)} / {worse} of {len(ssl)}" + (f" (better: {', '.join(better)})" if better else "")])
    return tabulate(body, headers=["task", "preset", "metric", "trivial features", _control_name(rows),
                                   "best self-supervised on validation: test", "best - control [95% CI], Holm p",
                                   "seeds resampled too: [95% CI], Holm p",
                                   "self-supervised significantly better / worse than the control"],
                    tablefmt="github", disable_numparse=True)


def baseline_summary(rows: list[dict[str, Any]]) -> str:
    """Markdown: per task and preset of :func:`against_control` with ``control=BASELINE``, the
    baseline's score and how many self-supervised methods are significantly better, not separable
    from it, or significantly worse (paired patient bootstrap, Holm; seeds fixed, then resampled
    too). Every method is counted and none is singled out by its test score."""
    from tabulate import tabulate

    def counts(ssl: list[dict[str, Any]], significant: str, sign: int) -> tuple[list[str], str]:
        better, worse = _better_worse(ssl, significant, sign)
        return better, f"{len(better)} / {len(ssl) - len(better) - worse} / {worse}"

    body = []
    for task, preset, metric, d, sign, group, ssl in _self_supervised_by_task(rows):
        better, fixed = counts(ssl, "significant", sign)
        _, resampled = counts(ssl, "significant_seeds", sign)
        body.append([task, preset, metric, f"{group[0]['control']:.{d}f}", str(len(ssl)), fixed, resampled,
                     ", ".join(better) or "none"])
    return tabulate(body, headers=["task", "preset", "metric", _control_name(rows), "self-supervised methods",
                                   "better / not separable / worse (seeds fixed)",
                                   "better / not separable / worse (seeds resampled too)", "better (seeds fixed)"],
                    tablefmt="github", disable_numparse=True)


def _self_supervised_by_task(rows: list[dict[str, Any]]) -> Iterator[tuple]:
    """Per task and preset with self-supervised rows: (task, preset, metric, decimals, sign, the
    group's rows, its self-supervised rows); ``sign`` is 1 where higher is better, else -1."""
    from ecgbench.core.contracts import HIGHER_IS_BETTER

    for (task, preset), group in _grouped(rows).items():
        metric = group[0]["metric"]
        ssl = [r for r in group if self_supervised(r["method"])]
        if ssl:
            yield task, preset, metric, 2 if metric == "mae" else 3, 1 if HIGHER_IS_BETTER[metric] else -1, group, ssl


def _better_worse(ssl: list[dict[str, Any]], significant: str, sign: int) -> tuple[list[str], int]:
    """The methods significantly better than the control (by name), and how many are significantly worse."""
    better = sorted(r["method"] for r in ssl if r[significant] and sign * r["difference"] > 0)
    return better, sum(1 for r in ssl if r[significant] and sign * r["difference"] < 0)


def _control_name(rows: list[dict[str, Any]]) -> str:
    return rows[0].get("control_method", CONTROL) if rows else CONTROL


def _grouped(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["task_key"], row["preset"]), []).append(row)
    return groups
