"""PTB-XL loader on the real subset in ../shared/data/ptb-xl, and on broken copies in tmp_path.

The expected counts are the independently computed facts of shared/data/ptb-xl/SOURCE.md.
Bad-input fixtures copy a few real records and the real csv rows into tmp_path in the exact
release layout (records100/00000/000NN_lr.hea|.dat), then damage one thing each.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.config import ConfigError, RunFailed
from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.data.datasets import load_dataset, ptbxl

SHARED_PTBXL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "ptb-xl"
pytestmark = pytest.mark.skipif(not SHARED_PTBXL.is_dir(), reason="shared PTB-XL subset absent")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ptbxl-cache")


@pytest.fixture(scope="module")
def lr(cache):
    return ptbxl.load(SHARED_PTBXL, fs=100, allow_subset=True, cache_dir=cache)


@pytest.fixture(scope="module")
def hr(cache):
    return ptbxl.load(SHARED_PTBXL, fs=500, allow_subset=True, cache_dir=cache)


def cache_folder(cache: Path, fs: int = 100) -> Path:
    [folder] = cache.glob(f"ptbxl-prepared-{ptbxl.VERSION}-{fs}-*")
    return folder


def by_id(recordings, ecg_id: int) -> pd.Series:
    return recordings.meta.set_index("record_id").loc[ecg_id]


# ----- the real subset -------------------------------------------------------------------------
def test_100hz_shapes_and_fields(lr):
    assert lr.signals.shape == (300, 12, 1000) and lr.signals.dtype == np.float32
    assert isinstance(lr.signals, np.memmap)
    assert lr.fs == 100 and lr.name == "ptbxl"
    assert lr.lead_names == STANDARD_LEADS
    assert lr.version.startswith(f"{ptbxl.VERSION}-100-")
    assert lr.meta["record_id"].tolist() == list(range(1, 301))
    assert lr.meta["patient_id"].nunique() == 275
    assert np.isfinite(np.asarray(lr.signals)).all()


def test_500hz_is_the_100_present_records(hr):
    assert hr.signals.shape == (100, 12, 5000) and hr.fs == 500
    assert hr.meta["record_id"].tolist() == list(range(1, 101))
    assert hr.version.startswith(f"{ptbxl.VERSION}-500-")


def test_signals_are_mv_in_standard_lead_order(lr, hr):
    """Record 1, read directly: header order I II III AVR ... V6 is the standard order."""
    import wfdb

    raw, fields = wfdb.rdsamp(str(SHARED_PTBXL / "records100/00000/00001_lr"))
    assert fields["sig_name"][3] == "AVR" and fields["units"][0] == "mV"
    np.testing.assert_allclose(lr.signals[0], raw.T.astype(np.float32))
    # the two rates are the same recording: 500 Hz decimated by 5 stays close to 100 Hz
    assert np.corrcoef(hr.signals[0, 1, ::5], lr.signals[0, 1])[0, 1] > 0.9


def test_fold_and_split(lr):
    counts = lr.meta["fold"].value_counts().sort_index().tolist()
    assert counts == [23, 31, 24, 26, 27, 21, 25, 23, 58, 42]
    fold = lr.meta["fold"]
    expected = np.where(fold <= 8, "train", np.where(fold == 9, "val", "test"))
    assert (lr.meta["split"].to_numpy() == expected).all()
    patients = {s: set(lr.meta.loc[lr.meta["split"] == s, "patient_id"])
                for s in ("train", "val", "test")}
    assert not patients["train"] & patients["val"] and not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]


def test_age_and_sex(lr):
    assert lr.meta["sex"].value_counts().to_dict() == {1: 154, 0: 146}
    age = lr.meta["age"]
    assert sorted(lr.meta.loc[age.isna(), "record_id"]) == [108, 255, 256]
    assert age.min() == 17 and age.max() == 91
    row = by_id(lr, 1)
    assert row["age"] == 56 and row["sex"] == 1 and row["patient_id"] == 15709 and row["fold"] == 3


@pytest.mark.parametrize("ecg_id, classes", [
    (1, {"NORM"}),  # {'NORM': 100, 'LVOLT': 0, 'SR': 0}: LVOLT and SR are not diagnostic
    (8, {"MI"}),  # {'IMI': 35, 'ABQRS': 0, 'SR': 0}: likelihood 35 still counts
    (17, set()),  # {'AFLT': 100, 'ABQRS': 0, 'AFIB': 0}: rhythm and form only
    (39, {"MI", "STTC"}),  # IMI 15, LNGQT, NST_, DIG
    (45, {"CD", "HYP"}),  # IRBBB, RAO/RAE, RVH
])
def test_superclasses_of_hand_checked_rows(lr, ecg_id, classes):
    row = by_id(lr, ecg_id)
    assert {c for c in ptbxl.SUPERCLASSES if row[c] == 1} == classes
    assert row["n_superclasses"] == len(classes)


def test_superclass_counts(lr):
    meta = lr.meta
    assert meta[list(ptbxl.SUPERCLASSES)].sum().to_dict() == \
        {"NORM": 186, "MI": 43, "STTC": 50, "CD": 44, "HYP": 23}
    assert (meta["n_superclasses"] == 0).sum() == 8
    assert (meta["n_superclasses"] == 1).sum() == 249
    fold10 = meta[meta["fold"] == 10][list(ptbxl.SUPERCLASSES)].sum().to_dict()
    assert fold10 == {"NORM": 26, "MI": 7, "STTC": 8, "CD": 6, "HYP": 4}


def test_info_matches_source_md(lr, cache):
    info = ptbxl.info(SHARED_PTBXL, fs=100, allow_subset=True, cache_dir=cache)
    assert info["records"] == 300 and info["patients"] == 275
    assert [info["folds"][f]["records"] for f in range(1, 11)] == \
        [23, 31, 24, 26, 27, 21, 25, 23, 58, 42]
    assert {c: v["records"] for c, v in info["superclasses"].items()} == \
        {"NORM": 186, "MI": 43, "STTC": 50, "CD": 44, "HYP": 23}
    assert info["no_superclass"] == 8
    assert info["single_superclass"] == {"NORM": 182, "STTC": 24, "CD": 21, "MI": 18, "HYP": 4}
    assert info["splits"]["test"]["records"] == 42 and info["missing_age"] == 3
    assert all(v["patients"] <= v["records"] for v in info["folds"].values())


def test_data_root_layout_and_load_dataset(cache, lr):
    """The release may sit at ``<data root>/ptb-xl``; load_dataset passes the options through."""
    again = load_dataset("ptbxl", SHARED_PTBXL.parent,
                         {"fs": 100, "allow_subset": True, "cache_dir": cache})
    assert again.version == lr.version and len(again) == 300


def test_second_load_reads_the_cache(cache, lr, monkeypatch):
    def fail(*args):
        raise AssertionError("records re-read although the cache is complete")

    monkeypatch.setattr(ptbxl, "read_record", fail)
    again = ptbxl.load(SHARED_PTBXL, fs=100, allow_subset=True, cache_dir=cache)
    assert again.version == lr.version
    pd.testing.assert_frame_equal(again.meta, lr.meta)
    folder = cache_folder(cache, fs=100)
    names = sorted(p.name for p in folder.iterdir())
    assert names[0] == "done.json" and names[2:] == ["meta.csv", "signals.npy"]
    assert names[1].startswith("manifest-") and names[1].endswith(".json")


def test_subset_without_allow_subset_is_an_error(cache):
    message = r"records500/00000/00101_hr\.hea: missing, and 200 of 300 records"
    with pytest.raises(RunFailed, match=message):
        ptbxl.load(SHARED_PTBXL, fs=500, cache_dir=cache)


@pytest.mark.parametrize("options, problem", [
    ({"fs": 250}, "fs must be 100 or 500"),
    ({"fs": "fast"}, "fs must be 100 or 500"),
    ({"sampling_rate": 100}, r"unknown option\(s\) \['sampling_rate'\]"),
])
def test_bad_options(cache, options, problem):
    with pytest.raises((RunFailed, ConfigError), match=problem):  # a bad value: ConfigError (exit 2)
        ptbxl.load(SHARED_PTBXL, cache_dir=cache, **options)


def test_options_as_strings(cache, hr):
    again = ptbxl.load(SHARED_PTBXL, fs="500", allow_subset="true", cache_dir=cache)
    assert again.version == hr.version


# ----- broken copies in tmp_path ---------------------------------------------------------------
def make_release(root: Path, ids=(1, 2, 3), fs: int = 100) -> Path:
    """A tiny release: the real header + rows ``ids`` of the database, the real statements, and
    the records of ``ids`` at ``fs`` (one line per row: the real file has no quoted newlines)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = (SHARED_PTBXL / "ptbxl_database.csv").read_text().splitlines(keepends=True)
    (root / "ptbxl_database.csv").write_text(lines[0] + "".join(lines[i] for i in ids))
    shutil.copy(SHARED_PTBXL / "scp_statements.csv", root)
    folder, suffix = ("records100", "lr") if fs == 100 else ("records500", "hr")
    (root / folder / "00000").mkdir(parents=True)
    for i in ids:
        for ext in ("hea", "dat"):
            name = f"{folder}/00000/{i:05d}_{suffix}.{ext}"
            shutil.copy(SHARED_PTBXL / name, root / name)
    return root


