"""Time the README's main job (the smoke grid) before and after a change, interleaved.

    python scripts/smoke_timing.py --before-pkg /tmp/before_pkg --rounds 2 \
        --out results/bench/cpu-smoke-grid.json

``--before-pkg``: a folder holding an ``ecgbench`` package of the old revision (its
benchmark/ files with methods/ and tasks/ beside them), put first on PYTHONPATH for the
"before" runs; the "after" runs use the installed package. Each round runs before then after
(each in a fresh results folder, then once more on the same folder: the cached rerun), so
load on a shared machine hits both alike. All runs share one data root, warmed first (the
synthetic suite and the clinical-feature table are per dataset, not per results folder).
Wall seconds, CPU seconds of the whole process tree, results and the 1-minute load average
before each run are recorded, and the main metrics of before and after are compared key by
key.

``--profile``: also one cProfile run of each variant with one worker (``--jobs 1``), split
by stage (see :data:`STAGES`): where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

COMMAND = ["run", "--methods", "all", "--tasks", "synth-superclass", "--preset", "smoke"]
# stage -> the function (file:function) whose cumulative time it is, in the cProfile output
STAGES = {
    "pretraining (train loop)": ("train.py", "pretrain"),
    "training windows (adapt)": ("stages/pretrain.py", "training_windows"),
    "clinical features (neurokit2)": ("clinical.py", "record_features"),
    "embedding": ("stages/embed.py", "embeddings"),
    "probes (fit + predict)": ("protocols/frozen_probe.py", "fit_predict"),
    "evaluate (probes + bootstrap)": ("stages/evaluate.py", "score"),
    "MLflow logging": ("tracking.py", "call"),
    "whole command": ("cli/__init__.py", "main"),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(variant: str, args: list[str], env: dict[str, str], log: Path) -> dict:
    load = os.getloadavg()[0]
    cpu, clock = _children_cpu(), time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call([sys.executable, "-m", "ecgbench.cli", *args], env=env, stdout=out, stderr=out)
    return {"variant": variant, "exit": code, "wall_s": round(time.perf_counter() - clock, 1),
            "cpu_s": round(_children_cpu() - cpu, 1), "load_avg_1m_before": round(load, 2), "log": str(log)}


def main_metrics(results_dir: Path) -> dict[str, float]:
    out = {}
    for path in (results_dir / "runs").rglob("*.json"):
        if path.name == "run.json":
            continue
        record = json.loads(path.read_text())
        if "key" in record and record.get("metrics"):
            out[record["key"]] = record["metrics"].get(record["main_metric"])
    return out


def stage_seconds(profile: Path) -> dict[str, float]:
    import pstats

    stats = pstats.Stats(str(profile)).stats  # (file, line, function) -> (cc, nc, tt, ct, callers)
    seconds = {}
    for stage, (suffix, function) in STAGES.items():
        seconds[stage] = round(sum(ct for (file, _, name), (_, _, _, ct, _) in stats.items()
                                   if file.endswith(suffix) and name == function), 1)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-pkg", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--data-root", type=Path, default=None, help="default: a fresh temporary folder")
    parser.add_argument("--after-set", action="append", default=[], metavar="KEY=VALUE",
                        help="--set items for the interleaved 'after' runs, e.g. data.version=2 when the "
                             "default suite version changed: before and after then score the same data")
    parser.add_argument("--readme-runs", type=int, default=1,
                        help="then this many runs of the command exactly as the README gives it")
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="smoke-timing-"))
    data_root = options.data_root or work / "data"
    base_env = {**os.environ, "ECGBENCH_DATA": str(data_root)}
    base_env.pop("ECGBENCH_JOBS", None)
    envs = {"before": {**base_env, "PYTHONPATH": str(options.before_pkg)}, "after": base_env}

    after_set = [item for pair in options.after_set for item in ("--set", pair)]
    warm = [run_once("after", [*COMMAND, "--results-dir", str(work / f"warm{i}"), "--no-tracking", *extra],
                     envs["after"], work / f"warm{i}.log")  # the suites and clinical tables, once
            for i, extra in enumerate([[], after_set] if after_set else [[]])]
    runs, metrics = [], {}
    schedule = [(r, v) for r in range(options.rounds) for v in ("before", "after")]
    schedule += [(r, "readme") for r in range(options.readme_runs)]
    for round_index, variant in schedule:
        results = work / f"{variant}-{round_index}"
        args = [*COMMAND, "--results-dir", str(results), *(after_set if variant == "after" else [])]
        env = envs["before" if variant == "before" else "after"]
        fresh = run_once(variant, args, env, work / f"{variant}-{round_index}.log")
        cached = run_once(variant, args, env, work / f"{variant}-{round_index}-cached.log")
        metrics[variant] = main_metrics(results)
        runs.append({**fresh, "round": round_index, "results": len(metrics[variant]),
                     "cached_rerun_wall_s": cached["wall_s"], "cached_rerun_cpu_s": cached["cpu_s"]})
        print(json.dumps(runs[-1]), flush=True)
    shared = sorted(set(metrics["before"]) & set(metrics["after"]))
    differences = {k: abs(metrics["before"][k] - metrics["after"][k]) for k in shared
                   if metrics["before"][k] is not None and metrics["after"][k] is not None}
    record = {
        "command": " ".join(["python", *sys.argv]), "after_set": options.after_set, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(), "cpus": os.cpu_count(), "grid": "ecgbench " + " ".join(COMMAND),
        "note": "wall and CPU seconds (process tree) per fresh results folder; the data root (synthetic suite, "
                "clinical-feature table) warmed once first; before/after interleaved per round",
        "warm_up": warm, "runs": runs,
        "metric_comparison": {"keys_compared": len(differences), "keys_only_before": len(set(metrics["before"]) - set(shared)),
                              "keys_only_after": len(set(metrics["after"]) - set(shared)),
                              "max_abs_difference": max(differences.values(), default=None),
                              "differing_over_0.01": sorted(k for k, d in differences.items() if d > 0.01)},
    }
    if options.profile:
        record["profile"] = {}
        for variant in ("before", "after"):
            profile = work / f"{variant}.prof"
            results = work / f"{variant}-profile"
            load = os.getloadavg()[0]
            jobs = ["--jobs", "1"] if variant == "after" else []  # the old code has no --jobs
            subprocess.call([sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "ecgbench.cli", *COMMAND,
                             "--results-dir", str(results), *jobs], env=envs[variant],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            record["profile"][variant] = {"load_avg_1m_before": round(load, 2), "seconds": stage_seconds(profile)}
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(record, indent=2) + "\n")
    for i in range(2):
        shutil.rmtree(work / f"warm{i}", ignore_errors=True)
    print(f"wrote {options.out}; logs in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
