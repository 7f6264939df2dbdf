"""The CinC 2017 loader on the 200 real recordings in ../shared/data/cinc2017 (validation/ of the
sample2017 release, headers that plain wfdb rejects) and the full v3 label file; bad input on
fixture copies of real records in tmp_path; the downloader against a local HTTP server serving a
PhysioNet-style tree whose training2017.zip is built here from three real records (the real zip
is not available offline), in the release's layout (training2017/ with RECORDS, REFERENCE.csv).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import shutil
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from ecgbench.core.config import ConfigError, RunFailed
from ecgbench.data.datasets import cinc2017, load_dataset
from ecgbench.data.datasets.download import ChecksumMismatch

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "cinc2017"
SAMPLE = SHARED / "validation"
pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared CinC 2017 sample absent")


def reference(path: Path) -> dict[str, str]:
    """An independent read of a record,label csv."""
    with open(path, newline="") as handle:
        return {row[0].strip(): row[1].strip() for row in csv.reader(handle) if row}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cinc2017-cache")


@pytest.fixture(scope="module")
def v3(cache):
    return cinc2017.load(SHARED.parent, cache_dir=cache)


@pytest.fixture(scope="module")
def early(cache):
    return cinc2017.load(SHARED.parent, labels="folder", cache_dir=cache)


# ----- the real sample ---------------------------------------------------------------------------
def test_counts_lengths_and_rate_match_source_md(early):
    meta = early.meta
    assert len(early) == 200 and early.fs == 300 and early.lead_names == ("I",)
    assert meta["label"].value_counts().to_dict() == {"N": 103, "O": 48, "A": 29, "~": 20}
    assert meta["record_id"].tolist() == (SAMPLE / "RECORDS").read_text().split()
    assert (meta["label_version"] == "folder").all()
    assert 10 <= meta["seconds"].min() and meta["seconds"].max() <= 60
    assert early.signals.shape == (200, 1, int(meta["n_samples"].max())) == (200, 1, 18000)
    assert early.signals.dtype == np.float32


def test_lengths_are_the_headers(early):
    for record_id, n in zip(early.meta["record_id"], early.meta["n_samples"]):
        header = (SAMPLE / f"{record_id}.hea").read_text().split()
        assert int(header[3]) == n


def test_v3_labels_are_the_third_revision(v3, early):
    expected = reference(SHARED / "REFERENCE-v3.csv")
    assert v3.meta["label"].tolist() == [expected[r] for r in v3.meta["record_id"]]
    assert (v3.meta["label_version"] == "v3").all()
    by_id = dict(zip(early.meta["record_id"], early.meta["label"]))
    assert by_id["A00005"] == "O" and expected["A00005"] == "A"  # the revision SOURCE.md names
    assert v3.version != early.version and "-v3-" in v3.version


def test_full_v3_label_file_counts():
    counts = pd.Series(cinc2017.read_labels(SHARED / "REFERENCE-v3.csv")).value_counts().to_dict()
    assert counts == {"N": 5076, "O": 2415, "A": 758, "~": 279}


def test_signals_are_mv_from_val_and_zero_padded(early):
    for index in (0, 3, 57, 199):
        record_id, n = early.meta.loc[index, ["record_id", "n_samples"]]
        val = scipy.io.loadmat(SAMPLE / f"{record_id}.mat")["val"][0]
        np.testing.assert_allclose(early.signals[index, 0, :n], val / 1000.0, rtol=0, atol=1e-6)
        assert not early.signals[index, 0, n:].any()


def test_values_equal_wfdb_once_the_date_is_dropped(tmp_path, early):
    """SOURCE.md: wfdb rejects the headers; with the fields after the sample count removed it
    reads the same values as our parser."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import wfdb
    record_id = "A00013"
    lines = (SAMPLE / f"{record_id}.hea").read_text().splitlines()
    with pytest.raises(Exception):
        wfdb.rdrecord(str(SAMPLE / record_id))
    (tmp_path / f"{record_id}.hea").write_text("\n".join([" ".join(lines[0].split()[:4]), *lines[1:]]) + "\n")
    shutil.copy(SAMPLE / f"{record_id}.mat", tmp_path)
    physical = wfdb.rdrecord(str(tmp_path / record_id)).p_signal[:, 0]
    index = int(np.flatnonzero(early.meta["record_id"] == record_id)[0])
    np.testing.assert_allclose(early.signals[index, 0, : len(physical)], physical, atol=1e-6)


def test_patient_is_the_record(early):
    assert early.meta["patient_id"].tolist() == [int(r[1:]) for r in early.meta["record_id"]]
    assert early.meta["patient_id"].is_unique


