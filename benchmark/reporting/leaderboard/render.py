"""The leaderboard block in markdown: the standing (top-group counts), one table per task, the
real-sample section after the main one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ecgbench.core.contracts import HIGHER_IS_BETTER
from ecgbench.reporting.layouts import (
    MAX_INLINE_REASON,
    SAMPLE,
    sample_size,
    summary,
)
from ecgbench.reporting.leaderboard.boards import (
    END,
    SAMPLE_DIR,
    START,
    Entry,
    PresetBoard,
    TaskBoard,
    build,
    registered_methods,
)
from ecgbench.reporting.leaderboard.significance import stats_significance
from ecgbench.reporting.leaderboard.tested import StoredTests


def cell_text(entry: Entry) -> str:
    """mean ± std [CI] of an entry's seeds, marked when it is a sample-size result."""
    metric = entry.records[0]["main_metric"]
    values = [float(r["metrics"][metric]) for r in entry.records]
    cis = [r.get("ci") or {} for r in entry.records]
    main = all(ci.get("metric") == metric and ci.get("low") is not None and ci.get("high") is not None
               for ci in cis)
    lows = [float(ci["low"]) for ci in cis] if main else []
    highs = [float(ci["high"]) for ci in cis] if main else []
    digits = 2 if metric == "mae" else 3
    text = summary(values, lows, highs, digits)
    return text + (f" {SAMPLE}" if sample_size(entry.records) else "")


def sizes_text(sizes: dict[str, tuple[int, int | None]]) -> str:
    """``n (records / patients): train 1,400 / 600 · val ... · test ...`` ("?" for patients not stored)."""
    if not sizes:
        return "n: not stored"
    parts = [f"{split} {records:,} / {'?' if patients is None else f'{patients:,}'}"
             for split, (records, patients) in sizes.items()]
    return "n (records / patients): " + " · ".join(parts)


def _interval(bounds: list[int] | None) -> str:
    if not bounds:
        return "–"
    low, high = bounds
    return f"{low}" if low == high else f"{low}–{high}"


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}".replace("-", "−")


def _vs_reference(board: TaskBoard, entry: Entry) -> str:
    """The paired difference to the reference, its CI and the Holm p-value."""
    found = board.separation
    if entry.method == found.reference:
        return "reference"
    test = found.tests.get(entry.method)
    if test is None:
        return "not tested"
    digits = 2 if board.metric == "mae" else 3
    return (f"{_signed(test['difference'], digits)} [{_signed(test['ci_low'], digits)}, "
            f"{_signed(test['ci_high'], digits)}], p = {test['p_holm']:.2g}{' *' if test['significant'] else ''}")


def _validation(entry: Entry) -> str:
    values = [float(r["val_score"]) for r in entry.records if isinstance(r.get("val_score"), (int, float))]
    digits = 2 if entry.records[0]["main_metric"] == "mae" else 3
    return f"{sum(values) / len(values):.{digits}f}" if values else "–"


