"""The leaderboard block of BENCHMARK.md, generated from stored result JSON only.

Between ``<!-- leaderboard:start -->`` and ``<!-- leaderboard:end -->`` ``ecgbench leaderboard``
writes, for each group separately -- a group is (preset, evaluation protocol, suite): smoke, cpu
and paper numbers, two protocols, or two versions of the synthetic suite are never ranked
together; real datasets form one suite of their own:

* a summary: each method's rank on each task and its mean rank over the tasks it ran on; a
  registered method with no result in the group is listed as not run;
* per task, under its n records / patients per split: for each method the main metric on the
  test split (mean ± std over replicate seeds, patient-level bootstrap 95% CI with bounds
  averaged over seeds) of ONE probe per method, chosen by the mean validation score over seeds
  (the test score never takes part in the choice); its rank (average ranks for ties); and,
  wherever test predictions are stored, the paired patient-level bootstrap against the best
  method after Holm correction (:mod:`ecgbench.evaluation.stats`).

Controls (``(control)``) and label-using methods (``(supervised)``) are ranked like the others
and marked. A method that has results in a preset but none on a task is listed on that task as
"not run" (or "n/a: reason" for a stored not-applicable record), without a rank. The block has
no timestamps, so regenerating it from unchanged results leaves the file unchanged and
``--check`` can tell a stale block in CI.

Results of the real samples in ``../shared/data`` (``<results-dir>/real-sample``, written by
``scripts/leaderboard_grid.py real-sample``) form a section of their own after the main one,
titled as small-sample results, each task with its n records and patients per split; they are
ranked only among themselves, never against the synthetic suite.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.config import PRESETS
from ecgbench.core.contracts import HIGHER_IS_BETTER
from ecgbench.core.store import atomic_write
from ecgbench.reporting.layouts import (
    MAX_INLINE_REASON,
    SAMPLE,
    best_probe_on_validation,
    index_results,
    not_applicable,
    sample_size,
    summary,
)
from ecgbench.reporting.tables import method_label

DEFAULT_PROTOCOL = "frozen-probe"

START = "<!-- leaderboard:start -->"
END = "<!-- leaderboard:end -->"
HEADING = "## Leaderboard"
SAMPLE_DIR = "real-sample"  # under the results directory: the small real-sample results
SPLITS = ("train", "val", "test")


class LeaderboardError(ValueError):
    """Bad leaderboard input (markers broken, file missing); one line for the user."""


@dataclass
class Entry:
    """One method on one task in one preset: the validation-chosen probe and its records."""

    method: str
    label: str
    probe: str
    records: list[dict[str, Any]]
    mean: float
    rank: float | None = None

    @property
    def seeds(self) -> list[int]:
        return sorted(int(r["seed"]) for r in self.records)


@dataclass
class TaskBoard:
    task: str
    task_key: str
    metric: str
    entries: list[Entry]  # ranked, best first
    missing: dict[str, str] = field(default_factory=dict)  # label -> "not run" / "n/a: reason"
    significance: dict[str, str] | None = None  # method -> cell text, None when not tested
    significance_note: str = ""
    sizes: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # split -> (records, patients)


def rank(values: list[float], higher_is_better: bool) -> list[float]:
    """1 = best; tied values share the average of their ranks."""
    from scipy.stats import rankdata

    keys = [-v for v in values] if higher_is_better else list(values)
    return [float(r) for r in rankdata(keys, method="average")]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _label(records: list[dict[str, Any]]) -> str:
    return method_label(records[0])


def task_board(task: str, by_method: dict[str, dict[str, list[dict]]], reasons: dict[str, str],
               labels: dict[str, str], not_applicable_record: dict[str, Any] | None = None) -> TaskBoard | None:
    """Rank the methods of one task (``by_method``: method -> probe -> records per seed). A task
    on which every method that tried was not applicable (``not_applicable_record``: one of their
    records) still gets a board, empty but for the reasons."""
    entries = []
    for method, by_probe in sorted(by_method.items()):
        probe = best_probe_on_validation(by_probe)
        if probe is None:
            continue
        metric = by_probe[probe][0]["main_metric"]
        records = [r for r in by_probe[probe] if _finite(r["metrics"].get(metric))]  # null: an undefined metric
        if records:
            mean = float(np.mean([r["metrics"][metric] for r in records]))
            entries.append(Entry(method, _label(records), probe, records, mean))
    if not entries:
        if not_applicable_record is None or not reasons:
            return None
        missing = {labels[m]: f"n/a: {reasons[m]}" for m in sorted(reasons) if m in labels}
        return TaskBoard(task, not_applicable_record["task_key"], not_applicable_record["main_metric"], [], missing)
    metric = entries[0].records[0]["main_metric"]
    higher = HIGHER_IS_BETTER.get(metric, True)
    for entry, value in zip(entries, rank([e.mean for e in entries], higher)):
        entry.rank = value
    entries.sort(key=lambda e: (e.rank, e.label))
    ranked = {e.method for e in entries}
    missing = {labels[m]: (f"n/a: {reasons[m]}" if m in reasons else "not run")
               for m in sorted(labels) if m not in ranked}
    return TaskBoard(task, entries[0].records[0]["task_key"], metric, entries, missing,
                     sizes=split_sizes(entries[0].records[0]))


def split_sizes(record: dict[str, Any], results_dir: str | Path | None = None) -> dict[str, tuple[int, int | None]]:
    """split -> (records, patients) of one result: ``n`` and ``n_patients`` as stored; for a
    result written before ``n_patients`` was, the test patients come from its stored
    predictions (under ``results_dir``) when there are any, else they are unknown (None)."""
    records, patients = record.get("n") or {}, dict(record.get("n_patients") or {})
    if "test" not in patients and results_dir is not None and record.get("predictions"):
        from ecgbench.evaluation.stats import load_predictions

        try:
            patients["test"] = len(set(load_predictions(record, Path(results_dir))["patient_ids"].tolist()))
        except ValueError:  # predictions named but missing: the count stays unknown
            pass
    return {split: (int(records[split]), patients.get(split)) for split in SPLITS if split in records}


def suite(record: dict[str, Any]) -> str:
    """The collection a record's task belongs to: ``synthetic v<N>`` for the synthetic suite
    (tasks of two suite versions never share a ranking), ``real data`` for everything else."""
    dataset = str((record.get("adaptation") or {}).get("dataset") or "")
    name, _, version = dataset.partition("@")
    if name == "synthetic":
        return f"synthetic v{version.split('-')[0] or '?'}"
    if not dataset and str(record.get("task", "")).startswith("synth-"):  # a not-applicable record: no data read
        return f"synthetic v{str(record.get('task_key', '')).partition('@v')[2] or '?'}"
    return "real data"


def _suite_order(name: str) -> tuple[bool, int, str]:
    version = name.rsplit(" v", 1)[-1]
    return name == "real data", -int(version) if version.isdigit() else 0, name


def group_key(record: dict[str, Any]) -> tuple[str, str, str]:
    """(preset, protocol, suite): the results that may be ranked against each other."""
    return (str(record.get("preset", "")), str(record.get("protocol") or DEFAULT_PROTOCOL), suite(record))


def registered_methods() -> dict[str, str]:
    """Every registered method (aliases left out, as ``--methods all`` runs them) -> its label
    (``(control)``, ``(supervised)`` as its class declares)."""
    from ecgbench.core.registry import METHODS

    labels = {}
    for name in METHODS.select("all"):
        cls = METHODS.get(name)
        labels[name] = method_label({"method": name, "control": not getattr(cls, "needs_training", True),
                                     "uses_labels": getattr(cls, "uses_labels", False)})
    return labels


@dataclass
class PresetBoard:
    preset: str
    tasks: list[TaskBoard]
    n_results: int
    protocol: str = DEFAULT_PROTOCOL
    suite: str = ""
    titled: bool = False  # the heading names protocol and suite (the preset holds several groups)
    not_run: list[str] = field(default_factory=list)  # labels of registered methods with no result here

    def mean_ranks(self) -> list[tuple[str, dict[str, float], float, int]]:
        """(label, task -> rank, mean rank over the tasks it ran on, number of those tasks),
        best mean rank first."""
        ranks: dict[str, dict[str, float]] = defaultdict(dict)
        for board in self.tasks:
            for entry in board.entries:
                ranks[entry.label][board.task] = entry.rank
        rows = [(label, by_task, float(np.mean(list(by_task.values()))), len(by_task))
                for label, by_task in ranks.items()]
        return sorted(rows, key=lambda row: (row[2], -row[3], row[0]))

    def unranked(self) -> list[tuple[str, dict[str, str]]]:
        """(label, task -> why) of the methods with results or not-applicable records in this
        group but no rank on any task, then of the registered methods never run here."""
        ranked = {label for label, *_ in self.mean_ranks()}
        seen = sorted({label for board in self.tasks for label in board.missing} - ranked)
        rows = [(label, {b.task: b.missing.get(label, "not run") for b in self.tasks}) for label in seen]
        return rows + [(label, {b.task: "not run" for b in self.tasks}) for label in self.not_run]


def build(results: Iterable[dict[str, Any]], significance: Significance | None = None,
          registered: dict[str, str] | None = None, results_dir: str | Path | None = None) -> list[PresetBoard]:
    """One board per (preset, protocol, suite) that has scored results: paper first, then
    frozen-probe, then by suite (newest synthetic version first). ``registered`` (method ->
    label, e.g. :func:`registered_methods`) adds the methods without any result in a group as
    not run; ``results_dir`` (the store the results came from) lets a result written before
    ``n_patients`` was stored count its test patients from its predictions."""
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for record in results:
        if _all_labels(record):  # label-efficiency results are curves (ecgbench report), not ranks
            groups[group_key(record)].append(record)
    boards = []
    for (preset, protocol, name), records in groups.items():
        for board in _build_group(records, significance, protocol):
            board.suite = name
            present = {label for t in board.tasks for label in [*(e.label for e in t.entries), *t.missing]}
            board.not_run = sorted(set((registered or {}).values()) - present)
            if results_dir is not None:
                for task in board.tasks:
                    task.sizes = split_sizes(task.entries[0].records[0], results_dir) if task.entries else {}
            boards.append(board)
    presets = [p for p in reversed(PRESETS)] + sorted({b.preset for b in boards} - set(PRESETS))
    boards.sort(key=lambda b: (presets.index(b.preset), b.protocol != DEFAULT_PROTOCOL, b.protocol,
                               *_suite_order(b.suite)))
    for board in boards:
        board.titled = sum(b.preset == board.preset for b in boards) > 1
    return boards


def _all_labels(record: dict[str, Any]) -> bool:
    spec = record.get("probe_spec") or {}
    fraction = record.get("label_fraction", spec.get("label_fraction", spec.get("train_fraction", 1.0)))
    return fraction in (None, 1, 1.0)


def _build_group(results: list[dict[str, Any]], significance: Significance | None,
                 protocol: str = DEFAULT_PROTOCOL) -> list[PresetBoard]:
    """The boards of one (preset, protocol, suite) group."""
    stored = index_results(results, protocol)
    reasons: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)  # (preset, task) -> method -> why
    for (preset, method, task), reason in stored.reasons.items():
        reasons[(preset, task)][method] = reason
    grouped: dict[str, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    for (preset, method, task), by_probe in stored.cells.items():
        grouped[preset][task][method] = by_probe
        labels[preset][method] = _label(next(iter(by_probe.values())))
    about: dict[tuple[str, str], dict] = {}  # (preset, task) -> a not-applicable record of it
    for record in results:  # a not-applicable method still shows up on its preset's tasks
        if not_applicable(record) and record.get("preset") in grouped:
            labels[record["preset"]].setdefault(record["method"], method_label(record))
            about.setdefault((record["preset"], record["task"]), record)
    boards = []
    order = [p for p in reversed(PRESETS) if p in grouped] + sorted(set(grouped) - set(PRESETS))
    for preset in order:
        tasks = []
        for task in sorted(set(grouped[preset]) | {t for (p, t) in about if p == preset}):
            board = task_board(task, grouped[preset].get(task, {}), reasons[(preset, task)], labels[preset],
                               about.get((preset, task)))
            if board is None:
                continue
            if significance is not None and board.entries:
                board.significance, board.significance_note = significance(board, preset, protocol)
            tasks.append(board)
        n = sum(len(records) for (p, _, _), by_probe in stored.cells.items() if p == preset
                for records in by_probe.values())
        boards.append(PresetBoard(preset, tasks, n, protocol))
    return boards


# ----- significance (benchmark/stats.py, when present) ----------------------------------------
Significance = Callable[[TaskBoard, str, str], tuple[dict[str, str] | None, str]]


def stats_significance(results_dir: str | Path) -> tuple[Significance | None, str]:
    """The significance column's source (:func:`ecgbench.evaluation.stats.compare_methods` on the records
    the board ranked) and a one-line note on what it shows, or why it is absent."""
    from ecgbench.evaluation.stats import PAIRED_RESAMPLES, compare_methods

    def significance(board: TaskBoard, preset: str, protocol: str = DEFAULT_PROTOCOL) -> tuple[dict[str, str] | None, str]:
        records = [r for entry in board.entries for r in entry.records]  # one probe per method
        try:
            comparison = compare_methods(records, board.task_key, results_dir, preset=preset, protocol=protocol)
        except (OSError, KeyError, ValueError) as error:
            return None, f"Significance not tested: {' '.join(str(error).split())}."
        return _significance_cells(comparison)

    return significance, (f"Significance (vs best): paired patient-level bootstrap ({PAIRED_RESAMPLES:,} resamples) "
                          "of the main metric against the best method on the same test records (ecgbench.evaluation.stats), "
                          "p-values Holm-corrected over the task's comparisons; * = significant at 0.05.")


def _significance_cells(comparison: Any) -> tuple[dict[str, str] | None, str]:
    """Cells (method -> text) from a :class:`ecgbench.evaluation.stats.Comparison` against the best, and a
    note naming the methods that could not be tested."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for method, why in sorted(comparison.skipped.items()):
        by_reason[why].append(method)
    note = " ".join(f"Not tested ({why}): {', '.join(methods)}." for why, methods in by_reason.items())
    if not comparison.rows:
        return None, note or "Significance not tested: fewer than two comparable methods."
    cells = {comparison.reference: "best"}
    for row in comparison.rows:
        other = row["method_b"] if row["method_a"] == comparison.reference else row["method_a"]
        cells[other] = f"p = {row['p_holm']:.3g}{' *' if row['significant'] else ''}"
    for method in comparison.skipped:
        cells[method] = "not tested"
    return cells, note