def load_error(root: Path, tmp_path: Path, **options) -> str:
    with pytest.raises(RunFailed) as caught:
        ptbxl.load(root, cache_dir=tmp_path / "cache", **options)
    message = str(caught.value)
    assert "\n" not in message
    assert not list((tmp_path / "cache").rglob("done.json")), "a failed load left a done cache"
    return message


def edit_database(root: Path, old: str, new: str) -> None:
    path = root / "ptbxl_database.csv"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def write_samples(stem: Path, samples: np.ndarray) -> None:
    """Format-16 samples ``(T, 12)`` into ``stem.dat``, with the header's checksums to match."""
    samples.astype("<i2").tofile(f"{stem}.dat")
    lines = Path(f"{stem}.hea").read_text().splitlines(keepends=True)
    for lead in range(12):
        fields = lines[1 + lead].split(" ")
        fields[6] = str(int(samples[:, lead].astype(np.int64).sum()) % 65536)
        lines[1 + lead] = " ".join(fields)
    Path(f"{stem}.hea").write_text("".join(lines))


def test_fixture_release_loads(tmp_path):
    rec = ptbxl.load(make_release(tmp_path / "r"), cache_dir=tmp_path / "cache")
    assert rec.signals.shape == (3, 12, 1000) and rec.meta["record_id"].tolist() == [1, 2, 3]


