"""``ecgbench report``: one self-contained HTML file from the stored result JSON.

No server and no network: the page is one file, its figures inline PNGs (matplotlib, base64) and
its tables plain HTML, so it opens from disk and can be mailed. It holds, for each leaderboard
group (preset, protocol, suite; :mod:`ecgbench.reporting.leaderboard`):

* the leaderboard (mean ranks, then per task the validation-chosen probe of each method);
* per task, each method's test score with its patient-level bootstrap 95% CI, one point per seed;
* a critical-difference diagram across tasks (Friedman test and Nemenyi post-hoc, from
  ``autorank``) where the group has at least two tasks and two methods that ran on all of them;

and, wherever the results hold them, label-efficiency curves (the ``frozen-probe-<k>-labels``
protocols), pretraining loss curves (``run.json`` ``train.loss_curve``) and the t-SNE embedding
plots written by :mod:`ecgbench.evaluation.analysis`. Every figure's caption says what was run: methods,
seeds, preset, protocol and task keys. The data behind each figure comes from a function of its
own (``*_data``), so tests check the numbers, not pixels.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.contracts import HIGHER_IS_BETTER
from ecgbench.core.rows import FRACTION, label_configs, row_of
from ecgbench.reporting.layouts import best_probe_on_validation, not_applicable
from ecgbench.reporting.leaderboard import (
    SAMPLE_DIR,
    SAMPLE_INTRO,
    STANDING,
    PresetBoard,
    TaskBoard,
    build,
    cell_text,
    sample_boards,
    sample_heading,
    sample_results,
    separation_notes,
    sizes_text,
    stats_significance,
    summary_rows,
    task_rows,
)
from ecgbench.reporting.leaderboard.tested import StoredTests

FIGURE_DPI = 100


# ----- the data behind each figure --------------------------------------------------------------
def scores_data(board: TaskBoard) -> list[dict[str, Any]]:
    """Per method (leaderboard order): mean test score, per-seed scores and CI bounds."""
    rows = []
    for entry in board.entries:
        metric = board.metric
        seeds = [{"seed": int(r["seed"]), "value": float(r["metrics"][metric]),
                  "low": _float((r.get("ci") or {}).get("low")), "high": _float((r.get("ci") or {}).get("high"))}
                 for r in entry.records]
        rows.append({"method": entry.label, "probe": entry.probe, "mean": entry.mean, "seeds": seeds})
    return rows


def cd_data(group: PresetBoard) -> tuple[dict[str, dict[str, float]], str]:
    """Method label -> block -> score for the critical-difference diagram, and why there is no
    diagram ("" when there is one). A block is one (task, seed): each method's chosen probe on
    that task and pretraining seed, signed so that higher is better. Only blocks every method
    of the diagram has are kept; autorank needs at least five of them, and its Friedman/Nemenyi
    diagram three methods (two get a Wilcoxon test and no diagram)."""
    if len(group.tasks) < 2:
        return {}, f"a critical-difference diagram needs at least two tasks; this group has {len(group.tasks)}"
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for board in group.tasks:
        sign = 1.0 if HIGHER_IS_BETTER.get(board.metric, True) else -1.0
        for entry in board.entries:
            for r in entry.records:
                scores[entry.label][f"{board.task_key} seed {r['seed']}"] = sign * float(r["metrics"][board.metric])
    blocks = set.intersection(*(set(s) for s in scores.values()))
    if len(scores) < 3 or len(blocks) < 5:
        return {}, (f"{len(scores)} methods share {len(blocks)} (task, seed) blocks; the Friedman/Nemenyi "
                    "diagram needs three methods and five blocks")
    return {method: {b: s[b] for b in sorted(blocks)} for method, s in scores.items()}, ""


def label_efficiency_data(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, list]]:
    """(preset, task key, method) -> {"fraction": [...], "mean": [...], "seeds": [...]}: the main
    metric of the validation-chosen probe (mean validation score over seeds) at every label
    fraction stored, 1.0 included."""
    by_cell: dict[tuple, dict[float, dict[str, list[dict]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    by_task: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        if not not_applicable(r) and "metrics" in r:
            by_task[(r["preset"], r["task_key"])].append(r)
    for records in by_task.values():
        for r in label_configs(records, ignore=FRACTION):  # one curve per config
            fraction = float(r.get("label_fraction", (r.get("probe_spec") or {}).get("label_fraction", 1.0)) or 1.0)
            by_cell[(r["preset"], r["task_key"], row_of(r))][fraction][r["probe"]].append(r)
    curves = {}
    for key, by_fraction in by_cell.items():
        if len(by_fraction) < 2:
            continue
        fractions, means, seeds = [], [], []
        for fraction in sorted(by_fraction):
            records = _chosen_probe(by_fraction[fraction])
            values = [float(r["metrics"][r["main_metric"]]) for r in records
                      if _finite(r["metrics"].get(r["main_metric"]))]
            if values:
                fractions.append(fraction)
                means.append(float(np.mean(values)))
                seeds.append(sorted(int(r["seed"]) for r in records))
        if len(fractions) >= 2:
            curves[key] = {"fraction": fractions, "mean": means, "seeds": seeds}
    return curves


def _chosen_probe(by_probe: dict[str, list[dict]]) -> list[dict]:
    probe = best_probe_on_validation(by_probe)
    return by_probe[probe] if probe is not None else []


def loss_curve_data(results_dir: str | Path) -> dict[str, dict[str, Any]]:
    """run id -> method, seed, preset, pretraining data and (step, loss) points, from every
    ``run.json`` under ``<results_dir>/runs`` whose training logged a loss curve."""
    from ecgbench.core.store import read_json

    curves = {}
    for path in sorted(Path(results_dir, "runs").glob("*/run.json")):
        try:
            run = read_json(path)
        except (OSError, ValueError):
            continue
        points = (run.get("train") or {}).get("loss_curve") or []
        if len(points) < 2:
            continue
        config = run.get("run_config") or {}
        curves[run.get("run_id", path.parent.name)] = {
            "method": run.get("method", config.get("method", "?")), "seed": config.get("seed"),
            "preset": config.get("preset", "?"), "pretrain_data": config.get("pretrain_data", "?"),
            "steps": [int(p[0]) for p in points], "loss": [float(p[1]) for p in points]}
    return curves


def embedding_plots(results_dir: str | Path) -> list[tuple[str, str, Path, str]]:
    """(run id, task key, path, run line) of the t-SNE plots of :mod:`ecgbench.evaluation.analysis`: one per
    method, preset and task, the lowest seed's (the page stays a few MB however many seeds are
    stored); a run without a readable run.json counts as its own method."""
    chosen: dict[tuple, tuple[Any, str, str, Path, str]] = {}
    for path in sorted(Path(results_dir, "plots").glob("*/*-tsne.png")):
        run_id, task_key = path.parent.name, path.name[: -len("-tsne.png")]
        found = _run_config(results_dir, run_id)
        config = found or {}
        key = (config.get("method", run_id), config.get("preset"), task_key)
        seed = config.get("seed")
        rank = (seed is None, seed if isinstance(seed, int) else 0, run_id)
        if key not in chosen or rank < chosen[key][0]:
            chosen[key] = (rank, run_id, task_key, path, _run_line(found))
    return sorted(plot[1:] for plot in chosen.values())


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _float(value: Any) -> float:
    return float(value) if _finite(value) else math.nan


# ----- captions --------------------------------------------------------------------------------
def what_ran(records: list[dict[str, Any]]) -> str:
    """One line: methods, seeds, presets, protocols and task keys of ``records``."""
    def listed(field: str) -> str:
        return ", ".join(sorted({str(r.get(field)) for r in records if r.get(field) is not None})) or "?"

    return (f"Methods: {listed('method')}. Seeds: {listed('seed')}. Preset: {listed('preset')}. "
            f"Protocol: {listed('protocol')}. Tasks: {listed('task_key')}.")


# ----- figures ---------------------------------------------------------------------------------
def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def scores_figure(board: TaskBoard) -> str:
    plt = _pyplot()
    rows = scores_data(board)
    figure, axes = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    for y, row in enumerate(rows):
        for offset, seed in zip(np.linspace(-0.15, 0.15, len(row["seeds"])), row["seeds"]):
            low, high = seed["low"], seed["high"]
            if math.isfinite(low) and math.isfinite(high):
                axes.plot([low, high], [y + offset] * 2, color="tab:blue", lw=1.5)
            axes.plot(seed["value"], y + offset, "o", color="tab:blue", ms=4)
        axes.plot(row["mean"], y, "|", color="black", ms=14, mew=2)
    axes.set_yticks(range(len(rows)), [r["method"] for r in rows], fontsize=8)
    axes.invert_yaxis()
    direction = "higher" if HIGHER_IS_BETTER.get(board.metric, True) else "lower"
    axes.set_xlabel(f"{board.metric} on the test split ({direction} is better)")
    axes.set_title(board.task_key, fontsize=9)
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def cd_figure(scores: dict[str, dict[str, float]]) -> str:
    """Critical-difference diagram (Friedman + Nemenyi, autorank) over tasks as blocks."""
    import pandas as pd
    from autorank import autorank, plot_stats

    _pyplot()  # the Agg backend, before autorank imports pyplot
    table = pd.DataFrame(scores)  # rows: (task, seed) blocks, columns: methods
    with contextlib.redirect_stdout(io.StringIO()):  # autorank prints its tables even when not verbose
        result = autorank(table, alpha=0.05, verbose=False, order="descending", force_mode="nonparametric")
        axes = plot_stats(result, allow_insignificant=True)
    return _png(axes.figure)


def loss_figure(curves: dict[str, dict[str, Any]]) -> str:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 4))
    methods = sorted({c["method"] for c in curves.values()})
    colours = dict(zip(methods, plt.cm.tab10(np.linspace(0, 1, 10))[: len(methods)] if len(methods) <= 10
                       else plt.cm.tab20(np.linspace(0, 1, len(methods)))))
    for run_id, curve in sorted(curves.items()):
        axes.plot(curve["steps"], curve["loss"], color=colours[curve["method"]], lw=1.0, alpha=0.8,
                  label=curve["method"] if curve is _first_of(curves, curve["method"]) else None)
    axes.set_xlabel("optimiser step")
    axes.set_ylabel("training loss (own objective)")
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), title="one line per seed", title_fontsize=7)
    axes.grid(alpha=0.3)
    return _png(figure)


def _first_of(curves: dict[str, dict[str, Any]], method: str) -> dict[str, Any]:
    return next(c for _, c in sorted(curves.items()) if c["method"] == method)


def label_figure(task_key: str, curves: dict[str, dict[str, list]]) -> str:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for method, curve in sorted(curves.items()):
        axes.plot(curve["fraction"], curve["mean"], "o-", label=method)
    axes.set_xscale("log")
    axes.set_xlabel("fraction of training patients whose labels the probe sees")
    axes.set_ylabel("test main metric (mean over seeds)")
    axes.set_title(task_key, fontsize=9)
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    return _png(figure)


# ----- the page --------------------------------------------------------------------------------
def _figure_html(png: str, caption: str, alt: str) -> str:
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _group_html(group: PresetBoard, title: str | None = None) -> str:
    records = [r for board in group.tasks for e in board.entries for r in e.records]
    title = title or f"Preset {group.preset} · {group.suite} · {group.protocol}"
    parts = [f"<h2>{html.escape(title)}</h2>", f"<p class=what>{html.escape(what_ran(records))}</p>"]
    tasks = [t.task_key for t in group.tasks]
    parts.append("<h3>Standing: tasks in the top group</h3>" + f"<p class=note>{html.escape(STANDING)}</p>"
                 + _table(summary_rows(group), ["method", *tasks, "top group"]))
    for board in group.tasks:
        headers, rows = task_rows(board)
        rows += [[label, "–", "–", why] + ["–"] * (len(headers) - 4) for label, why in board.missing.items()]
        parts.append(f"<h3>{html.escape(board.task_key)} · {html.escape(board.metric)}</h3>"
                     f"<p class=n>{html.escape(sizes_text(board.sizes))}</p>" + _table(rows, headers))
        for note in separation_notes(board) + ([board.significance_note] if board.significance_note else []):
            parts.append(f"<p class=note>{html.escape(note)}</p>")
        board_records = [r for e in board.entries for r in e.records]
        if not board_records:  # every method that tried was not applicable: the table says why
            continue
        parts.append(_figure_html(
            scores_figure(board),
            f"{board.task_key}: test {board.metric} per method; dots are seeds with their patient-level "
            f"bootstrap 95% CI, the bar the mean over seeds. {what_ran(board_records)}",
            f"scores on {board.task_key}"))
    scores, why_not = cd_data(group)
    if scores:
        parts.append(_figure_html(
            cd_figure(scores),
            f"Critical-difference diagram over the {len(tasks)} tasks of this group (autorank: Friedman test, "
            f"Nemenyi post-hoc at alpha 0.05; the {len(next(iter(scores.values())))} blocks are (task, seed) "
            f"pairs, each method's validation-chosen probe, lower-is-better metrics negated; seeds of one "
            f"task are not independent, so read it as a summary). {what_ran(records)}",
            "critical-difference diagram"))
    else:
        parts.append(f"<p class=note>No critical-difference diagram: {html.escape(why_not)}.</p>")
    return "\n".join(parts)


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1em;font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#f3f3f3}figure{margin:1em 0}img{max-width:100%}figcaption{font-size:0.85em;color:#444}
.note,.what{font-size:0.85em;color:#555}"""
# Counts the figures the browser decoded, so a headless browser's DOM dump says what rendered.
SCRIPT = """window.addEventListener('load', function () {
  var shown = Array.prototype.filter.call(document.images, function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-figures-rendered', String(shown.length));
  document.body.setAttribute('data-figures', String(document.images.length));
});"""


