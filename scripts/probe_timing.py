"""Probe-suite timing on 17,000 x 256 synthetic embeddings: our validation search vs a plain fit.

For each probe: wall and process CPU time (all threads) of ``ecgbench.evaluation.probes.fit_probe`` (the
full grid, selection on validation) next to one plain scikit-learn fit of the same estimator with
its default settings (one-vs-rest where the estimator is not multilabel-native). The machine's
1-minute load average is read before each timing and stored beside it, because on a shared
machine the wall time means little without it.

    python scripts/probe_timing.py --out results/bench/probes-17000x256.json

``--skip-plain`` / ``--skip-search`` time one side only (the plain default MLP alone takes minutes).

Before and after a change, interleaved (the search only; each run a fresh process, so neither
inherits the other's memory; rounds of REV's probes.py, then this tree's):

    python scripts/probe_timing.py --before 762b7ae --rounds 3 \
        --out results/bench/probes-17000x256-search-fast.json

writes the after runs to ``--out`` and the before runs beside it (``-before.json``), each with
every run, its load averages and the per-probe medians, and fails if any run's selection or
candidate validation scores differ from the first before run's.

The embeddings are a realistic stand-in for a multilabel ECG task (5 correlated labels,
prevalences 10-45 %, labels partly non-linear in a 16-d latent that the 256-d embedding mixes
with noise), generated from ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

MAIN_METRIC = "macro_auroc"


def synthetic_embeddings(n: int, dim: int, kind: str, seed: int = 0):
    """(n, dim) float32 embeddings and multilabel (n, 5) or multiclass (n,) labels."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 16))
    mixing = rng.standard_normal((16, dim)) / 4.0
    x = np.tanh(latent @ mixing) + 0.5 * rng.standard_normal((n, dim))
    readout = rng.standard_normal((16, 5))
    logits = latent @ readout + 0.8 * np.sin(2.0 * latent[:, :5]) + rng.standard_normal((n, 5))
    if kind == "multiclass":
        return x.astype(np.float32), logits.argmax(axis=1)
    prevalence = np.linspace(0.10, 0.45, 5)
    thresholds = np.array([np.quantile(logits[:, j], 1.0 - p) for j, p in enumerate(prevalence)])
    return x.astype(np.float32), (logits > thresholds).astype(int)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def timed(fn):
    """(result, wall s, process CPU s, load average before)."""
    load = load_average()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2), load