# ----- markdown ------------------------------------------------------------------------------
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


def _rank(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:g}"


def render_task(board: TaskBoard) -> str:
    from tabulate import tabulate

    direction = "higher is better" if HIGHER_IS_BETTER.get(board.metric, True) else "lower is better"
    headers = ["rank", "method", "probe (chosen on validation)", f"{board.metric} (test)", "seeds"]
    if board.significance is not None:
        headers.append("vs best (Holm)")
    rows = []
    for entry in board.entries:
        row = [_rank(entry.rank), entry.label, entry.probe, cell_text(entry), ", ".join(map(str, entry.seeds))]
        if board.significance is not None:
            row.append(board.significance.get(entry.method, "best" if entry is board.entries[0] else "–"))
        rows.append(row)
    long_reasons: list[str] = []  # long not-applicable reasons go under the table, numbered
    for label, why in board.missing.items():
        if len(why) > MAX_INLINE_REASON + len("n/a: "):
            long_reasons += [why] if why not in long_reasons else []
            why = f"n/a: note {long_reasons.index(why) + 1}"
        rows.append(["–", label, "–", why, "–"] + (["–"] if board.significance is not None else []))
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    notes = [board.significance_note] if board.significance_note else []
    notes += [f"n/a note {i}: {why[len('n/a: '):]}" for i, why in enumerate(long_reasons, 1)]
    samples = sorted({sample_size(e.records) for e in board.entries} - {None})
    notes += [f"{SAMPLE} {dataset}: n = {n} records of {full:,} in the full release (a pipeline check, "
              "not a benchmark number)." for n, full, dataset in samples]
    note = "".join(f"\n{line}\n" for line in notes)
    return f"#### {board.task_key} · {board.metric} ({direction})\n\n{sizes_text(board.sizes)}\n\n{table}\n{note}"


