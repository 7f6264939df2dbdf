"""UCI HAR loader: the real label and subject files of ../shared/data/uci-har-labels with signal
files written here, and broken small trees in tmp_path.

No real ``Inertial Signals/`` file exists on this machine (the shared folder holds the labels
only; SOURCE.md). The tests therefore WRITE the nine signal files per subset as a fixture in the
exact original layout: ``UCI HAR Dataset/<subset>/Inertial Signals/<channel>_<subset>.txt``, one
window of 128 samples per line, each value printed like the release (``%15.7e`` with MATLAB's
three-digit exponent, e.g. ``  1.8085150e-004``). Their values are random; the labels, subjects
and counts are the real ones, checked against SOURCE.md.
"""

from __future__ import annotations

import io
import shutil
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ecgbench.core.config import RunFailed
from ecgbench.data.datasets import load_dataset, uci_har

SHARED_HAR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "uci-har-labels"
REAL = SHARED_HAR / "UCI HAR Dataset"
# SOURCE.md: windows per class 1-6 in each subset, windows and volunteers per subset
CLASS_COUNTS = {"train": [1226, 1073, 986, 1286, 1374, 1407], "test": [496, 471, 420, 491, 532, 537]}
WINDOWS = {"train": 7352, "test": 2947}
VOLUNTEERS = {"train": 21, "test": 9}
LABELS_TEXT = "".join(f"{i} {name}\n" for i, name in enumerate(uci_har.ACTIVITIES, 1))


# ----- fixture writers -------------------------------------------------------------------------
def release_text(values: np.ndarray) -> str:
    """Rows as the release prints them: ``%15.7e`` fields, three-digit exponents."""
    buffer = io.StringIO()
    np.savetxt(buffer, values, fmt="%15.7e", delimiter="")
    # every value here has a two-digit exponent; MATLAB printed three
    return buffer.getvalue().replace("e-", "e-0").replace("e+", "e+0")


def write_signals(folder: Path, subset: str, n: int, seed: int) -> np.ndarray:
    """The nine Inertial Signals files of a subset; returns the (n, 9, 128) values written."""
    rng = np.random.default_rng(seed)
    values = rng.normal(scale=0.3, size=(n, len(uci_har.CHANNELS), uci_har.WINDOW)).astype(np.float32)
    target = folder / subset / "Inertial Signals"
    target.mkdir(parents=True, exist_ok=True)
    for c, channel in enumerate(uci_har.CHANNELS):
        (target / f"{channel}_{subset}.txt").write_text(release_text(values[:, c]))
    return values