def render(results: list[dict[str, Any]], results_dir: str | Path,
           samples: list[dict[str, Any]] | None = None) -> str:
    """The whole page for ``results`` (the records of the store at ``results_dir``), then the
    small real-sample section (``samples``; None: read from ``<results_dir>/real-sample``)."""
    # the leaderboard's stored tests where their inputs are unchanged; the report never writes them
    significance, note = stats_significance(results_dir, StoredTests(results_dir, check=False))
    groups = build(results, significance, results_dir=results_dir)
    parts = ["<h1>ecgbench report</h1>",
             f"<p class=note>Generated by <code>ecgbench report</code> from {len(results)} result files under "
             f"{html.escape(str(Path(results_dir) / 'runs'))}. {html.escape(note)}</p>"]
    if not groups:
        parts.append("<p>No scored results yet: run <code>ecgbench run</code> first.</p>")
    parts += [_group_html(group) for group in groups]
    small = sample_boards(sample_results(results_dir) if samples is None else samples, results_dir,
                          stored=StoredTests(Path(results_dir) / SAMPLE_DIR, check=False))
    if small:
        intro = SAMPLE_INTRO.format(source=Path(results_dir) / SAMPLE_DIR / "runs")
        parts.append(f"<h2 id=small-sample>Small-sample results on real data</h2><p class=note>{html.escape(intro)}</p>")
        parts += [_group_html(group, sample_heading(group).lstrip("# ").replace("`", "")) for group in small]
    parts += _extras_html(results, results_dir)
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>ecgbench report</title>"
            f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body>\n{body}\n</body></html>\n")


