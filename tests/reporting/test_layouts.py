"""Paper layouts: reported values from the YAML, our cells from stored result JSON (written
through the real ResultStore/write_json), tolerance markers, missing-result reasons, and the
plan of `ecgbench run --layout`."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from ecgbench.cli import main
from ecgbench.core.registry import METHODS, Entry
from ecgbench.core.store import ResultStore, write_json
from ecgbench.reporting.layouts import (
    BASELINES,
    LAYOUTS,
    OUTSIDE,
    SAMPLE,
    LayoutError,
    LayoutJob,
    Tolerance,
    get_layout,
    list_layouts,
    load_layouts,
    plan_layout,
    plan_rows,
    render_layout,
)
from ecgbench.reporting.reported import PROBES, get_table

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

TASK_INFO = {  # task -> (kind, main metric, dataset)
    "ptbxl-sex": ("binary", "macro_auroc", "ptbxl"),
    "ptbxl-superclass": ("multilabel", "macro_auroc", "ptbxl"),
    "dreamer-arousal": ("binary", "macro_f1", "dreamer"),
}


def store_result(root: Path, method: str, task: str, probe: str, seed: int, metrics: dict, *,
                 preset: str = "cpu", val_score: float = 0.5, ci: tuple[float, float] | None = None,
                 n: tuple[int, int, int] = (15000, 2000, 2000), created: str = "2026-01-01T00:00:00+00:00",
                 status: str | None = None, reason: str | None = None) -> Path:
    """One result record in the runner's format, written where the runner writes it."""
    kind, main_metric, dataset = TASK_INFO[task]
    run_id = f"{method}-{preset}{seed:04d}"
    record = {
        "run_id": run_id, "method": method, "method_version": 1, "control": method == "random-init",
        "uses_labels": False, "task": task, "task_key": f"{task}@v1", "task_kind": kind,
        "main_metric": main_metric, "probe": probe, "protocol": "frozen-probe", "preset": preset,
        "seed": seed, "metrics": metrics, "val_score": val_score,
        "n": dict(zip(("train", "val", "test"), n)),
        "adaptation": {"dataset": f"{dataset}@1.0.3-p1-100-abc"},
        "probe_spec": {"protocol": "frozen-probe", "probe": probe, "grid": "full", "bootstrap": 1000},
        "created": created,
    }
    if ci is not None:
        record["ci"] = {"metric": main_metric, "low": ci[0], "high": ci[1], "level": 0.95,
                        "resamples": 1000, "unit": "patient"}
    if status:
        record.update(status=status, reason=reason, metrics={})
        record.pop("val_score")
    store = ResultStore(root)
    path = store.result_path(run_id, f"{task}@v1", f"frozen-probe-{probe}-{seed:08d}")
    write_json(path, record)
    return path


def results(root: Path) -> list[dict]:
    return list(ResultStore(root).results())


def table_rows(markdown: str) -> dict[str, list[str]]:
    """Row label -> cells, for every markdown table row in the text (header rows excluded)."""
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| method"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def our_cell(markdown: str, label: str, column: str) -> str:
    """Our cell for row ``label`` (its text before the backticked method) in column ``column``."""
    names: list[str] = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| method"):
            names = cells
        elif line.startswith("| ") and cells[0].startswith(label + " (`") and f"{column} (ours)" in names:
            return cells[names.index(f"{column} (ours)")]
    raise AssertionError(f"no row {label!r} with column {column!r} in\n{markdown}")


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_layout_renders_reported_values_and_not_run_cells(name, tmp_path):
    text = render_layout(name, [], data_root=tmp_path)
    assert text.startswith(f"## Layout `{name}`")
    for table_id in LAYOUTS[name].tables:
        table = get_table(table_id)
        assert table.title in text
        for row in table.rows:
            run = LAYOUTS[name].row_run(row.method)
            label = f"{row.label} (`{run.method}`)"
            cells = table_rows(text)[label]
            reported, ours = cells[0::2], cells[1::2]
            assert len(ours) == len(table.columns)
            for column, shown in zip(table.columns, reported):
                value = row.values[column.id]
                if isinstance(value, float):
                    assert float(shown.lstrip("~").split()[0]) == pytest.approx(value), (column.id, shown)
                else:
                    assert shown == ("–" if value is None else "collapsed")
            expected = "reported only" if run.reported_only else "not run"
            assert all(cell.startswith(expected) for cell in ours), ours
    assert "tolerance" in text