def test_split_is_stratified_70_15_15(v3):
    meta = v3.meta
    for label, group in meta.groupby("label"):
        counts = group["split"].value_counts()
        n = len(group)
        assert counts.get("train", 0) == round(0.7 * n), label
        assert counts.get("val", 0) == round(0.15 * n), label
        assert counts.get("test", 0) == n - round(0.7 * n) - round(0.15 * n), label


def test_split_is_deterministic_and_seeded(v3):
    ids, labels = v3.meta["record_id"], v3.meta["label"]
    first = cinc2017.stratified_split(ids, labels, 0)
    assert (first == v3.meta["split"].to_numpy()).all()
    order = np.random.default_rng(1).permutation(len(ids))  # row order does not matter
    shuffled = cinc2017.stratified_split(ids[order].reset_index(drop=True),
                                         labels[order].reset_index(drop=True), 0)
    assert dict(zip(ids[order], shuffled)) == dict(zip(ids, first))
    other = cinc2017.stratified_split(ids, labels, 1)
    assert (other != first).sum() > 20


def test_split_seed_option_changes_version(cache, v3):
    reseeded = cinc2017.load(SHARED.parent, split_seed="1", cache_dir=cache)
    assert reseeded.version != v3.version
    assert (reseeded.meta["split"] != v3.meta["split"]).any()


def test_second_load_reads_the_cache(cache, v3, monkeypatch):
    monkeypatch.setattr(cinc2017, "read_record", lambda *a: pytest.fail("records re-read"))
    again = cinc2017.load(SHARED.parent, cache_dir=cache)
    assert again.version == v3.version
    np.testing.assert_array_equal(again.signals, v3.signals)
    pd.testing.assert_frame_equal(again.meta, v3.meta)


def test_layouts_and_load_dataset(cache, v3):
    assert cinc2017.find_records(SHARED.parent) == SAMPLE  # root/cinc2017/validation
    assert cinc2017.find_records(SHARED) == SAMPLE  # root/validation
    assert cinc2017.find_records(SAMPLE) == SAMPLE  # the record folder itself
    loaded = load_dataset("cinc2017", SHARED.parent, {"cache_dir": cache})
    assert loaded.version == v3.version


def test_info(cache):
    info = cinc2017.info(SHARED.parent, labels="folder", cache_dir=cache)
    assert info["records"] == 200 and info["label_version"] == "folder"
    assert info["classes"] == {"N": 103, "A": 29, "O": 48, "~": 20}
    assert sum(sum(s.values()) for s in info["splits"].values()) == 200
    assert info["seconds"]["max"] == 60.0


# ----- bad input on fixture copies ---------------------------------------------------------------
RECORDS = ("A00001", "A00004", "A00013")


def make_release(root: Path, records=RECORDS, folder: str = "training2017") -> Path:
    """root/cinc2017/<folder>/ with real records, RECORDS, REFERENCE.csv; REFERENCE-v3.csv above."""
    target = root / "cinc2017" / folder
    target.mkdir(parents=True)
    labels = reference(SAMPLE / "REFERENCE.csv")
    for name in records:
        for suffix in (".hea", ".mat"):
            shutil.copy(SAMPLE / f"{name}{suffix}", target)
    (target / "RECORDS").write_text("\n".join(records) + "\n")
    (target / "REFERENCE.csv").write_text("".join(f"{r},{labels[r]}\r\n" for r in records))
    v3 = reference(SHARED / "REFERENCE-v3.csv")
    (root / "cinc2017" / "REFERENCE-v3.csv").write_text("".join(f"{r},{v3[r]}\n" for r in sorted(v3)))
    return target


def load_error(root: Path, **options) -> str:
    with pytest.raises((RunFailed, ConfigError)) as error:  # a bad option value is a ConfigError (exit 2)
        cinc2017.load(root, cache_dir=root / "cache", **options)
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    assert not list((root / "cache").glob("cinc2017-prepared-*")), "a failed load left a cache"
    return message


def test_fixture_release_loads(tmp_path):
    make_release(tmp_path)
    data = cinc2017.load(tmp_path, cache_dir=tmp_path / "cache")
    assert data.meta["record_id"].tolist() == list(RECORDS)
    assert data.signals.shape == (3, 1, 9000)


def test_truncated_mat(tmp_path):
    folder = make_release(tmp_path)
    path = folder / "A00004.mat"
    path.write_bytes(path.read_bytes()[:500])
    message = load_error(tmp_path)
    assert str(path) in message and "unreadable .mat" in message


def test_missing_header_and_allow_subset(tmp_path):
    folder = make_release(tmp_path)
    (folder / "A00004.hea").unlink()
    message = load_error(tmp_path)
    assert str(folder / "A00004.hea") in message and "allow_subset" in message
    subset = cinc2017.load(tmp_path, allow_subset="true", cache_dir=tmp_path / "cache")
    assert subset.meta["record_id"].tolist() == ["A00001", "A00013"]


