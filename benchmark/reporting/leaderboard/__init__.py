"""The leaderboard block of BENCHMARK.md, generated from stored result JSON only.

Between ``<!-- leaderboard:start -->`` and ``<!-- leaderboard:end -->`` ``ecgbench leaderboard``
writes, for each group separately -- a group is (preset, evaluation protocol, suite): smoke, cpu
and paper numbers, two protocols, or two versions of the synthetic suite are never ranked
together; real datasets form one suite of their own:

* a standing: per task whether each method is in the task's top group (not significantly below
  the validation-chosen reference), and on how many tasks it is; no mean rank (it would order
  methods no test separates); a registered method with no result in the group is listed as not run;
* per task, under its n records / patients per split: for each method the main metric on the
  validation and test splits (test: mean ± std over replicate seeds, patient-level bootstrap 95%
  CI with bounds averaged over seeds) of ONE probe per method, chosen by the mean validation
  score over seeds (the test score never takes part in the choice); and, wherever test
  predictions are stored, its bootstrap rank interval, the paired patient-level bootstrap against
  the reference after Holm correction and top-group membership, with the minimum detectable
  difference under the table (:mod:`ecgbench.evaluation.separation`). Rows are listed by test
  mean; no bare rank is printed. The tests are stored beside the results (:mod:`.tested`).

Controls (``(control)``) and label-using methods (``(supervised)``) are tested like the others
and marked. A method that has results in a preset but none on a task is listed on that task as
"not run" (or "n/a: reason" for a stored not-applicable record), without a rank. The block has
no timestamps, so regenerating it from unchanged results leaves the file unchanged and
``--check`` can tell a stale block in CI.

Results of the real samples in ``../shared/data`` (``<results-dir>/real-sample``, written by
``scripts/leaderboard_grid.py real-sample``) form a section of their own after the main one,
titled as small-sample results, each task with its n records and patients per split; they are
ranked only among themselves, never against the synthetic suite.
"""


from ecgbench.reporting.leaderboard.block import current_block, is_stale, refresh, replace_block, update
from ecgbench.reporting.leaderboard.boards import (
    DEFAULT_PROTOCOL,
    END,
    HEADING,
    SAMPLE_DIR,
    SPLITS,
    START,
    Entry,
    LeaderboardError,
    PresetBoard,
    Significance,
    TaskBoard,
    build,
    group_key,
    rank,
    registered_methods,
    split_sizes,
    suite,
    task_board,
)
from ecgbench.reporting.leaderboard.render import (
    SAMPLE_INTRO,
    STANDING,
    cell_text,
    render_block,
    render_preset,
    render_task,
    sample_boards,
    sample_heading,
    sample_results,
    separation_notes,
    sizes_text,
    summary_rows,
    task_rows,
)
from ecgbench.reporting.leaderboard.significance import stats_significance

__all__ = [
    "DEFAULT_PROTOCOL", "END", "HEADING", "SAMPLE_DIR", "SAMPLE_INTRO", "SPLITS", "STANDING", "START", "Entry", "LeaderboardError",
    "PresetBoard", "Significance", "TaskBoard", "build", "cell_text", "current_block", "group_key", "is_stale", "rank",
    "refresh", "registered_methods", "render_block", "render_preset", "render_task", "replace_block", "sample_boards",
    "sample_heading", "sample_results", "separation_notes", "sizes_text", "split_sizes", "stats_significance", "suite",
    "summary_rows", "task_board", "task_rows", "update",
]