def test_cells_fill_with_mean_std_and_ci_and_flag_outside_tolerance(tmp_path):
    # ptbxl-anchors, FM-benchmark table: lr probe, macro AUROC (the task's main metric, so a CI)
    for seed, (value, low, high) in enumerate([(0.90, 0.88, 0.92), (0.91, 0.89, 0.93), (0.92, 0.90, 0.94)]):
        store_result(tmp_path, "st-mem", "ptbxl-superclass", "lr", seed, {"macro_auroc": value}, ci=(low, high))
    for seed, value in enumerate([0.80, 0.82]):
        store_result(tmp_path, "ecg-jepa", "ptbxl-superclass", "lr", seed, {"macro_auroc": value}, ci=(0.7, 0.9))
    text = render_layout("ptbxl-anchors", results(tmp_path), data_root=tmp_path)
    assert our_cell(text, "ST-MEM", "macro_auroc") == "0.910 ± 0.010 [0.890, 0.930]"  # reported .896: inside
    assert our_cell(text, "ECG-JEPA", "macro_auroc") == f"0.810 ± 0.014 [0.700, 0.900] {OUTSIDE}"  # vs .911
    assert "preset `cpu`" in text and "seeds 0, 1, 2" in text
    # the supervised anchors are the source's numbers only, and say so
    assert our_cell(text, "resnet1d_wang", "macro_auroc") == "reported only"


@pytest.mark.parametrize("ours, flagged", [(0.66, False), (0.6601, True), (0.56, False), (0.5599, True)])
def test_marker_appears_exactly_outside_the_tolerance(ours, flagged, tmp_path):
    # nerula-table4, BYOL SVC accuracy reported 0.61; tolerance 0.05 absolute
    store_result(tmp_path, "nerula-ladder-byol", "ptbxl-sex", "svc", 0, {"accuracy": ours, "macro_auroc": 0.6})
    cell = our_cell(render_layout("nerula-table4", results(tmp_path), data_root=tmp_path), "BYOL", "svc_acc")
    assert (OUTSIDE in cell) is flagged, cell
    assert "[" not in cell  # accuracy is not the task's main metric: no bootstrap CI stored for it


def test_tolerance_units():
    assert Tolerance(0.05).exceeded(0.70, 0.64) and not Tolerance(0.05).exceeded(0.68, 0.64)
    assert Tolerance(0.25, relative=True).exceeded(130.0, 100.0)
    assert not Tolerance(0.25, relative=True).exceeded(120.0, 100.0)
    assert Tolerance(0.05).describe("percent") == "±5 points absolute"


def test_percent_columns_and_probe_chosen_on_validation_not_test(tmp_path, monkeypatch):
    # residual-table1's percent columns under frozen probes (its layout runs the head protocol):
    # the source states no probe, so ours takes the best validation score, shown as "(via ...)"
    monkeypatch.setitem(LAYOUTS, "residual-table1", dataclasses.replace(LAYOUTS["residual-table1"],
                                                                        protocol="frozen-probe"))
    store_result(tmp_path, "transform-cnn", "dreamer-arousal", "svc", 0,
                 {"accuracy": 0.60, "macro_f1": 0.55}, val_score=0.9)   # best on validation
    store_result(tmp_path, "transform-cnn", "dreamer-arousal", "rf", 0,
                 {"accuracy": 0.95, "macro_f1": 0.95}, val_score=0.1)   # best on test: must not win
    text = render_layout("residual-table1", results(tmp_path), data_root=tmp_path)
    cell = our_cell(text, "none", "arousal_acc")
    assert cell == f"60.0 {OUTSIDE} (via svc)"  # percent scale, 20 points below the reported 80.1
    assert "best validation score" in text