def write_small_release(root: Path) -> Path:
    """A tiny tree in the original layout: 3 training volunteers, 1 test volunteer."""
    folder = root / "UCI HAR Dataset"
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir(parents=True)
    (folder / "activity_labels.txt").write_text(LABELS_TEXT)
    layout = {"train": ([1, 2, 3, 4, 5, 6, 1, 2, 3], [1, 1, 1, 3, 3, 3, 5, 5, 5]),
              "test": ([4, 5, 6, 1], [2, 2, 2, 2])}
    for seed, (subset, (activity, subject)) in enumerate(layout.items()):
        (folder / subset / f"y_{subset}.txt").write_text("".join(f"{a}\n" for a in activity))
        (folder / subset / f"subject_{subset}.txt").write_text("".join(f"{s}\n" for s in subject))
        write_signals(folder, subset, len(activity), seed)
    return folder


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Real labels + written signals, full size (10,299 windows); built once (a few seconds)."""
    if not REAL.is_dir():
        pytest.skip("shared UCI HAR labels absent")
    root = tmp_path_factory.mktemp("har-root")
    folder = root / "UCI HAR Dataset"
    shutil.copytree(REAL, folder)  # labels, subjects, README, features (all small)
    signals = {subset: write_signals(folder, subset, WINDOWS[subset], seed)
               for seed, subset in enumerate(("train", "test"))}
    return root, signals


@pytest.fixture(scope="module")
def har(release):
    root, _ = release
    return uci_har.load(root)


# ----- the real labels -------------------------------------------------------------------------
def test_counts_and_shapes_match_source_md(har):
    assert har.signals.shape == (10299, 9, 128) and har.signals.dtype == np.float32
    assert isinstance(har.signals, np.memmap)
    assert har.fs == 50 and har.lead_names == uci_har.CHANNELS and har.name == "uci_har"
    meta = har.meta
    for subset in ("train", "test"):
        part = meta[meta["subset"] == subset]
        assert len(part) == WINDOWS[subset]
        assert part["subject"].nunique() == VOLUNTEERS[subset]
        counts = part["activity"].value_counts().sort_index().tolist()
        assert counts == CLASS_COUNTS[subset]
    assert meta["record_id"].tolist() == list(range(1, 10300))
    assert (meta["patient_id"] == meta["subject"]).all()


def test_labels_and_subjects_are_the_files_lines(har):
    y_test = np.loadtxt(REAL / "test" / "y_test.txt", dtype=int)
    subject_train = np.loadtxt(REAL / "train" / "subject_train.txt", dtype=int)
    meta = har.meta
    assert (meta.loc[meta["subset"] == "test", "activity"].to_numpy() == y_test).all()
    assert (meta.loc[meta["subset"] == "train", "subject"].to_numpy() == subject_train).all()
    first = meta.iloc[0]
    assert first["activity_name"] == uci_har.ACTIVITIES[first["activity"] - 1]
    assert meta.loc[meta["subset"] == "test", "window"].tolist() == list(range(1, 2948))


def test_signals_are_the_written_values_in_channel_order(har, release):
    _, written = release
    np.testing.assert_allclose(har.signals[:7352], written["train"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(har.signals[7352:], written["test"], rtol=1e-6, atol=1e-9)


def test_split_is_official_and_by_subject(har):
    meta = har.meta
    assert (meta.loc[meta["subset"] == "test", "split"] == "test").all()
    subjects = {s: set(meta.loc[meta["split"] == s, "subject"]) for s in ("train", "val", "test")}
    assert len(subjects["val"]) == uci_har.VAL_SUBJECTS and len(subjects["train"]) == 17
    assert not subjects["train"] & subjects["val"]
    assert not (subjects["train"] | subjects["val"]) & subjects["test"]
    assert (meta.loc[meta["split"] == "val", "subset"] == "train").all()


def test_split_is_seeded(har):
    again = uci_har.assign_split(har.meta, uci_har.SPLIT_SEED)
    assert (again == har.meta["split"].to_numpy()).all()
    others = {tuple(sorted(set(har.meta.loc[uci_har.assign_split(har.meta, s) == "val", "subject"])))
              for s in range(5)}
    assert len(others) > 1  # the seed matters


def test_registry_loader_and_info(release):
    root, _ = release
    assert load_dataset("uci_har", root).signals.shape == (10299, 9, 128)
    summary = uci_har.info(root)
    assert summary["official_counts"] == WINDOWS and summary["matches_release"]
    assert summary["patients"] == 30
    assert sum(summary["activities"]["LAYING"].values()) == 1407 + 537


def test_prepared_cache_is_reused_then_invalidated(tmp_path, monkeypatch):
    folder = write_small_release(tmp_path)
    first = uci_har.load(tmp_path)
    monkeypatch.setattr(uci_har, "read_signals", lambda *a: pytest.fail("cache not reused"))
    assert uci_har.load(tmp_path).version == first.version
    reseeded = uci_har.load(tmp_path, split_seed=1)  # the same prepared data, split otherwise
    assert reseeded.fingerprint != first.fingerprint and reseeded.version.endswith(reseeded.fingerprint)
    monkeypatch.undo()
    path = folder / "test" / "Inertial Signals" / "body_acc_x_test.txt"
    path.write_text(release_text(np.zeros((4, 128), dtype=np.float32)))
    changed = uci_har.load(tmp_path)
    assert changed.version != first.version and not np.asarray(changed.signals[-1, 0]).any()


# ----- bad input: one line naming the file -----------------------------------------------------
def _fails(root: Path, match: str) -> str:
    with pytest.raises(RunFailed, match=match) as caught:
        uci_har.load(root)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_release_says_how_to_get_it(tmp_path):
    message = _fails(tmp_path, "UCI HAR not found")
    assert "activity_labels.txt" in message and "ecgbench data download uci_har" in message


def test_truncated_signal_file(tmp_path):
    folder = write_small_release(tmp_path)
    path = folder / "train" / "Inertial Signals" / "body_gyro_y_train.txt"
    path.write_text(path.read_text()[:-300])  # cut inside the last line
    assert str(path) in _fails(tmp_path, "malformed or truncated")


def test_signal_file_with_missing_lines(tmp_path):
    folder = write_small_release(tmp_path)
    path = folder / "test" / "Inertial Signals" / "total_acc_z_test.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    assert str(path) in _fails(tmp_path, r"3 windows \(lines\), but the labels list 4")


def test_signal_file_with_wrong_window_length(tmp_path):
    folder = write_small_release(tmp_path)
    path = folder / "test" / "Inertial Signals" / "body_acc_y_test.txt"
    path.write_text(release_text(np.zeros((4, 100), dtype=np.float32)))
    assert str(path) in _fails(tmp_path, "100 samples per line, expected 128")


def test_nan_in_signal_file(tmp_path):
    folder = write_small_release(tmp_path)
    path = folder / "train" / "Inertial Signals" / "body_acc_z_train.txt"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace(lines[2].split()[5], "NaN", 1)
    path.write_text("".join(lines))
    assert str(path) in _fails(tmp_path, "non-finite sample on line 3")


def test_label_and_subject_row_counts_differ(tmp_path):
    folder = write_small_release(tmp_path)
    path = folder / "train" / "subject_train.txt"
    path.write_text(path.read_text() + "5\n")
    assert str(path) in _fails(tmp_path, "10 lines but y_train.txt has 9")


def test_unknown_activity_id(tmp_path):
    folder = write_small_release(tmp_path)
    path = folder / "test" / "y_test.txt"
    path.write_text("4\n7\n6\n1\n")
    assert str(path) in _fails(tmp_path, "activity id 7 on line 2 is not in activity_labels.txt")


def test_missing_subject_file(tmp_path):
    folder = write_small_release(tmp_path)
    path = folder / "test" / "subject_test.txt"
    path.unlink()
    assert str(path) in _fails(tmp_path, "missing")


def test_malformed_label_file(tmp_path):
    folder = write_small_release(tmp_path)
    path = folder / "train" / "y_train.txt"
    path.write_text("1\n2\nWALKING\n4\n5\n6\n1\n2\n3\n")
    assert str(path) in _fails(tmp_path, "line 3 'WALKING' is not an integer activity id")


def test_edited_activity_labels(tmp_path):
    """The edit that SOURCE.md says a copy of the release had (first line changed)."""
    folder = write_small_release(tmp_path)
    path = folder / "activity_labels.txt"
    path.write_text(LABELS_TEXT.replace("1 WALKING", "1 walking"))
    assert str(path) in _fails(tmp_path, "are not the release's six")


def test_subject_in_both_subsets(tmp_path):
    folder = write_small_release(tmp_path)
    (folder / "test" / "subject_test.txt").write_text("2\n2\n3\n2\n")
    _fails(tmp_path, r"subjects \[3\] are also in the training subset")


def test_failed_prepare_leaves_no_cache(tmp_path):
    folder = write_small_release(tmp_path)
    (folder / "test" / "Inertial Signals" / "body_acc_x_test.txt").write_text("1.0 2.0\n")
    _fails(tmp_path, "body_acc_x_test.txt")
    assert not list(tmp_path.glob("uci_har-prepared-*"))


def test_unknown_option():
    with pytest.raises(RunFailed, match=r"unknown option\(s\) \['fs'\]"):
        uci_har.load("/nonexistent", fs=100)


# ----- download from a local HTTP server -------------------------------------------------------
def _zip_tree(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(folder.parent).as_posix())
        for name, body in (extra or {}).items():
            bundle.writestr(name, body)
    return buffer.getvalue()


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1 (a thread); yields (folder, base url)."""
    public = tmp_path / "public"
    public.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(public))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield public, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_unpacks_the_archive(served, tmp_path, capsys):
    public, base = served
    source = write_small_release(tmp_path / "src")
    body = _zip_tree(source, {"__MACOSX/UCI HAR Dataset/._README.txt": b"mac junk"})
    (public / "UCI HAR Dataset.zip").write_bytes(body)
    root = tmp_path / "data"
    folder = uci_har.download(root, url=f"{base}/UCI%20HAR%20Dataset.zip")
    assert folder == root / "UCI HAR Dataset" and not (root / "__MACOSX").exists()
    assert "sha256" in capsys.readouterr().out  # the unpinned hash is shown
    assert uci_har.load(root).signals.shape == (13, 9, 128)
    assert not list(root.glob(".uci-har-unpack-*"))


