"""Time a PTB-XL cache hit as a whole fresh process on a full-size tree: before, after, mmap floor.

    python scripts/ptbxl_cache_timing.py --before 762b7ae --rounds 7 \
        --out results/bench/ptbxl-cache-hit.json

The tree is built in a temp folder from the shared sample (``--sample``, the real PTB-XL records
in the official layout): ``--records`` rows (21,799, the full release) in ``ptbxl_database.csv``,
the sample's rows repeated with new ``ecg_id``, ``patient_id`` and filenames, and under
``records100/<thousands>/`` one header per row (the sample's, renamed) and one ``.dat`` hard link
to a copy of the sample's signals. The sample itself is only read.

Three whole processes are timed, interleaved per round (before, after, floor, before, ...), each
with ``os.getloadavg()`` read just before it:

* ``before``: ``ptbxl.load`` (a cache hit) of the ``--before`` revision (its ``benchmark/``
  from ``git archive``, first on PYTHONPATH), then a full read of the signals;
* ``after``: the same with the installed package;
* ``floor``: ``np.load(mmap_mode="r")`` of the prepared ``signals.npy``, ``pandas.read_csv`` of
  its ``meta.csv`` and the same full read: what any cache of these arrays costs at least.

Every before and after process reports the loaded version, fingerprint and a sum of the signals;
the script fails unless they are all equal (same data) and the store was prepared once.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "ptb-xl"
FULL_SIZE = 21_799
VARIANTS = ("before", "after", "floor")

# each child prints one JSON line; perf_counter spans the load and the full read, after imports
LOAD = """
import json, sys, time
import numpy as np
import ecgbench
from ecgbench.data.datasets import ptbxl
clock = time.perf_counter()
rec = ptbxl.load(sys.argv[1], fs=100, cache_dir=sys.argv[2])
total = float(np.asarray(rec.signals).sum())
print(json.dumps({"in_process_s": time.perf_counter() - clock, "module": ecgbench.__file__,
                  "version": rec.version, "fingerprint": rec.fingerprint, "records": len(rec.meta),
                  "sum": total}))
