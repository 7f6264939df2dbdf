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
import json
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
        for r in label_configs(records, ignore=FRACTION | PROTOCOL_SETTINGS):  # a curve per config and protocol
            fraction = float(r.get("label_fraction", (r.get("probe_spec") or {}).get("label_fraction", 1.0)) or 1.0)
            base = base_protocol(r)
            curve = row_of(r) + ("" if base == "frozen-probe" else f" ({base})")
            by_cell[(r["preset"], r["task_key"], curve)][fraction][r["probe"]].append(r)
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


# A protocol's own settings: part of the column (or the curve's name), not of the method's row.
PROTOCOL_SETTINGS = frozenset({"probe.protocol", "probe.settings", "probe.grid"})


def base_protocol(record: dict[str, Any]) -> str:
    """The protocol without its label-fraction suffix (``linear-10%-labels`` -> ``linear``)."""
    import re

    return (record.get("probe_spec") or {}).get("protocol") or re.sub(
        r"-[0-9.]+%-labels$", "", str(record.get("protocol", "frozen-probe")))


def protocol_comparison(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
    """(preset, task key) -> row -> protocol -> test main metric (mean ± std over seeds; the
    frozen probes' validation-chosen probe) for tasks scored under more than one protocol, all labels."""
    from ecgbench.reporting.tables import cell

    by_cell: dict[tuple, dict[str, dict[str, dict[str, list[dict]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    by_task: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        if not not_applicable(r) and "metrics" in r and float(r.get("label_fraction") or 1.0) == 1.0:
            by_task[(r["preset"], r["task_key"])].append(r)
    for task, records in by_task.items():
        for r in label_configs(records, ignore=PROTOCOL_SETTINGS):
            by_cell[task][row_of(r)][base_protocol(r)][r["probe"]].append(r)
    table = {}
    for task, rows in by_cell.items():
        if len({p for by_protocol in rows.values() for p in by_protocol}) < 2:
            continue
        table[task] = {row: {protocol: cell(_chosen_probe(by_probe), next(iter(by_probe.values()))[0]["main_metric"],
                                            with_ci=False)
                             for protocol, by_probe in by_protocol.items()} for row, by_protocol in rows.items()}
    return table


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


def _plot_cell(results_dir: str | Path, run_id: str) -> tuple[str, str]:
    config = _run_config(results_dir, run_id) or {}
    return str(config.get("method", run_id)), str(config.get("preset"))


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


def _cell(value: Any) -> str:
    """A table cell; ``(text, title)`` shows ``title`` on hover (a result's key and config)."""
    if isinstance(value, tuple):
        text, title = value
        return f'<td title="{html.escape(str(title))}">{html.escape(str(text))}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(rows: list[list[Any]], headers: list[str], sortable: bool = False) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    table = f"<table{' class=sortable' if sortable else ''}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if not sortable:
        return table
    return f'<input class=filter type=search placeholder="filter rows" aria-label="filter rows">{table}'


def _keyed(rows: list[list[Any]], entries: list[Any], column: int) -> list[list[Any]]:
    """Rows whose ``column`` shows on hover the result keys and the config it came from."""
    out = []
    for row, entry in zip(rows, entries):
        config = (entry.records[0].get("run_config") or {}).get("method_config") or {}
        title = "; ".join(r.get("key", "?") for r in entry.records) + " | " + json.dumps(config, sort_keys=True)[:600]
        out.append([*row[:column], (row[column], title), *row[column + 1:]])
    return out + rows[len(entries):]


def _group_html(group: PresetBoard, title: str | None = None, results_dir: str | Path = "results") -> str:
    records = [r for board in group.tasks for e in board.entries for r in e.records]
    title = title or f"Preset {group.preset} · {group.suite} · {group.protocol}"
    parts = [f"<h2 id={_anchor(title)}>{html.escape(title)}</h2>", f"<p class=what>{html.escape(what_ran(records))}</p>"]
    tasks = [t.task_key for t in group.tasks]
    parts.append("<h3>Standing: tasks in the top group</h3>" + f"<p class=note>{html.escape(STANDING)}</p>"
                 + _table(summary_rows(group), ["method", *tasks, "top group"]))
    for board in group.tasks:
        headers, rows = task_rows(board)
        rows = _keyed(rows, board.entries, 3)
        rows += [[label, "–", "–", why] + ["–"] * (len(headers) - 4) for label, why in board.missing.items()]
        anchor = _anchor(f"{group.preset}-{group.suite}-{group.protocol}-{board.task_key}")
        parts.append(f"<h3 id={anchor}>{html.escape(board.task_key)} · {html.escape(board.metric)}</h3>"
                     f"<p class=n>{html.escape(sizes_text(board.sizes))}</p>" + _table(rows, headers, sortable=True))
        for note in separation_notes(board) + ([board.significance_note] if board.significance_note else []):
            parts.append(f"<p class=note>{html.escape(note)}</p>")
        parts += _per_class_html(board, results_dir)
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


def _anchor(text: str) -> str:
    return "s-" + "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _per_class_html(board: TaskBoard, results_dir: str | Path) -> list[str]:
    """Per-class F1 of every method (mean over seeds), and the reference's confusion matrix
    (its first seed's test predictions), for classification tasks."""
    rows, classes = [], []
    for entry in board.entries:
        per_class = [r["metrics"].get("per_class_f1") or {} for r in entry.records]
        names = [c for c in per_class[0]] if per_class and per_class[0] else []
        classes = classes or names
        rows.append([entry.label, *(f"{np.mean([p.get(c, np.nan) for p in per_class]):.3f}" for c in classes)])
    if not classes:
        return []
    parts = [f"<details><summary>per-class F1 on {html.escape(board.task_key)}</summary>"
             + _table(rows, ["method", *classes], sortable=True) + "</details>"]
    reference = board.separation.reference if board.separation else None
    entry = next((e for e in board.entries if e.method == reference), None)
    matrix = _confusion(entry.records[0], results_dir) if entry else None
    if matrix:
        labels, counts = matrix
        body = [[f"true {label}", *row] for label, row in zip(labels, counts)]
        parts.append(f"<details><summary>confusion matrix of the reference, {html.escape(entry.label)} "
                     f"(seed {entry.records[0]['seed']}, {html.escape(entry.probe)})</summary>"
                     + _table(body, ["", *(f"predicted {label}" for label in labels)]) + "</details>")
    return parts


def _confusion(record: dict[str, Any], results_dir: str | Path) -> tuple[list, list] | None:
    from ecgbench.evaluation.stats import load_predictions

    if record.get("task_kind") not in ("binary", "multiclass") or not record.get("predictions"):
        return None
    try:
        arrays = load_predictions(record, Path(results_dir))
    except ValueError:
        return None
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(arrays["y_true"].tolist()) | set(arrays["y_pred"].tolist()))
    return labels, confusion_matrix(arrays["y_true"], arrays["y_pred"], labels=labels).tolist()


def _contents(body: str) -> str:
    """A table of contents of the page's h2 and h3 headings that carry an id."""
    import re

    items = []
    for level, anchor, title in re.findall(r"<h([23]) id=(\S+?)>(.*?)</h\1>", body):
        items.append(f'<li class=l{level}><a href="#{anchor}">{title}</a></li>')
    return f"<nav><h2>Contents</h2><ul>{''.join(items)}</ul></nav>" if items else ""


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1em;font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#f3f3f3}figure{margin:1em 0}img{max-width:100%}figcaption{font-size:0.85em;color:#444}
.note,.what{font-size:0.85em;color:#555}nav ul{list-style:none;padding-left:0;columns:2}nav .l3{padding-left:1.5em}
th{cursor:pointer}input.filter{margin-top:0.5em;font-size:0.85em}"""
# Counts the figures the browser decoded, so a headless browser's DOM dump says what rendered.
SCRIPT = """window.addEventListener('load', function () {
  var shown = Array.prototype.filter.call(document.images, function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-figures-rendered', String(shown.length));
  document.body.setAttribute('data-figures', String(document.images.length));
  // sortable tables: a click on a header sorts by that column (numbers by value), again to reverse
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('th').forEach(function (th, column) {
      th.addEventListener('click', function () {
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var up = th.getAttribute('data-order') !== 'up';
        var key = function (row) { var t = row.cells[column].textContent.replace('\u2212', '-');
          var n = parseFloat(t); return isNaN(n) ? t : n; };
        rows.sort(function (a, b) { var x = key(a), y = key(b);
          var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
          return up ? c : -c; });
        rows.forEach(function (row) { body.appendChild(row); });
        th.setAttribute('data-order', up ? 'up' : 'down');
        table.setAttribute('data-sorted', String(column));
      });
    });
    var filter = table.previousElementSibling;  // rows whose text holds the filter's words stay
    if (filter && filter.classList.contains('filter')) {
      filter.addEventListener('input', function () {
        var words = filter.value.toLowerCase();
        Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
          row.style.display = row.textContent.toLowerCase().indexOf(words) >= 0 ? '' : 'none'; });
      });
    }
  });
  // links of the contents that lead nowhere, for a headless check
  var broken = Array.prototype.filter.call(document.querySelectorAll('nav a'), function (a) {
    return !document.getElementById(a.getAttribute('href').slice(1)); });
  document.body.setAttribute('data-broken-links', String(broken.length));
  if (location.hash.indexOf('#view-') === 0) {  // a screenshot of one section: what comes before it is hidden
    var node = document.getElementById(location.hash.slice(6));
    while (node && node.previousElementSibling) { node = node.previousElementSibling; node.style.display = 'none'; }
  }
  if (location.hash === '#check-sorting') {  // a headless browser's click on the first table's test column
    var first = document.querySelector('table.sortable'), th = first.querySelectorAll('th')[3];
    th.click();
    document.body.setAttribute('data-sorted-up', first.tBodies[0].rows[0].cells[0].textContent);
    th.click();
    document.body.setAttribute('data-sorted-down', first.tBodies[0].rows[0].cells[0].textContent);
  }
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
    parts += [_group_html(group, results_dir=results_dir) for group in groups]
    small = sample_boards(sample_results(results_dir) if samples is None else samples, results_dir,
                          stored=StoredTests(Path(results_dir) / SAMPLE_DIR, check=False))
    if small:
        intro = SAMPLE_INTRO.format(source=Path(results_dir) / SAMPLE_DIR / "runs")
        parts.append(f"<h2 id=small-sample>Small-sample results on real data</h2><p class=note>{html.escape(intro)}</p>")
        parts += [_group_html(group, sample_heading(group).lstrip("# ").replace("`", ""), Path(results_dir) / SAMPLE_DIR)
                  for group in small]
    parts += _extras_html(results, results_dir, groups)
    body = "\n".join(parts)
    body = body.replace("</p>", "</p>" + _contents(body), 1)  # after the opening note
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>ecgbench report</title>"
            f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body>\n{body}\n</body></html>\n")


GALLERY = 3  # t-SNE plots per (preset, task): the best on validation, plus the untrained control


def gallery(groups: list[PresetBoard]) -> set[tuple[str, str, str]]:
    """(method, preset, task key) whose t-SNE plots the page shows: per task the ``GALLERY``
    methods with the best mean validation score of their chosen probe, and ``random-init``."""
    from ecgbench.core.contracts import HIGHER_IS_BETTER

    chosen = set()
    for group in groups:
        for board in group.tasks:
            sign = 1 if HIGHER_IS_BETTER.get(board.metric, True) else -1
            scored = [(sign * float(np.mean([r["val_score"] for r in e.records])), e.method) for e in board.entries
                      if all(_finite(r.get("val_score")) for r in e.records)]
            best = [m for _, m in sorted(scored, reverse=True)[:GALLERY]]
            chosen |= {(m, group.preset, board.task_key) for m in [*best, "random-init"]}
    return chosen


def _extras_html(results: list[dict[str, Any]], results_dir: str | Path,
                 groups: list[PresetBoard] | None = None) -> list[str]:
    parts = []
    efficiency = label_efficiency_data(results)
    by_task: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for (preset, task_key, method), curve in efficiency.items():
        by_task[(preset, task_key)][method] = curve
    if by_task:
        parts.append("<h2 id=s-label-efficiency>Label efficiency</h2>")
    for (preset, task_key), curves in sorted(by_task.items()):
        seeds = sorted({s for c in curves.values() for seeds in c["seeds"] for s in seeds})
        parts.append(_figure_html(
            label_figure(task_key, curves),
            f"{task_key}, preset {preset}: test main metric of each method's validation-chosen probe when the "
            f"probe sees a fraction of the training patients' labels. Methods: {', '.join(sorted(curves))}. "
            f"Seeds: {', '.join(map(str, seeds))}. Protocols: frozen-probe and frozen-probe-<fraction>-labels.",
            f"label efficiency on {task_key}"))
    comparison = protocol_comparison(results)
    if comparison:
        parts.append("<h2 id=s-protocols>Protocols side by side</h2><p class=note>Test main metric, mean ± std over "
                     "seeds, all labels; frozen-probe: each method's validation-chosen probe; linear / head / "
                     "finetune: the trained head or the fine-tuned encoder (their own validation choices).</p>")
    for (preset, task_key), rows in sorted(comparison.items()):
        present = {p for by in rows.values() for p in by}
        protocols = [p for p in ("frozen-probe", "linear", "head", "finetune") if p in present]
        protocols += sorted(present - set(protocols))
        body = [[row, *(by.get(p, "–") for p in protocols)] for row, by in sorted(rows.items())]
        parts.append(f"<h3 id={_anchor(f'protocols-{preset}-{task_key}')}>{html.escape(task_key)} · preset "
                     f"{html.escape(preset)}</h3>" + _table(body, ["method", *protocols], sortable=True))
    losses = loss_curve_data(results_dir)
    by_preset: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for run_id, curve in losses.items():
        by_preset[(curve["preset"], curve["pretrain_data"])][run_id] = curve
    if by_preset:
        parts.append("<h2 id=s-pretraining-loss>Pretraining loss</h2>")
    for (preset, data), curves in sorted(by_preset.items()):
        methods = sorted({c["method"] for c in curves.values()})
        seeds = sorted({str(c["seed"]) for c in curves.values()})
        parts.append(_figure_html(
            loss_figure(curves),
            f"Pretraining loss (train.loss_curve of run.json; each method's own objective, so levels are not "
            f"comparable across methods). Methods: {', '.join(methods)}. Seeds: {', '.join(seeds)}. "
            f"Preset: {preset}. Pretraining data: {data}.",
            f"pretraining loss, preset {preset}"))
    shown = gallery(groups or [])
    plots = [p for p in embedding_plots(results_dir) if groups is None or (*_plot_cell(results_dir, p[0]), p[1]) in shown]
    if plots:
        parts.append("<h2 id=s-embeddings>Embeddings</h2>")
        parts.append(f"<p>t-SNE of the test embeddings, the lowest stored seed's, for the {GALLERY} methods with the "
                     "best validation score on each task and the untrained control (all plots: "
                     f"{html.escape(str(Path(results_dir) / 'plots'))}).</p>")
    for run_id, task_key, path, run_line in plots:
        png = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(_figure_html(png, f"t-SNE of the test embeddings of run {run_id} on {task_key}, coloured by "
                                       f"label (ecgbench.evaluation.analysis). {run_line}",
                                  f"embeddings of {run_id} on {task_key}"))
    return parts


BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")


def browser(page: Path, *action: str, profile: Path | None = None, fragment: str = "") -> str:
    """Run Debian's headless ``chromium`` on the page with ``action`` flags (``--dump-dom``,
    ``--screenshot=PNG``) in a throw-away profile; its standard output."""
    import subprocess
    import tempfile

    binary = browser_binary()
    with tempfile.TemporaryDirectory() as scratch:
        command = [binary, *BROWSER_FLAGS, f"--user-data-dir={profile or scratch}", *action,
                   Path(page).resolve().as_uri() + (f"#{fragment}" if fragment else "")]
        return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout


def browser_binary() -> str:
    """Debian's ``chromium`` on the PATH; FileNotFoundError, with how to get it, if absent."""
    import shutil

    binary = shutil.which("chromium")
    if binary is None:
        raise FileNotFoundError("chromium not found (Debian: apt-get install -y chromium)")
    return binary


def screenshot(page: Path, png: Path, section: str = "") -> Path:
    """A 1400 x 2000 screenshot of the page as headless chromium renders it, from the top or from
    the heading with id ``section``."""
    browser(page, f"--screenshot={Path(png).resolve()}", "--window-size=1400,2000",
            fragment=f"view-{section}" if section else "")
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