def test_download_refuses_a_checksum_mismatch(served, tmp_path):
    public, base = served
    (public / "UCI HAR Dataset.zip").write_bytes(b"not the archive")
    with pytest.raises(RunFailed, match="(?i)sha-?256|checksum|mismatch"):
        uci_har.download(tmp_path / "data", url=f"{base}/UCI%20HAR%20Dataset.zip", sha256="0" * 64)
    assert not (tmp_path / "data" / "UCI HAR Dataset.zip").exists()


def test_download_refuses_an_archive_of_the_wrong_layout(served, tmp_path):
    public, base = served
    source = write_small_release(tmp_path / "src")
    (source / "test" / "y_test.txt").unlink()
    (public / "UCI HAR Dataset.zip").write_bytes(_zip_tree(source))
    root = tmp_path / "data"
    with pytest.raises(RunFailed, match=r"lacks UCI HAR Dataset/test/y_test.txt"):
        uci_har.download(root, url=f"{base}/UCI%20HAR%20Dataset.zip")
    assert not (root / "UCI HAR Dataset").exists()


def test_download_refuses_a_damaged_zip(served, tmp_path):
    public, base = served
    (public / "UCI HAR Dataset.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(RunFailed, match="not a readable zip archive"):
        uci_har.download(tmp_path / "data", url=f"{base}/UCI%20HAR%20Dataset.zip")


def test_download_refuses_to_overwrite_an_incomplete_folder(tmp_path):
    (tmp_path / "UCI HAR Dataset" / "train").mkdir(parents=True)
    with pytest.raises(RunFailed, match="exists but lacks activity_labels.txt"):
        uci_har.download(tmp_path, url="http://127.0.0.1:9/never-asked")