def _short(why: str) -> str:
    return "n/a" if why.startswith("n/a") else why


def summary_rows(board: PresetBoard) -> list[list[str]]:
    """The mean-rank table's rows: ranked methods by mean rank, then the unranked ones."""
    rows = []
    for label, by_task, mean, count in board.mean_ranks():
        rows.append([label, *(_rank(by_task[t.task]) if t.task in by_task else _short(t.missing.get(label, "not run"))
                              for t in board.tasks), f"{mean:.2f}", f"{count}/{len(board.tasks)}"])
    for label, by_task in board.unranked():
        rows.append([label, *(_short(by_task[t.task]) for t in board.tasks), "–", f"0/{len(board.tasks)}"])
    return rows


def render_preset(board: PresetBoard, heading: str | None = None, grid: str = "synthetic") -> str:
    """One group's section; ``grid``: the section of ``scripts/leaderboard_grid.py`` that runs it."""
    from tabulate import tabulate

    tasks = [t.task for t in board.tasks]
    summary_table = tabulate(summary_rows(board), headers=["method", *tasks, "mean rank", "tasks"],
                             tablefmt="github", disable_numparse=True)
    sections = "\n".join(render_task(t) for t in board.tasks)
    title = f" · {board.suite} · {board.protocol}" if board.titled else ""
    not_run = ("" if not board.not_run else
               f"Not run: {len(board.not_run)} registered methods have no result in this group yet "
               f"(`python scripts/leaderboard_grid.py {grid} --status` lists what the grid still has to run).\n\n")
    return (f"{heading or f'### Preset `{board.preset}`{title}'}\n\n{not_run}"
            f"From {board.n_results} scored results (every probe and seed); one probe per method and task. "
            f"Rank 1 is best on each task; the mean rank is over the tasks a method ran on.\n\n"
            f"{summary_table}\n\n{sections}")


