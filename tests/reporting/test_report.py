"""`ecgbench report`: the data behind each figure on hand-built results, captions that say what
ran, one self-contained file, and what a real headless browser (Debian's chromium) renders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ecgbench.cli import main
from ecgbench.core.store import ResultStore, write_json
from ecgbench.reporting.leaderboard import build
from ecgbench.reporting.report import (
    browser,
    cd_data,
    embedding_plots,
    label_efficiency_data,
    loss_curve_data,
    render,
    scores_data,
    what_ran,
    write_report,
)

METRICS = {"synth-superclass": ("multilabel", "macro_auroc"), "synth-age": ("regression", "mae")}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def put(root: Path, method: str, task: str, seed: int, test: float, *, probe: str = "lr", val: float = 0.5,
        fraction: float = 1.0, preset: str = "cpu") -> None:
    kind, metric = METRICS[task]
    run_id = f"{method}-{preset}{seed}"
    protocol = "frozen-probe" if fraction == 1 else f"frozen-probe-{fraction:g}-labels"
    record = {
        "run_id": run_id, "method": method, "control": method == "random-init", "uses_labels": False,
        "task": task, "task_key": f"{task}@v2", "task_kind": kind, "main_metric": metric, "probe": probe,
        "protocol": protocol, "label_fraction": fraction, "preset": preset, "seed": seed,
        "metrics": {metric: test}, "ci": {"metric": metric, "low": test - 0.04, "high": test + 0.04, "level": 0.95},
        "val_score": val, "n": {"train": 1400, "val": 300, "test": 300},
        "adaptation": {"dataset": "synthetic@2-abc"},
        # as the runner writes it (protocols.result_spec): the base protocol, a fraction only below 1
        "probe_spec": {"protocol": "frozen-probe", "probe": probe, **({"label_fraction": fraction} if fraction != 1 else {})},
        "created": "2026-01-01T00:00:00+00:00",
    }
    write_json(ResultStore(root).result_path(run_id, f"{task}@v2", f"{protocol}-{probe}"), record)


@pytest.fixture
def store(tmp_path) -> Path:
    """Three methods x two tasks x three seeds (two on superclass); label fractions for one
    method; loss curves; one embedding plot."""
    scores = {"good": (0.80, 6.0), "fair": (0.70, 8.0), "random-init": (0.60, 10.0)}
    for method, (auroc, mae) in scores.items():
        put(tmp_path, method, "synth-age", 2, mae + 0.2)
        for seed in (0, 1):
            put(tmp_path, method, "synth-superclass", seed, auroc + 0.01 * seed)
            put(tmp_path, method, "synth-age", seed, mae + 0.1 * seed)
            if method != "random-init":
                write_json(ResultStore(tmp_path).run_record(f"{method}-cpu{seed}"), {
                    "run_id": f"{method}-cpu{seed}", "method": method,
                    "run_config": {"method": method, "seed": seed, "preset": "cpu", "pretrain_data": "synthetic@2-abc:train"},
                    "train": {"loss_curve": [[10, 3.0], [20, 2.0], [30, 1.5]]}})
    for seed in (0, 1):
        for fraction, value in ((0.1, 0.62), (0.3, 0.72)):
            put(tmp_path, "good", "synth-superclass", seed, value, fraction=fraction)
    plot = tmp_path / "plots" / "good-cpu0" / "synth-superclass@v2-tsne.png"
    plot.parent.mkdir(parents=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(2, 2))
    figure.savefig(plot, format="png")
    plt.close(figure)
    return tmp_path


def records(root: Path) -> list[dict]:
    return list(ResultStore(root).results())


def test_scores_data_follows_the_leaderboard(store):
    group = build(records(store))[0]
    board = {b.task: b for b in group.tasks}["synth-superclass"]
    rows = scores_data(board)
    assert [r["method"] for r in rows] == ["good", "fair", "random-init (control)"]
    assert rows[0]["mean"] == pytest.approx(0.805)
    assert [s["seed"] for s in rows[0]["seeds"]] == [0, 1]
    assert rows[0]["seeds"][1]["low"] == pytest.approx(0.81 - 0.04)


def test_cd_data_blocks_are_task_seed_pairs_with_lower_is_better_negated(store):
    group = build(records(store))[0]
    scores, why = cd_data(group)
    assert why == ""
    assert set(scores) == {"good", "fair", "random-init (control)"}
    assert sorted(scores["good"]) == ["synth-age@v2 seed 0", "synth-age@v2 seed 1", "synth-age@v2 seed 2",
                                      "synth-superclass@v2 seed 0", "synth-superclass@v2 seed 1"]
    assert scores["good"]["synth-age@v2 seed 1"] == pytest.approx(-6.1)  # MAE negated: higher is better
    assert scores["fair"]["synth-superclass@v2 seed 1"] == pytest.approx(0.71)


def test_cd_data_says_why_there_is_no_diagram(store):
    group = build([r for r in records(store) if r["seed"] != 2])[0]
    assert cd_data(group)[1] == ("3 methods share 4 (task, seed) blocks; the Friedman/Nemenyi diagram "
                                 "needs three methods and five blocks")
    group.tasks = group.tasks[:1]
    assert cd_data(group) == ({}, "a critical-difference diagram needs at least two tasks; this group has 1")


def test_label_efficiency_data(store):
    curves = label_efficiency_data(records(store))
    assert list(curves) == [("cpu", "synth-superclass@v2", "good")]  # only it has several fractions
    curve = curves[("cpu", "synth-superclass@v2", "good")]
    assert curve["fraction"] == [0.1, 0.3, 1.0]
    assert curve["mean"] == pytest.approx([0.62, 0.72, 0.805])
    assert curve["seeds"] == [[0, 1]] * 3


def test_loss_curves_and_embedding_plots(store):
    curves = loss_curve_data(store)
    assert sorted(curves) == ["fair-cpu0", "fair-cpu1", "good-cpu0", "good-cpu1"]
    assert curves["good-cpu1"]["steps"] == [10, 20, 30] and curves["good-cpu1"]["loss"] == [3.0, 2.0, 1.5]
    assert curves["good-cpu1"]["seed"] == 1 and curves["good-cpu1"]["preset"] == "cpu"
    assert [(run, task) for run, task, *_ in embedding_plots(store)] == [("good-cpu0", "synth-superclass@v2")]


def test_one_embedding_plot_per_method_and_task_the_lowest_seeds(store, tmp_path):
    import shutil

    plot = store / "plots" / "good-cpu0" / "synth-superclass@v2-tsne.png"
    for run_id in ("good-cpu1", "fair-cpu1", "unknown-run"):
        (store / "plots" / run_id).mkdir(exist_ok=True)
        shutil.copy(plot, store / "plots" / run_id / plot.name)
    shutil.copy(plot, store / "plots" / "good-cpu1" / "synth-sex@v2-tsne.png")
    assert [(run, task) for run, task, *_ in embedding_plots(store)] == [
        ("fair-cpu1", "synth-superclass@v2"), ("good-cpu0", "synth-superclass@v2"), ("good-cpu1", "synth-sex@v2"),
        ("unknown-run", "synth-superclass@v2")]
    lines = {run: line for run, _, _, line in embedding_plots(store)}
    assert lines["good-cpu1"].startswith("Method: good. Seed: 1. Preset: cpu")
    assert lines["unknown-run"] == "Its run.json is missing."


def test_page_is_self_contained_and_captions_say_what_ran(store):
    page = render(records(store), store)
    images = re.findall(r'<img alt="[^"]*" src="([^"]+)"', page)
    # scores on 2 tasks, CD diagram, label efficiency, loss curves, 1 embedding plot
    assert len(images) == 6
    assert all(src.startswith("data:image/png;base64,") for src in images)
    import base64

    assert all(base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC for src in images)
    assert not re.search(r'(src|href)="(https?:|//)', page)  # nothing fetched from anywhere
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page, re.S)
    assert len(captions) == len(images)
    assert all(re.search(r"Seeds: 0, 1\b", c) or "Method: good. Seed: 0. Preset: cpu." in c for c in captions)
    assert sum("Preset: cpu" in c or "preset cpu" in c for c in captions) >= 5
    assert "Critical-difference diagram over the 2 tasks" in page
    assert "synth-superclass@v2" in page and "random-init (control)" in page


def test_what_ran_lists_each_field_once():
    line = what_ran([{"method": "a", "seed": 1, "preset": "cpu", "protocol": "frozen-probe", "task_key": "t@v2"},
                     {"method": "b", "seed": 0, "preset": "cpu", "protocol": "frozen-probe", "task_key": "t@v2"}])
    assert line == "Methods: a, b. Seeds: 0, 1. Preset: cpu. Protocol: frozen-probe. Tasks: t@v2."


def test_cli_writes_the_file(store, tmp_path, capsys):
    out = tmp_path / "out" / "report.html"
    assert main(["report", "--results-dir", str(store), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert str(out) in capsys.readouterr().out


def test_real_sample_section_comes_after_the_synthetic_one_with_its_n(store):
    """Results under <results-dir>/real-sample get their own titled section, after the main one,
    with n records / patients per split, and never enter the synthetic groups' tables."""
    sample = store / "real-sample"
    for method, value in (("good", 0.70), ("random-init", 0.65)):
        put(sample, method, "synth-superclass", 0, value)
        record = next(r for r in records(sample) if r["method"] == method)
        write_json(ResultStore(sample).result_path(record["run_id"], "ptbxl-superclass@v1", "frozen-probe-lr"),
                   {**record, "task": "ptbxl-superclass", "task_key": "ptbxl-superclass@v1",
                    "adaptation": {"dataset": "ptbxl@1.0.3-p1-100-abc"},
                    "n": {"train": 200, "val": 50, "test": 42}, "n_patients": {"train": 191, "val": 44, "test": 38}})
        next(ResultStore(sample).root.glob(f"runs/{record['run_id']}/synth-superclass@v2/*.json")).unlink()
    page = render(records(store), store)
    contents, rest = page.split("</nav>", 1)  # the table of contents names every section
    main_part, small = rest.split("<h2 id=small-sample>Small-sample results on real data</h2>")
    assert "ptbxl" not in main_part and "ptbxl-superclass@v1" in contents
    assert "Small-sample results on real data · preset cpu · frozen-probe" in small
    assert "n (records / patients): train 200 / 191 · val 50 / 44 · test 42 / 38" in small
    assert "synth-superclass" not in small.split("Pretraining loss</h2>")[0].split("Label efficiency</h2>")[0]
    assert "n (records / patients): train 1,400 / ? · val 300 / ? · test 300 / ?" in main_part


