"""One config, one row (ecgbench.core.rows): what a resolved config is, how rows are named, and
that every output groups two configs of one method at the same seeds as two rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgbench.core.rows import label_configs, method_of, resolved_config, row_of
from ecgbench.core.store import ResultStore, write_json


def record(method="simclr", seed=0, temperature=0.5, probe="lr", **extra):
    config = {"method": method, "method_config": {"temperature": temperature, "lr": 0.001}, "method_version": 1,
              "preset": "cpu", "pretrain_data": "synthetic@4-abc:train", "seed": seed}
    return {"method": method, "seed": seed, "probe": probe, "preset": "cpu", "protocol": "frozen-probe",
            "run_config": config, "probe_spec": {"protocol": "frozen-probe", "probe": probe, "grid": "full",
                                                 "bootstrap": 1000}, **extra}


def test_seed_specific_fields_and_the_probe_are_not_part_of_the_config():
    a = resolved_config(record(seed=0, probe="lr"))
    b = resolved_config({**record(seed=3, probe="svc"), "run_config": {**record(seed=3)["run_config"],
                                                                      "base_run_id": "x-3"}})
    assert a == b and "seed" not in a and a["probe.grid"] == "full" and "probe.probe" not in a


def test_one_config_keeps_the_method_name_two_configs_are_named_by_what_differs():
    plain = label_configs([record(seed=s) for s in (0, 1)])
    assert {row_of(r) for r in plain} == {"simclr"}
    mixed = label_configs([record(seed=s, temperature=t) for s in (0, 1, 2) for t in (0.2, 0.5)]
                          + [record("byol", seed=0)])
    assert sorted({row_of(r) for r in mixed}) == ["byol", "simclr (temperature=0.2)", "simclr (temperature=0.5)"]
    assert method_of("simclr (temperature=0.2)") == "simclr"
    grid = label_configs([record(), {**record(), "probe_spec": {"protocol": "frozen-probe", "probe": "lr",
                                                                "grid": "small"}}])
    assert sorted(row_of(r) for r in grid) == ["simclr (grid=full)", "simclr (grid=small)"]


def test_an_already_named_row_is_kept():
    named = label_configs([record(temperature=0.2), record(temperature=0.5)])
    assert label_configs(named[:1]) == named[:1]  # alone now, but still the row it was in the wider table


def put(root: Path, temperature: float, seed: int, test: float, val: float) -> None:
    """A synth-sex result of simclr at ``temperature`` with stored test predictions."""
    from ecgbench.evaluation.stats import write_predictions

    rng = np.random.default_rng(seed)
    y = np.arange(200) % 2
    scores = y * test + rng.normal(0, 0.3, y.size)
    run_id = f"simclr-t{temperature}-{seed}"
    path = ResultStore(root).result_path(run_id, "synth-sex@v4", "frozen-probe-lr")
    write_predictions(path.with_suffix(".npz"), np.arange(y.size), np.arange(y.size) // 2, y,
                      (scores > 0.5).astype(int), scores)
    base = record(seed=seed, temperature=temperature)
    write_json(path, {**base, "run_id": run_id, "key": f"{run_id}/synth-sex@v4/frozen-probe-lr", "task": "synth-sex",
                      "task_key": "synth-sex@v4", "task_kind": "binary", "main_metric": "macro_auroc",
                      "metrics": {"macro_auroc": test}, "val_score": val, "control": False, "uses_labels": False,
                      "n": {"train": 400, "val": 100, "test": 200}, "adaptation": {"dataset": "synthetic@4-abc"},
                      "predictions": path.with_suffix(".npz").name, "created": "2026-01-01T00:00:00+00:00"})


def test_two_configs_at_the_same_seeds_are_two_rows_everywhere(tmp_path, monkeypatch):
    from ecgbench.evaluation.stats import compare_methods
    from ecgbench.reporting import tables
    from ecgbench.reporting.leaderboard import build, render_block
    from ecgbench.reporting.report import render

    monkeypatch.setenv("ECGBENCH_CACHE", str(tmp_path / "cache"))
    for seed in (0, 1, 2):
        put(tmp_path, 0.2, seed, test=0.60, val=0.60)
        put(tmp_path, 0.5, seed, test=0.90, val=0.90)
    results = list(ResultStore(tmp_path).results())
    rows = ("simclr (temperature=0.2)", "simclr (temperature=0.5)")

    table = tables.render(results)
    for row in rows:
        line = next(line for line in table.splitlines() if line.startswith(f"| {row} "))
        assert "± " in line  # its own three seeds: a std over them, not over six
    assert all(line.split("|")[1].strip() != "simclr" for line in table.splitlines() if line.startswith("|"))

    (board,) = build(results)
    assert sorted(e.method for e in board.tasks[0].entries) == list(rows)
    assert all(e.seeds == [0, 1, 2] for e in board.tasks[0].entries)
    block = render_block(results, tmp_path, registered={"simclr": "simclr"})
    assert all(row in block for row in rows) and "Not run" not in block  # simclr ran, under two configs

    comparison = compare_methods(results, "synth-sex", tmp_path, n_resamples=200)
    assert comparison.reference == rows[1] and [r["method_b"] for r in comparison.rows] == [rows[0]]
    assert comparison.rows[0]["seeds_a"] == comparison.rows[0]["seeds_b"] == 3

    page = render(results, tmp_path, samples=[])
    assert all(row in page for row in rows)