def test_missing_results_say_why(tmp_path):
    store_result(tmp_path, "simclr-lead2", "ptbxl-sex", "svc", 0, {}, status="not_applicable",
                 reason="12-lead encoder on a single-lead dataset")
    store_result(tmp_path, "nerula-ladder-byol", "ptbxl-sex", "svc", 0, {"accuracy": 0.6, "macro_auroc": 0.6})
    text = render_layout("nerula-table4", results(tmp_path), data_root=tmp_path / "empty")
    assert our_cell(text, "SimCLR", "svc_acc") == "n/a: 12-lead encoder on a single-lead dataset"
    assert our_cell(text, "BYOL", "rf_acc") == "not run (rf probe)"
    assert our_cell(text, "CLOCS", "svc_acc") == "not run: ptbxl not prepared"


def test_long_not_applicable_reasons_become_numbered_notes(tmp_path):
    reason = "the encoder needs leads ['II', 'III', 'aVR', 'aVL', 'aVF'] which the dataset lacks"
    for method in ("simclr-lead2", "nerula-ladder-byol"):
        store_result(tmp_path, method, "ptbxl-sex", "svc", 0, {}, status="not_applicable", reason=reason)
    text = render_layout("nerula-table4", results(tmp_path), data_root=tmp_path)
    assert our_cell(text, "SimCLR", "svc_acc") == our_cell(text, "BYOL", "rf_acc") == "n/a: note 1"
    assert f"n/a note 1: {reason}" in text and "note 2" not in text


def test_not_run_without_a_reason_when_the_data_is_there(tmp_path):
    if not (SHARED_DATA / "ptb-xl").is_dir():
        pytest.skip(f"shared PTB-XL sample not found at {SHARED_DATA / 'ptb-xl'}")
    text = render_layout("nerula-table4", [], data_root=SHARED_DATA)
    assert our_cell(text, "CLOCS", "svc_acc") == "not run"


def test_sample_size_results_are_marked_with_n(tmp_path):
    store_result(tmp_path, "nerula-ladder-byol", "ptbxl-sex", "svc", 0, {"accuracy": 0.6, "macro_auroc": 0.6}, n=(200, 50, 50))
    text = render_layout("nerula-table4", results(tmp_path), data_root=tmp_path)
    assert our_cell(text, "BYOL", "svc_acc") == f"0.600 {SAMPLE}"
    assert "ptbxl-sex: n = 300 records of 21,799 (nerula-ladder-byol)" in text


def test_one_preset_per_table_and_newest_record_per_seed(tmp_path):
    store_result(tmp_path, "nerula-ladder-byol", "ptbxl-sex", "svc", 0, {"accuracy": 0.10, "macro_auroc": 0.5}, preset="smoke")
    store_result(tmp_path, "nerula-ladder-byol", "ptbxl-sex", "svc", 0, {"accuracy": 0.30, "macro_auroc": 0.5})
    newer = {"accuracy": 0.40, "macro_auroc": 0.5}
    path = store_result(tmp_path, "nerula-ladder-byol", "ptbxl-sex", "svc", 0, newer, created="2026-02-01T00:00:00+00:00")
    path.rename(path.with_name("rerun.json"))  # a second record for the same seed (new run id in real life)
    store_result(tmp_path, "nerula-ladder-byol", "ptbxl-sex", "svc", 0, {"accuracy": 0.30, "macro_auroc": 0.5})
    stored = results(tmp_path)
    assert our_cell(render_layout("nerula-table4", stored, data_root=tmp_path), "BYOL", "svc_acc").startswith("0.400")
    smoke = render_layout("nerula-table4", stored, preset="smoke", data_root=tmp_path)
    assert our_cell(smoke, "BYOL", "svc_acc").startswith("0.100") and "preset `smoke`" in smoke


# ----- planning ------------------------------------------------------------------------------
def _register_all(monkeypatch, layout: str) -> None:
    """Pretend every method of the layout is registered and every task's data is present."""
    import ecgbench.reporting.layouts.plan as plan  # where planning looks the checks up

    fake = dict(METHODS.entries)
    for table_id in LAYOUTS[layout].tables:
        for row in get_table(table_id).rows:
            fake.setdefault(row.method, Entry(row.method, "x", "X", "", Path("x.py")))
    monkeypatch.setattr(METHODS, "_entries", fake)
    monkeypatch.setattr(plan, "task_missing", lambda task, root=None: None)
    monkeypatch.setattr(plan, "dataset_missing", lambda name, root=None: None)


