"""Markdown tables (tabulate, github format) generated from stored result records only."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from ecgbench.core.contracts import HIGHER_IS_BETTER
from ecgbench.core.rows import label_configs, row_of
from ecgbench.evaluation.probes import PROBES

CLASSIFICATION_COLUMNS = ("accuracy", "macro_f1", "macro_auroc")
REGRESSION_COLUMNS = ("mae", "r2")
PROBE_ORDER = tuple(PROBES)
NOT_APPLICABLE = "not_applicable"  # a result record's ``status`` when the method cannot run on the task


def applicable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") != NOT_APPLICABLE]


class Notes:
    """Footnotes for not-applicable cells: one number per distinct reason, across a document."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def mark(self, records: list[dict[str, Any]]) -> str:
        reason = "; ".join(sorted({r.get("reason", "") for r in records}))
        number = self.numbers.setdefault(reason, len(self.numbers) + 1)
        return f"n/a[^na{number}]"

    def footnotes(self, since: int = 0) -> str:
        return "".join(f"[^na{n}]: not applicable: {reason}\n" for reason, n in self.numbers.items() if n > since)


def method_label(result: dict[str, Any]) -> str:
    """The row's name (:func:`ecgbench.core.rows.row_of`), marked ``(control)`` or ``(supervised)``."""
    row = row_of(result)
    if result.get("control"):
        return f"{row} (control)"
    if result.get("uses_labels"):
        return f"{row} (supervised)"
    return row


def _group(results: Iterable[dict[str, Any]]) -> dict[tuple, dict[tuple, list[dict]]]:
    """(task, preset, protocol) -> (row label, probe) -> result records (one per seed); one row
    per resolved config (:mod:`ecgbench.core.rows`), never seeds of two configs pooled."""
    by_table: dict[tuple, list[dict]] = defaultdict(list)
    for result in results:
        by_table[(result["task_key"], result["preset"], result["protocol"])].append(result)
    tables: dict[tuple, dict[tuple, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for table_key, records in by_table.items():
        newest: dict[tuple, dict] = {}  # a rerun of one config and seed replaces, never adds a seed
        for result in label_configs(records):
            key = (method_label(result), result["probe"], result.get("seed"))
            if key not in newest or str(result.get("created", "")) > str(newest[key].get("created", "")):
                newest[key] = result
        for (label, probe, _), result in sorted(newest.items(), key=lambda kv: str(kv[0])):
            tables[table_key][(label, probe)].append(result)
    return tables


def _fmt(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def cell(records: list[dict[str, Any]], metric: str, with_ci: bool = True) -> str:
    values = np.array([r["metrics"].get(metric, np.nan) for r in records], dtype=float)
    if np.all(np.isnan(values)):
        return "n/a"
    text = _fmt(np.nanmean(values))
    if len(values) > 1:
        text += f" ± {_fmt(np.nanstd(values, ddof=1))}"
    if with_ci and all(r.get("ci", {}).get("metric") == metric for r in records):
        low = np.nanmean(np.array([r["ci"]["low"] for r in records], dtype=float))
        high = np.nanmean(np.array([r["ci"]["high"] for r in records], dtype=float))
        text += f" [{_fmt(low)}, {_fmt(high)}]"
    return text


def _probe_order(probes: Iterable[str]) -> list[str]:
    return sorted(set(probes), key=lambda p: (PROBE_ORDER.index(p) if p in PROBE_ORDER else 99, p))


def main_metric_table(grouped: dict[tuple, list[dict]], metric: str, notes: Notes | None = None) -> str:
    from tabulate import tabulate

    notes = notes or Notes()

    def text(key: tuple) -> str:
        if key not in grouped:
            return "—"
        records = applicable(grouped[key])
        return cell(records, metric) if records else notes.mark(grouped[key])

    methods = sorted({method for method, _ in grouped})
    probes = _probe_order(probe for _, probe in grouped)
    rows = [[m] + [text((m, p)) for p in probes] for m in methods]
    return tabulate(rows, headers=["method", *probes], tablefmt="github", disable_numparse=True)


def detail_table(grouped: dict[tuple, list[dict]], kind: str) -> str:
    from tabulate import tabulate

    columns = REGRESSION_COLUMNS if kind == "regression" else CLASSIFICATION_COLUMNS
    rows = []
    for (method, probe) in sorted(grouped, key=lambda k: (k[0], _probe_order([k[1]]))):
        records = grouped[(method, probe)]
        scored = applicable(records)
        rows.append([method, probe, len(records)] + [cell(scored, c, with_ci=False) if scored else "n/a" for c in columns])
    return tabulate(rows, headers=["method", "probe", "seeds", *columns], tablefmt="github", disable_numparse=True)


def render(results: Iterable[dict[str, Any]], tasks: list[str] | None = None) -> str:
    """All tables for the given results (optionally only some task names), as markdown."""
    results = [r for r in results if tasks is None or r["task"] in tasks]
    if not results:
        return "_No stored results match._\n"
    sections = []
    notes = Notes()
    for (task_key, preset, protocol), grouped in sorted(_group(results).items()):
        known = len(notes.numbers)
        example = next(iter(grouped.values()))[0]
        metric, kind = example["main_metric"], example["task_kind"]
        seeds = sorted({r["seed"] for records in grouped.values() for r in records})
        direction = "higher is better" if HIGHER_IS_BETTER.get(metric, True) else "lower is better"
        sections.append(
            f"### {task_key} · {metric} ({direction}) · preset `{preset}` · {protocol} · "
            f"seeds {', '.join(map(str, seeds))}\n\n"
            f"{main_metric_table(grouped, metric, notes)}\n\n"
            + (f"{notes.footnotes(since=known)}\n" if len(notes.numbers) > known else "")
            + f"Cells: mean ± std over pretraining seeds, [patient-level bootstrap 95% CI on the "
            f"test split, bounds averaged over seeds]. Probe hyper-parameters chosen on validation.\n\n"
            f"<details><summary>all metrics</summary>\n\n{detail_table(grouped, kind)}\n\n</details>\n"
        )
    return "\n".join(sections)
