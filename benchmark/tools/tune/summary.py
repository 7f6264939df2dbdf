"""The summary of a finished ``ecgbench tune`` search, from its trial records: the closing table
(best vs default) and ``--set`` lines (:func:`summarise`), ``search.json``, ``best.yaml`` for
``ecgbench run --config`` (:func:`write_best`) and ``search.png`` (:func:`plot_search`).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.config import RunFailed
from ecgbench.core.store import read_json, write_json
from ecgbench.tools.tune.monitor import _short
from ecgbench.tools.tune.request import Search


def load_records(folder: Path) -> list[dict[str, Any]]:
    records = [read_json(path) for path in sorted((folder / "trials").glob("*.json"))]
    return sorted(records, key=lambda r: r["started"])


def summarise(search: Search, console) -> dict[str, Any]:
    """The closing table (best vs default), best.yaml, --set lines, search.json and search.png."""
    from tabulate import tabulate

    records = load_records(search.folder)
    higher = search.mode == "max"
    complete = [r for r in records if r["status"] == "completed" and _finite(r["reports"][-1]["score"])]
    if not complete:
        raise RunFailed(f"{search.folder}: no trial completed; see the trial records in {search.folder / 'trials'}")
    best = (max if higher else min)(complete, key=lambda r: r["reports"][-1]["score"])
    default = next((r for r in records if r["default"]), None)
    counts = {s: sum(r["status"] == s for r in records) for s in ("completed", "pruned", "error", "running")}
    best_yaml = write_best(search, best)
    rows = []
    for label, record in (("default", default), ("best", best)):
        if record is None:
            rows.append([label, "-", "-", "not run", *("-" for _ in search.space)])
            continue
        last = record["reports"][-1] if record["reports"] else {}
        rows.append([label, record["trial_id"], last.get("step", "-"),
                     "-" if "score" not in last else f"{last['score']:.4f}",
                     *(_short(record["config"][f]) for f in search.space)])
    headers = ["config", "trial", "step", f"val {search.task.main_metric}", *search.space]
    table = tabulate(rows, headers=headers, tablefmt="github")
    summary = {
        "method": search.method_class.name, "task": search.task.key, "protocol": search.request.protocol,
        "preset": search.request.preset, "seed": search.request.seed,
        "metric": search.task.main_metric, "mode": search.mode, "split": "val",
        "probe": None if search.request.protocol else search.request.probe,
        "space": {k: list(v[1]) if v[0] == "choice" else list(v) for k, v in search.space.items()},
        "space_notes": search.notes, "milestones": list(search.milestones), "counts": counts,
        "best": best, "default": default, "best_config": str(best_yaml),
        "set_lines": set_lines(search.prefix, best["config"]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(search.folder / "search.json", summary)
    plot = plot_search(records, search, search.folder / "search.png")
    print(table)
    print("\nbest configuration as --set lines:")
    for line in summary["set_lines"]:
        print(f"  --set {line}")
    console.log(f"{len(records)} trials: {counts['completed']} completed, {counts['pruned']} pruned by ASHA, "
                f"{counts['error']} failed; best config {best_yaml}; plot {plot}")
    return summary


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def set_lines(prefix: str, config: dict[str, Any]) -> list[str]:
    return [f"{prefix}.{name}={_plain_value(value)}" for name, value in sorted(config.items())]


def _plain_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return repr(value) if isinstance(value, float) else str(value)


def write_best(search: Search, best: dict[str, Any]) -> Path:
    """best.yaml: ``--set`` style keys that ``ecgbench run --config`` reads."""
    import yaml

    from ecgbench.core.store import atomic_write

    method, request = search.method_class.name, search.request
    score = best["reports"][-1]["score"]
    protocols = f" --protocols {request.protocol}" if request.protocol else ""
    header = (f"# ecgbench tune: best of {search.folder.name} (trial {best['trial_id']}, "
              f"validation {search.task.main_metric} {score:.4f})\n"
              f"# use: ecgbench run --methods {method}{protocols} --preset {request.preset} --config <this file>\n")
    body = yaml.safe_dump({f"{search.prefix}.{k}": _plain_value(v) for k, v in sorted(best["config"].items())},
                          sort_keys=True)
    path = search.folder / "best.yaml"
    atomic_write(path, lambda tmp: tmp.write_text(header + body, encoding="utf-8"))
    return path


def plot_search(records: list[dict[str, Any]], search: Search, path: Path) -> Path:
    """Validation score of each trial at its last report (pruned ones marked), and the best
    completed score so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from ecgbench.core.store import atomic_write

    better = max if search.mode == "max" else min
    figure, axis = plt.subplots(figsize=(7, 4))
    best, best_so_far = None, []
    styles = {"completed": ("o", "tab:blue"), "pruned": ("x", "tab:gray"), "error": ("s", "tab:red"),
              "running": ("^", "tab:orange")}  # pruned / running: the score at the last report
    for index, record in enumerate(records):
        last = record["reports"][-1] if record["reports"] else None
        if last is not None and _finite(last["score"]):
            marker, colour = styles[record["status"]]
            axis.scatter(index, last["score"], marker=marker, color=colour,
                         label=(record["status"] if record["status"] not in axis.get_legend_handles_labels()[1]
                                else None))
            if record["default"]:
                axis.annotate("default", (index, last["score"]), textcoords="offset points", xytext=(4, 4))
            if record["status"] == "completed":
                best = last["score"] if best is None else better(best, last["score"])
        best_so_far.append(np.nan if best is None else best)
    axis.step(range(len(records)), best_so_far, where="post", color="tab:green", label="best completed so far")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("trial (in start order)")
    axis.set_ylabel(f"validation {search.task.main_metric}")
    searched = (f"{search.request.protocol} of {search.method_class.name}" if search.request.protocol
                else search.method_class.name)
    axis.set_title(f"{searched} on {search.task.name} ({search.request.preset}): "
                   f"{len(records)} trials")
    axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    plt.close(figure)
    return path
