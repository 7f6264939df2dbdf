"""The generated leaderboard block: listing order and standing on a hand-built example, probe chosen
on validation, presets never mixed, idempotent regeneration, `--check` on a stale block and on
stored tests, registered methods without results listed as not run, n records / patients per
task, and the real-sample section kept apart from the synthetic one with its tests read from
its own store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgbench.cli import main
from ecgbench.core.store import ResultStore, write_json
from ecgbench.reporting.leaderboard import (
    END,
    START,
    LeaderboardError,
    TaskBoard,
    build,
    group_key,
    rank,
    registered_methods,
    render_block,
    render_task,
    replace_block,
    update,
)

TASKS = {"synth-superclass": ("multilabel", "macro_auroc"), "synth-age": ("regression", "mae"),
         "ptbxl-sex": ("binary", "macro_auroc")}


def put(root: Path, method: str, task: str, probe: str, seed: int, test: float, val: float, *,
        preset: str = "cpu", control: bool = False, status: str | None = None, version: int = 1) -> None:
    """One result record in the runner's format, through the real store (``version``: the
    synthetic suite's, which is the task's)."""
    kind, metric = TASKS[task]
    run_id = f"{method}-{preset}{seed}" + (f"-v{version}" if version != 1 else "")
    record = {
        "run_id": run_id, "method": method, "control": control, "uses_labels": False, "task": task,
        "task_key": f"{task}@v{version}", "task_kind": kind, "main_metric": metric, "probe": probe,
        "protocol": "frozen-probe", "preset": preset, "seed": seed, "metrics": {metric: test},
        "ci": {"metric": metric, "low": test - 0.05, "high": test + 0.05, "level": 0.95},
        "val_score": val, "n": {"train": 1400, "val": 300, "test": 300},
        "adaptation": {"dataset": f"synthetic@{version}-abc"},
        "probe_spec": {"protocol": "frozen-probe", "probe": probe},
        "created": "2026-01-01T00:00:00+00:00",
    }
    if status:
        record.update(status=status, reason="needs 12 leads", metrics={})
    write_json(ResultStore(root).result_path(run_id, f"{task}@v{version}", f"frozen-probe-{probe}"), record)


def stored(root: Path) -> list[dict]:
    return list(ResultStore(root).results())


def summary_rows(block: str, preset: str) -> dict[str, list[str]]:
    """First cell -> other cells of the mean-rank table of one preset (of the first table in
    ``block`` when ``preset`` is empty)."""
    section = block.split(f"### Preset `{preset}`")[1].split("####")[0] if preset else block
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| method"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture
def example(tmp_path) -> Path:
    """Hand-built: superclass (higher is better) m1 .80, m2 .70, m3 .70 (a tie);
    age MAE (lower is better) m1 10, m2 8, m3 not run."""
    for seed, noise in ((0, -0.01), (1, 0.01)):
        put(tmp_path, "m1", "synth-superclass", "lr", seed, 0.80 + noise, val=0.9)
        put(tmp_path, "m1", "synth-superclass", "svc", seed, 0.99, val=0.1)  # best on test, worst on val
        put(tmp_path, "m2", "synth-superclass", "lr", seed, 0.70, val=0.8)
        put(tmp_path, "m3", "synth-superclass", "knn", seed, 0.70, val=0.8, control=True)
        put(tmp_path, "m1", "synth-age", "lr", seed, 10.0, val=9.0)
        put(tmp_path, "m1", "synth-age", "rf", seed, 5.0, val=12.0)  # val MAE worse: not chosen
        put(tmp_path, "m2", "synth-age", "rf", seed, 8.0, val=7.0)
    return tmp_path


def test_rank_ties_and_direction():
    assert rank([0.8, 0.7, 0.7], higher_is_better=True) == [1.0, 2.5, 2.5]
    assert rank([10.0, 8.0], higher_is_better=False) == [2.0, 1.0]


def test_order_and_standing_on_a_hand_built_example(example):
    (board,) = build(stored(example))
    superclass, age = board.tasks[1], board.tasks[0]  # tasks sorted by name: synth-age first
    assert [(e.method, e.rank, e.probe) for e in superclass.entries] == [
        ("m1", 1.0, "lr"), ("m2", 2.5, "lr"), ("m3", 2.5, "knn")]
    assert [(e.method, e.rank, e.probe) for e in age.entries] == [("m2", 1.0, "rf"), ("m1", 2.0, "lr")]
    assert age.missing == {"m3 (control)": "not run"}
    assert board.standing() == [  # untested: no predictions stored, so nobody is in a top group
        ("m1", {"synth-superclass": "untested", "synth-age": "untested"}, 0, 2),
        ("m2", {"synth-superclass": "untested", "synth-age": "untested"}, 0, 2),
        ("m3 (control)", {"synth-superclass": "untested"}, 0, 1),
    ]
    block = render_block(stored(example), example, with_significance=False)
    rows = summary_rows(block, "cpu")
    assert rows["m1"] == ["untested", "untested", "0/2"]
    assert rows["m3 (control)"] == ["not run", "untested", "0/1"]
    superclass_rows = summary_rows(block.split("#### synth-superclass@v1")[1], "")
    assert superclass_rows["m1"] == ["lr", "0.900", "0.800 ± 0.014 [0.750, 0.850]", "0, 1"]
    assert "0.99" not in block  # the test-best probe never shows up: selection is on validation
    assert "| mean rank" not in block and "| rank" not in block  # nothing tested, nothing ranked


def test_presets_are_ranked_separately(example):
    put(example, "m2", "synth-superclass", "lr", 0, 0.95, val=0.9, preset="smoke")
    put(example, "m1", "synth-superclass", "lr", 0, 0.10, val=0.9, preset="smoke")
    boards = build(stored(example))
    assert [b.preset for b in boards] == ["cpu", "smoke"]
    smoke = boards[1].tasks[0]
    assert [(e.method, e.rank) for e in smoke.entries] == [("m2", 1.0), ("m1", 2.0)]
    assert {e.method: e.rank for e in boards[0].tasks[1].entries}["m1"] == 1.0  # cpu ranks unchanged
    block = render_block(stored(example), example, with_significance=False)
    assert "0.950" not in block.split("### Preset `smoke`")[0]  # no smoke number in the cpu section


def test_not_applicable_is_shown_not_ranked(example):
    put(example, "m4", "synth-age", "lr", 0, 0.0, val=0.0, status="not_applicable")
    put(example, "m4", "synth-superclass", "lr", 0, 0.6, val=0.5)
    (board,) = build(stored(example))
    assert board.tasks[0].missing["m4"] == "n/a: needs 12 leads"


def test_sample_size_results_are_marked(tmp_path):
    put(tmp_path, "m1", "synth-age", "lr", 0, 10.0, val=9.0)
    record = stored(tmp_path)[0]
    record.update(adaptation={"dataset": "cinc2017@1-abc"}, n={"train": 140, "val": 30, "test": 30})
    write_json(ResultStore(tmp_path).result_path("m1-cpu0", "synth-age@v1", "frozen-probe-lr"), record)
    block = render_block(stored(tmp_path), tmp_path, with_significance=False)
    assert "10.00 [9.95, 10.05] †" in block
    assert "† cinc2017: n = 200 records of 8,528 in the full release" in block


def test_columns_from_a_separation_function(example):
    from ecgbench.evaluation.separation import Separation

    def significance(task: TaskBoard, preset: str, protocol: str) -> tuple[Separation, str]:
        assert protocol == "frozen-probe"
        found = Separation(task.task_key, preset, task.metric, True, reference="m2", top_group=["m2", "m1"],
                           rank_intervals={"m1": [1, 2], "m2": [1, 2], "m3": [3, 3]},
                           standard_error=0.01, detectable=0.028, detectable_holm=0.035)
        found.tests = {"m1": {"difference": 0.1, "ci_low": -0.01, "ci_high": 0.2, "p_value": 0.2, "p_holm": 0.4,
                              "significant": False},
                       "m3": {"difference": -0.1, "ci_low": -0.2, "ci_high": -0.05, "p_value": 0.001,
                              "p_holm": 0.002, "significant": True}}
        return found, "note"

    (board,) = build(stored(example), significance)
    text = render_task(board.tasks[1])
    rows = summary_rows(text, "")
    assert rows["m1"][-3:] == ["1–2", "+0.100 [−0.010, +0.200], p = 0.4", "yes"]
    assert rows["m2"][-3:] == ["1–2", "reference", "yes"]
    assert rows["m3 (control)"][-3:] == ["3", "−0.100 [−0.200, −0.050], p = 0.002 *", "no"]
    assert "Reference: m2 (best mean validation score)" in text and "2 of 3 methods" in text
    assert "Minimum detectable difference at 80% power: 0.028 macro_auroc at alpha = 0.05, 0.035" in text
    assert "\nnote\n" in text
    standing = summary_rows(render_block(stored(example), example, with_significance=False), "cpu")
    assert standing["m1"][-1] == "0/2"  # the standalone render is untested
    assert [row[0] for row in board.standing()][:2] == ["m1", "m2"]


def test_block_regenerates_idempotently(example, tmp_path):
    doc = tmp_path / "BENCHMARK.md"
    doc.write_text("# Title\n\n## Protocol\n\ntext\n", encoding="utf-8")
    block = render_block(stored(example), example, with_significance=False)
    assert update(doc, block) is True
    first = doc.read_text(encoding="utf-8")
    assert first.startswith("# Title\n\n## Protocol\n\ntext\n") and first.count(START) == 1
    assert update(doc, render_block(stored(example), example, with_significance=False)) is False
    assert doc.read_text(encoding="utf-8") == first
    doc.write_text(first + "\n## After\n\nkept\n", encoding="utf-8")
    assert update(doc, block.replace("m1", "m9")) is True
    assert doc.read_text(encoding="utf-8").endswith("## After\n\nkept\n")


def test_broken_markers_are_one_clear_error():
    with pytest.raises(LeaderboardError, match="markers are broken"):
        replace_block(f"{END}\n{START}\n", "x", "BENCHMARK.md")


def test_cli_check_detects_a_stale_block(example, tmp_path, capsys):
    doc = tmp_path / "B.md"
    doc.write_text("# B\n", encoding="utf-8")
    args = ["leaderboard", "--results-dir", str(example), "--file", str(doc)]
    assert main(args + ["--check"]) == 1  # no block yet
    assert main(args) == 0
    assert main(args + ["--check"]) == 0
    put(example, "m2", "synth-age", "rf", 2, 1.0, val=1.0)  # a new result: the block is stale
    assert main(args + ["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(args) == 0 and main(args + ["--check"]) == 0


def test_significance_from_stored_predictions(tmp_path):
    """With test predictions stored (ecgbench.stats' format), the block shows the paired
    bootstrap against the best method; a method without predictions is listed as not tested."""
    import numpy as np

    from ecgbench.evaluation import stats

    rng = np.random.default_rng(0)
    y = rng.normal(60, 10, 300)
    for method, noise in (("good", 1.0), ("bad", 8.0)):
        y_pred = y + rng.normal(0, noise, y.size)
        put(tmp_path, method, "synth-age", "lr", 0, float(np.mean(np.abs(y_pred - y))), val=noise)
        path = ResultStore(tmp_path).result_path(f"{method}-cpu0", "synth-age@v1", "frozen-probe-lr")
        record = ResultStore(tmp_path).results()
        stats.write_predictions(path.with_suffix(".npz"), np.arange(y.size), np.arange(y.size), y, y_pred, None)
        record = {**[r for r in record if r["method"] == method][0], "predictions": path.with_suffix(".npz").name}
        write_json(path, record)
    put(tmp_path, "old", "synth-age", "lr", 0, 20.0, val=20.0)
    block = render_block(stored(tmp_path), tmp_path)
    rows = summary_rows(block.split("#### synth-age@v1")[1], "")
    assert list(rows)[:3] == ["good", "bad", "old"]
    assert rows["good"][-2:] == ["reference", "yes"]
    assert rows["bad"][-2].endswith(" *") and rows["bad"][-1] == "no"
    assert rows["old"][-2:] == ["not tested", "–"]
    assert "Not tested (no stored test predictions" in block


def test_help_and_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["leaderboard", "--help"])
    assert exit_info.value.code == 0 and "--check" in capsys.readouterr().out
    assert main(["leaderboard", "--results-dir", str(tmp_path), "--file", str(tmp_path / "nope.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ecgbench: error: ") and "nope.md: not found" in err and err.count("\n") == 1


def test_a_seed_with_an_undefined_metric_is_left_out_not_a_crash(tmp_path):
    put(tmp_path, "m1", "synth-age", "lr", 0, 10.0, val=9.0)
    put(tmp_path, "m1", "synth-age", "lr", 1, 12.0, val=9.0)
    record = [r for r in stored(tmp_path) if r["seed"] == 1][0]
    write_json(ResultStore(tmp_path).result_path("m1-cpu1", "synth-age@v1", "frozen-probe-lr"),
               {**record, "metrics": {"mae": None}})  # how a NaN metric is stored
    block = render_block(stored(tmp_path), tmp_path, with_significance=False)
    rows = summary_rows(block.split("#### synth-age@v1")[1], "")
    assert rows["m1"] == ["lr", "9.00", "10.00 [9.95, 10.05]", "0"]  # seed 1 has no MAE: left out


def test_suite_versions_are_ranked_separately(example):
    """Version 2 of the synthetic suite beside version 1 in one preset: two boards, each ranking
    only its own version's results (m2 wins on v2 and m1 on v1), the newest version first."""
    for seed in (0, 1):
        put(example, "m1", "synth-superclass", "lr", seed, 0.60, val=0.9, version=2)
        put(example, "m2", "synth-superclass", "lr", seed, 0.75, val=0.9, version=2)
    boards = [b for b in build(stored(example)) if b.preset == "cpu"]
    assert [(b.suite, b.protocol) for b in boards] == [("synthetic v2", "frozen-probe"),
                                                       ("synthetic v1", "frozen-probe")]
    newer, older = ({t.task: t for t in b.tasks}["synth-superclass"] for b in boards)
    assert newer.task_key == "synth-superclass@v2" and [e.method for e in newer.entries] == ["m2", "m1"]
    assert older.task_key == "synth-superclass@v1" and older.entries[0].method == "m1"
    block = render_block(stored(example), example, with_significance=False)
    assert "### Preset `cpu` · synthetic v2 · frozen-probe" in block
    assert "### Preset `cpu` · synthetic v1 · frozen-probe" in block


def test_group_key_separates_protocols_and_real_data():
    record = {"preset": "cpu", "protocol": "linear", "adaptation": {"dataset": "ptbxl@1.0.3-500hz"}}
    assert group_key(record) == ("cpu", "linear", "real data")
    assert group_key({"preset": "smoke", "adaptation": {"dataset": "synthetic@2-abc"}}) == \
        ("smoke", "frozen-probe", "synthetic v2")


def test_other_protocols_get_their_own_ranking(example):
    """A second protocol's results (e.g. a linear head) are ranked apart from the frozen probes."""
    store = ResultStore(example)
    for record in [r for r in stored(example) if r["method"] in ("m1", "m2")]:
        other = {**record, "protocol": "linear", "metrics": dict(record["metrics"]),
                 "probe_spec": {**record["probe_spec"], "protocol": "linear"}}
        if other["method"] == "m2":  # the order flips under this protocol
            other["metrics"] = {k: (0.95 if k == "macro_auroc" else 1.0) for k in record["metrics"]}
        write_json(store.result_path(record["run_id"], record["task_key"], f"linear-{record['probe']}"), other)
    boards = {b.protocol: b for b in build(stored(example)) if b.preset == "cpu"}
    assert set(boards) == {"frozen-probe", "linear"}
    linear = {t.task: t for t in boards["linear"].tasks}["synth-superclass"]
    assert [e.method for e in linear.entries] == ["m2", "m1"]
    assert all(r["protocol"] == "linear" for e in linear.entries for r in e.records)  # the stored records
    assert all(r["protocol"] == "frozen-probe" for e in boards["frozen-probe"].tasks[0].entries for r in e.records)
    assert {t.task: t for t in boards["frozen-probe"].tasks}["synth-superclass"].entries[0].method == "m1"


# ----- completeness, n, and the real-sample section -------------------------------------------
def with_predictions(root: Path, method: str, task: str, seed: int, y, y_pred, patients, scores=None,
                     **fields) -> None:
    """Attach stored test predictions (ecgbench.stats' format) and extra fields to a result."""
    from ecgbench.evaluation import stats

    store = ResultStore(root)
    record = next(r for r in store.results() if (r["method"], r["task"], r["seed"]) == (method, task, seed))
    path = store.result_path(record["run_id"], record["task_key"], f"frozen-probe-{record['probe']}")
    stats.write_predictions(path.with_suffix(".npz"), range(len(y)), patients, y, y_pred, scores)
    write_json(path, {**record, "predictions": path.with_suffix(".npz").name, **fields})


def section(block: str, start: str, end: str | None = None) -> str:
    part = block.split(start, 1)[1]
    return part.split(end, 1)[0] if end else part


def test_registered_methods_without_results_are_listed_as_not_run(example):
    put(example, "m4", "synth-age", "lr", 0, 0.0, val=0.0, status="not_applicable")
    put(example, "m4", "synth-superclass", "lr", 0, 0.0, val=0.0, status="not_applicable")
    registered = {"m1": "m1", "m2": "m2", "m3": "m3 (control)", "m4": "m4", "m9": "m9 (supervised)"}
    (board,) = build(stored(example), registered=registered)
    assert board.not_run == ["m9 (supervised)"]
    assert board.unranked() == [("m4", {"synth-age": "n/a: needs 12 leads", "synth-superclass": "n/a: needs 12 leads"}),
                                ("m9 (supervised)", {"synth-age": "not run", "synth-superclass": "not run"})]
    block = render_block(stored(example), example, with_significance=False, registered=registered)
    rows = summary_rows(block, "cpu")
    assert rows["m1"] == ["untested", "untested", "0/2"]
    assert rows["m4"] == ["n/a", "n/a", "0/0"]
    assert rows["m9 (supervised)"] == ["not run", "not run", "0/0"]
    assert "Not run: 1 registered methods have no result in this group yet" in block


def test_registered_methods_come_from_the_registry_without_aliases():
    labels = registered_methods()
    assert labels["random-init"] == "random-init (control)"
    assert labels["supervised-resnet"] == "supervised-resnet (supervised)" and labels["simclr"] == "simclr"
    assert "clocs" not in labels and "clocs-cmsc" in labels  # clocs is an alias of clocs-cmsc


def test_each_task_shows_its_n_records_and_patients(tmp_path):
    y = np.linspace(20, 80, 30)
    patients = np.repeat(np.arange(10), 3)  # 30 test records of 10 patients
    put(tmp_path, "m1", "synth-age", "lr", 0, 10.0, val=9.0)
    with_predictions(tmp_path, "m1", "synth-age", 0, y, y + 1, patients)
    put(tmp_path, "m1", "synth-superclass", "lr", 0, 0.8, val=0.9)  # neither n_patients nor predictions
    block = render_block(stored(tmp_path), tmp_path, with_significance=False, registered={})
    assert "n (records / patients): train 1,400 / ? · val 300 / ? · test 300 / 10" in section(
        block, "#### synth-age@v1", "####")  # test patients counted from the stored predictions
    assert "n (records / patients): train 1,400 / ? · val 300 / ? · test 300 / ?" in section(
        block, "#### synth-superclass@v1")
    record = next(r for r in stored(tmp_path) if r["task"] == "synth-superclass")
    write_json(ResultStore(tmp_path).result_path("m1-cpu0", "synth-superclass@v1", "frozen-probe-lr"),
               {**record, "n_patients": {"train": 600, "val": 127, "test": 128}})
    block = render_block(stored(tmp_path), tmp_path, with_significance=False, registered={})
    assert "train 1,400 / 600 · val 300 / 127 · test 300 / 128" in section(block, "#### synth-superclass@v1")


def sample_fixture(root: Path) -> Path:
    """A synthetic store where m1 beats m2, and a real-sample store beside it (``real-sample/``)
    where m2 beats m1 by a wide margin on stored predictions, with n per split."""
    from sklearn.metrics import roc_auc_score

    for seed in (0, 1):
        put(root, "m1", "synth-superclass", "lr", seed, 0.80, val=0.9)
        put(root, "m2", "synth-superclass", "lr", seed, 0.70, val=0.8)
    sample = root / "real-sample"
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    patients = np.arange(80) // 2
    sizes = {"n": {"train": 200, "val": 58, "test": 80}, "n_patients": {"train": 191, "val": 46, "test": 40},
             "adaptation": {"dataset": "ptbxl@1.0.3-p1-100-abc"}}
    for method, noise in (("m1", 2.0), ("m2", 0.3)):
        for seed in (0, 1):
            scores = y + rng.normal(0, noise, y.size)
            auroc = float(roc_auc_score(y, scores))
            put(sample, method, "ptbxl-sex", "lr", seed, auroc, val=auroc)
            with_predictions(sample, method, "ptbxl-sex", seed, y, (scores > 0.5).astype(int), patients,
                             scores, **sizes)
    return root


def test_real_sample_section_is_separate_titled_and_shows_n(tmp_path):
    root = sample_fixture(tmp_path)
    block = render_block(stored(root), root, registered={"m1": "m1", "m2": "m2"})
    main_part, small = block.split("**Small-sample results on real data.**")
    assert "ptbxl" not in main_part  # never ranked with the synthetic suite
    synthetic = summary_rows(section(main_part, "#### synth-superclass@v1"), "")
    assert list(synthetic) == ["m1", "m2"]  # unchanged by the sample's order
    assert "### Small-sample results on real data · preset `cpu` · frozen-probe" in small
    assert "synth-" not in small
    assert "n (records / patients): train 200 / 191 · val 58 / 46 · test 80 / 40" in small
    rows = summary_rows(section(small, "#### ptbxl-sex@v1"), "")
    assert list(rows) == ["m2", "m1"] and rows["m2"][0] == "lr" and rows["m2"][-2:] == ["reference", "yes"]
    assert rows["m1"][-2].endswith(" *") and rows["m1"][-1] == "no"
    assert "Not tested" not in small  # every method had its predictions in the sample store
    assert summary_rows(small.split("####")[0], "")["m2"] == ["top", "1/1"]


def test_no_real_sample_store_means_no_section(example):
    block = render_block(stored(example), example, with_significance=False, registered={})
    assert "Small-sample" not in block


def test_not_applicable_records_as_the_runner_writes_them(example):
    """The runner's not-applicable records carry no adaptation (no data was read): they still
    belong to their synthetic suite's group, and a task on which every method that tried was not
    applicable still gets a table with the reasons."""
    store = ResultStore(example)
    for task in ("synth-age", "synth-rhythm"):
        write_json(store.result_path("m5-cpu0", f"{task}@v1", "frozen-probe-lr"), {
            "run_id": "m5-cpu0", "method": "m5", "control": False, "uses_labels": False, "task": task,
            "task_key": f"{task}@v1", "task_kind": "multiclass", "main_metric": "macro_f1", "probe": "lr",
            "protocol": "frozen-probe", "preset": "cpu", "seed": 0, "metrics": {}, "status": "not_applicable",
            "reason": "needs lead II", "probe_spec": {"protocol": "frozen-probe", "probe": "lr"}})
    (board,) = build(stored(example))
    assert board.suite == "synthetic v1"
    tasks = {t.task: t for t in board.tasks}
    assert tasks["synth-age"].missing["m5"] == "n/a: needs lead II"
    assert tasks["synth-rhythm"].entries == [] and tasks["synth-rhythm"].missing == {"m5": "n/a: needs lead II"}
    block = render_block(stored(example), example, with_significance=False, registered={})
    assert "#### synth-rhythm@v1 · macro_f1" in block
    assert summary_rows(block, "cpu")["m5"] == ["n/a", "n/a", "not run", "0/0"]  # age, rhythm, superclass


def test_check_reads_the_stored_tests_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """`leaderboard` stores each task's tests beside the results; `--check` only reads them (the
    computation is never called) and writes nothing; a changed predictions file makes it stale."""
    import ecgbench.evaluation.separation as separation

    monkeypatch.setenv("ECGBENCH_CACHE", str(tmp_path / "user-cache"))
    root = sample_fixture(tmp_path / "results")
    doc = tmp_path / "B.md"
    doc.write_text("# B\n", encoding="utf-8")
    args = ["leaderboard", "--results-dir", str(root), "--file", str(doc)]
    assert main(args) == 0
    assert "tests written to" in capsys.readouterr().out
    stored_tests = root / "real-sample" / "leaderboard-tests.json"
    assert '"reference": "m2"' in stored_tests.read_text(encoding="utf-8")
    listing = {p: p.stat().st_mtime_ns for p in root.rglob("*")}

    def never(*args, **kwargs):
        raise AssertionError("--check must not compute tests")

    monkeypatch.setattr(separation, "separate", never)
    assert main(args + ["--check"]) == 0
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == listing  # nothing written
    npz = next((root / "real-sample").rglob("*.npz"))
    data = dict(np.load(npz))
    data["scores"] = data["scores"][::-1].copy()
    np.savez(npz, **data)
    assert main(args + ["--check"]) == 1
    assert "stored tests of 1 tasks are stale" in capsys.readouterr().err


def test_the_committed_stored_tests_are_what_the_code_computes(tmp_path, monkeypatch):
    """The committed real-sample tests of one task, recomputed from its committed predictions with
    an empty bootstrap cache, equal what `leaderboard --check` reads; and its digest matches, so
    the check compares against these numbers."""
    from ecgbench.evaluation.separation import separate
    from ecgbench.reporting.leaderboard import sample_boards, sample_results
    from ecgbench.reporting.leaderboard.significance import settings
    from ecgbench.reporting.leaderboard.tested import FILE, board_key, inputs_digest

    monkeypatch.setenv("ECGBENCH_CACHE", str(tmp_path / "empty-cache"))
    root = Path(__file__).resolve().parents[2] / "results"
    sample = root / "real-sample"
    import json

    committed = json.loads((sample / FILE).read_text(encoding="utf-8"))
    board = next(b for b in sample_boards(sample_results(root), root, with_significance=False, registered={})
                 if b.protocol == "frozen-probe")  # the fixed split (the cross-validated group is its own)
    task = next(t for t in board.tasks if t.task_key == "cinc2017-af@v1")
    records = [r for e in task.entries for r in e.records]
    entry = committed[board_key(board.preset, board.protocol, task.task_key)]
    assert entry["inputs"] == inputs_digest(records, sample, settings())
    fresh = separate(records, task.task_key, sample, preset=board.preset, protocol=board.protocol)
    assert fresh.to_json() == entry["separation"]