def sample_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """The records of the real-sample store ``<results_dir>/real-sample`` (none when absent)."""
    from ecgbench.core.store import ResultStore

    store = ResultStore(Path(results_dir) / SAMPLE_DIR)
    return list(store.results()) if (store.root / "runs").exists() else []


def sample_boards(results: Iterable[dict[str, Any]], results_dir: str | Path, with_significance: bool = True,
                  registered: dict[str, str] | None = None) -> list[PresetBoard]:
    """The boards of the real-sample section: ``results`` from ``<results_dir>/real-sample``,
    ranked among themselves only, significance read from that store's predictions."""
    sample_dir = Path(results_dir) / SAMPLE_DIR
    significance = stats_significance(sample_dir)[0] if with_significance else None
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
                 samples: list[dict[str, Any]] | None = None) -> str:
    """The whole block, markers included, from the records of the store at ``results_dir``.

    ``registered``: method -> label of every method a group should list (None: the registry's,
    :func:`registered_methods`); ``samples``: the real-sample section's records (None: read
    from ``<results_dir>/real-sample``)."""
    significance, note = stats_significance(results_dir) if with_significance else (None, "Significance: not shown.")
    source = f"{str(results_dir).rstrip('/')}/runs"
    registered = registered_methods() if registered is None else registered
    boards = build(results, significance, registered, results_dir)
    if boards:
        body = "\n".join(render_preset(b) for b in boards)
    else:
        body = "_No stored results yet: run `ecgbench run`, then `ecgbench leaderboard`._\n"
    samples = sample_results(results_dir) if samples is None else samples
    small = sample_boards(samples, results_dir, with_significance, registered)
    if small:
        intro = SAMPLE_INTRO.format(source=f"{Path(results_dir) / SAMPLE_DIR / 'runs'}")
        body += f"\n**Small-sample results on real data.** {intro}\n\n" + "\n".join(
            render_preset(b, sample_heading(b), "real-sample") for b in small)
    sample = any(SAMPLE in line for line in body.splitlines())
    notes = [
        f"Generated by `ecgbench leaderboard` from the result JSON under `{source}`; do not edit "
        "by hand (`ecgbench leaderboard --check` fails when this block is stale).",
        "Cells: test-split main metric, mean ± std over replicate seeds [patient-level bootstrap "
        "95% CI, bounds averaged over seeds]. One probe per method and task, chosen by the mean "
        "validation score over seeds; the test split is never used to choose.",
        "`(control)`: untrained encoder under the same probes; `(supervised)`: the method uses "
        "task labels. Each preset is ranked on its own.",
        note,
    ]
    if sample:
        notes.append(f"{SAMPLE}: sample-size result from a small sample of a real dataset.")
    return f"{START}\n\n" + "\n\n".join(notes) + f"\n\n{body}\n{END}"