def test_age_placeholder_300_becomes_nan(tmp_path):
    root = make_release(tmp_path / "r")
    edit_database(root, "2,13243.0,19.0,", "2,13243.0,300.0,")
    meta = ptbxl.load(root, cache_dir=tmp_path / "cache").meta
    assert np.isnan(meta["age"][1]) and meta["age"][0] == 56


@pytest.mark.parametrize("name", ["ptbxl_database.csv", "scp_statements.csv"])
def test_missing_csv_says_how_to_get_the_dataset(tmp_path, name):
    root = make_release(tmp_path / "r")
    (root / name).unlink()
    message = load_error(root, tmp_path)
    assert name in message and "ecgbench data download ptbxl" in message


def test_missing_header_is_named(tmp_path):
    root = make_release(tmp_path / "r")
    (root / "records100/00000/00003_lr.hea").unlink()
    assert "00003_lr.hea: missing, and 1 of 3 records" in load_error(root, tmp_path)


def test_duplicate_ecg_id(tmp_path):
    root = make_release(tmp_path / "r")
    edit_database(root, "2,13243.0,19.0,", "1,13243.0,19.0,")
    assert "ptbxl_database.csv: ecg_id 1 appears 2 times" in load_error(root, tmp_path)


def test_missing_record_names_file_and_count(tmp_path):
    root = make_release(tmp_path / "r")
    (root / "records100/00000/00002_lr.dat").unlink()
    message = load_error(root, tmp_path)
    assert "00002_lr.dat: missing, and 1 of 3 records" in message
    subset = ptbxl.load(root, allow_subset=True, cache_dir=tmp_path / "cache")
    assert subset.meta["record_id"].tolist() == [1, 3]


def test_500hz_header_under_records100(tmp_path):
    root = make_release(tmp_path / "r")
    stem = root / "records100/00000/00001_lr"
    hr = SHARED_PTBXL / "records500/00000/00001_hr"
    shutil.copy(f"{hr}.dat", f"{stem}.dat")
    Path(f"{stem}.hea").write_text(Path(f"{hr}.hea").read_text().replace("00001_hr", "00001_lr"))
    message = load_error(root, tmp_path)
    assert "00001_lr.hea" in message and "500 Hz" in message and "records100" in message


