"""The seed papers' reported numbers: every file validates, the transcribed values are exact,
and malformed files fail with one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecgbench.reporting.reported import (
    COLLAPSED,
    DEFAULT_FOLDER,
    ReportedSchemaError,
    get_table,
    load_reported,
    load_source,
    reported_value,
    tables_for_task,
)

EXPECTED_SOURCES = {
    "nerula",
    "dual-view",
    "embedding-enhancements",
    "residual-connections",
    "ptbxl-benchmark-strodthoff2021",
    "ecg-fm-benchmark-almasud2025",
}


def test_default_folder_is_the_repositorys_results_reported():
    assert DEFAULT_FOLDER == Path(__file__).resolve().parents[2] / "results" / "reported"


def test_every_file_loads_and_validates():
    sources = load_reported()
    assert {s.source for s in sources} == EXPECTED_SOURCES
    assert len(sources) == len(list(DEFAULT_FOLDER.glob("*.yaml")))
    for source in sources:
        assert source.citation and source.protocol and source.tables
        for table in source.tables:
            ids = {c.id for c in table.columns}
            for row in table.rows:
                assert set(row.values) == ids, (table.id, row.method)


@pytest.mark.parametrize(
    "table_id, method, column, expected",
    [
        ("nerula-table1", "clocs", "rf_f1", 0.32),
        ("nerula-table1", "nerula-ladder-masking", "svc_f1", 0.49),
        ("nerula-table2", "nerula-ladder-latent", "acc", 0.64),
        ("nerula-table2", "nerula", "f1", 0.74),
        ("nerula-table3", "supervised-resnet", "svc_acc", 0.76),
        ("nerula-table3", "supervised-resnet", "lr_auc", 0.89),
        ("nerula-table3", "supervised-resnet", "rf_acc", None),  # "-" in the paper
        ("nerula-table3", "supervised-resnet", "rf_f1", None),
        ("nerula-table3", "ti-mae", "svc_f1", 0.50),
        ("nerula-table3", "nerula", "rf_acc", 0.78),
        ("nerula-table3", "clocs", "rf_f1", 0.36),
        ("nerula-table4", "clocs", "svc_acc", 0.63),
        ("nerula-table4", "nerula", "rf_acc", 0.64),
        ("nerula-table5", "nerula", "mlp_mae", 10.46),
        ("nerula-table5", "simclr", "mlp_r2", 0.12),
        ("nerula-table5", "clocs", "rf_mae", 11.79),
        ("nerula-table6", "ti-mae", "rf_acc", 0.67),
        ("nerula-table6", "nerula", "rf_acc", 0.87),
        ("dual-view-table", "dual-view-seqaug", "f1_mi", 0.07),
        ("dual-view-table", "dual-view-interleave", "f1_hyp", 0.00),
        ("dual-view-table", "dual-view-split", "macro_f1", 0.51),
        ("dual-view-table", "dual-view-split", "accuracy", 0.72),
        ("embedding-ecg-jepa", "ecg-jepa", "f1", 0.234),
        ("embedding-ecg-jepa", "ecg-jepa-hybrid", "auroc", 0.784),
        ("embedding-st-mem-probes", "st-mem", "linear_f1", 0.138),
        ("embedding-st-mem-probes", "st-mem-triplet", "knn_auroc", 0.712),
        ("embedding-st-mem-probes", "st-mem-vqvae", "knn_f1", COLLAPSED),
        ("embedding-st-mem-probes", "st-mem-vqvae", "linear_auroc", None),
        ("embedding-st-mem-clustering", "st-mem", "chi", 134.534),
        ("embedding-st-mem-clustering", "st-mem-triplet", "silhouette", -0.054),
        ("embedding-st-mem-clustering", "st-mem-vqvae", "dbi", COLLAPSED),
        ("residual-table", "transform-cnn", "arousal_f1", 80.05),
        ("residual-table", "transform-cnn-res1", "arousal_acc", 79.6),
        ("residual-table", "transform-cnn-res123", "valence_f1", 82.8),
        ("residual-table", "transform-cnn-res123", "hours", 1.05),
        ("ptbxl-benchmark-superdiagnostic", "supervised-resnet1d-wang", "macro_auroc", 0.930),
        ("ptbxl-benchmark-superdiagnostic", "supervised-xresnet1d101", "macro_auroc", 0.928),
        ("ecg-fm-benchmark-ptbxl-superdiagnostic", "ecg-jepa", "macro_auroc", 0.911),
        ("ecg-fm-benchmark-ptbxl-superdiagnostic", "st-mem", "macro_auroc", 0.896),
    ],
)
def test_transcribed_values(table_id, method, column, expected):
    value = reported_value(table_id, method, column)
    if expected is None or isinstance(expected, str):
        assert value == expected
    else:
        assert value == pytest.approx(expected, abs=1e-12)


def test_lookup_by_printed_label_and_unknown_names():
    assert reported_value("nerula-table2", "+ reconstruction", "acc") == pytest.approx(0.78)
    with pytest.raises(KeyError):
        reported_value("nerula-table3", "no-such-method", "svc_acc")
    with pytest.raises(KeyError):
        reported_value("nerula-table3", "byol", "no_such_column")
    with pytest.raises(KeyError):
        reported_value("no-such-table", "byol", "svc_acc")


def test_column_metadata_scale_approx_and_ci():
    residual = get_table("residual-table")
    assert set(residual.tasks) == {"dreamer-arousal", "dreamer-valence"}
    assert residual.column("arousal_acc").scale == "percent"
    assert residual.column("valence_f1").task == "dreamer-valence"
    assert residual.column("hours").higher_is_better is False
    assert all(row.approx == {"hours"} for row in residual.rows)
    assert get_table("nerula-table3").column("lr_auc").probe == "lr"
    assert get_table("nerula-table3").column("svc_acc").scale == "fraction"
    assert get_table("nerula-table5").column("rf_mae").higher_is_better is False
    assert get_table("embedding-st-mem-clustering").column("dbi").higher_is_better is False
    anchors = get_table("ecg-fm-benchmark-ptbxl-superdiagnostic")
    assert anchors.row("ecg-jepa").ci == {"macro_auroc": (0.903, 0.918)}
    assert anchors.row("st-mem").ci == {"macro_auroc": (0.887, 0.903)}


def test_tables_for_task():
    assert [t.id for t in tables_for_task("ptbxl-age")] == ["nerula-table5"]
    assert {t.id for t in tables_for_task("cinc2017-af")} == {
        "nerula-table1",
        "nerula-table2",
        "nerula-table3",
    }
    assert [t.id for t in tables_for_task("dreamer-valence")] == ["residual-table"]
    assert [t.id for t in tables_for_task("ptbxl-superclass-single")] == ["dual-view-table"]
    assert "ptbxl-benchmark-superdiagnostic" in {t.id for t in tables_for_task("ptbxl-superclass")}
    assert tables_for_task("no-such-task") == []


# --- malformed files --------------------------------------------------------------------

GOOD = """\
source: fixture
citation: A. Author. Fixture. 2024.
protocol:
  pretraining_data: not stated
