"""Fault trials for issue 11 (not in CI: it takes tens of minutes and loads the CPU).

Runs a small smoke grid the way an operator's faults would hit it, and measures what survives:

1. an uninterrupted reference run (fresh results folder);
2. kill trials into ONE results folder: ``kill -9`` at random moments, ``kill -9`` right after a
   run appears in the MLflow store (while results are being logged), SIGTERM at random moments;
   plus ``kill -9`` during MLflow's first-use database setup (each in a fresh folder, where that
   setup happens), each followed by ``ecgbench track sync`` on that folder;
3. a rerun of the grid to completion, compared with the reference: results lost or differing,
   checkpoints differing, MLflow runs left unfinished, keys missing from or doubled in the view,
   databases that plain MLflow cannot open;
4. a tracking server killed mid-run (the run must finish every JSON result; ``track sync``
   backfills after the server is back);
5. a partial-checkpoint resume: pretraining killed with -9 after a partial checkpoint, resumed,
   and compared with the uninterrupted run's weights bit for bit.

Usage: ``python scripts/fault_trials.py [--trials 20] [--workdir DIR] [--seed 0] [--out summary.json]``.
Every subprocess runs with one intra-op thread, so the reference and the trials are comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from netutil import start_mlflow_server, stop_server  # the tests' loopback helpers

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
GRID = ["run", "--methods", "random-init,simclr", "--tasks", "synth-sex", "--probes", "lr,knn", "--seeds", "0",
        "--preset", "smoke", "--set", "data.n_patients=60", "--set", "eval.bootstrap=10"]
# fields of a record that legitimately differ between runs of the same key
VOLATILE = {"created", "timings", "git", "versions"}
WARNING = "MLflow tracking at"
KEYED = "SELECT count(*) FROM tags WHERE key = 'ecgbench.key'"


# ----- running the grid ----------------------------------------------------------------------
def ecgbench(results: Path, data: Path, *extra: str) -> subprocess.Popen:
    """The grid in its own process group; its stderr goes to a file (read back by ``ended``)."""
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([str(BIN / "ecgbench"), *GRID, "--results-dir", str(results), "--data-root",
                                str(data), *extra], env=ENV, stdout=subprocess.DEVNULL, stderr=log, text=True,
                               start_new_session=True)
    process.log = log
    return process


def ended(process: subprocess.Popen) -> str:
    """Wait for the process; its stderr."""
    process.wait()
    process.log.seek(0)
    text = process.log.read()
    process.log.close()
    return text


def run_to_end(results: Path, data: Path, *extra: str) -> tuple[int, float, str]:
    clock = time.monotonic()
    process = ecgbench(results, data, *extra)
    stderr = ended(process)
    return process.returncode, time.monotonic() - clock, stderr


def count(database: Path, sql: str = "SELECT count(*) FROM runs") -> int:
    """A count from an MLflow sqlite store read without MLflow (0 while it does not exist yet)."""
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=1) as db:
            return db.execute(sql).fetchone()[0]
    except sqlite3.Error:
        return 0


def kill_trial(results: Path, data: Path, kind: str, expected_s: float, rng: random.Random) -> dict:
    """One interrupted run: ``kind`` says when and how it is interrupted."""
    clock = time.monotonic()
    before = count(results / "mlflow.db")
    process = ecgbench(results, data)
    signum = signal.SIGTERM if kind.startswith("sigterm") else signal.SIGKILL
    if kind in ("kill9-logging", "sigterm-running"):  # once this invocation's run is in the store
        deadline = clock + 3 * expected_s
        while process.poll() is None and count(results / "mlflow.db") <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        # a resumed run's invocation lasts seconds: SIGTERM within them, kill -9 while it logs
        wait_or_end(process, rng.uniform(0, 0.3) if kind == "kill9-logging" else rng.uniform(0, 2.0))
    else:
        wait_or_end(process, rng.uniform(0, expected_s))
    alive = process.poll() is None
    if alive:
        os.killpg(process.pid, signum)
    stderr = ended(process)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return {"kind": kind, "at_s": round(time.monotonic() - clock, 1), "hit": alive, "code": process.returncode,
            "traceback": "Traceback" in stderr, "last_log": lines[-1][:70] if lines else ""}


def wait_or_end(process: subprocess.Popen, seconds: float) -> None:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass


# the next start on a folder: the tracker connects (offline means it gave up with a warning)
REOPEN = "import sys\nfrom ecgbench.running.tracking import Tracker\nsys.exit(int(Tracker.for_results(sys.argv[1]).offline))\n"


def setup_trial(folder: Path, data: Path, rng: random.Random) -> dict:
    """kill -9 during MLflow's first-use setup of a fresh folder, then `track sync` on it."""
    clock = time.monotonic()
    process = ecgbench(folder, data)
    deadline = clock + 300
    while process.poll() is None and time.monotonic() < deadline:
        if list(folder.glob(".mlflow.db.tmp-*")) or (folder / "mlflow.db").exists():
            break
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 1.0))  # MLflow's migrations take about a second
    alive = process.poll() is None
    if alive:
        os.killpg(process.pid, signal.SIGKILL)
    in_setup = bool(list(folder.glob(".mlflow.db.tmp-*")))  # killed before the database was renamed into place
    ended(process)
    reopen = subprocess.run([sys.executable, "-c", REOPEN, str(folder)], env=ENV, capture_output=True, text=True)
    return {"kind": "kill9-mlflow-setup", "at_s": round(time.monotonic() - clock, 1), "hit": alive,
            "code": process.returncode, "killed_inside_setup": in_setup, "reopened": reopen.returncode == 0}


