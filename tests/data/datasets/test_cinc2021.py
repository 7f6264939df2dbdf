"""CinC 2020/2021 loader on the 65 real records in ../shared/data, and on damaged copies in tmp_path.

Real files: cinc2021-samples (50 records, headers rewritten by torch_ecg) and cinc2021-rawheaders
(15 of them with the challenge's original headers; the 5 Georgia ones are rejected by wfdb).
Expected counts are those of their SOURCE.md files. Records of other rates and lengths (PTB at
1 kHz, INCART at 257 Hz, short Georgia records) and the A0001 naming of CinC 2020 do not exist
here: those fixtures are real sample signals re-saved with scipy.io.savemat (MATLAB v4, as the
challenge's files) under headers written in the release's exact style; the tests say so.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from ecgbench.core.config import RunFailed
from ecgbench.core.contracts import STANDARD_LEADS
from ecgbench.data.datasets import cinc2020, cinc2021
from ecgbench.data.datasets.cinc2021 import CincError

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
SAMPLES, RAW = SHARED / "cinc2021-samples", SHARED / "cinc2021-rawheaders"
pytestmark = pytest.mark.skipif(not (SAMPLES.is_dir() and RAW.is_dir()),
                                reason="shared CinC 2021 samples absent")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cinc-cache")


@pytest.fixture(scope="module")
def samples(cache):
    return cinc2021.load(SAMPLES, cache_dir=cache)


@pytest.fixture(scope="module")
def raw(cache):
    return cinc2021.load(RAW, cache_dir=cache)


def by_id(recordings):
    return recordings.meta.set_index("record_id")


# ----- the 65 real records ---------------------------------------------------------------------
def test_50_samples_shapes_sources_and_demographics(samples):
    meta = samples.meta
    assert samples.signals.shape == (50, 12, 5000) and samples.signals.dtype == np.float32
    assert isinstance(samples.signals, np.memmap) and samples.fs == 500
    assert samples.lead_names == STANDARD_LEADS and samples.name == "cinc2021"
    assert meta["record_id"].str[:2].replace({"E0": "E"}).value_counts().to_dict() == \
        {"E": 20, "HR": 10, "JS": 20}
    assert meta["source"].value_counts().to_dict() == {"georgia": 20, "ningbo": 20, "ptb-xl": 10}
    assert (meta["sex"] == 1).sum() == 27 and (meta["sex"] == 0).sum() == 23
    assert meta["age"].notna().all() and meta["age"].between(0, 110).all()
    assert meta["patient_id"].is_unique  # one record per patient: the challenge has no ids
    assert np.isfinite(np.asarray(samples.signals)).all()
    assert set(meta["split"]) <= {"train", "val", "test"}


def test_snomed_dx_counts_match_source_md(samples):
    codes = [c for dx in samples.meta["dx"] for c in dx.split(",")]
    assert all(c.isdigit() for c in codes)
    counts = {c: codes.count(c) for c in ("427084000", "284470004", "426783006", "164934002",
                                           "698252002", "426177001")}
    assert counts == {"427084000": 23, "284470004": 20, "426783006": 15, "164934002": 10,
                      "698252002": 9, "426177001": 7}
    row = by_id(samples).loc["E07500"]  # '# Dx: 67741000119109,426177001', '# Age: 78', Male
    assert (row["dx"], row["age"], row["sex"]) == ("67741000119109,426177001", 78.0, 0)


def test_ptbxl_records_map_to_ecg_ids(samples):
    meta = by_id(samples)
    hr = meta[meta["source"] == "ptb-xl"]
    assert hr.index.tolist() == [f"HR0600{i}" for i in range(10)]
    assert hr["source_record_id"].tolist() == [str(6000 + i) for i in range(10)]
    assert (meta.loc[meta["source"] != "ptb-xl", "source_record_id"] == "").all()


def test_15_original_headers_load_and_equal_the_samples(samples, raw):
    assert raw.signals.shape == (15, 12, 5000)
    ids = raw.meta["record_id"].tolist()
    assert ids == [f"E0750{i}" for i in range(5)] + [f"HR0600{i}" for i in range(5)] + \
        [f"JS2000{i}" for i in range(5)]
    rows = samples.meta["record_id"].isin(ids).to_numpy()
    np.testing.assert_array_equal(np.asarray(raw.signals), np.asarray(samples.signals)[rows])
    columns = ["record_id", "patient_id", "source", "age", "sex", "dx", "split", "source_record_id"]
    assert raw.meta[columns].equals(samples.meta.loc[rows, columns].reset_index(drop=True))


def test_wfdb_rejects_the_georgia_originals_and_our_parser_agrees_with_wfdb_elsewhere():
    wfdb = cinc2021._import_wfdb()
    rejected = []
    for path in sorted(SAMPLES.glob("*.hea")) + sorted(RAW.glob("*.hea")):
        try:
            record = wfdb.rdheader(str(path.with_suffix("")))
        except Exception:
            rejected.append(f"{path.parent.name}/{path.stem}")
            continue
        ours = cinc2021.parse_header_text(path.read_text(), path)
        assert ours == cinc2021.read_header(path), path
        assert ours.sig_len == record.sig_len and ours.fs == record.fs
    assert rejected == [f"cinc2021-rawheaders/E0750{i}" for i in range(5)]
    header = cinc2021.read_header(RAW / "E07500.hea")
    assert header.record_name == "E07500" and header.n_sig == 12 and header.sig_len == 5000
    assert header.comments[:3] == ("Age: 78", "Sex: Male", "Dx: 67741000119109,426177001")


def test_signals_are_wfdbs_physical_values_in_standard_order(samples):
    wfdb = cinc2021._import_wfdb()
    for index in (0, 20, 49):
        name = samples.meta["record_id"][index]
        record = wfdb.rdrecord(str(SAMPLES / name))
        assert list(record.sig_name) == list(STANDARD_LEADS)
        np.testing.assert_allclose(samples.signals[index], record.p_signal.T, atol=1e-6)


def test_split_is_a_seeded_hash_of_the_record_id(samples, cache):
    again = cinc2021.assign_splits(samples.meta["record_id"], seed=0)
    assert (again == samples.meta["split"].to_numpy()).all()
    other = cinc2021.load(SAMPLES, cache_dir=cache, split_seed=1)
    assert (other.meta["split"] != samples.meta["split"]).any()
    assert other.version != samples.version
    georgia = cinc2021.load(SAMPLES, cache_dir=cache, sources="georgia")
    assert len(georgia) == 20 and set(georgia.meta["source"]) == {"georgia"}
    same = by_id(samples).loc[georgia.meta["record_id"], "split"].to_numpy()
    assert (georgia.meta["split"].to_numpy() == same).all()  # a subset never moves a record


def test_prepared_cache_is_reused_and_keyed_by_the_headers(tmp_path, samples):
    tree = _copy(tmp_path / "tree", ["E07500", "HR06000"])
    first = cinc2021.load(tree, cache_dir=tmp_path / "cache")
    folders = list((tmp_path / "cache").iterdir())
    assert len(folders) == 1 and (folders[0] / "done.json").exists()
    assert cinc2021.load(tree, cache_dir=tmp_path / "cache").version == first.version
    header = tree / "E07500.hea"
    header.write_text(header.read_text().replace("# Age: 78", "# Age: 79"))
    changed = cinc2021.load(tree, cache_dir=tmp_path / "cache")
    assert changed.version != first.version and by_id(changed).loc["E07500", "age"] == 79


def test_other_rates_and_lengths_are_resampled_cropped_or_padded(tmp_path, samples):
    """Fixture (no such real file here): a 1 kHz PTB record of 12 s, a 257 Hz INCART record and
    a 6 s Georgia record in the release tree, built from sample E07500's signal."""
    val = scipy.io.loadmat(str(SAMPLES / "E07500.mat"))["val"]  # (12, 5000) int16 at 500 Hz
    tree = tmp_path / "cinc2021" / "training"
    _write(tree / "ptb" / "g1", "S0001", np.repeat(np.hstack([val, val[:, :1000]]), 2, axis=1), 1000)
    _write(tree / "st_petersburg_incart" / "g1", "I0001", val[:, :2570], 257)
    _write(tree / "georgia" / "g1", "E00001", val[:, :3000], 500)
    loaded = cinc2021.load(tmp_path, cache_dir=tmp_path / "cache")
    meta = by_id(loaded)
    assert meta.loc["S0001", ["fs_source", "seconds", "n_samples"]].tolist() == [1000, 12.0, 5000]
    assert meta.loc["I0001", ["fs_source", "seconds", "n_samples"]].tolist() == [257, 10.0, 5000]
    assert meta.loc["E00001", ["fs_source", "seconds", "n_samples"]].tolist() == [500, 6.0, 3000]
    signals = {rid: loaded.signals[i] for i, rid in enumerate(loaded.meta["record_id"])}
    assert not signals["E00001"][:, 3000:].any()  # zero-padded after the true 6 s
    original = samples.signals[0]  # E07500: the 1 kHz copy resampled back matches it
    assert np.corrcoef(signals["S0001"][1], original[1])[0, 1] > 0.99
    assert meta.loc["S0001", "source"] == "ptb" and meta.loc["S0001", "patient_id"] == 4000001
    info = cinc2021.release_info(loaded)
    assert (info["cropped"], info["zero_padded"], info["resampled"]) == (1, 1, 2)


