"""The significance column: each method against the task's best, paired patient bootstrap with
Holm correction (:mod:`ecgbench.evaluation.stats`)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ecgbench.reporting.leaderboard.boards import DEFAULT_PROTOCOL, Significance, TaskBoard


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
