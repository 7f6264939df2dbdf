"""`ecgbench leaderboard --check` on fresh clones, before and after a change, as CI runs it.

Each round clones the repository at each commit into a temporary folder (``git clone --shared``,
so the committed results come along), points a fresh Python process at that clone's package
(the editable install's path mapping, rewritten for the process) and runs ``leaderboard --check``
with an empty user cache, interleaving the commits. Recorded per run: wall and CPU seconds
(the process and its children), the exit status, the 1-minute load average before it, and what
it wrote into the clone (``git status --porcelain --ignored``, with bytes).

    python scripts/leaderboard_check_timing.py --commits 762b7ae HEAD --rounds 2 \\
        --out results/bench/leaderboard-check-fresh-clone.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNER = """
import sys
import __editable___ecgbench_0_1_0_finder as finder
clone = sys.argv[1]
finder.MAPPING.update({"ecgbench": clone + "/benchmark", "ecgbench.methods": clone + "/methods",
                       "ecgbench.tasks": clone + "/tasks"})
from ecgbench.cli import main
sys.exit(main(["leaderboard", "--check"]))
"""


def clone(commit: str, into: Path) -> Path:
    target = into / commit.replace("/", "_")
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(ROOT), str(target)], check=True)
    subprocess.run(["git", "-C", str(target), "checkout", "-q", commit], check=True)
    return target


def written(folder: Path) -> list[dict]:
    """Files the run left in the clone that git does not track, with their sizes."""
    out = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--ignored", "--untracked-files=all"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    paths = [line[3:] for line in out if line.startswith(("??", "!!"))]
    return [{"path": p, "bytes": (folder / p).stat().st_size} for p in paths if (folder / p).is_file()]


def time_check(folder: Path, cache: Path) -> dict:
    env = {**os.environ, "ECGBENCH_CACHE": str(cache), "XDG_CACHE_HOME": str(cache)}
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    clock = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUNNER, str(folder)], cwd=folder, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - clock
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    files = written(folder)
    return {"wall_s": round(wall, 2), "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
            "returncode": done.returncode, "load_1min_before": round(load, 2),
            "message": (done.stdout + done.stderr).strip().splitlines()[-1:] ,
            "files_written": len(files), "bytes_written": sum(f["bytes"] for f in files)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", nargs="+", required=True)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for commit in args.commits:
                folder = clone(commit, Path(tmp) / f"round{round_}")
                result = {"commit": subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
                                                   capture_output=True, text=True).stdout.strip(),
                          "as_given": commit, "round": round_, **time_check(folder, Path(tmp) / f"cache{round_}-{commit}")}
                print(json.dumps(result), flush=True)
                runs.append(result)
    out = {"what": "ecgbench leaderboard --check on a fresh clone with an empty user cache (what .ci/run runs)",
           "command": " ".join(sys.argv), "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": runs}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