def test_cinc2020_reads_its_a0001_naming_and_refuses_2021_sources(tmp_path):
    """Fixture (no CinC 2020 file here): a CPSC record A0001 and an HR record in the 2020 tree."""
    val = scipy.io.loadmat(str(SAMPLES / "E07500.mat"))["val"]
    tree = tmp_path / "cinc2020" / "training"
    _write(tree / "cpsc_2018" / "g1", "A0001", val, 500)
    shutil.copy(SAMPLES / "HR06000.hea", _mkdir(tree / "ptb-xl" / "g1") / "HR06000.hea")
    shutil.copy(SAMPLES / "HR06000.mat", tree / "ptb-xl" / "g1" / "HR06000.mat")
    loaded = cinc2020.load(tmp_path, cache_dir=tmp_path / "cache")
    assert loaded.name == "cinc2020" and loaded.version.startswith("1.0.2-p1-")
    assert loaded.meta["source"].tolist() == ["cpsc_2018", "ptb-xl"]
    assert cinc2020.overlaps(loaded.meta, "cinc2021").tolist() == ["A0001", "HR06000"]
    assert cinc2020.overlaps(loaded.meta, "ptbxl").tolist()[1] == "6000"
    shutil.copy(SAMPLES / "JS20000.hea", tree / "cpsc_2018" / "g1" / "JS20000.hea")
    with pytest.raises(CincError, match=r"JS20000\.hea: 'JS20000' is not a record name of cinc2020"):
        cinc2020.load(tmp_path, cache_dir=tmp_path / "cache")