def test_header_data_length_mismatch(tmp_path):
    folder = make_release(tmp_path)
    header = folder / "A00013.hea"
    header.write_text(header.read_text().replace("A00013 1 300 9000", "A00013 1 300 9100"))
    message = load_error(tmp_path)
    assert str(folder / "A00013.mat") in message and "9000 samples" in message and "9100" in message


def test_wrong_sampling_rate(tmp_path):
    folder = make_release(tmp_path)
    header = folder / "A00001.hea"
    header.write_text(header.read_text().replace("A00001 1 300 ", "A00001 1 250 "))
    message = load_error(tmp_path)
    assert str(header) in message and "250 Hz" in message and "300 Hz" in message


def test_nan_samples(tmp_path):
    folder = make_release(tmp_path)
    val = scipy.io.loadmat(folder / "A00001.mat")["val"].astype(float)
    val[0, 100:103] = np.nan
    scipy.io.savemat(folder / "A00001.mat", {"val": val})
    message = load_error(tmp_path)
    assert str(folder / "A00001.mat") in message and "3 NaN" in message


def test_mat_without_val(tmp_path):
    folder = make_release(tmp_path)
    scipy.io.savemat(folder / "A00001.mat", {"signal": np.zeros((1, 9000))})
    assert "no variable 'val'" in load_error(tmp_path)


def test_garbage_header(tmp_path):
    folder = make_release(tmp_path)
    (folder / "A00004.hea").write_text("hello\n")
    message = load_error(tmp_path)
    assert str(folder / "A00004.hea") in message and "not a WFDB header" in message


@pytest.mark.parametrize("labels", ["v3", "folder"])
def test_label_file_missing(tmp_path, labels):
    folder = make_release(tmp_path)
    (folder / "REFERENCE.csv").unlink()
    (tmp_path / "cinc2017" / "REFERENCE-v3.csv").unlink()
    message = load_error(tmp_path, labels=labels)
    assert "REFERENCE" in message and "missing" in message


@pytest.mark.parametrize("line, problem", [
    ("A00004,A,extra", "expected 'A01234,<class>'"),
    ("4,A", "expected 'A01234,<class>'"),
    ("A00004,X", "unknown class 'X'"),
    ("A00001,N", "labelled twice"),
])
def test_label_file_malformed(tmp_path, line, problem):
    folder = make_release(tmp_path)
    path = folder / "REFERENCE.csv"
    path.write_text(path.read_text().replace("A00004,A", line))
    message = load_error(tmp_path, labels="folder")
    assert f"{path}:2" in message and problem in message


def test_record_without_label(tmp_path):
    make_release(tmp_path)
    path = tmp_path / "cinc2017" / "REFERENCE-v3.csv"
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines()
                            if not line.startswith("A00013")))
    message = load_error(tmp_path)
    assert str(path) in message and "no label for A00013" in message


def test_absent_dataset_says_how_to_get_it(tmp_path):
    message = load_error(tmp_path)
    assert "ecgbench data download cinc2017" in message


@pytest.mark.parametrize("options, problem", [
    ({"labels": "v9"}, "labels must be one of"),
    ({"split_seed": "x"}, "split_seed must be an integer"),
    ({"fs": 100}, "unknown option"),
])
def test_bad_options(tmp_path, options, problem):
    make_release(tmp_path)
    assert problem in load_error(tmp_path, **options)


def test_changed_labels_get_a_new_cache(tmp_path):
    folder = make_release(tmp_path)
    first = cinc2017.load(tmp_path, labels="folder", cache_dir=tmp_path / "cache")
    path = folder / "REFERENCE.csv"
    path.write_text(path.read_text().replace("A00004,A", "A00004,O"))
    second = cinc2017.load(tmp_path, labels="folder", cache_dir=tmp_path / "cache")
    assert second.version != first.version
    assert first.meta["label"].tolist()[1] == "A"
    assert second.meta["label"].tolist() == [first.meta["label"][0], "O", first.meta["label"][2]]


# ----- what the cache was built from, and what the data are --------------------------------------
def test_fingerprint_names_the_content(v3, early):
    assert len(v3.fingerprint) == 12 and v3.version == f"{cinc2017.VERSION}-v3-{v3.fingerprint}"
    assert early.fingerprint != v3.fingerprint  # other labels, same signals


def test_an_overwritten_mat_is_read_again(tmp_path):
    folder = make_release(tmp_path)
    first = cinc2017.load(tmp_path, cache_dir=tmp_path / "cache")
    shutil.copy(folder / "A00013.mat", folder / "A00001.mat")  # both 9000 samples
    second = cinc2017.load(tmp_path, cache_dir=tmp_path / "cache")
    assert second.fingerprint != first.fingerprint
    np.testing.assert_array_equal(second.signals[0], first.signals[2])