def test_plan_is_exactly_what_the_table_needs(tmp_path):
    if not (SHARED_DATA / "ptb-xl").is_dir():
        pytest.skip(f"shared PTB-XL sample not found at {SHARED_DATA / 'ptb-xl'}")
    root = tmp_path / "data"
    root.mkdir()
    (root / "ptb-xl").symlink_to(SHARED_DATA / "ptb-xl", target_is_directory=True)
    assert plan_layout("nerula-table4", data_root=root).skipped == [
        "nerula-table4: pretraining corpus cinc2020 not prepared"]  # NERULA pretrains on CinC 2020
    (root / "cinc2020").mkdir()
    plan = plan_layout("nerula-table4", data_root=root)
    methods = [LAYOUTS["nerula-table4"].row_run(r.method).method for r in get_table("nerula-table4").rows]
    assert methods == ["nerula-ladder-byol", "simclr-lead2", "ti-mae", "clocs-cmsc", "nerula"]
    baselines = ["ecg-features", "ecg-features-lead2"]  # every layout table's rows of ours
    assert plan.jobs == [LayoutJob(methods + baselines, ["ptbxl-sex"], ["svc", "rf"], "cinc2020")] and plan.skipped == []


def test_plan_reports_unprepared_data_instead_of_running(tmp_path):
    plan = plan_layout("nerula-table4", data_root=tmp_path)
    assert plan.jobs == [] and "nerula-table4: ptbxl not prepared" in plan.skipped


def test_plan_one_grid_per_table_probes_from_columns(monkeypatch):
    _register_all(monkeypatch, "embeddings-classification")
    plan = plan_layout("embeddings-classification")
    assert plan.jobs == [  # seed 003: both pretrain on Chapman-Shaoxing
        LayoutJob(["ecg-jepa", "ecg-jepa-hybrid", *BASELINES], ["ptbxl-superclass"], list(PROBES), "chapman"),
        LayoutJob(["st-mem", "st-mem-triplet", "st-mem-vqvae", *BASELINES], ["ptbxl-superclass"], ["lr", "knn"],
                  "chapman"),
    ] and plan.skipped == []


def test_plan_multi_task_table_and_probe_free_metrics(monkeypatch):
    _register_all(monkeypatch, "residual-table1")
    _register_all(monkeypatch, "embeddings-clustering")
    residual_plan = plan_layout("residual-table1")
    residual = residual_plan.jobs
    assert len(residual) == 1 and residual[0].tasks == ["dreamer-arousal", "dreamer-valence"]
    assert residual_plan.protocol == "head" and residual[0].probes == []  # seed 004's dense head, no probes
    clustering = plan_layout("embeddings-clustering")
    assert residual[0].pretrain == "dreamer"  # assumed (seed 000 names no dataset) and the plan says so
    assert clustering.jobs == [LayoutJob(["st-mem", "st-mem-triplet", "st-mem-vqvae", *BASELINES], ["ptbxl-superclass"],
                                         ["lr"], "chapman")]
    assert clustering.settings == ["eval.clustering=true"]  # the runner computes clustering only when asked


def test_clustering_cells_from_the_results_clustering_fields(tmp_path):
    clustering = {"davies_bouldin": 9.0, "silhouette": 0.10, "calinski_harabasz": 50.0}
    for probe in ("lr", "knn"):
        path = store_result(tmp_path, "st-mem", "ptbxl-superclass", probe, 0, {"macro_auroc": 0.7})
        record = ResultStore(tmp_path).results()
        write_json(path, {**next(r for r in record if r["probe"] == probe), "clustering": clustering})
    text = render_layout("embeddings-clustering", results(tmp_path), data_root=tmp_path)
    assert our_cell(text, "ST-MEM baseline", "dbi") == "9.000"  # 9.690 reported, within 25%
    assert our_cell(text, "ST-MEM baseline", "silhouette") == f"0.100 {OUTSIDE}"  # -0.004 reported
    assert our_cell(text, "ST-MEM baseline", "chi") == f"50.00 {OUTSIDE}"  # 134.534 reported