def test_record_not_10_seconds(tmp_path):
    root = make_release(tmp_path / "r")
    hea = root / "records100/00000/00002_lr.hea"
    hea.write_text(hea.read_text().replace("00002_lr 12 100 1000", "00002_lr 12 100 900", 1))
    message = load_error(root, tmp_path)
    assert "00002_lr.dat: 900 samples (9 s), expected 1000 (10 s" in message


@pytest.mark.parametrize("size", [12_000, 11_999, 0])
def test_truncated_dat(tmp_path, size):
    root = make_release(tmp_path / "r")
    dat = root / "records100/00000/00003_lr.dat"
    with open(dat, "r+b") as handle:
        handle.truncate(size)
    message = load_error(root, tmp_path)
    assert "00003_lr.dat" in message and "truncated" in message


def test_nan_samples(tmp_path):
    root = make_release(tmp_path / "r")
    stem = root / "records100/00000/00001_lr"
    samples = np.fromfile(f"{stem}.dat", "<i2").reshape(-1, 12)
    samples[500, 3] = -32768  # format 16's missing-value code, which wfdb reads as NaN
    write_samples(stem, samples)
    message = load_error(root, tmp_path)
    assert "00001_lr.dat: 1 NaN samples (first in lead AVR)" in message


def test_unparsable_scp_codes(tmp_path):
    root = make_release(tmp_path / "r")
    edit_database(root, "\"{'NORM': 80.0, 'SBRAD': 0.0}\"", "\"{'NORM': 80.0, 'SBRAD'\"")
    message = load_error(root, tmp_path)
    assert "ptbxl_database.csv" in message and "scp_codes of ecg_id 2" in message


def test_database_missing_columns(tmp_path):
    root = make_release(tmp_path / "r")
    table = pd.read_csv(root / "ptbxl_database.csv")
    table.drop(columns=["strat_fold", "scp_codes"]).to_csv(root / "ptbxl_database.csv", index=False)
    message = load_error(root, tmp_path)
    assert "ptbxl_database.csv: missing required columns ['scp_codes', 'strat_fold']" in message


def test_changed_source_gets_a_new_cache(tmp_path):
    root = make_release(tmp_path / "r")
    first = ptbxl.load(root, cache_dir=tmp_path / "cache")
    edit_database(root, "2,13243.0,19.0,", "2,13243.0,20.0,")
    second = ptbxl.load(root, cache_dir=tmp_path / "cache")
    assert first.version != second.version and second.meta["age"][1] == 20


def test_lead_names_other_than_the_standard_twelve(tmp_path):
    root = make_release(tmp_path / "r")
    hea = root / "records100/00000/00001_lr.hea"
    hea.write_text(hea.read_text().replace(" AVF\n", " X1\n"))
    message = load_error(root, tmp_path)
    assert "00001_lr.hea: leads" in message and "X1" in message


def test_garbage_header(tmp_path):
    root = make_release(tmp_path / "r")
    (root / "records100/00000/00002_lr.hea").write_text("this is not a header\n")
    assert "00002_lr.dat: unreadable by wfdb" in load_error(root, tmp_path)


@pytest.mark.parametrize("old, new, problem", [
    (",3,records100/00000/00001_lr", ",11,records100/00000/00001_lr",
     "strat_fold 11 in data row 1"),
    ("1,15709.0,", "1,,", "patient_id empty in data row 1"),
    ("1,15709.0,56.0,1,", "1,15709.0,56.0,2,", "sex '2' in data row 1"),
    ("1,15709.0,56.0,", "1,15709.0,abc,", "age 'abc' in data row 1 is not a number of years"),
    ("1,15709.0,56.0,", "1,15709.0,-4,", "age '-4' in data row 1"),
])
def test_bad_database_values(tmp_path, old, new, problem):
    root = make_release(tmp_path / "r")
    edit_database(root, old, new)
    message = load_error(root, tmp_path)
    assert "ptbxl_database.csv" in message and problem in message


def test_unwritable_cache_folder_is_one_line(tmp_path):
    root = make_release(tmp_path / "r")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunFailed, match="cannot create the cache folder.*pass cache_dir"):
        ptbxl.load(root, cache_dir=tmp_path / "a-file")