def _extras_html(results: list[dict[str, Any]], results_dir: str | Path) -> list[str]:
    parts = []
    efficiency = label_efficiency_data(results)
    by_task: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for (preset, task_key, method), curve in efficiency.items():
        by_task[(preset, task_key)][method] = curve
    if by_task:
        parts.append("<h2>Label efficiency</h2>")
    for (preset, task_key), curves in sorted(by_task.items()):
        seeds = sorted({s for c in curves.values() for seeds in c["seeds"] for s in seeds})
        parts.append(_figure_html(
            label_figure(task_key, curves),
            f"{task_key}, preset {preset}: test main metric of each method's validation-chosen probe when the "
            f"probe sees a fraction of the training patients' labels. Methods: {', '.join(sorted(curves))}. "
            f"Seeds: {', '.join(map(str, seeds))}. Protocols: frozen-probe and frozen-probe-<fraction>-labels.",
            f"label efficiency on {task_key}"))
    losses = loss_curve_data(results_dir)
    by_preset: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for run_id, curve in losses.items():
        by_preset[(curve["preset"], curve["pretrain_data"])][run_id] = curve
    if by_preset:
        parts.append("<h2>Pretraining loss</h2>")
    for (preset, data), curves in sorted(by_preset.items()):
        methods = sorted({c["method"] for c in curves.values()})
        seeds = sorted({str(c["seed"]) for c in curves.values()})
        parts.append(_figure_html(
            loss_figure(curves),
            f"Pretraining loss (train.loss_curve of run.json; each method's own objective, so levels are not "
            f"comparable across methods). Methods: {', '.join(methods)}. Seeds: {', '.join(seeds)}. "
            f"Preset: {preset}. Pretraining data: {data}.",
            f"pretraining loss, preset {preset}"))
    plots = embedding_plots(results_dir)
    if plots:
        parts.append("<h2>Embeddings</h2>")
        parts.append("<p>One t-SNE plot per method, preset and task: the lowest stored seed's.</p>")
    for run_id, task_key, path, run_line in plots:
        png = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(_figure_html(png, f"t-SNE of the test embeddings of run {run_id} on {task_key}, coloured by "
                                       f"label (ecgbench.evaluation.analysis). {run_line}",
                                  f"embeddings of {run_id} on {task_key}"))
    return parts


BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")


def browser(page: Path, *action: str, profile: Path | None = None) -> str:
    """Run Debian's headless ``chromium`` on the page with ``action`` flags (``--dump-dom``,
    ``--screenshot=PNG``) in a throw-away profile; its standard output."""
    import subprocess
    import tempfile

    binary = browser_binary()
    with tempfile.TemporaryDirectory() as scratch:
        command = [binary, *BROWSER_FLAGS, f"--user-data-dir={profile or scratch}", *action,
                   Path(page).resolve().as_uri()]
        return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout


def browser_binary() -> str:
    """Debian's ``chromium`` on the PATH; FileNotFoundError, with how to get it, if absent."""
    import shutil

    binary = shutil.which("chromium")
    if binary is None:
        raise FileNotFoundError("chromium not found (Debian: apt-get install -y chromium)")
    return binary


def screenshot(page: Path, png: Path) -> Path:
    """A 1400 x 2000 screenshot of the page as headless chromium renders it."""
    browser(page, f"--screenshot={Path(png).resolve()}", "--window-size=1400,2000")
    return Path(png)


def _run_config(results_dir: str | Path, run_id: str) -> dict[str, Any] | None:
    """The run_config of a run's run.json, or None where it is missing or unreadable."""
    from ecgbench.core.store import read_json

    try:
        return read_json(Path(results_dir, "runs", run_id, "run.json")).get("run_config") or {}
    except (OSError, ValueError):
        return None


def _run_line(config: dict[str, Any] | None) -> str:
    """Method, seed and preset of a run from its run.json's run_config (None: the file is missing)."""
    if config is None:
        return "Its run.json is missing."
    return f"Method: {config.get('method', '?')}. Seed: {config.get('seed', '?')}. Preset: {config.get('preset', '?')}."


def write_report(results_dir: str | Path, out: str | Path) -> Path:
    """Render the report of the store at ``results_dir`` into ``out`` (atomically)."""
    from ecgbench.core.store import ResultStore, atomic_write

    store = ResultStore(results_dir)
    from ecgbench.data.folds import is_fold_result

    results = list(store.results()) if (store.root / "runs").exists() else []
    page = render([r for r in results if not is_fold_result(r)], results_dir)  # folds: inputs of pooled results
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return out
