"""What a frozen encoder's embeddings hold of the generator's truth (synthetic suite).

The synthetic suite knows each record's heart rate, RR variability, PR, QRS and QTc intervals
and the patient's age. A ridge regression from a method's cached embeddings (the ones its probes
were fitted on) to each of these, the penalty chosen on the validation split and R^2 scored on
the test split, says which of them the representation keeps linearly readable. It explains a
leaderboard rather than ranks it: an encoder that drops heart rate cannot do rhythm, one that
drops the intervals cannot do age. R^2 is 1 - residual / total sum of squares about the training
mean, so a value at or below 0 means nothing readable.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.contracts import Recordings
from ecgbench.core.store import ResultStore, read_record

TRUTH = ("heart_rate", "rr_cv", "pr_ms", "qrs_ms", "qtc_ms", "age")
ALPHAS = np.logspace(-2, 4, 13)


def decode_r2(features: np.ndarray, target: np.ndarray, split: np.ndarray) -> float:
    """Test R^2 of a ridge regression on standardised features, fitted on the train rows of
    ``split`` for every penalty in ``ALPHAS`` at once (one SVD), the penalty chosen by validation R^2."""
    train, val, test = (split == "train"), (split == "val"), (split == "test")
    x = features.astype(np.float64)
    centre, scale = x[train].mean(0), x[train].std(0)
    x = (x - centre) / np.where(scale > 0, scale, 1.0)
    mean = target[train].mean()
    u, s, vt = np.linalg.svd(x[train], full_matrices=False)
    shrink = s[None, :] / (s[None, :] ** 2 + ALPHAS[:, None])  # (alphas, components)
    weights = (shrink * (u.T @ (target[train] - mean))[None, :]) @ vt  # (alphas, features)

    def r2(rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        residual = target[rows][:, None] - (mean + x[rows] @ w.T)
        return 1 - (residual ** 2).sum(0) / ((target[rows] - mean) ** 2).sum()

    best = int(np.argmax(r2(val, weights)))
    return float(r2(test, weights[best:best + 1])[0])


def cached_embeddings(store: ResultStore, run_id: str, adaptation: dict[str, Any]) -> np.ndarray | None:
    """The per-record embeddings the runner cached for ``run_id`` with exactly this adaptation
    note (a result records the note of the embeddings its probe saw), or None."""
    for note_path in sorted(store.embeddings_dir(run_id).glob("*.json")):
        if note_path.stem.endswith("-each"):  # per-channel embeddings (stages/embed.py)
            continue
        try:
            note = read_record(note_path, ("adaptation", "shape"))
            if note["adaptation"] == adaptation:
                array = np.load(note_path.with_suffix(".npy"), allow_pickle=False)
                return array if list(array.shape) == note["shape"] else None
        except (OSError, ValueError):
            continue
    return None


def what_embeddings_hold(recordings: Recordings, results_dir: str | Path,
                         truth: tuple[str, ...] = TRUTH) -> list[dict[str, Any]]:
    """Per (preset, method) stored in ``results_dir`` on ``recordings``' dataset version (a
    label-using method per task it was trained on): the mean test R^2 over seeds of each ``truth``
    column; a method whose embeddings are not cached (a fresh
    clone: rerunning its job recreates them) is listed with ``missing`` seeds."""
    store = ResultStore(results_dir)
    dataset = f"{recordings.name}@{recordings.version}"
    runs: dict[str, dict[str, Any]] = {}
    for result in store.results():
        if (result.get("adaptation") or {}).get("dataset") == dataset and result.get("run_id"):
            runs.setdefault(result["run_id"], result)
    split = recordings.meta["split"].to_numpy()
    groups: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {"seeds": [], "missing": [], "r2": []})
    for run_id, result in sorted(runs.items()):
        # a label-using encoder is trained per task: one row per task it learnt
        method = result["method"] + (f" (trained on {result['task']})" if result.get("uses_labels") else "")
        group = groups[(result.get("preset", "?"), method)]
        group["control"] = bool(result.get("control"))
        features = cached_embeddings(store, run_id, result["adaptation"])
        if features is None or len(features) != len(split):
            group["missing"].append(result.get("seed"))
            continue
        group["seeds"].append(result.get("seed"))
        group["r2"].append([decode_r2(features, recordings.meta[c].to_numpy(dtype=float), split) for c in truth])
    return [{"preset": preset, "method": method, "control": g.get("control", False), "seeds": sorted(g["seeds"]),
             "missing": sorted(g["missing"]), "n_test": int((split == "test").sum()),
             "r2": dict(zip(truth, np.mean(g["r2"], axis=0).tolist())) if g["r2"] else {}}
            for (preset, method), g in sorted(groups.items())]


def decoding_table(rows: list[dict[str, Any]], truth: tuple[str, ...] = TRUTH) -> str:
    """Markdown: one row per (preset, method) of :func:`what_embeddings_hold`, controls first."""
    from tabulate import tabulate

    ordered = sorted(rows, key=lambda r: (r["preset"], not r["control"], r["method"]))
    body = [[r["preset"], r["method"] + (" (control)" if r["control"] else ""),
             ",".join(map(str, r["seeds"])) or "–"]
            + ([f"{r['r2'][c]:.2f}" for c in truth] if r["r2"] else ["embeddings not cached"] + [""] * (len(truth) - 1))
            for r in ordered]
    return tabulate(body, headers=["preset", "method", "seeds", *(f"R² {c}" for c in truth)],
                    tablefmt="github", disable_numparse=True)