def test_empty_store_gives_a_page_not_a_crash(tmp_path):
    page = render([], tmp_path)
    assert "No scored results yet" in page


# ----- a real browser ------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_a_headless_browser_renders_every_figure(store, tmp_path):
    page = write_report(store, tmp_path / "report.html")
    dom = browser(page, "--dump-dom")
    body = re.search(r"<body([^>]*)>", dom).group(1)
    # the page's own script counts the images the browser decoded (naturalWidth > 0)
    assert 'data-figures="6"' in body and 'data-figures-rendered="6"' in body, body
    assert "<h1>ecgbench report</h1>" in dom and "Critical-difference diagram" in dom
    assert 'data-broken-links="0"' in body and "<nav>" in dom  # every contents link leads somewhere
    sorted_body = re.search(r"<body([^>]*)>", browser(page, "--dump-dom", fragment="check-sorting")).group(1)
    up = re.search(r'data-sorted-up="([^"]*)"', sorted_body).group(1)
    down = re.search(r'data-sorted-down="([^"]*)"', sorted_body).group(1)
    assert up != down and {up, down} <= {"good", "fair", "random-init (control)"}  # a click sorts, a second reverses
    # the command behind results/report/screenshot.png (ecgbench report --screenshot)
    assert main(["report", "--results-dir", str(store), "--out", str(page), "--screenshot", str(tmp_path / "shot.png")]) == 0
    from PIL import Image

    with Image.open(tmp_path / "shot.png") as image:
        assert image.size == (1400, 2000)
        pixels = np.asarray(image.convert("L"))
    assert (pixels < 128).mean() > 0.005  # text and figures drawn, not a blank page


def test_protocols_side_by_side_and_label_curves_never_mix_protocols(store):
    from ecgbench.reporting.report import label_efficiency_data, protocol_comparison

    results = records(store)
    linear = []
    for r in results:
        if r["method"] == "good" and r["task"] == "synth-superclass" and r["probe"] == "lr":
            protocol = r["protocol"].replace("frozen-probe", "linear")
            linear.append({**r, "protocol": protocol, "probe": "linear",
                           "probe_spec": {**r["probe_spec"], "protocol": "linear", "probe": "linear"},
                           "metrics": {k: v - 0.1 if isinstance(v, float) else v for k, v in r["metrics"].items()}})
    table = protocol_comparison(results + linear)
    (task,) = [t for t in table if t[1] == "synth-superclass@v2"]
    assert set(table[task]["good"]) == {"frozen-probe", "linear"}
    assert table[task]["good"]["linear"] != table[task]["good"]["frozen-probe"]
    curves = label_efficiency_data(results + linear)
    assert ("cpu", "synth-superclass@v2", "good") in curves and ("cpu", "synth-superclass@v2", "good (linear)") in curves
