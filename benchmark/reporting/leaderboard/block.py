"""The block in its file: found between its markers, replaced, checked for staleness, refreshed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ecgbench.core.store import atomic_write
from ecgbench.reporting.leaderboard.boards import END, HEADING, START, LeaderboardError
from ecgbench.reporting.leaderboard.render import render_block


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
    under ``results_dir``, or only say whether it is stale; (up to date or written, message).

    The significance tests are read from the stored tests beside the results (:mod:`.tested`);
    without ``check`` the outdated ones are recomputed and the file rewritten, with ``check``
    nothing is computed or written and an outdated test makes the block stale."""
    from ecgbench.core.store import ResultStore
    from ecgbench.reporting.leaderboard.boards import SAMPLE_DIR
    from ecgbench.reporting.leaderboard.tested import StoredTests

    store = ResultStore(results_dir)
    results = list(store.results()) if (store.root / "runs").exists() else []
    with _status("checking" if check else "testing") as progress:
        stored = (StoredTests(results_dir, check, progress), StoredTests(Path(results_dir) / SAMPLE_DIR, check, progress))
        block = render_block(results, results_dir, stored=stored)
    if check:
        outdated = [key for tests in stored for key in tests.stale]
        if outdated:
            return False, (f"{stored[0].path.name}: the stored tests of {len(outdated)} tasks are stale (missing or outdated; "
                           f"first: {outdated[0]}); run 'ecgbench leaderboard' and commit the results")
        if is_stale(path, block):
            return False, f"{path}: the leaderboard block is stale; run 'ecgbench leaderboard' and commit the file"
        return True, f"{path}: leaderboard block is up to date ({len(results)} result files)"
    saved = [tests.path for tests in stored if tests.save()]
    changed = update(path, block)
    return True, (f"{path}: leaderboard block {'regenerated' if changed else 'already up to date'} "
                  f"from {len(results)} result files"
                  + (f"; tests written to {', '.join(map(str, saved))}" if saved else ""))


@contextmanager
def _status(verb: str) -> Iterator[Callable[[str], None]]:
    """One progress line on stderr naming the task whose tests are being read or computed."""
    from rich.console import Console

    done = 0
    with Console(stderr=True).status(f"leaderboard: {verb} tasks") as status:
        def progress(key: str) -> None:
            nonlocal done
            done += 1
            status.update(f"leaderboard: {verb} task {done} ({key})")

        yield progress
