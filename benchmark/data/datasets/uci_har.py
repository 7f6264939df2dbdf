"""UCI HAR: smartphone inertial signals of 30 volunteers doing six activities (not ECG).

Anguita D, Ghio A, Oneto L, Parra X, Reyes-Ortiz JL. A public domain dataset for human activity
recognition using smartphones. ESANN 2013. UCI Machine Learning Repository 240,
doi:10.24432/C54S4K, CC BY 4.0. NERULA evaluates ECG encoders on it (its Table 6) by embedding
each inertial axis as if it were one ECG lead and concatenating the per-axis embeddings; the
``har`` task asks the runner for exactly that (``Task.channels == "each"``).

:func:`load` reads the release folder ``UCI HAR Dataset/`` as unpacked from the archive:

* ``activity_labels.txt`` (``1 WALKING`` ... ``6 LAYING``);
* ``train/`` and ``test/``: ``y_<subset>.txt`` (activity id per window), ``subject_<subset>.txt``
  (volunteer 1-30 per window) and ``Inertial Signals/<channel>_<subset>.txt``, one window of 128
  samples (2.56 s at 50 Hz, 50% overlap between windows) per line, for the nine channels of
  :data:`CHANNELS` (body and total acceleration in g, angular velocity in rad/s).
  ``X_<subset>.txt`` (the 561 hand-made features) is not used.

Records are the 10,299 windows as published (7,352 train, 2,947 test), signals float32
``(N, 9, 128)`` at 50 Hz, channels named as the files. Metadata: ``record_id`` (1-based, train
windows first, in file order), ``patient_id`` = ``subject``, ``subset`` (the official
train/test), ``window`` (line number in its subset's files), ``activity`` (1-6) and
``activity_name``, ``split``: the official subject-wise split, with validation carved out of the
training volunteers by subject: the :data:`VAL_SUBJECTS` of the 21 that come first when ordered
by ``sha256(f"{split_seed}:{subject}")`` (default seed :data:`SPLIT_SEED`; a hash, not an RNG
stream, so no library upgrade can move a volunteer), so a volunteer's windows are never in two
splits.

Download: the archive from the UCI repository (:data:`URL`). Its SHA-256 is NOT pinned
(:data:`SHA256` is None): no machine this code was written on could reach the archive, and a
made-up hash would refuse every real download. :func:`download` prints the hash it got so it can
be pinned, and checks the unpacked layout instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from ecgbench.core.config import RunFailed
from ecgbench.core.contracts import Recordings
from ecgbench.core.store import atomic_write, prepare_cache_folder, write_npy
from ecgbench.data.datasets import prepared
from ecgbench.data.datasets.download import sha256_of

NAME = "uci_har"
SOURCE_VERSION = "1.0"
PREPROCESS_VERSION = "1"
VERSION = f"{SOURCE_VERSION}-p{PREPROCESS_VERSION}"
URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00240/UCI%20HAR%20Dataset.zip"
SHA256: str | None = None  # not pinned: see the module docstring
LICENSE = "CC BY 4.0"
CITATION = (
    "Anguita D, Ghio A, Oneto L, Parra X, Reyes-Ortiz JL. A public domain dataset for human "
    "activity recognition using smartphones. 21st European Symposium on Artificial Neural "
    "Networks, Computational Intelligence and Machine Learning (ESANN), 2013. "
    "doi:10.24432/C54S4K"
)
SIZE = "~60 MB download (the zip)"
ARCHIVE = "UCI HAR Dataset.zip"
FOLDER = "UCI HAR Dataset"  # the archive's top folder; download() unpacks it under the root
FS = 50
WINDOW = 128
CHANNELS = (
    "body_acc_x", "body_acc_y", "body_acc_z",
    "body_gyro_x", "body_gyro_y", "body_gyro_z",
    "total_acc_x", "total_acc_y", "total_acc_z",
)  # fmt: skip
ACTIVITIES = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING")
SUBSETS = ("train", "test")
OFFICIAL_COUNTS = {"train": 7352, "test": 2947}  # windows per subset in the release
VAL_SUBJECTS = 4  # of the 21 training volunteers (about a fifth of the training windows)
SPLIT_SEED = 0
LABELS = "activity_labels.txt"
_GET_IT = f"get it with `ecgbench data download {NAME}`"


class UciHarError(RunFailed):
    """Bad or missing UCI HAR input; one line naming the file and the problem."""


# ----- download --------------------------------------------------------------------------------
def download(root: str | Path, url: str = URL, sha256: str | None = SHA256) -> Path:
    """Fetch the archive (resumable) into ``root`` and unpack ``UCI HAR Dataset/`` next to it.

    The unpacked tree goes to a temporary folder first and is renamed into place only after its
    layout checks out, so a failed unpack never leaves a half tree that :func:`load` would read.
    """
    from ecgbench.data.datasets.download import download_file, sha256_of

    root = Path(root)
    target = root / FOLDER
    if (target / LABELS).is_file():
        return target
    if target.exists():
        raise UciHarError(f"{target}: exists but lacks {LABELS} (an incomplete copy?); remove "
                          "it and download again")
    archive = download_file(url, root / ARCHIVE, sha256=sha256)
    if sha256 is None:
        print(f"{archive}: sha256 {sha256_of(archive)} (not pinned in ecgbench; compare it with "
              "a trusted copy)")
    _unpack(archive, root)
    return target


def _unpack(archive: Path, root: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = [n for n in bundle.namelist() if not n.startswith("__MACOSX/")]
            _check_member_names(archive, names)
            staging = Path(tempfile.mkdtemp(dir=root, prefix=".uci-har-unpack-"))
            try:
                bundle.extractall(staging, members=names)
                _check_layout(staging / FOLDER, archive)
                os.replace(staging / FOLDER, root / FOLDER)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except (zipfile.BadZipFile, EOFError) as error:
        raise UciHarError(f"{archive}: not a readable zip archive ({error}); delete it and "
                          "download again") from None


def _check_member_names(archive: Path, names: list[str]) -> None:
    for name in names:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or path.parts[0] != FOLDER:
            raise UciHarError(f"{archive}: unexpected member {name!r} (expected everything "
                              f"under {FOLDER}/)")


def _check_layout(folder: Path, archive: Path) -> None:
    expected = [folder / LABELS] + [path for subset in SUBSETS for path in _subset_files(folder, subset)]
    missing = [str(p.relative_to(folder.parent)) for p in expected if not p.is_file()]
    if missing:
        raise UciHarError(f"{archive}: lacks {missing[0]} ({len(missing)} expected files "
                          "missing); not the UCI HAR release")


def _subset_files(source: Path, subset: str) -> list[Path]:
    return [source / subset / f"y_{subset}.txt", source / subset / f"subject_{subset}.txt",
            *(_signal_path(source, subset, channel) for channel in CHANNELS)]


def _signal_path(source: Path, subset: str, channel: str) -> Path:
    return source / subset / "Inertial Signals" / f"{channel}_{subset}.txt"


# ----- load ------------------------------------------------------------------------------------
def load(root: str | Path, split_seed: int = SPLIT_SEED, cache_dir: str | Path | None = None,
         **unknown: Any) -> Recordings:
    """All 10,299 windows from the release under ``root`` (or ``root/UCI HAR Dataset``).

    Prepared arrays are cached in ``<cache_dir or root>/uci_har-prepared-<version>-<hash>/``;
    the hash covers the label and subject files' contents and the signal files' sizes and
    modification times, so a changed source is never read from a stale cache.
    """
    if unknown:
        raise UciHarError(f"{NAME}: unknown option(s) {sorted(unknown)}; "
                          "known: split_seed, cache_dir")
    seed = _seed(split_seed)
    source = find_source(root)
    key = _cache_key(source)
    folder = Path(cache_dir or root) / f"{NAME}-prepared-{VERSION}-{key}"
    if not prepared.is_prepared(folder):
        _prepare(folder, source)
    signals = prepared.load_signals(folder, UciHarError)
    meta = pd.read_csv(folder / "meta.csv", dtype={"subset": str, "activity_name": str})
    meta["split"] = assign_split(meta, seed)
    fingerprint = prepared.fingerprint(folder, split_seed=seed)
    return Recordings(name=NAME, version=f"{VERSION}-{fingerprint}", signals=signals, meta=meta,
                      fs=FS, lead_names=CHANNELS, fingerprint=fingerprint)


def _seed(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UciHarError(f"{NAME}: split_seed must be an integer, got {value!r}") from None


def find_source(root: str | Path) -> Path:
    """The release folder: ``root`` itself or ``root/UCI HAR Dataset``."""
    root = Path(root)
    for candidate in (root, root / FOLDER):
        if (candidate / LABELS).is_file():
            return candidate
    raise UciHarError(f"{root / FOLDER / LABELS}: missing (UCI HAR not found under {root}); "
                      f"{_GET_IT}")


def assign_split(meta: pd.DataFrame, seed: int = SPLIT_SEED) -> np.ndarray:
    """Official test subset -> test; :data:`VAL_SUBJECTS` training volunteers -> val; rest train."""
    train_subjects = sorted(int(s) for s in meta.loc[meta["subset"] == "train", "subject"].unique())
    count = min(VAL_SUBJECTS, max(len(train_subjects) - 1, 0))
    val = sorted(train_subjects, key=lambda subject: _rank(seed, subject))[:count]
    split = np.where(meta["subset"] == "test", "test", "train").astype(object)
    split[(meta["subset"] == "train").to_numpy() & meta["subject"].isin(val).to_numpy()] = "val"
    return split.astype(str)


def _rank(seed: int, subject: int) -> str:
    return hashlib.sha256(f"{seed}:{subject}".encode()).hexdigest()


# ----- metadata --------------------------------------------------------------------------------
def read_activity_labels(path: Path) -> dict[int, str]:
    """``{id: name}`` from ``activity_labels.txt``; the six activities of the release."""
    if not path.is_file():
        raise UciHarError(f"{path}: missing; {_GET_IT}")
    labels: dict[int, str] = {}
    for number, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UciHarError(f"{path}: line {number} {line.strip()!r} is not '<id> <NAME>'")
        labels[int(parts[0])] = parts[1]
    if labels != dict(enumerate(ACTIVITIES, 1)):
        raise UciHarError(f"{path}: activities {labels} are not the release's six "
                          f"{dict(enumerate(ACTIVITIES, 1))}")
    return labels


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except UnicodeDecodeError as error:
        raise UciHarError(f"{path}: not a plain text file (byte {error.start} is not ASCII)") from None


def read_column(path: Path, what: str) -> np.ndarray:
    """One integer per line (``y_*.txt``, ``subject_*.txt``)."""
    if not path.is_file():
        raise UciHarError(f"{path}: missing (the {what} of every window); {_GET_IT}")
    values = []
    for number, line in enumerate(_text(path).splitlines(), 1):
        text = line.strip()
        if not text.lstrip("-").isdigit():
            raise UciHarError(f"{path}: line {number} {text!r} is not an integer {what}")
        values.append(int(text))
    if not values:
        raise UciHarError(f"{path}: empty (expected one {what} per window)")
    return np.asarray(values, dtype=np.int64)


def read_subset_meta(source: Path, subset: str, labels: dict[int, str]) -> pd.DataFrame:
    y_path = source / subset / f"y_{subset}.txt"
    subject_path = source / subset / f"subject_{subset}.txt"
    activity = read_column(y_path, "activity id")
    subject = read_column(subject_path, "subject id")
    if len(activity) != len(subject):
        raise UciHarError(f"{subject_path}: {len(subject)} lines but {y_path.name} has "
                          f"{len(activity)}; the two files must list the same windows")
    unknown = ~np.isin(activity, list(labels))
    if unknown.any():
        line = int(np.flatnonzero(unknown)[0])
        raise UciHarError(f"{y_path}: activity id {activity[line]} on line {line + 1} is not in "
                          f"{LABELS} (ids {min(labels)}-{max(labels)})")
    if (subject < 1).any():
        line = int(np.flatnonzero(subject < 1)[0])
        raise UciHarError(f"{subject_path}: subject id {subject[line]} on line {line + 1} is "
                          "not a volunteer number (1-30)")
    return pd.DataFrame({
        "subject": subject, "subset": subset, "window": np.arange(1, len(subject) + 1),
        "activity": activity, "activity_name": [labels[a] for a in activity],
    })


def read_metadata(source: Path) -> pd.DataFrame:
    labels = read_activity_labels(source / LABELS)
    parts = [read_subset_meta(source, subset, labels) for subset in SUBSETS]
    shared = set(parts[0]["subject"]) & set(parts[1]["subject"])
    if shared:
        raise UciHarError(f"{source / 'test' / 'subject_test.txt'}: subjects {sorted(shared)} "
                          "are also in the training subset; the official split is by subject")
    meta = pd.concat(parts, ignore_index=True)
    meta.insert(0, "record_id", np.arange(1, len(meta) + 1))
    meta.insert(1, "patient_id", meta["subject"])
    return meta


# ----- signals ---------------------------------------------------------------------------------
def read_signal_file(path: Path, n_windows: int) -> np.ndarray:
    """``(n_windows, 128)`` float32 from one ``Inertial Signals`` file, checked."""
    if not path.is_file():
        raise UciHarError(f"{path}: missing; {_GET_IT}")
    try:
        values = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except ValueError as error:
        reason = str(error).split(";")[0]
        raise UciHarError(f"{path}: malformed or truncated ({reason})") from None
    if values.shape[1] != WINDOW:
        raise UciHarError(f"{path}: {values.shape[1]} samples per line, expected {WINDOW} "
                          f"(2.56 s at {FS} Hz)")
    if len(values) != n_windows:
        raise UciHarError(f"{path}: {len(values)} windows (lines), but the labels list "
                          f"{n_windows}; truncated or from another release")
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise UciHarError(f"{path}: non-finite sample on line {row + 1}")
    return values


def read_signals(source: Path, meta: pd.DataFrame) -> np.ndarray:
    parts = []
    for subset in SUBSETS:
        n = int((meta["subset"] == subset).sum())
        parts.append(np.stack([read_signal_file(_signal_path(source, subset, channel), n)
                               for channel in CHANNELS], axis=1))  # (n, 9, 128)
    return np.concatenate(parts)


def _cache_key(source: Path) -> str:
    small = [source / LABELS] + [source / s / f"{w}_{s}.txt" for s in SUBSETS for w in ("y", "subject")]
    return prepared.build_key(
        labels={str(p.relative_to(source)): sha256_of(p) for p in small if p.is_file()},
        signals=prepared.stamps([_signal_path(source, s, c) for s in SUBSETS for c in CHANNELS], source),
    )


def _prepare(folder: Path, source: Path) -> None:
    """signals.npy, meta.csv, then done.json, each written atomically; nothing on failure."""
    meta = read_metadata(source)
    signals = read_signals(source, meta)
    prepare_cache_folder(folder, UciHarError)
    write_npy(folder / "signals.npy", signals)
    atomic_write(folder / "meta.csv", lambda path: meta.to_csv(path, index=False))
    prepared.finish(folder, {"name": NAME, "version": VERSION, "source": str(source),
                             "records": len(meta), "subjects": int(meta["subject"].nunique())})


# ----- summary ---------------------------------------------------------------------------------
def info(root: str | Path, **options: Any) -> dict[str, Any]:
    """Windows and volunteers per subset and split, windows per activity and split."""
    meta = load(root, **options).meta
    return {
        "records": len(meta),
        "patients": int(meta["subject"].nunique()),
        "official_counts": {s: int((meta["subset"] == s).sum()) for s in SUBSETS},
        "matches_release": all(int((meta["subset"] == s).sum()) == n for s, n in OFFICIAL_COUNTS.items()),
        "splits": {s: {"records": len(g), "patients": int(g["subject"].nunique()),
                       "subjects": sorted(int(x) for x in g["subject"].unique())}
                   for s, g in meta.groupby("split")},
        "activities": {str(name): {str(s): int(n) for s, n in g["split"].value_counts().items()}
                       for name, g in meta.groupby("activity_name")},
    }