def task_rows(board: TaskBoard) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of one task's table; the rank interval, the test against the reference
    and the top group only where the task was tested."""
    tested = board.separation is not None and board.separation.reference is not None
    headers = ["method", "probe (chosen on validation)", f"{board.metric} (val)", f"{board.metric} (test)", "seeds"]
    if tested:
        headers += ["rank (95% interval)", "vs reference (Holm)", "top group"]
    rows = []
    for entry in board.entries:
        row = [entry.label, entry.probe, _validation(entry), cell_text(entry), ", ".join(map(str, entry.seeds))]
        if tested:
            found = board.separation
            row += [_interval(found.rank_intervals.get(entry.method)), _vs_reference(board, entry),
                    "yes" if entry.method in found.top_group else "no" if entry.method in found.tests else "–"]
        rows.append(row)
    return headers, rows


def separation_notes(board: TaskBoard) -> list[str]:
    """Under a tested task's table: the reference, the top group, disagreements, and the
    minimum detectable difference."""
    found = board.separation
    if found is None or found.reference is None:
        return []
    labels = {e.method: e.label for e in board.entries}
    comparisons = len(found.tests)
    notes = [(f"Reference: {labels.get(found.reference, found.reference)} (best mean validation score). "
             f"Top group, not significantly below the reference ({comparisons} comparisons, Holm): "
             f"{len(found.top_group)} of {comparisons + 1} methods.")]
    if found.above_reference:
        notes.append("Significantly above the validation-chosen reference on test (validation and test disagree): "
                     + ", ".join(labels.get(m, m) for m in found.above_reference) + ".")
    if found.baseline is not None:
        beat = ", ".join(labels.get(m, m) for m in found.beat_baseline) or "none"
        notes.append(f"Significantly better than the classical baseline {labels.get(found.baseline, found.baseline)} "
                     f"(paired bootstrap, Holm over {comparisons} comparisons): {beat}.")
    if found.detectable is not None:
        digits = 2 if board.metric == "mae" else 3
        notes.append(f"Minimum detectable difference at {found.power:.0%} power: {found.detectable:.{digits}f} "
                     f"{board.metric} at alpha = {found.alpha:g}, {found.detectable_holm:.{digits}f} at Holm's first "
                     f"step (alpha = {found.alpha:g} / {comparisons}); median paired bootstrap SE "
                     f"{found.standard_error:.{digits + 1}f}.")
    return notes


def render_task(board: TaskBoard) -> str:
    from tabulate import tabulate

    direction = "higher is better" if HIGHER_IS_BETTER.get(board.metric, True) else "lower is better"
    headers, rows = task_rows(board)
    long_reasons: list[str] = []  # long not-applicable reasons go under the table, numbered
    for label, why in board.missing.items():
        if len(why) > MAX_INLINE_REASON + len("n/a: "):
            long_reasons += [why] if why not in long_reasons else []
            why = f"n/a: note {long_reasons.index(why) + 1}"
        rows.append([label, "–", "–", why] + ["–"] * (len(headers) - 4))
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    notes = separation_notes(board) + ([board.significance_note] if board.significance_note else [])
    notes += [f"n/a note {i}: {why[len('n/a: '):]}" for i, why in enumerate(long_reasons, 1)]
    samples = sorted({sample_size(e.records) for e in board.entries} - {None})
    notes += [f"{SAMPLE} {dataset}: n = {n} records of {full:,} in the full release (a pipeline check, "
              "not a benchmark number)." for n, full, dataset in samples]
    note = "".join(f"\n{line}\n" for line in notes)
    folds = (board.entries[0].records[0].get("cv") or {}).get("folds") if board.entries else None
    sizes = sizes_text(board.sizes) + (f" ({folds}-fold patient-wise cross-validation: every record tested once; "
                                       "train and val are the folds' means)" if folds else "")
    return f"#### {board.task_key} · {board.metric} ({direction})\n\n{sizes}\n\n{table}\n{note}"


def _short(why: str) -> str:
    return "n/a" if why.startswith("n/a") else why


def summary_rows(board: PresetBoard) -> list[list[str]]:
    """The standing table's rows: per task whether the method is in the top group, then the
    count; the methods without a score here after them."""
    rows = []
    for label, by_task, top, ran in board.standing():
        rows.append([label, *(by_task.get(t.task) or _short(t.missing.get(label, "not run")) for t in board.tasks),
                     f"{top}/{ran}"])
    for label, by_task in board.unranked():
        rows.append([label, *(_short(by_task[t.task]) for t in board.tasks), "0/0"])
    return rows


STANDING = ("Each task's cell: `top` = in the task's top group (not significantly below the "
            "validation-chosen reference, paired patient bootstrap, Holm), `below` = significantly below it, "
            "`untested` = no stored test predictions. The last column counts the tasks in the top group out of "
            "those the method ran on. No mean rank over tasks is printed: it would order methods that no "
            "test tells apart; the count says only what the tests separate.")


def render_preset(board: PresetBoard, heading: str | None = None, grid: str = "synthetic") -> str:
    """One group's section; ``grid``: the section of ``scripts/leaderboard_grid.py`` that runs it."""
    from tabulate import tabulate

    tasks = [t.task for t in board.tasks]
    summary_table = tabulate(summary_rows(board), headers=["method", *tasks, "top group"],
                             tablefmt="github", disable_numparse=True)
    sections = "\n".join(render_task(t) for t in board.tasks)
    title = f" · {board.suite} · {board.protocol}" if board.titled else ""
    not_run = ("" if not board.not_run else
               f"Not run: {len(board.not_run)} registered methods have no result in this group yet "
               f"(`python scripts/leaderboard_grid.py {grid} --status` lists what the grid still has to run).\n\n")
    return (f"{heading or f'### Preset `{board.preset}`{title}'}\n\n{not_run}"
            f"From {board.n_results} scored results (every probe and seed); one probe per method and task, "
            f"listed by test mean. {STANDING}\n\n{summary_table}\n\n{sections}")


