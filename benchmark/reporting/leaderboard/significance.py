"""Each task's separation (:mod:`ecgbench.evaluation.separation`): the reference chosen on
validation, paired patient bootstrap against it with Holm correction, the top group, rank
intervals and the minimum detectable difference; read from or written to the stored tests
(:mod:`.tested`) when a store is given."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ecgbench.reporting.leaderboard.boards import DEFAULT_PROTOCOL, Significance, TaskBoard
from ecgbench.reporting.leaderboard.tested import StoredTests, board_key, inputs_digest


def settings() -> dict[str, Any]:
    """What every separation is computed with (part of its stored digest)."""
    from ecgbench.evaluation.separation import POWER, VERSION
    from ecgbench.evaluation.stats import PAIRED_RESAMPLES

    return {"version": VERSION, "resamples": PAIRED_RESAMPLES, "seed": 0, "alpha": 0.05, "power": POWER}


def stats_significance(results_dir: str | Path, stored: StoredTests | None = None) -> tuple[Significance, str]:
    """The separation source for the boards of the store at ``results_dir`` and a one-line note
    on what the columns show. With ``stored``, a board whose inputs are unchanged is read from it;
    otherwise it is computed (and kept in ``stored``), unless ``stored`` only checks."""
    from ecgbench.evaluation.separation import Separation, separate
    from ecgbench.evaluation.stats import PAIRED_RESAMPLES

    config = settings()

    def significance(board: TaskBoard, preset: str, protocol: str = DEFAULT_PROTOCOL) -> tuple[Separation | None, str]:
        records = [r for entry in board.entries for r in entry.records]  # one probe per method
        key, digest = board_key(preset, protocol, board.task_key), inputs_digest(records, Path(results_dir), config)
        entry = stored.lookup(key, digest) if stored is not None else None
        if entry is None and stored is not None and stored.check:
            return None, "Significance not tested: the stored tests are outdated (run `ecgbench leaderboard`)."
        if entry is None:
            entry = _compute(records, board.task_key, results_dir, preset, protocol, separate)
            if stored is not None:
                stored.store(key, digest, entry)
        if "error" in entry:
            return None, f"Significance not tested: {entry['error']}."
        found = Separation.from_json(entry)
        return found, skipped_note(found)

    return significance, (f"Tests: paired patient-level bootstrap ({PAIRED_RESAMPLES:,} resamples, seeds fixed, "
                          "each method's value the mean over its seeds) of the main metric against the reference, "
                          "the method with the best mean validation score (never chosen on test), Holm-corrected "
                          "over the task's comparisons (ecgbench.evaluation.separation).")


def _compute(records: list[dict[str, Any]], task_key: str, results_dir: str | Path, preset: str, protocol: str,
             separate: Any) -> dict[str, Any]:
    try:
        return separate(records, task_key, results_dir, preset=preset, protocol=protocol).to_json()
    except (OSError, KeyError, ValueError) as error:
        return {"error": " ".join(str(error).split())}


def skipped_note(found: Any) -> str:
    """Names the methods that could not be tested, grouped by why."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for method, why in sorted(found.skipped.items()):
        by_reason[why].append(method)
    note = " ".join(f"Not tested ({why}): {', '.join(methods)}." for why, methods in by_reason.items())
    if found.reference is None:
        return note or "Significance not tested: fewer than two comparable methods."
    return note