# ----- bad input -------------------------------------------------------------------------------
def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _copy(folder: Path, names: list[str], source: Path = SAMPLES) -> Path:
    _mkdir(folder)
    for name in names:
        for suffix in (".hea", ".mat"):
            shutil.copy(source / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


def _write(folder: Path, name: str, val: np.ndarray, fs: int) -> None:
    """A record in the challenge's style: MATLAB v4 ``val`` and a header like the originals."""
    _mkdir(folder)
    scipy.io.savemat(str(folder / f"{name}.mat"), {"val": val}, format="4")
    lines = [f"{name} 12 {fs} {val.shape[1]} 05-May-2020 09:49:17"]
    lines += [f"{name}.mat 16+24 1000/mV 16 0 {v[0]} {_checksum(v)} 0 {lead}" for v, lead in zip(val, STANDARD_LEADS)]
    lines += ["#Age: 60", "#Sex: Female", "#Dx: 426783006", "#Rx: Unknown", "#Hx: Unknown"]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")


def _checksum(samples: np.ndarray) -> int:
    """WFDB's 16-bit checksum of one signal, as the challenge's headers record it."""
    return int(samples.astype(np.int64).sum()) % 65536


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def _nan_mat(tree: Path) -> None:
    val = scipy.io.loadmat(str(tree / "E07500.mat"))["val"].astype(np.float64)
    val[1, 100:103] = np.nan
    scipy.io.savemat(str(tree / "E07500.mat"), {"val": val}, format="4")


BAD = {
    "truncated mat": (lambda t: (t / "E07500.mat").write_bytes((t / "E07500.mat").read_bytes()[:5000]),
                      r"E07500\.mat: unreadable \.mat"),
    "missing mat": (lambda t: (t / "E07500.mat").unlink(), r"E07500\.mat: missing"),
    "length mismatch": (lambda t: _edit(t / "E07500.hea", "E07500 12 500 5000", "E07500 12 500 6000"),
                        r"E07500\.mat: holds 12 signals x 5000 samples, but E07500\.hea says 12 x 6000"),
    "missing dx": (lambda t: _edit(t / "E07500.hea", "# Dx: 67741000119109,426177001\n", ""),
                   r"E07500\.hea: no 'Dx:' comment"),
    "malformed dx": (lambda t: _edit(t / "E07500.hea", "# Dx: 67741000119109", "# Dx: AF"),
                     r"E07500\.hea: Dx 'AF,426177001' is not a list of SNOMED CT codes"),
    "wrong rate": (lambda t: _edit(t / "E07500.hea", "E07500 12 500 5000", "E07500 12 250 5000"),
                   r"E07500\.hea: sampling rate 250 Hz, but georgia records are 500 Hz"),
    "nan samples": (_nan_mat, r"E07500\.mat: 3 NaN/infinite samples \(first in lead II\)"),
    "not a header": (lambda t: (t / "E07500.hea").write_text("this is not a header\n"),
                     r"E07500\.hea: not a WFDB header"),
    "missing leads": (lambda t: _edit(t / "E07500.hea", " V6\n", " V7\n"),
                      r"E07500\.hea: leads .* are not the 12 standard leads"),
    "unknown name": (lambda t: [(t / f"E07500{s}").rename(t / f"X07500{s}") for s in (".hea", ".mat")],
                     r"X07500\.hea: 'X07500' is not a record name of cinc2021"),
    "misfiled": (lambda t: [(t / f"HR06000{s}").rename(_mkdir(t / "georgia") / f"HR06000{s}")
                            for s in (".hea", ".mat")],
                 r"georgia/HR06000\.hea: a ptb-xl record filed under georgia/"),
    "duplicate": (lambda t: _copy(t / "again", ["E07500"]), r"record E07500 appears twice"),
    "checksum": (lambda t: _resave(t / "E07500.mat", lambda val: val[4].__setitem__(2000, val[4, 2000] + 3)),
                 r"E07500\.mat: samples of lead aVL do not match the checksum in E07500\.hea"),
    "lead lines swapped": (lambda t: _swap_lines(t / "E07500.hea", 1, 2),
                           r"E07500\.mat: samples of lead II do not match the checksum"),
}


def _resave(mat: Path, change) -> None:
    val = scipy.io.loadmat(str(mat))["val"]
    change(val)
    scipy.io.savemat(str(mat), {"val": val}, format="4")


def _swap_lines(header: Path, first: int, second: int) -> None:
    lines = header.read_text().splitlines(keepends=True)
    lines[first], lines[second] = lines[second], lines[first]
    header.write_text("".join(lines))


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_the_file_and_leaves_no_cache(tmp_path, case):
    damage, message = BAD[case]
    tree = _copy(tmp_path / "tree", ["E07500", "HR06000"])
    damage(tree)
    with pytest.raises(CincError, match=message):
        cinc2021.load(tree, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.npy")) if (tmp_path / "cache").exists() else True


def test_absent_dataset_and_bad_options_are_one_line(tmp_path):
    with pytest.raises(CincError, match=r"cinc2021: missing .*`ecgbench data download cinc2021`"):
        cinc2021.load(tmp_path)
    with pytest.raises(CincError, match=r"unknown option\(s\) \['fz'\]"):
        cinc2021.load(SAMPLES, fz=100)
    with pytest.raises(CincError, match=r"unknown source\(s\) \['ptbxl'\]"):
        cinc2021.load(SAMPLES, sources="ptbxl")
    with pytest.raises(CincError, match=r"fs must be an integer >= 1"):
        cinc2021.load(SAMPLES, fs="fast")
    with pytest.raises(RunFailed, match="cannot create the cache folder"):
        cinc2021.load(SAMPLES, cache_dir="/proc/no-such-place")


# ----- what the cache was built from, and what the data are ------------------------------------
def test_fingerprint_names_the_content(samples, raw):
    assert len(samples.fingerprint) == 12 and samples.version == f"{cinc2021.VERSION}-{samples.fingerprint}"
    assert raw.fingerprint != samples.fingerprint


def test_a_same_size_mat_changed_after_a_load_is_found(tmp_path):
    tree = _copy(tmp_path / "tree", ["E07500", "E07501"])
    cinc2021.load(tree, cache_dir=tmp_path / "cache")
    assert (tree / "E07500.mat").stat().st_size == (tree / "E07501.mat").stat().st_size
    shutil.copy(tree / "E07501.mat", tree / "E07500.mat")
    with pytest.raises(CincError, match=r"E07500\.mat: samples of lead I do not match the checksum"):
        cinc2021.load(tree, cache_dir=tmp_path / "cache")


def test_a_touched_mat_rebuilds_to_the_same_data(tmp_path):
    import os

    tree = _copy(tmp_path / "tree", ["E07500", "HR06000"])
    first = cinc2021.load(tree, cache_dir=tmp_path / "cache")
    mat = tree / "HR06000.mat"
    os.utime(mat, ns=(mat.stat().st_atime_ns, mat.stat().st_mtime_ns + 10**9))
    again = cinc2021.load(tree, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2 and again.fingerprint == first.fingerprint


def test_a_record_stored_in_another_lead_order_is_put_in_standard_order(tmp_path, samples):
    tree = _copy(tmp_path / "tree", ["E07500"])
    reference = cinc2021.load(tree, cache_dir=tmp_path / "cache")
    _resave(tree / "E07500.mat", lambda val: val.__setitem__([0, 6], val[[6, 0]]))  # I <-> V1
    _swap_lines(tree / "E07500.hea", 1, 7)  # and so the header's lines: a valid record
    reordered = cinc2021.load(tree, cache_dir=tmp_path / "cache")
    assert reordered.fingerprint == reference.fingerprint
    np.testing.assert_array_equal(np.asarray(reordered.signals), np.asarray(reference.signals))


def test_every_real_record_matches_its_header_checksums(samples, raw):
    """The 65 real records all pass the loader's check (the fixtures above show it can fail)."""
    assert len(samples) + len(raw) == 65


# ----- download --------------------------------------------------------------------------------
def test_download_fetches_the_chosen_sources_verified_from_a_local_server(tmp_path):
    """A local HTTP server serves a fixture copy of the challenge-2021 tree with its
    SHA256SUMS.txt (the real listing has the same ``<sha256> training/<source>/g1/<file>``
    lines); one file is served corrupted and refused."""
    remote = tmp_path / "remote"
    _copy(remote / "training" / "georgia" / "g1", ["E07500", "E07501"])
    _copy(remote / "training" / "ptb-xl" / "g1", ["HR06000"])
    files = sorted(p for p in remote.rglob("*") if p.is_file())
    sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(remote).as_posix()}\n"
                   for p in files)
    (remote / "SHA256SUMS.txt").write_text(sums)
    handler = partial(_QuietHandler, directory=str(remote))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        target = cinc2021.download(tmp_path / "data", sources="georgia", base_url=url)
        assert sorted(p.name for p in target.rglob("*.mat")) == ["E07500.mat", "E07501.mat"]
        loaded = cinc2021.load(tmp_path / "data")
        assert loaded.meta["record_id"].tolist() == ["E07500", "E07501"]
        (remote / "training" / "ptb-xl" / "g1" / "HR06000.mat").write_bytes(b"corrupted")
        with pytest.raises(RunFailed, match=r"HR06000\.mat: SHA-256 mismatch"):
            cinc2021.download(tmp_path / "data", base_url=url)
        server.shutdown()
    assert not (target / "training" / "ptb-xl" / "g1" / "HR06000.mat").exists()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