def test_stale_temp_of_a_killed_preparation_is_removed(tmp_path):
    root = make_release(tmp_path / "r")
    first = ptbxl.load(root, cache_dir=tmp_path / "cache")
    folder = cache_folder(tmp_path / "cache")
    (folder / "done.json").unlink()
    stale = folder / "signals.tmp-999999999.npy"  # above any Linux pid_max: never alive
    stale.write_bytes(b"half")
    again = ptbxl.load(root, cache_dir=tmp_path / "cache")
    assert not stale.exists() and (folder / "done.json").exists()
    np.testing.assert_array_equal(np.asarray(again.signals), np.asarray(first.signals))


# ----- what the cache was built from, and what the data are ------------------------------------
def test_fingerprint_names_the_content(lr, hr):
    assert len(lr.fingerprint) == 12 and lr.version == f"{ptbxl.VERSION}-100-{lr.fingerprint}"
    assert hr.fingerprint != lr.fingerprint


def test_a_copied_tree_is_read_again_but_keeps_its_fingerprint(tmp_path):
    root = make_release(tmp_path / "r")
    first = ptbxl.load(root, cache_dir=tmp_path / "cache")
    copy = shutil.copytree(root, tmp_path / "copy", copy_function=shutil.copy)  # new mtimes
    again = ptbxl.load(copy, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("ptbxl-prepared-*"))) == 2
    assert (again.fingerprint, again.version) == (first.fingerprint, first.version)


def test_an_overwritten_record_is_read_again(tmp_path):
    """Record 1 replaced by record 2 (header and signals, both consistent): new data, new key."""
    root = make_release(tmp_path / "r")
    first = ptbxl.load(root, cache_dir=tmp_path / "cache")
    folder = root / "records100/00000"
    shutil.copy(folder / "00002_lr.dat", folder / "00001_lr.dat")
    (folder / "00001_lr.hea").write_text((folder / "00002_lr.hea").read_text().replace("00002_lr", "00001_lr"))
    second = ptbxl.load(root, cache_dir=tmp_path / "cache")
    assert second.fingerprint != first.fingerprint and second.version != first.version
    np.testing.assert_array_equal(second.signals[0], first.signals[1])


@pytest.mark.parametrize("damage", ["overwrite", "truncate"])
def test_a_damaged_dat_after_a_load_is_found_not_served_from_the_cache(tmp_path, damage):
    root = make_release(tmp_path / "r")
    ptbxl.load(root, cache_dir=tmp_path / "cache")
    dat = root / "records100/00000/00001_lr.dat"
    if damage == "overwrite":  # same size, other samples: only the checksums can tell
        shutil.copy(root / "records100/00000/00002_lr.dat", dat)
    else:
        with open(dat, "r+b") as handle:
            handle.truncate(10_000)
    with pytest.raises(RunFailed) as caught:
        ptbxl.load(root, cache_dir=tmp_path / "cache")
    assert "00001_lr.dat" in str(caught.value) and "\n" not in str(caught.value)


def test_touching_a_source_file_rebuilds_to_the_same_data(tmp_path):
    root = make_release(tmp_path / "r")
    first = ptbxl.load(root, cache_dir=tmp_path / "cache")
    dat = root / "records100/00000/00003_lr.dat"
    os.utime(dat, ns=(dat.stat().st_atime_ns, dat.stat().st_mtime_ns + 10**9))
    again = ptbxl.load(root, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("ptbxl-prepared-*"))) == 2
    assert again.fingerprint == first.fingerprint


def test_a_sample_changed_in_place_fails_its_checksum(tmp_path):
    root = make_release(tmp_path / "r")
    dat = root / "records100/00000/00002_lr.dat"
    samples = np.fromfile(dat, "<i2")
    samples[100 * 12 + 1] += 7  # lead II at sample 100
    samples.tofile(dat)
    message = load_error(root, tmp_path)
    assert "00002_lr.dat: samples of lead II do not match the checksum in 00002_lr.hea" in message


def _swap_lines(hea: Path, first: int, second: int) -> None:
    lines = hea.read_text().splitlines(keepends=True)
    lines[first], lines[second] = lines[second], lines[first]
    hea.write_text("".join(lines))


def test_lead_lines_out_of_order_with_the_data_are_refused(tmp_path):
    """The header lists V1 where the data hold lead I and vice versa: the checksums disagree."""
    root = make_release(tmp_path / "r")
    _swap_lines(root / "records100/00000/00003_lr.hea", 1, 7)  # signal lines 0 (I) and 6 (V1)
    message = load_error(root, tmp_path)
    assert "00003_lr.dat: samples of lead V1 do not match the checksum" in message