# ----- command line --------------------------------------------------------------------------
def test_cli_table_layout(tmp_path, capsys):
    assert main(["table", "--layout", "list"]) == 0
    assert set(LAYOUTS) <= {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    store_result(tmp_path, "nerula-ladder-byol", "ptbxl-sex", "svc", 0, {"accuracy": 0.6, "macro_auroc": 0.6})
    out = tmp_path / "t.md"
    assert main(["table", "--layout", "nerula-table4", "--results-dir", str(tmp_path), "--out", str(out),
                 "--data-root", str(tmp_path)]) == 0
    assert our_cell(out.read_text(), "BYOL", "svc_acc") == "0.600"
    assert main(["table", "--layout", "nerula-tabel4"]) == 2
    assert "Did you mean 'nerula-table4'" in capsys.readouterr().err


def test_cli_run_layout_reports_what_cannot_run(tmp_path, capsys):
    code = main(["run", "--layout", "nerula-table4", "--results-dir", str(tmp_path), "--data-root",
                 str(tmp_path / "no-data"), "--no-tracking"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "not run: nerula-table4: ptbxl not prepared" in err
    assert re.search(r"CLOCS \(`clocs-cmsc`\) +\| 0\.63 +\| not run: ptbxl not prepared", out)
    assert (tmp_path / "tables" / "layout-nerula-table4.md").read_text() == out.rstrip("\n") + "\n"


def test_cli_run_layout_logs_the_table_to_mlflow(tmp_path, capsys, monkeypatch):
    """The layout table goes to the tracker as an artifact (the Tracker itself, against a real
    MLflow server, is tested in tests/running/test_tracking.py; a recording fake keeps this test fast)."""
    import ecgbench.running.tracking

    calls = []

    class FakeTracker:
        def __init__(self, uri, artifact_root=None):
            calls.append(("init", uri))

        def start(self, name, params):
            calls.append(("start", name))

        def log_artifact(self, path):
            calls.append(("artifact", Path(path).name, Path(path).read_text()))

        def finish(self, status="FINISHED"):
            calls.append(("finish", status))

    monkeypatch.setattr(ecgbench.running.tracking, "Tracker", FakeTracker)
    assert main(["run", "--layout", "nerula-table4", "--results-dir", str(tmp_path), "--data-root",
                 str(tmp_path / "no-data"), "--tracking-uri", "http://127.0.0.1:1"]) == 0
    table = (tmp_path / "tables" / "layout-nerula-table4.md").read_text()
    assert calls == [("init", "http://127.0.0.1:1"), ("start", "ecgbench-layout-nerula-table4"),
                     ("artifact", "layout-nerula-table4.md", table), ("finish", "FINISHED")]


# ----- a layout is a protocol ----------------------------------------------------------------
@pytest.mark.parametrize("preset", ["smoke", "paper"])
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_dry_run_plans_every_row_and_none_is_blocked_by_our_configuration(name, preset, tmp_path, capsys):
    """`run --layout NAME --dry-run` trains nothing, prints one row per method with its corpus,
    input and probes, and finds no row that our own configuration would leave `n/a`."""
    assert main(["run", "--layout", name, "--dry-run", "--preset", preset, "--data-root", str(tmp_path),
                 "--results-dir", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    rows = plan_rows(name, preset)
    assert len(rows) == sum(len(get_table(t).rows) for t in LAYOUTS[name].tables)
    assert [r.problem for r in rows] == [""] * len(rows)
    assert f"0 of {len(rows)} rows cannot run because of our configuration." in out
    assert "| method" in out and "pretraining data" in out and not (tmp_path / "results").exists()
    layout = LAYOUTS[name]
    for row in rows:
        if row.method != "-" and not METHODS.get(row.method).uses_labels:
            assert row.pretrain == layout.pretrain  # the corpus the source names (or the one we assumed)


def test_dry_run_finds_a_row_our_configuration_cannot_run(monkeypatch, capsys):
    import ecgbench.reporting.layouts as layouts

    rows = dict(layouts.LAYOUTS["nerula-table3"].rows, simclr=layouts.RowRun("simclr"))  # the 12-lead SimCLR on lead-II data
    monkeypatch.setitem(layouts.LAYOUTS, "nerula-table3", dataclasses.replace(LAYOUTS["nerula-table3"], rows=rows))
    assert main(["run", "--layout", "nerula-table3", "--dry-run"]) == 1
    assert "needs leads II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6 that cinc2017 lacks" in capsys.readouterr().out
    assert main(["run", "--layout", "nerula-table3", "--no-tracking"]) == 2  # refused before any training
    assert "1 rows cannot run as configured: SimCLR (simclr): needs leads" in capsys.readouterr().err


def test_seeds_that_name_a_corpus_are_recorded_and_assumptions_say_so():
    assert LAYOUTS["embeddings-classification"].pretrain == "chapman"  # seed 003: Chapman-Shaoxing
    assert "12 leads, 500 Hz, 10 s" in LAYOUTS["embeddings-classification"].pretrain_source
    assert LAYOUTS["dualview-table1"].pretrain == "ptbxl"  # seed 001
    assert LAYOUTS["residual-table1"].pretrain == "dreamer"
    assert LAYOUTS["residual-table1"].pretrain_source.startswith("assumed: seed 000 names no dataset")
    assert all(LAYOUTS[f"nerula-table{i}"].pretrain == "cinc2020" for i in (1, 3, 4, 5, 6))
    assert LAYOUTS["nerula-table3"].task("cinc2017-af") == "cinc2017-af3"  # "a total of three classes"


# ----- layouts are data: results/reported/<source>.yaml ----------------------------------------
PAPER = """\
source: fixture-paper
citation: A. Author. Fixture paper. 2026.
protocol:
  pretraining_data: not stated
tables:
  - id: fixture-table
    title: "Fixture Table 1: PTB-XL sex"
    task: ptbxl-sex
    columns:
      - {id: svc_acc, probe: svc, metric: accuracy, higher_is_better: true}
    rows:
      - {method: simclr, label: SimCLR, values: {svc_acc: 0.61}}
      - {method: their-net, label: TheirNet, values: {svc_acc: 0.70}}
layouts:
  - name: fixture-layout
    tables: [fixture-table]
    description: "Fixture paper Table 1: PTB-XL sex"
    pretrain: ptbxl
    tolerances: {accuracy: {amount: 0.1}}
    rows:
      their-net: {reported_only: their own architecture}
    readings: ["probe grid not stated: ours"]
"""


def test_layouts_come_from_the_reported_files_in_their_order():
    assert list(LAYOUTS) == ["nerula-table1", "nerula-ladder", "nerula-table3", "nerula-table4", "nerula-table5",
                             "nerula-table6", "dualview-table1", "embeddings-classification", "embeddings-clustering",
                             "residual-table1", "ptbxl-anchors"]
    assert load_layouts() == dict(LAYOUTS)
    shared = LAYOUTS["nerula-table4"]  # the YAML anchors share NERULA's settings and rows
    assert shared.rows == LAYOUTS["nerula-table6"].rows and shared.rows["byol"] == LAYOUTS["nerula-table1"].rows["byol"]
    assert len(LAYOUTS["nerula-table3"].readings) == 3 and LAYOUTS["nerula-table3"].readings[0] == shared.readings[0]


def test_a_new_paper_file_adds_its_layout_without_python(tmp_path):
    import shutil

    from ecgbench.reporting.reported import DEFAULT_FOLDER

    for path in DEFAULT_FOLDER.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "fixture-paper.yaml").write_text(PAPER, encoding="utf-8")
    assert list(load_layouts(tmp_path)) == [*LAYOUTS, "fixture-layout"]  # no order: listed after the others
    assert list_layouts(tmp_path).splitlines()[-1].split() == ["fixture-layout", *"Fixture paper Table 1: PTB-XL sex"
                                                                .split()]
    layout = get_layout("fixture-layout", tmp_path)
    assert layout.tolerances == {"accuracy": Tolerance(0.1)} and layout.row_run("their-net").reported_only
    text = render_layout("fixture-layout", [], data_root=tmp_path / "no-data", folder=tmp_path)
    assert text.startswith("## Layout `fixture-layout`: Fixture paper Table 1: PTB-XL sex")
    assert our_cell(text, "TheirNet", "svc_acc") == "reported only"
    assert our_cell(text, "SimCLR", "svc_acc") == "not run: ptbxl not prepared"
    assert "accuracy ±0.1 absolute" in text
    plan = plan_layout("fixture-layout", data_root=tmp_path / "no-data", folder=tmp_path)
    assert plan.skipped == ["fixture-table: TheirNet is reported only (their own architecture)",
                            "fixture-table: ptbxl not prepared"] and plan.jobs == []
    with pytest.raises(LayoutError, match="unknown layout 'fixture-layout'"):
        get_layout("fixture-layout")  # the repository's folder is untouched


@pytest.mark.parametrize("old, new, parts", [
    ("    pretrain: ptbxl\n", "    pretrain: ptbxl\n    colour: red\n", ["colour: unknown key"]),
    ("{amount: 0.1}", "{amount: -0.1}", ["tolerances.accuracy.amount", "-0.1"]),
    ("{amount: 0.1}", "{amount: 0.1, relatve: true}", ["tolerances.accuracy.relatve: unknown key"]),
    ("{amount: 0.1}", "{amount: 0.1, relative: maybe}", ["tolerances.accuracy.relative", "'maybe'"]),
    ("{amount: 0.1}", "0.1", ["tolerances.accuracy: expected a mapping"]),
    ("{accuracy: {", "{rmse: {", ["tolerances.rmse: not one of"]),
    ("tolerances:", "column_tolerances: {fixture-table.auc: {amount: 1}}\n    tolerances:",
     ["column_tolerances.fixture-table.auc: not one of fixture-table.svc_acc"]),
    ("tables: [fixture-table]", "tables: [fixture-tabel]", ["tables: no reported table 'fixture-tabel'"]),
    ("    pretrain: ptbxl\n", "    pretrain: ptbxl\n    protocol: probes\n", ["protocol: unknown protocol"]),
    ("{reported_only: their own architecture}", "{reported: their own architecture}",
     ["rows.their-net.reported: unknown key"]),
    ("    pretrain: ptbxl\n", "    pretrain: ptbxl\n    order: first\n", ["order: expected a number"]),
    ("    description: \"Fixture paper Table 1: PTB-XL sex\"\n", "", ["description: missing required key"]),
])
def test_a_bad_layout_is_refused_in_one_line_naming_file_and_layout(tmp_path, old, new, parts):
    assert old in PAPER
    (tmp_path / "paper.yaml").write_text(PAPER.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(LayoutError) as info:
        load_layouts(tmp_path)
    message = str(info.value)
    assert "\n" not in message and message.startswith("paper.yaml: layout fixture-layout: "), message
    assert all(part in message for part in parts), message


def test_a_layout_name_is_unique_over_the_folder(tmp_path):
    (tmp_path / "a.yaml").write_text(PAPER, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(PAPER.replace("source: fixture-paper", "source: other")
                                     .replace("fixture-table", "other-table"), encoding="utf-8")
    with pytest.raises(LayoutError, match=r"^b\.yaml: layout fixture-layout: name already used by a\.yaml$"):
        load_layouts(tmp_path)


def test_dataset_leads_match_the_loaders():
    from ecgbench.core.contracts import STANDARD_LEADS
    from ecgbench.data.datasets import cinc2017, dreamer, uci_har
    from ecgbench.reporting.layouts import DATASET_LEADS

    assert DATASET_LEADS["cinc2017"] == cinc2017.LEADS
    assert DATASET_LEADS["dreamer"] == dreamer.CHANNELS and DATASET_LEADS["uci_har"] == uci_har.CHANNELS
    assert all(DATASET_LEADS[d] == STANDARD_LEADS for d in ("ptbxl", "cinc2020", "cinc2021", "chapman"))


CINC2021_SAMPLES = SHARED_DATA / "cinc2021-samples"
CINC2017_SAMPLE = SHARED_DATA / "cinc2017"


@pytest.fixture
def nerula_data(tmp_path) -> Path:
    """A data root in the original formats: CinC 2020 (fixture: the Georgia and PTB-XL records of
    the shared CinC 2021 sample, which the 2021 release re-published unchanged under the same
    names, in the 2020 tree) and a copy of the shared CinC 2017 sample (200 validation records)."""
    import shutil

    if not (CINC2021_SAMPLES.is_dir() and CINC2017_SAMPLE.is_dir()):
        pytest.skip("shared CinC 2021 / CinC 2017 samples absent")
    root = tmp_path / "data"
    for prefix, source in (("E", "georgia"), ("HR", "ptb-xl")):
        folder = root / "cinc2020" / "training" / source / "g1"
        folder.mkdir(parents=True)
        for path in sorted(CINC2021_SAMPLES.glob(f"{prefix}[0-9]*")):
            shutil.copy(path, folder / path.name)
    shutil.copytree(CINC2017_SAMPLE, root / "cinc2017")
    return root


@pytest.mark.slow
def test_nerula_table3_smoke_fills_every_row(nerula_data, tmp_path, capsys, one_torch_thread):
    """`ecgbench run --layout nerula-table3 --preset smoke`: every row pretrained as NERULA ran
    it (lead II of CinC 2020; the supervised ResNet-50 on the task's labels), probed on the
    three-class CinC 2017 task, and every cell of ours filled with a number."""
    import json

    results = tmp_path / "results"
    assert main(["run", "--layout", "nerula-table3", "--preset", "smoke", "--data-root", str(nerula_data),
                 "--results-dir", str(results), "--no-tracking"]) == 0
    text = (results / "tables" / "layout-nerula-table3.md").read_text()
    table = get_table("nerula-table3")
    for row in table.rows:
        for column in table.columns:
            cell = our_cell(text, row.label, column.id)
            assert re.match(r"^\d+\.\d{3}( |$)", cell), (row.label, column.id, cell)
    rows = [line for line in text.splitlines() if line.startswith("| classical baseline, ours, not in the paper")]
    assert len(rows) == 2 and "`ecg-features`" in rows[0] and "`ecg-features-lead2`" in rows[1]
    assert "| n/a" in rows[0]  # 12 leads; CinC 2017 has lead I
    assert re.search(r"\| \d+\.\d{3} ", rows[1])  # lead II's features read the single lead
    records = [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*/run.json"))]
    by_method = {r["method"]: r for r in records if r["method"] not in BASELINES}
    assert set(by_method) == {"supervised-resnet50", "nerula-ladder-byol", "simclr-lead2", "ti-mae", "clocs-cmsc",
                              "nerula"}
    for method, record in by_method.items():
        if method != "supervised-resnet50":
            assert record["run_config"]["pretrain_data"].startswith("cinc2020@")
            assert record["leakage"]["pretrain_dataset"] == "cinc2020"
            assert record["run_config"]["method_config"]["leads"] == ["II"]
    assert by_method["supervised-resnet50"]["run_config"]["task"] == "cinc2017-af3@v1"
    scores = [json.loads(p.read_text()) for p in (results / "runs").glob("*/cinc2017-af3@v1/*.json")]
    assert {s["task"] for s in scores} == {"cinc2017-af3"}
    assert all(s["n"]["test"] > 0 for s in scores if s.get("status") != "not_applicable")  # ecg-features: n/a


def test_a_label_method_that_cannot_learn_the_task_is_found_before_training():
    from ecgbench.core.registry import TASKS
    from ecgbench.reporting.layouts import label_problem

    assert "a regression target has none" in label_problem(METHODS.get("st-mem-triplet"), TASKS.get("ptbxl-age"))
    assert label_problem(METHODS.get("st-mem-triplet"), TASKS.get("ptbxl-superclass")) == ""