"""
FLOOR = """
import json, sys, time
import numpy as np, pandas as pd
clock = time.perf_counter()
signals = np.load(sys.argv[1] + "/signals.npy", mmap_mode="r")
meta = pd.read_csv(sys.argv[1] + "/meta.csv", dtype={"split": str, "scp_codes": str})
total = float(np.asarray(signals).sum())
print(json.dumps({"in_process_s": time.perf_counter() - clock, "records": len(meta), "sum": total}))
"""


def build_tree(sample: Path, target: Path, records: int) -> Path:
    """A release of ``records`` rows at 100 Hz in the official layout, from the sample's records."""
    with open(sample / "ptbxl_database.csv", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    column = {name: i for i, name in enumerate(header)}
    signals = target / "sample-signals"  # copies: the shared files are never linked to
    signals.mkdir(parents=True)
    target = target / "ptb-xl"
    target.mkdir()
    shutil.copy(sample / "scp_statements.csv", target)
    with open(target / "ptbxl_database.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for ecg_id in range(1, records + 1):
            row = rows[(ecg_id - 1) % len(rows)]
            writer.writerow(_renamed(list(row), column, ecg_id, len(rows)))
            _add_record(sample, signals, target, row[column["filename_lr"]], ecg_id)
    return target


def _renamed(row: list[str], column: dict[str, int], ecg_id: int, period: int) -> list[str]:
    copy = (ecg_id - 1) // period  # each repetition gets patients of its own
    row[column["ecg_id"]] = str(ecg_id)
    row[column["patient_id"]] = str(float(row[column["patient_id"]]) + 100_000 * copy)
    for name, suffix in (("filename_lr", "lr"), ("filename_hr", "hr")):
        row[column[name]] = f"records{100 if suffix == 'lr' else 500}/{_stem(ecg_id, suffix)}"
    return row


def _stem(ecg_id: int, suffix: str) -> str:
    return f"{ecg_id // 1000 * 1000:05d}/{ecg_id:05d}_{suffix}"


def _add_record(sample: Path, signals: Path, target: Path, original: str, ecg_id: int) -> None:
    old_name, new = Path(original).name, target / "records100" / _stem(ecg_id, "lr")
    new.parent.mkdir(parents=True, exist_ok=True)
    copy = signals / f"{old_name}.dat"
    if not copy.exists():
        shutil.copy(sample / f"{original}.dat", copy)
    os.link(copy, f"{new}.dat")
    text = (sample / f"{original}.hea").read_text()
    Path(f"{new}.hea").write_text(text.replace(old_name, new.name))


def before_package(revision: str, folder: Path) -> Path:
    """``benchmark/`` of ``revision`` as an ``ecgbench`` package under ``folder``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "benchmark"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "benchmark").rename(folder / "ecgbench")
    return folder


def run_child(variant: str, code: str, argv: list[str], env: dict[str, str]) -> dict:
    load = os.getloadavg()
    clock = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - clock
    if done.returncode:
        raise SystemExit(f"{variant} failed: {done.stderr.strip().splitlines()[-1:]}")
    return {"variant": variant, "wall_s": round(wall, 3), "load_avg_before": [round(x, 2) for x in load],
            **json.loads(done.stdout.strip().splitlines()[-1])}


def prepared_folders(cache: Path) -> list[Path]:
    return sorted(p for p in cache.glob("ptbxl-prepared-*") if (p / "done.json").exists())


def summarise(runs: list[dict]) -> dict:
    medians = {v: round(statistics.median(r["wall_s"] for r in runs if r["variant"] == v), 3)
               for v in VARIANTS}
    inside = {v: round(statistics.median(r["in_process_s"] for r in runs if r["variant"] == v), 3)
              for v in VARIANTS}
    loads = [r["load_avg_before"][0] for r in runs]
    return {
        "median_wall_s": medians, "median_in_process_s": inside,
        "after_over_floor": round(medians["after"] / medians["floor"], 2),
        "before_over_floor": round(medians["before"] / medians["floor"], 2),
        "before_over_after": round(medians["before"] / medians["after"], 2),
        "load_avg_1m": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
    }


def check_same_data(runs: list[dict]) -> dict:
    seen = {(r["version"], r["fingerprint"], r["records"], r["sum"]) for r in runs if r["variant"] != "floor"}
    sums = {r["sum"] for r in runs}
    if len(seen) != 1 or len(sums) != 1:
        raise SystemExit(f"before and after loaded different data: {sorted(seen)}, sums {sums}")
    version, fingerprint, records, total = seen.pop()
    return {"version": version, "fingerprint": fingerprint, "records": records, "signal_sum": total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="762b7ae", help="git revision of the before code")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--records", type=int, default=FULL_SIZE)
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--work", type=Path, default=None, help="folder for the tree (default: a temp folder, removed)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (temp file + rename)")
    args = parser.parse_args(argv)

    work = Path(args.work or tempfile.mkdtemp(prefix="ptbxl-cache-timing-"))
    try:
        record = measure(args, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(record["summary"], indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(args.out)
    return 0


def measure(args: argparse.Namespace, work: Path) -> dict:
    clock = time.perf_counter()
    source = build_tree(args.sample, work / "tree", args.records)
    built_s = time.perf_counter() - clock
    cache = work / "cache"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    envs = {"after": env, "floor": env,
            "before": {**env, "PYTHONPATH": str(before_package(args.before, work / "before"))}}
    commands = {"before": LOAD, "after": LOAD, "floor": FLOOR}
    clock = time.perf_counter()
    first = run_child("after", LOAD, [str(source), str(cache)], envs["after"])  # prepares the store
    prepare_s = time.perf_counter() - clock
    [folder] = prepared_folders(cache)
    argvs = {"before": [str(source), str(cache)], "after": [str(source), str(cache)], "floor": [str(folder)]}
    warm = [run_child(v, commands[v], argvs[v], envs[v]) for v in VARIANTS]
    runs = []
    for round_ in range(args.rounds):
        for variant in VARIANTS:
            runs.append({"round": round_, **run_child(variant, commands[variant], argvs[variant], envs[variant])})
            print(json.dumps(runs[-1]), flush=True)
    if prepared_folders(cache) != [folder]:
        raise SystemExit(f"the before code prepared another store: {prepared_folders(cache)}")
    if any(r["module"].startswith(str(work)) == (r["variant"] == "after") for r in runs if r["variant"] != "floor"):
        raise SystemExit("a before run did not import the before package, or an after run did")
    return {
        "command": " ".join(["python", *sys.argv]),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(_git("status", "--porcelain", "--", "benchmark")),
        "before_revision": _git("rev-parse", args.before),
        "tree": {"records": args.records, "fs": 100, "build_s": round(built_s, 1),
                 "store_bytes": (folder / "signals.npy").stat().st_size, "first_load_with_prepare_s": round(prepare_s, 1),
                 "first_load": first},
        "note": "wall_s: a whole fresh python process (interpreter start, imports, load or np.load, full read "
                "of the signals) timed by the parent; in_process_s: the same after imports; load_avg_before: "
                "os.getloadavg() read just before each process, on a shared 2-core machine; variants "
                "interleaved per round after one warm-up of each",
        "same_data": check_same_data(runs + warm),
        "summary": summarise(runs), "warm_up": warm, "runs": runs,
    }


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