def test_a_mat_truncated_after_a_load_is_found(tmp_path):
    folder = make_release(tmp_path)
    cinc2017.load(tmp_path, cache_dir=tmp_path / "cache")
    path = folder / "A00004.mat"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(RunFailed, match="A00004.mat: unreadable .mat"):
        cinc2017.load(tmp_path, cache_dir=tmp_path / "cache")


def test_a_touched_mat_rebuilds_to_the_same_data(tmp_path):
    import os

    folder = make_release(tmp_path)
    first = cinc2017.load(tmp_path, cache_dir=tmp_path / "cache")
    path = folder / "A00004.mat"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    again = cinc2017.load(tmp_path, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("cinc2017-prepared-*"))) == 2
    assert again.fingerprint == first.fingerprint


def _set_checksum(header: Path, value: int) -> None:
    record, signal = header.read_text().splitlines(keepends=True)
    fields = signal.split(" ")
    assert fields[6] == "0"  # the release records none
    fields[6] = str(value)
    header.write_text(record + " ".join(fields))


def test_a_recorded_checksum_is_verified(tmp_path):
    folder = make_release(tmp_path)
    total = int(scipy.io.loadmat(folder / "A00001.mat")["val"].astype(np.int64).sum())
    _set_checksum(folder / "A00001.hea", total % 65536)
    _set_checksum(folder / "A00004.hea", 1234)
    message = load_error(tmp_path)
    assert str(folder / "A00004.mat") in message and "do not match the checksum in A00004.hea" in message
    shutil.copy(SAMPLE / "A00004.hea", folder)  # none recorded again; A00001's matches
    assert len(cinc2017.load(tmp_path, cache_dir=tmp_path / "cache")) == 3


# ----- download ----------------------------------------------------------------------------------
def zip_of_release(records=RECORDS) -> bytes:
    buffer = io.BytesIO()
    labels = reference(SAMPLE / "REFERENCE.csv")
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in records:
            for suffix in (".hea", ".mat"):
                archive.write(SAMPLE / f"{name}{suffix}", f"training2017/{name}{suffix}")
        archive.writestr("training2017/RECORDS", "\n".join(records) + "\n")
        archive.writestr("training2017/REFERENCE.csv", "".join(f"{r},{labels[r]}\n" for r in records))
    return buffer.getvalue()


@pytest.fixture()
def server(tmp_path):
    """A PhysioNet-style tree served over HTTP on 127.0.0.1 from a thread."""
    tree = tmp_path / "remote" / "files" / "challenge-2017" / "1.0.0"
    tree.mkdir(parents=True)
    (tree / "training2017.zip").write_bytes(zip_of_release())
    shutil.copy(SHARED / "REFERENCE-v3.csv", tree)
    sums = "".join(f"{hashlib.sha256((tree / n).read_bytes()).hexdigest()}  {n}\n"
                   for n in ("REFERENCE-v3.csv", "training2017.zip"))
    (tree / "SHA256SUMS.txt").write_text(sums)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path / "remote"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/files/challenge-2017/1.0.0/", tree
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_verifies_unpacks_and_loads(tmp_path, server):
    url, _ = server
    root = tmp_path / "data"
    target = cinc2017.download(root, base_url=url)
    assert target == root / "cinc2017"
    assert sorted(p.name for p in (target / "training2017").iterdir()) == sorted(
        [f"{r}{s}" for r in RECORDS for s in (".hea", ".mat")] + ["RECORDS", "REFERENCE.csv"])
    assert not list(target.glob(".training2017.tmp-*"))
    data = cinc2017.load(root)
    assert len(data) == 3 and (data.meta["label_version"] == "v3").all()
    assert cinc2017.download(root, base_url=url) == target  # a second call is a no-op


def test_download_refuses_a_corrupted_zip(tmp_path, server):
    url, tree = server
    body = bytearray((tree / "training2017.zip").read_bytes())
    body[100] ^= 0xFF
    (tree / "training2017.zip").write_bytes(bytes(body))
    root = tmp_path / "data"
    with pytest.raises(RunFailed, match="training2017.zip") as error:
        cinc2017.download(root, base_url=url)
    assert isinstance(error.value, ChecksumMismatch) or "SHA-256 mismatch" in str(error.value)
    assert not (root / "cinc2017" / "training2017.zip").exists()
    assert not (root / "cinc2017" / "training2017").exists()


def test_unpack_refuses_a_zip_of_the_wrong_layout(tmp_path):
    archive = tmp_path / "training2017.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("other/A00001.hea", "x")
    with pytest.raises(RunFailed, match="expected only training2017/"):
        cinc2017.unpack(archive, tmp_path)
    assert not (tmp_path / "training2017").exists()