def sample_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """The records of the real-sample store ``<results_dir>/real-sample`` (none when absent)."""
    from ecgbench.core.store import ResultStore

    store = ResultStore(Path(results_dir) / SAMPLE_DIR)
    return list(store.results()) if (store.root / "runs").exists() else []


def sample_boards(results: Iterable[dict[str, Any]], results_dir: str | Path, with_significance: bool = True,
                  registered: dict[str, str] | None = None, stored: StoredTests | None = None) -> list[PresetBoard]:
    """The boards of the real-sample section: ``results`` from ``<results_dir>/real-sample``,
    compared among themselves only, tested on that store's predictions (``stored``: its tests)."""
    sample_dir = Path(results_dir) / SAMPLE_DIR
    significance = stats_significance(sample_dir, stored)[0] if with_significance else None
    return build(results, significance, registered, sample_dir)


def sample_heading(board: PresetBoard) -> str:
    return f"### Small-sample results on real data · preset `{board.preset}` · {board.protocol}"


SAMPLE_INTRO = (
    "Real ECGs, but small samples (`../shared/data`: 300 PTB-XL records at 100 Hz, 200 CinC 2017 "
    "recordings), each method pretrained on its own dataset's training split of the sample. The n "
    "above each table is small: read these as a pipeline check on real data, not as benchmark "
    "numbers. They are ranked only among themselves, never against the synthetic suite. Results "
    "under `{source}`, run by `scripts/leaderboard_grid.py real-sample` (see "
    "`results/real-sample/README.md`).")


def render_block(results: Iterable[dict[str, Any]], results_dir: str | Path = "results",
                 with_significance: bool = True, registered: dict[str, str] | None = None,
                 samples: list[dict[str, Any]] | None = None,
                 stored: tuple[StoredTests, StoredTests] | None = None) -> str:
    """The whole block, markers included, from the records of the store at ``results_dir``.

    ``registered``: method -> label of every method a group should list (None: the registry's,
    :func:`registered_methods`); ``samples``: the real-sample section's records (None: read
    from ``<results_dir>/real-sample``); ``stored``: the stored tests of the main and the
    real-sample store (None: every test computed, nothing kept)."""
    main_tests, sample_tests = stored if stored is not None else (None, None)
    significance, note = (stats_significance(results_dir, main_tests) if with_significance
                          else (None, "Significance: not shown."))
    source = f"{str(results_dir).rstrip('/')}/runs"
    registered = registered_methods() if registered is None else registered
    boards = build(results, significance, registered, results_dir)
    if boards:
        body = "\n".join(render_preset(b) for b in boards)
    else:
        body = "_No stored results yet: run `ecgbench run`, then `ecgbench leaderboard`._\n"
    samples = sample_results(results_dir) if samples is None else samples
    small = sample_boards(samples, results_dir, with_significance, registered, sample_tests)
    if small:
        intro = SAMPLE_INTRO.format(source=f"{Path(results_dir) / SAMPLE_DIR / 'runs'}")
        body += f"\n**Small-sample results on real data.** {intro}\n\n" + "\n".join(
            render_preset(b, sample_heading(b), "real-sample") for b in small)
    sample = any(SAMPLE in line for line in body.splitlines())
    notes = [
        (f"Generated by `ecgbench leaderboard` from the result JSON under `{source}`; do not edit "
        "by hand (`ecgbench leaderboard --check` fails when this block is stale)."),
        ("Cells: test-split main metric, mean ± std over replicate seeds [patient-level bootstrap "
        "95% CI, bounds averaged over seeds]. One probe per method and task, chosen by the mean "
        "validation score over seeds; the test split is never used to choose."),
        ("`(control)`: untrained encoder (or fixed features) under the same probes; `(supervised)`: the "
        "method uses task labels. Each group (preset, protocol, suite) is compared on its own."),
        note,
    ]
    if sample:
        notes.append(f"{SAMPLE}: sample-size result from a small sample of a real dataset.")
    return f"{START}\n\n" + "\n\n".join(notes) + f"\n\n{body}\n{END}"