def test_a_record_stored_in_another_lead_order_is_put_in_standard_order(tmp_path):
    root = make_release(tmp_path / "r")
    reference = ptbxl.load(root, cache_dir=tmp_path / "cache")
    stem = root / "records100/00000/00003_lr"
    samples = np.fromfile(f"{stem}.dat", "<i2").reshape(-1, 12)
    samples[:, [0, 6]] = samples[:, [6, 0]]  # data and header lines both swapped: a valid record
    samples.tofile(f"{stem}.dat")
    _swap_lines(Path(f"{stem}.hea"), 1, 7)
    reordered = ptbxl.load(root, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(np.asarray(reordered.signals), np.asarray(reference.signals))


def test_every_real_record_matches_its_header_checksums():
    """The 400 real records (both rates) all pass the check the loader makes."""
    stems = sorted(SHARED_PTBXL.glob("records*/*/*.hea"))
    assert len(stems) == 400
    for hea in stems:
        fs = 100 if hea.parent.parent.name == "records100" else 500
        ptbxl.read_record(hea.with_suffix(""), fs)


# ----- a cache hit: one scan of the record folders, nothing parsed or hashed again -------------
def old_key(source: Path, fs: int, stems: list[str]) -> str:
    """The key as 762b7ae computed it on every load (every header read, every .dat stat'ed)."""
    from ecgbench.data.datasets import prepared

    return prepared.build_key(
        fs=fs, csv=prepared.digest_files([source / "ptbxl_database.csv", source / "scp_statements.csv"], source),
        headers=prepared.digest_files([source / f"{stem}.hea" for stem in stems], source),
        signals=prepared.stamps([source / f"{stem}.dat" for stem in stems], source))


@pytest.mark.parametrize("fs", [100, 500])
def test_the_cache_folder_is_the_one_the_old_key_named(lr, hr, cache, fs):
    """Same key as before the manifest, so caches prepared before are hits, with their data."""
    loaded = lr if fs == 100 else hr
    key = old_key(SHARED_PTBXL, fs, list(loaded.meta["filename"]))
    assert cache_folder(cache, fs).name == f"ptbxl-prepared-{ptbxl.VERSION}-{fs}-{key}"


class Spy:
    """Fails on a record read or a database parse; counts the files digest_files reads."""

    def __init__(self, monkeypatch):
        from ecgbench.data.datasets import prepared

        self.digested: list[str] = []
        original = prepared.digest_files

        def digest(paths, root):
            paths = list(paths)
            self.digested += [Path(p).name for p in paths]
            return original(paths, root)

        monkeypatch.setattr(prepared, "digest_files", digest)
        monkeypatch.setattr(ptbxl, "read_record", no_record_reads)
        monkeypatch.setattr(ptbxl, "read_metadata", no_record_reads)


def no_record_reads(*args):
    raise AssertionError("records re-read or database parsed on a cache hit")


def manifests(cache: Path) -> list[Path]:
    return sorted(cache.glob("ptbxl-prepared-*/manifest-*.json"))


def test_a_hit_reads_only_the_two_csv_files(tmp_path, monkeypatch):
    root = make_release(tmp_path / "r")
    first = ptbxl.load(root, cache_dir=tmp_path / "cache")
    spy = Spy(monkeypatch)
    again = ptbxl.load(root, cache_dir=tmp_path / "cache")
    assert spy.digested == ["ptbxl_database.csv", "scp_statements.csv"]
    assert again.version == first.version
    pd.testing.assert_frame_equal(again.meta, first.meta)


def test_a_cache_without_a_manifest_is_a_hit_and_gets_one(tmp_path, monkeypatch):
    """A cache prepared before manifests existed (or whose manifest is damaged)."""
    root = make_release(tmp_path / "r")
    first = ptbxl.load(root, cache_dir=tmp_path / "cache")
    [manifest] = manifests(tmp_path / "cache")
    manifest.write_text("{damaged")
    monkeypatch.setattr(ptbxl, "read_record", no_record_reads)
    again = ptbxl.load(root, cache_dir=tmp_path / "cache")
    assert again.version == first.version and manifests(tmp_path / "cache") == [manifest]
    spy = Spy(monkeypatch)
    ptbxl.load(root, cache_dir=tmp_path / "cache")
    assert spy.digested == ["ptbxl_database.csv", "scp_statements.csv"]


def test_a_touched_header_is_read_again_then_remembered(tmp_path, monkeypatch):
    root = make_release(tmp_path / "r")
    first = ptbxl.load(root, cache_dir=tmp_path / "cache")
    hea = root / "records100/00000/00002_lr.hea"
    os.utime(hea, ns=(hea.stat().st_atime_ns, hea.stat().st_mtime_ns + 10**9))
    spy = Spy(monkeypatch)
    again = ptbxl.load(root, cache_dir=tmp_path / "cache")  # same bytes: same key, no rebuild
    assert again.version == first.version and len(manifests(tmp_path / "cache")) == 1
    assert spy.digested[2:] == ["00001_lr.hea", "00002_lr.hea", "00003_lr.hea"]
    spy.digested.clear()
    ptbxl.load(root, cache_dir=tmp_path / "cache")
    assert spy.digested == ["ptbxl_database.csv", "scp_statements.csv"]


def test_an_edited_header_after_a_load_is_read_again(tmp_path):
    root = make_release(tmp_path / "r")
    ptbxl.load(root, cache_dir=tmp_path / "cache")
    hea = root / "records100/00000/00002_lr.hea"
    hea.write_text(hea.read_text().replace("00002_lr 12 100 1000", "00002_lr 12 100 900", 1))
    with pytest.raises(RunFailed, match="00002_lr.dat: 900 samples"):
        ptbxl.load(root, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("name", ["00002_lr.dat", "00002_lr.hea"])
def test_a_file_removed_after_a_load_is_named_then_added_back(tmp_path, name):
    root = make_release(tmp_path / "r")
    first = ptbxl.load(root, cache_dir=tmp_path / "cache")
    path = root / "records100/00000" / name
    kept = path.read_bytes()
    path.unlink()
    with pytest.raises(RunFailed, match=f"{name}: missing, and 1 of 3 records lack files"):
        ptbxl.load(root, cache_dir=tmp_path / "cache")
    subset = ptbxl.load(root, allow_subset=True, cache_dir=tmp_path / "cache")
    assert subset.meta["record_id"].tolist() == [1, 3]
    path.write_bytes(kept)
    whole = ptbxl.load(root, allow_subset=True, cache_dir=tmp_path / "cache")
    assert whole.meta["record_id"].tolist() == [1, 2, 3] and whole.fingerprint == first.fingerprint


def test_a_record_folder_removed_after_a_load_is_named(tmp_path):
    root = make_release(tmp_path / "r")
    ptbxl.load(root, cache_dir=tmp_path / "cache")
    shutil.rmtree(root / "records100/00000")
    with pytest.raises(RunFailed, match="00001_lr.hea: missing, and 3 of 3 records"):
        ptbxl.load(root, cache_dir=tmp_path / "cache")


def test_a_database_row_added_after_a_load_is_read(tmp_path):
    root = make_release(tmp_path / "r")
    ptbxl.load(root, cache_dir=tmp_path / "cache")
    lines = (SHARED_PTBXL / "ptbxl_database.csv").read_text().splitlines(keepends=True)
    with open(root / "ptbxl_database.csv", "a") as handle:
        handle.write(lines[4])
    with pytest.raises(RunFailed, match="00004_lr.hea: missing, and 1 of 4 records"):
        ptbxl.load(root, cache_dir=tmp_path / "cache")
    make_release(tmp_path / "four", ids=(1, 2, 3, 4))
    for ext in ("hea", "dat"):
        shutil.copy(tmp_path / f"four/records100/00000/00004_lr.{ext}", root / "records100/00000")
    assert ptbxl.load(root, cache_dir=tmp_path / "cache").meta["record_id"].tolist() == [1, 2, 3, 4]


def test_two_trees_sharing_a_cache_folder_each_keep_their_manifest(tmp_path, monkeypatch):
    root = make_release(tmp_path / "r")
    copy = shutil.copytree(root, tmp_path / "copy")  # copy2: same stamps, so the same cache
    first = ptbxl.load(root, cache_dir=tmp_path / "cache")
    second = ptbxl.load(copy, cache_dir=tmp_path / "cache")
    assert second.version == first.version and len(manifests(tmp_path / "cache")) == 2
    spy = Spy(monkeypatch)
    for tree in (root, copy, root):
        ptbxl.load(tree, cache_dir=tmp_path / "cache")
    assert spy.digested == ["ptbxl_database.csv", "scp_statements.csv"] * 3