tables:
  - id: fixture-table
    title: Fixture
    task: ptbxl-age
    columns:
      - {id: mae, probe: rf, metric: mae, higher_is_better: false}
      - {id: acc, probe: svc, metric: accuracy, higher_is_better: true}
    rows:
      - {method: byol, label: BYOL, values: {mae: 11.5, acc: 0.5}}
"""


def _write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_fixture_itself_is_valid(tmp_path):
    _write(tmp_path, GOOD)
    (source,) = load_reported(tmp_path)
    assert source.tables[0].row("byol").values == {"mae": 11.5, "acc": 0.5}


@pytest.mark.parametrize(
    "old, new, fields",
    [
        ("citation: A. Author. Fixture. 2024.\n", "", ["citation", "missing"]),
        ("    title: Fixture\n", "", ["tables[fixture-table].title", "missing"]),
        ("acc: 0.5}", "acc: high}", ["tables[fixture-table].rows[byol].values.acc", "'high'"]),
        ("acc: 0.5}", "acc: true}", ["values.acc", "True"]),
        ("acc: 0.5}", "acc: 1.7}", ["values.acc", "outside [0, 1]"]),
        ("metric: mae,", "metric: rmse,", ["tables[fixture-table].columns[mae].metric", "'rmse'"]),
        ("probe: rf,", "probe: xgb,", ["columns[mae].probe", "'xgb'"]),
        ("acc: 0.5}", "acc: 0.5, auc: 0.7}", ["rows[byol].values.auc", "undeclared column"]),
        ("{mae: 11.5, acc: 0.5}", "{mae: 11.5}", ["rows[byol].values.acc", "missing"]),
        ("higher_is_better: false}", "higher_is_better: maybe}", ["columns[mae].higher_is_better"]),
        ("label: BYOL,", "label: BYOL, colour: red,", ["rows[byol].colour", "unknown field"]),
        ("label: BYOL,", "label: BYOL, ci: [0.4, 0.6],", ["rows[byol].ci", "one-column"]),
        ("label: BYOL,", "label: BYOL, approx: [auc],", ["rows[byol].approx", "'auc'"]),
    ],
)
def test_malformed_file_gives_one_line_error_naming_file_and_field(tmp_path, old, new, fields):
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ReportedSchemaError) as info:
        load_reported(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad.yaml: "), message
    for part in fields:
        assert part in message, message
    assert isinstance(info.value, ValueError)
    with pytest.raises(ReportedSchemaError):
        load_source(path)


def test_duplicate_row_and_table_ids(tmp_path):
    row = "      - {method: byol, label: BYOL, values: {mae: 11.5, acc: 0.5}}\n"
    _write(tmp_path, GOOD + row)
    duplicate_row = r"bad\.yaml: tables\[fixture-table\]\.rows: duplicate row method 'byol'"
    with pytest.raises(ReportedSchemaError, match=duplicate_row):
        load_reported(tmp_path)
    _write(tmp_path, GOOD)
    _write(tmp_path, GOOD.replace("source: fixture", "source: other"), name="other.yaml")
    duplicate_table = r"other\.yaml: tables\[fixture-table\]: table id already used by bad\.yaml"
    with pytest.raises(ReportedSchemaError, match=duplicate_table):
        load_reported(tmp_path)


def test_invalid_yaml_and_empty_file(tmp_path):
    _write(tmp_path, "source: [unclosed\n")
    with pytest.raises(ReportedSchemaError, match=r"^bad\.yaml: not valid YAML"):
        load_reported(tmp_path)
    _write(tmp_path, "")
    with pytest.raises(ReportedSchemaError, match=r"^bad\.yaml: file is empty$"):
        load_reported(tmp_path)