# ----- comparing -----------------------------------------------------------------------------
def records(results: Path) -> dict[str, dict]:
    """Result records by key and run records by run id, volatile fields dropped."""
    found = {}
    for path in sorted((results / "runs").glob("*/*/*.json")):
        record = json.loads(path.read_text())
        found[record["key"]] = {k: v for k, v in record.items() if k not in VOLATILE}
    for path in sorted((results / "runs").glob("*/run.json")):
        record = json.loads(path.read_text())
        found[f"run:{path.parent.name}"] = {"loss_curve": record.get("train", {}).get("loss_curve"),
                                            "final_loss": record.get("train", {}).get("final_loss")}
    return found


def checkpoints_differing(results: Path, reference: Path) -> list[str]:
    import torch

    differing = []
    for path in sorted((reference / "cache" / "checkpoints").glob("*.pt")):
        mine = results / "cache" / "checkpoints" / path.name
        if not mine.exists():
            differing.append(path.name)
            continue
        a = torch.load(path, map_location="cpu", weights_only=False)["model"]
        b = torch.load(mine, map_location="cpu", weights_only=False)["model"]
        if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
            differing.append(path.name)
    return differing


def view_audit(uri: str, results: Path) -> dict:
    """The MLflow view against the JSON: unfinished runs, keys missing, keys doubled; opened with
    plain MLflow in a fresh process (a database it cannot open counts as unusable)."""
    keys = sorted({f"{k}#not_applicable" if v.get("status") == "not_applicable" else k
                   for k, v in records(results).items() if not k.startswith("run:")}
                  | {p.parent.name for p in (results / "runs").glob("*/run.json")})
    script = (
        "import json, sys\n"
        "from mlflow.tracking import MlflowClient\n"
        "client = MlflowClient(sys.argv[1])\n"
        "experiment = client.get_experiment_by_name('ecgbench')\n"
        "runs = client.search_runs([experiment.experiment_id], max_results=50000) if experiment else []\n"
        "print(json.dumps([[r.info.status, r.data.tags.get('ecgbench.key')] for r in runs]))\n"
    )  # deleted runs (replaced half-logged ones) are not listed
    done = subprocess.run([sys.executable, "-c", script, uri], env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        return {"usable": False, "error": done.stderr.strip().splitlines()[-1:] or ["?"]}
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    finished = [key for status, key in runs if key and status == "FINISHED"]
    return {
        "usable": True,
        "running_runs": sum(status == "RUNNING" for status, _ in runs),
        "keyed_unfinished": sum(bool(key) and status != "FINISHED" for status, key in runs),
        "invocations_killed_or_failed": sum(not key and status in ("KILLED", "FAILED") for status, key in runs),
        "keys_missing": sum(key not in finished for key in keys),
        "keys_doubled": sum(finished.count(key) > 1 for key in keys),
        "keys": len(keys),
    }


def compare(results: Path, reference: Path) -> dict:
    mine, ref = records(results), records(reference)
    return {
        "lost": sum(key not in mine for key in ref),
        "differing": sum(key in mine and mine[key] != ref[key] for key in ref),
        "extra": sum(key not in ref for key in mine),
        "checkpoints_differing": len(checkpoints_differing(results, reference)),
        "temp_files_left": len([p for p in results.rglob("*.tmp-*")]),
    }


# ----- a tracking server that dies -----------------------------------------------------------
def server_trial(work: Path, data: Path, reference: Path) -> dict:
    """The server dies (kill -9) once the run has logged its first result; the run must still
    write every JSON result, with one warning; `track sync` backfills after a restart."""
    root, results = work / "server", work / "server" / "results"
    root.mkdir(parents=True)
    server, uri = start_mlflow_server(root, timeout=180, env=ENV)
    clock = time.monotonic()
    process = ecgbench(results, data, "--tracking-uri", uri)
    database = root / "mlflow.db"
    while process.poll() is None and count(database, KEYED) == 0:
        time.sleep(0.1)
    killed_alive = process.poll() is None
    stop_server(server, signal.SIGKILL)
    stderr = ended(process)
    elapsed = time.monotonic() - clock
    server, uri = start_mlflow_server(root, timeout=180, env=ENV)
    try:
        sync = subprocess.run([str(BIN / "ecgbench"), "track", "sync", "--results-dir", str(results),
                               "--tracking-uri", uri], env=ENV, capture_output=True, text=True)
        audit = view_audit(uri, results)
    finally:
        stop_server(server, signal.SIGKILL)
    return {"server_killed_mid_run": killed_alive, "code": process.returncode, "seconds": round(elapsed, 1),
            "warnings": stderr.count(WARNING), "traceback": "Traceback" in stderr,
            "json_results": f"{len(list((results / 'runs').glob('*/*/*.json')))}/"
                            f"{len(list((reference / 'runs').glob('*/*/*.json')))}",
            "sync_code": sync.returncode, "after_sync": audit}


# ----- exact resume from a partial checkpoint ------------------------------------------------
RESUME = """
import dataclasses, os, signal, sys
from pathlib import Path
import numpy as np, torch
from ecgbench.core.registry import METHODS
from ecgbench.models.train import WindowDataset, pretrain

torch.set_num_threads(1)
partial, out, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
cls = METHODS.get("simclr")
config = dataclasses.replace(cls.Config(), **{**cls.preset_overrides("smoke"), "max_steps": 30, "batch_size": 8})
rng = np.random.default_rng(0)
windows = rng.standard_normal((64, len(config.leads), config.n_samples)).astype("float32")
data = WindowDataset(windows, np.arange(64) // 2, np.arange(64))

def on_step(step, loss):
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

torch.manual_seed(0)
method = cls(config)
stats = pretrain(method, data, seed=1, device=torch.device("cpu"), partial_path=partial, on_step=on_step,
                 checkpoint_every=10)
torch.save({"model": method.state_dict(), "curve": stats.loss_curve, "resumed": stats.resumed_from_step}, out)
"""


def resume_trial(work: Path) -> dict:
    folder = work / "resume"
    folder.mkdir()

    def train(partial: str, out: str, kill_at: int) -> int:
        return subprocess.run([sys.executable, "-c", RESUME, str(folder / partial), str(folder / out), str(kill_at)],
                              env=ENV, capture_output=True, text=True).returncode

    import torch

    codes = [train("ref.partial.pt", "ref.pt", -1), train("cut.partial.pt", "-", 15),
             train("cut.partial.pt", "resumed.pt", -1)]
    if codes[0] != 0 or codes[2] != 0 or not (folder / "resumed.pt").exists():
        return {"codes": codes, "bit_identical": False}
    ref, resumed = (torch.load(folder / name, weights_only=False) for name in ("ref.pt", "resumed.pt"))
    diff = max(float((ref["model"][k].float() - resumed["model"][k].float()).abs().max()) for k in ref["model"])
    return {"codes": codes, "resumed_from_step": resumed["resumed"],
            "bit_identical": all(torch.equal(ref["model"][k], resumed["model"][k]) for k in ref["model"]),
            "max_weight_diff": diff, "same_loss_curve": ref["curve"] == resumed["curve"],
            "final_loss": [ref["curve"][-1][1], resumed["curve"][-1][1]]}


# ----- the trials ----------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--setup-trials", type=int, default=4, help="of --trials, kills during MLflow setup")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the summary as JSON here")
    args = parser.parse_args()
    from tabulate import tabulate

    rng = random.Random(args.seed)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fault-trials-"))
    data, reference, trials = work / "data", work / "reference", work / "trials"
    print(f"fault trials in {work}", flush=True)

    code, reference_s, stderr = run_to_end(reference, data)
    if code != 0:
        print(f"reference run failed ({code}):\n{stderr[-3000:]}")
        return 1
    print(f"reference run: {reference_s:.0f} s", flush=True)

    kinds = ["kill9-random", "kill9-logging", "sigterm-running", "kill9-random", "sigterm-random"]
    log, expected = [], reference_s
    for i in range(args.trials - args.setup_trials):
        trial = kill_trial(trials, data, kinds[i % len(kinds)], expected, rng)
        if not trial["hit"]:  # the run ended first: aim within the time a run now takes
            expected = max(5.0, trial["at_s"])
        log.append(trial)
        print(f"trial {len(log)}: {trial}", flush=True)
    for i in range(args.setup_trials):
        log.append(setup_trial(work / f"setup-{i}", data, rng))
        print(f"trial {len(log)}: {log[-1]}", flush=True)

    code, rerun_s, stderr = run_to_end(trials, data)
    audits = {"trials": view_audit(f"sqlite:///{(trials / 'mlflow.db').resolve()}", trials)}
    for i in range(args.setup_trials):
        folder = work / f"setup-{i}"
        audits[f"setup-{i}"] = view_audit(f"sqlite:///{(folder / 'mlflow.db').resolve()}", folder)
    comparison = compare(trials, reference)
    server = server_trial(work, data, reference)
    resume = resume_trial(work)

    summary = {"workdir": str(work), "reference_s": round(reference_s, 1), "rerun_code": code,
               "rerun_s": round(rerun_s, 1), "trials": log, "comparison": comparison, "audits": audits,
               "server": server, "resume": resume}
    rows = [
        ("kill trials (hit a live process)", f"{sum(t['hit'] for t in log)}/{len(log)}"),
        ("  of which kill -9 / SIGTERM / during MLflow setup",
         f"{sum(t['kind'].startswith('kill9') and t['kind'] != 'kill9-mlflow-setup' for t in log)} / "
         f"{sum(t['kind'].startswith('sigterm') for t in log)} / {sum(t['kind'] == 'kill9-mlflow-setup' for t in log)}"),
        ("SIGTERM exit codes (143: handled in the run; -15: at startup or exit, outside it)",
         sorted({t["code"] for t in log if t["kind"].startswith("sigterm") and t["hit"]})),
        ("tracebacks printed by interrupted runs", sum(t.get("traceback", False) for t in log)),
        ("rerun to completion: exit code", code),
        ("results lost", comparison["lost"]),
        ("results differing from the reference", comparison["differing"]),
        ("checkpoints differing from the reference", comparison["checkpoints_differing"]),
        ("temp files left", comparison["temp_files_left"]),
        ("MLflow runs still RUNNING after the rerun", audits["trials"].get("running_runs", "-")),
        ("result/pretrain runs not FINISHED after the rerun", audits["trials"].get("keyed_unfinished", "-")),
        ("interrupted invocations ended KILLED/FAILED", audits["trials"].get("invocations_killed_or_failed", "-")),
        ("JSON keys missing from / doubled in MLflow",
         f"{audits['trials'].get('keys_missing', '-')} / {audits['trials'].get('keys_doubled', '-')}"),
        ("unusable databases", sum(not a["usable"] for a in audits.values())),
        ("setup trials: killed inside setup / store reopened by the next start",
         f"{sum(t.get('killed_inside_setup', False) for t in log)} / "
         f"{sum(t.get('reopened', False) for t in log)} of {args.setup_trials}"),
        ("server killed mid-run: exit code / JSON results / warnings",
         f"{server['code']} / {server['json_results']} / {server['warnings']} (killed mid-run: {server['server_killed_mid_run']})"),
        ("  after restart + track sync: keys missing / doubled",
         f"{server['after_sync'].get('keys_missing', '-')} / {server['after_sync'].get('keys_doubled', '-')}"),
        ("partial-checkpoint resume: bit-identical weights",
         f"{resume['bit_identical']} (max diff {resume.get('max_weight_diff', '-')}, "
         f"resumed from step {resume.get('resumed_from_step', '-')})"),
    ]
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2, default=str))
    print(tabulate(rows, headers=["measure", "value"], tablefmt="github"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
