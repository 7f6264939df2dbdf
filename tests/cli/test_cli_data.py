"""`ecgbench data list | download | prepare | info` through cli.main, on a data root that links
to the real samples in ../shared/data (read-only; caches go to tmp_path)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ecgbench.cli import main
from ecgbench.data.datasets import catalog

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DATASETS = Path(__file__).resolve().parents[2] / "benchmark" / "data" / "datasets"


def run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def root(tmp_path) -> Path:
    if not (SHARED / "cinc2017" / "validation").is_dir():
        pytest.skip("shared CinC 2017 sample absent")
    data = tmp_path / "data"
    data.mkdir()
    (data / "cinc2017").symlink_to(SHARED / "cinc2017")
    return data


def test_catalogue_finds_every_dataset_module():
    declared = set()
    for path in DATASETS.glob("*.py"):
        match = re.search(r'^NAME\s*=\s*"([^"]+)"', path.read_text(), re.MULTILINE)
        if match and not path.name.startswith("_"):
            declared.add(match.group(1))
    entries = catalog.scan()
    assert set(entries) == declared and {"cinc2017", "ptbxl", "synthetic"} <= declared
    assert entries["ptbxl"].version == "1.0.3-p1" and entries["ptbxl"].folder == "ptb-xl"
    assert entries["cinc2017"].license == "ODC-By 1.0"


def test_data_list_is_light():
    code = ("import sys\nfrom ecgbench.cli import main\nmain(['data', 'list', '--data-root', '/nonexistent'])\n"
            "print('HEAVY', [m for m in ('torch', 'sklearn', 'mlflow', 'pandas') if m in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "HEAVY []"


def test_list_then_prepare_then_info(root, tmp_path, capsys):
    code, out, _ = run(["data", "list", "--data-root", str(root)], capsys)
    assert code == 0 and f"data root: {root}" in out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in out.splitlines() if line.startswith("| ") and "name" not in line}
    assert set(rows) == set(catalog.scan())
    assert rows["cinc2017"][4:] == [str(root / "cinc2017"), "yes", "no"]
    assert rows["cinc2017"][1] == "1.0.0-p1" and rows["cinc2017"][2].endswith("MB")
    assert rows["ptbxl"][5] == "no"

    code, out, _ = run(["data", "prepare", "cinc2017", "--root", str(root)], capsys)
    assert code == 0 and "cinc2017: 200 records, signals (200, 1, 18000) at 300 Hz" in out
    code, out, _ = run(["data", "list", "--data-root", str(root)], capsys)
    assert "| yes (1)" in out

    with open(SHARED / "cinc2017" / "REFERENCE-v3.csv", newline="") as handle:
        v3 = dict(row for row in csv.reader(handle) if row)
    ids = (SHARED / "cinc2017" / "validation" / "RECORDS").read_text().split()
    counts = {c: sum(v3[i] == c for i in ids) for c in ("N", "A", "O", "~")}
    code, out, _ = run(["data", "info", "cinc2017", "--data-root", str(root)], capsys)
    assert code == 0 and "records: 200" in out and "label_version: v3" in out
    assert "classes: " + ", ".join(f"{c} {n}" for c, n in counts.items()) in out
    code, out, _ = run(["data", "info", "cinc2017", "--data-root", str(root), "--set", "labels=folder"], capsys)
    assert "classes: N 103, A 29, O 48, ~ 20" in out  # SOURCE.md


def test_environment_variable_is_the_default_root(root, monkeypatch, capsys):
    monkeypatch.setenv("ECGBENCH_DATA", str(root))
    code, out, _ = run(["data", "list"], capsys)
    assert code == 0 and f"data root: {root}" in out


def test_info_ptbxl_matches_source_md(tmp_path, capsys):
    if not (SHARED / "ptb-xl").is_dir():
        pytest.skip("shared PTB-XL subset absent")
    code, out, _ = run(["data", "info", "ptbxl", "--data-root", str(SHARED), "--set", "allow_subset=true",
                        "--set", f"cache_dir={tmp_path}"], capsys)
    assert code == 0
    assert "records: 300" in out and "patients: 275" in out and "no_superclass: 8" in out
    folds = re.findall(r"^  (\d+): records (\d+),", out, re.MULTILINE)
    assert [int(n) for _, n in folds[:10]] == [23, 31, 24, 26, 27, 21, 25, 23, 58, 42]
    for name, n in {"NORM": 186, "MI": 43, "STTC": 50, "CD": 44, "HYP": 23}.items():
        assert re.search(rf"^  {name}: records {n},", out, re.MULTILINE), name


@pytest.mark.parametrize("action", ["info", "prepare"])
@pytest.mark.parametrize("name", ["cinc2017", "ptbxl"])
def test_absent_dataset_is_one_line_saying_how_to_get_it(tmp_path, capsys, action, name):
    code, out, err = run(["data", action, name, "--data-root", str(tmp_path)], capsys)
    assert code == 1 and not out
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"ecgbench data download {name}" in err


def test_unknown_dataset_suggests_names(capsys):
    code, _, err = run(["data", "info", "cinc2071"], capsys)
    assert code == 2 and "Did you mean" in err and "'cinc2017'" in err


def test_nothing_to_download_for_generated_data(tmp_path, capsys):
    code, _, err = run(["data", "download", "synthetic", "--data-root", str(tmp_path)], capsys)
    assert code == 2 and "nothing to download" in err


def test_unknown_download_option_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(["data", "download", "cinc2017", "--data-root", str(tmp_path), "--set", "fs=100"], capsys)
    assert code == 2 and "fs" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "cinc2017").exists()


@pytest.mark.parametrize("argv", [["data", "--help"], ["data", "list", "--help"], ["data", "info", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0 and "usage: ecgbench data" in capsys.readouterr().out