# ----- the file ------------------------------------------------------------------------------
def current_block(text: str, path: Path | str = "BENCHMARK.md") -> str | None:
    """The block in ``text`` (markers included), or None when there is none."""
    starts, ends = text.count(START), text.count(END)
    if starts == 0 and ends == 0:
        return None
    if starts != 1 or ends != 1 or text.index(START) > text.index(END):
        raise LeaderboardError(f"{path}: leaderboard markers are broken (need exactly one {START} "
                               f"followed by one {END})")
    return text[text.index(START): text.index(END) + len(END)]


def replace_block(text: str, block: str, path: Path | str = "BENCHMARK.md") -> str:
    existing = current_block(text, path)
    if existing is not None:
        return text.replace(existing, block, 1)
    return text.rstrip("\n") + f"\n\n{HEADING}\n\n{block}\n"


def update(path: Path, block: str) -> bool:
    """Write ``block`` into ``path`` (atomically); True when the file changed."""
    if not path.is_file():
        raise LeaderboardError(f"{path}: not found (pass --file)")
    text = path.read_text(encoding="utf-8")
    new = replace_block(text, block, path)
    if new == text:
        return False
    atomic_write(path, lambda tmp: tmp.write_text(new, encoding="utf-8"))
    return True


def is_stale(path: Path, block: str) -> bool:
    if not path.is_file():
        raise LeaderboardError(f"{path}: not found (pass --file)")
    return current_block(path.read_text(encoding="utf-8"), path) != block


def refresh(results_dir: str | Path, path: Path, check: bool) -> tuple[bool, str]:
    """``ecgbench leaderboard [--check]``: regenerate the block of ``path`` from the results stored
    under ``results_dir``, or only say whether it is stale; (up to date or written, message)."""
    from ecgbench.core.store import ResultStore

    store = ResultStore(results_dir)
    results = list(store.results()) if (store.root / "runs").exists() else []
    block = render_block(results, results_dir)
    if check:
        if is_stale(path, block):
            return False, f"{path}: the leaderboard block is stale; run 'ecgbench leaderboard' and commit the file"
        return True, f"{path}: leaderboard block is up to date"
    changed = update(path, block)
    return True, (f"{path}: leaderboard block {'regenerated' if changed else 'already up to date'} "
                  f"from {len(results)} result files")