def plain_estimator(probe: str, kind: str):
    """The same estimator family with scikit-learn's defaults (no grid, no scaling)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    model = {"svc": SVC, "rf": RandomForestClassifier, "lr": LogisticRegression,
             "mlp": MLPClassifier, "knn": KNeighborsClassifier}[probe]()
    needs_ovr = kind == "multilabel" and probe in ("svc", "lr")
    return OneVsRestClassifier(model) if needs_ovr else model


def probes_module(path: Path | None):
    """ecgbench.evaluation.probes, or another version of it from a file (e.g. an older commit's, for a
    before/after comparison: git show REV:benchmark/evaluation/probes.py > old_probes.py, or
    REV:benchmark/probes.py for a commit before the package was grouped by layer)."""
    if path is None:
        from ecgbench.evaluation import probes

        return probes
    import importlib.util

    spec = importlib.util.spec_from_file_location("probes_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def time_probe(probe: str, kind: str, data, seed: int, probes, plain: bool = True,
               search: bool = True) -> dict:
    xt, yt, xv, yv = data
    skipped = (None, None, None, None)
    fit, wall, cpu, load = (timed(lambda: probes.fit_probe(probe, kind, xt, yt, xv, yv, MAIN_METRIC, seed, "full"))
                            if search else skipped)
    _, plain_wall, plain_cpu, plain_load = (timed(lambda: plain_estimator(probe, kind).fit(xt, yt))
                                            if plain else skipped)
    return {
        "probe": probe, "candidates": fit and len(fit.candidates), "chosen": fit and repr(fit.params),
        "val_" + MAIN_METRIC: fit and round(fit.val_score, 4),
        "candidate_values": fit and [value for _, value in fit.candidates],
        "search_wall_s": wall, "search_cpu_s": cpu, "search_load_avg_1m": load,
        "plain_fit_wall_s": plain_wall, "plain_fit_cpu_s": plain_cpu, "plain_load_avg_1m": plain_load,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=17_000)
    parser.add_argument("--n-val", type=int, default=2_100)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--kind", default="multilabel", choices=("multilabel", "multiclass"))
    parser.add_argument("--probes", default="svc,rf,lr,mlp,knn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probes-module", type=Path, default=None,
                        help="time this file's fit_probe instead of ecgbench.evaluation.probes (before/after)")
    parser.add_argument("--skip-plain", action="store_true", help="time the search only")
    parser.add_argument("--skip-search", action="store_true", help="time the plain fits only")
    parser.add_argument("--before", default=None, metavar="REV",
                        help="interleave the search of REV's benchmark/evaluation/probes.py with this tree's")
    parser.add_argument("--rounds", type=int, default=3, help="with --before: rounds of (before, after)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (temp file + rename)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return compare(args) if args.before else time_once(args)


def time_once(args: argparse.Namespace) -> int:
    import warnings

    from tabulate import tabulate

    warnings.filterwarnings("ignore")  # convergence warnings of the plain default fits
    x, y = synthetic_embeddings(args.n_train + args.n_val, args.dim, args.kind, args.seed)
    data = (x[:args.n_train], y[:args.n_train], x[args.n_train:], y[args.n_train:])
    rows = []
    for probe in args.probes.split(","):
        rows.append(time_probe(probe, args.kind, data, args.seed, probes_module(args.probes_module),
                               not args.skip_plain, not args.skip_search))
        print(json.dumps(rows[-1]), flush=True)
    total = {k: round(sum(r[k] for r in rows), 2) if all(r[k] is not None for r in rows) else None
             for k in ("search_wall_s", "search_cpu_s", "plain_fit_wall_s", "plain_fit_cpu_s")}
    print(tabulate([[r["probe"], r["candidates"], r["chosen"], r["search_wall_s"], r["search_cpu_s"],
                     r["search_load_avg_1m"], r["plain_fit_wall_s"], r["plain_fit_cpu_s"], r["plain_load_avg_1m"]]
                    for r in rows] + [["total", "", "", total["search_wall_s"], total["search_cpu_s"], "",
                                       total["plain_fit_wall_s"], total["plain_fit_cpu_s"], ""]],
                   headers=["probe", "cand.", "chosen", "search wall s", "search CPU s", "load 1m",
                            "plain fit wall s", "plain fit CPU s", "load 1m"], tablefmt="github"))
    if args.out:
        write_json(args.out, {
            **_header(args), "probes_module": str(args.probes_module or "ecgbench.evaluation.probes"),
            "note": "wall and process CPU seconds (all threads) on a shared machine; load_avg_1m is "
                    "os.getloadavg()[0] read just before each timing",
            "probes": rows, "total": total,
        })
    return 0


def compare(args: argparse.Namespace) -> int:
    """Rounds of (before, after), each run a fresh process of this script timing the search only."""
    if args.out is None:
        raise SystemExit("--before needs --out")
    passed = ["--n-train", str(args.n_train), "--n-val", str(args.n_val), "--dim", str(args.dim),
              "--kind", args.kind, "--probes", args.probes, "--seed", str(args.seed), "--skip-plain"]
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        before_module = Path(tmp) / "probes_before.py"
        before_module.write_text(_git("show", f"{args.before}:benchmark/evaluation/probes.py"))
        for round_ in range(args.rounds):
            for variant in ("before", "after"):
                out = Path(tmp) / f"{variant}-{round_}.json"
                module = ["--probes-module", str(before_module)] if variant == "before" else []
                load = load_average()
                subprocess.run([sys.executable, __file__, *passed, *module, "--out", str(out)], check=True)
                runs[variant].append({"round": round_, "load_avg_1m_at_start": load,
                                      **{k: v for k, v in json.loads(out.read_text()).items() if k in ("probes", "total")}})
    same = _same_selections(runs)
    revisions = {"before": args.before, "after": _git("rev-parse", "--short", "HEAD").strip()
                 + ("+uncommitted" if _git("status", "--porcelain", "--", "benchmark").strip() else "")}
    for variant, path in (("after", args.out), ("before", args.out.with_name(args.out.stem + "-before.json"))):
        write_json(path, {**_header(args), "variant": variant, "revision": revisions[variant],
                          "same_selections_as_before": same, "note": COMPARE_NOTE,
                          "median": _medians(runs[variant]), "runs": runs[variant]})
        print(variant, json.dumps(_medians(runs[variant])["total"]))
    print("same selections and candidate scores:", same)
    return 0 if same else 1


COMPARE_NOTE = ("rounds of (before, after), each a fresh process on a shared machine; wall and process "
                "CPU seconds (all threads) per probe search; search_load_avg_1m is os.getloadavg()[0] "
                "read just before each probe's search; median: per probe over the rounds")


def _same_selections(runs: dict[str, list[dict]]) -> bool:
    """Every run chose what the first before run chose, from the same validation scores."""
    def picks(run: dict) -> list:
        return [(row["probe"], row["chosen"], row["candidate_values"]) for row in run["probes"]]
    reference = picks(runs["before"][0])
    return all(picks(run) == reference for variant in runs.values() for run in variant)


def _medians(runs: list[dict]) -> dict:
    probes = [{"probe": rows[0]["probe"], "chosen": rows[0]["chosen"],
               **{key: round(statistics.median(row[key] for row in rows), 2)
                  for key in ("search_wall_s", "search_cpu_s", "search_load_avg_1m")}}
              for rows in zip(*(run["probes"] for run in runs))]
    total = {key: round(statistics.median(run["total"][key] for run in runs), 2)
             for key in ("search_wall_s", "search_cpu_s")}
    return {"probes": probes, "total": total}


def _header(args: argparse.Namespace) -> dict:
    return {"command": " ".join(["python", *sys.argv]), "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": platform.machine(), "cpus": os.cpu_count(), "kind": args.kind,
            "shape": [args.n_train, args.dim], "n_val": args.n_val, "seed": args.seed}


def _git(*command: str) -> str:
    return subprocess.run(["git", *command], check=True, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent).stdout


def write_json(path: Path, record: dict) -> None:
    """Temp file + rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
