"""PhysioNet/CinC Challenge 2017: AF classification from a short single-lead ECG.

Clifford GD, Liu C, Moody B, Lehman LH, Silva I, Li Q, Johnson AE, Mark RG. AF classification
from a short single lead ECG recording: the PhysioNet/Computing in Cardiology Challenge 2017.
Computing in Cardiology 44 (2017). doi:10.22489/CinC.2017.065-469.
PhysioNet https://physionet.org/files/challenge-2017/1.0.0/, Open Data Commons Attribution 1.0.

8,528 AliveCor single-lead recordings (lead I equivalent: one electrode under each hand),
300 Hz, 9-61 s, stored as ``<record>.mat`` (variable ``val``, int16, ``(1, N)``, 1000/mV) with
a WFDB ``.hea``. Layouts read by :func:`load`, under ``root`` or ``root/cinc2017``:

* ``training2017/`` (the release's ``training2017.zip``, unpacked by :func:`download`);
* ``validation/`` (``sample2017.zip``: 300 of the training records with the early labels).

Labels: ``labels="v3"`` (default) reads ``REFERENCE-v3.csv`` (the third and last label revision,
published next to the zip; N 5,076, A 758, O 2,415, ~ 279), found beside or above the record
folder; ``labels="v0"``..``"v2"`` read the earlier revisions the same way; ``labels="folder"``
reads the ``REFERENCE.csv`` shipped inside the record folder. The version used is part of
``Recordings.version`` and of the metadata (``label_version``), because revisions differ
(A00005 is O in the validation release and A in v3).

Which records: the folder's ``RECORDS`` list (else its ``REFERENCE.csv``); every listed record
must have its ``.hea`` and ``.mat`` unless ``allow_subset``.

Split: the challenge's test set was never released and there are no patient ids, so the split
is ours: record-level, stratified by class, 70 / 15 / 15 % train / val / test. Within each
class records are ordered by ``sha256(f"{split_seed}:{record_id}")``, so the split depends on
nothing but the ids, the labels and the seed (no RNG stream that a library upgrade could
change). ``patient_id`` is the record number (``A00042`` -> 42): one "patient" per record, the
only honest choice without ids; it means bootstrap CIs resample records.

Variable length: signals are float32 mV ``(N, 1, T_max)``, zero-padded at the end to the
longest record; the ``n_samples`` column gives each record's true length at 300 Hz and
:func:`ecgbench.data.adapt.adapt` windows only that part. Other columns: ``record_id``, ``label``
(N, A, O, ~), ``label_version``, ``seconds``, ``split``.

Departure from plain ``wfdb``: the validation release's headers carry an ISO date where WFDB
expects base time and date (``A00001 1 300 9000 2014-05-08 05:05:15``), which wfdb 4.3.1
rejects for every record, so the two header lines are parsed here (record name, signal count,
rate, length; file, format, gain, baseline) and ``val`` is read with :func:`scipy.io.loadmat`.
A header's WFDB checksum is verified against the samples wherever it is recorded; the 200
sample2017 headers all write 0 (none recorded), so for them the check cannot apply.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import re
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgbench.core.config import ConfigError, RunFailed, flag
from ecgbench.core.contracts import Recordings
from ecgbench.core.store import atomic_write, prepare_cache_folder
from ecgbench.data.datasets import prepared

NAME = "cinc2017"
SOURCE_VERSION = "1.0.0"
PREPROCESS_VERSION = "1"
VERSION = f"{SOURCE_VERSION}-p{PREPROCESS_VERSION}"
URL = "https://physionet.org/files/challenge-2017/1.0.0/"
LICENSE = "ODC-By 1.0"
SIZE = "~100 MB download (training2017.zip)"
CITATION = (
    "Clifford GD, Liu C, Moody B, Lehman LH, Silva I, Li Q, Johnson AE, Mark RG. AF "
    "classification from a short single lead ECG recording: the PhysioNet/Computing in "
    "Cardiology Challenge 2017. Comput Cardiol. 2017;44. doi:10.22489/CinC.2017.065-469"
)
FOLDER = "cinc2017"
RECORD_FOLDERS = ("training2017", "validation")  # the full release first
ZIP = "training2017.zip"
FS = 300
LEADS = ("I",)  # AliveCor: left- and right-hand electrodes, a lead I equivalent
CLASSES = ("N", "A", "O", "~")  # normal, AF, other rhythm, too noisy
LABEL_VERSIONS = ("v0", "v1", "v2", "v3", "folder")
SPLIT_FRACTIONS = (0.70, 0.15)  # train, val; the rest is test
SPLITS = ("dataset", "preset")  # the seeded split above; NERULA's preset train/validation split
_RECORD_ID = re.compile(r"^A\d{5}$")
_GET_IT = f"get it with `ecgbench data download {NAME}`"


class Cinc2017Error(RunFailed):
    """Bad or missing CinC 2017 input; one line naming the file and the problem."""


# ----- download --------------------------------------------------------------------------------
def download(root: str | Path, labels: str = "v3", base_url: str = URL) -> Path:
    """Fetch ``training2017.zip`` and ``REFERENCE-<labels>.csv`` (checked against the release's
    SHA256SUMS.txt; resumable), then unpack the zip into ``root/cinc2017/training2017``."""
    from ecgbench.data.datasets.download import DownloadError, download_file, download_tree, parse_sha256sums

    labels = _check_labels(labels)
    target = Path(root) / FOLDER
    sums = parse_sha256sums(download_file(base_url.rstrip("/") + "/SHA256SUMS.txt",
                                          target / "SHA256SUMS.txt"))
    wanted = {ZIP} | ({f"REFERENCE-{labels}.csv"} if labels != "folder" else set())
    unlisted = sorted(wanted - set(sums))
    if unlisted:
        raise DownloadError(f"{target / 'SHA256SUMS.txt'}: does not list {unlisted}; is "
                            f"{base_url} the challenge-2017 1.0.0 tree?")
    download_tree(base_url, target, sums, include=wanted.__contains__)
    if not (target / RECORD_FOLDERS[0] / "RECORDS").is_file():
        unpack(target / ZIP, target)
    return target


def unpack(archive: Path, target: Path) -> Path:
    """Unpack ``training2017/`` from the zip into ``target`` via a temp folder and a rename."""
    folder = target / RECORD_FOLDERS[0]
    tmp = target / f".{RECORD_FOLDERS[0]}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as handle:
            names = [n for n in handle.namelist() if not n.endswith("/")]
            outside = [n for n in names if not n.startswith(f"{RECORD_FOLDERS[0]}/")
                       or ".." in Path(n).parts]
            if outside or not names:
                raise Cinc2017Error(f"{archive}: expected only {RECORD_FOLDERS[0]}/ inside, "
                                    f"found {outside[:1] or 'nothing'}")
            handle.extractall(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp / RECORD_FOLDERS[0], folder)
    except zipfile.BadZipFile as error:
        raise Cinc2017Error(f"{archive}: not a readable zip ({error})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


# ----- load ------------------------------------------------------------------------------------
def load(root: str | Path, labels: str = "v3", allow_subset: bool = False, split_seed: int = 0,
         cache_dir: str | Path | None = None, split: str = "dataset", **unknown: Any) -> Recordings:
    """CinC 2017 from ``root`` (or ``root/cinc2017``), prepared once into a memmap cache.

    The cache ``<cache_dir or root>/cinc2017-prepared-<version>-<labels>-<hash>/`` is keyed by
    the label file's and every header's contents, every ``.mat``'s size and modification time
    and the split seed, so an edited, overwritten, truncated or touched source file is read
    again (:mod:`ecgbench.data.datasets.prepared`).
    """
    if unknown:
        raise Cinc2017Error(f"{NAME}: unknown option(s) {sorted(unknown)}; known: labels, "
                            "allow_subset, split_seed, cache_dir, split")
    if split not in SPLITS:
        raise Cinc2017Error(f"{NAME}: split must be one of {', '.join(SPLITS)}, got {split!r}")
    labels, seed = _check_labels(labels), _integer(split_seed, "split_seed")
    records_dir = find_records(root)
    label_file = find_labels(records_dir, labels)
    meta = read_metadata(records_dir, label_file, labels, flag(allow_subset, f"{NAME}.allow_subset"), seed)
    stems = [records_dir / name for name in meta["record_id"]]
    key = prepared.build_key(
        labels=prepared.digest_files([label_file], label_file.parent), seed=seed,
        headers=prepared.digest_files([Path(f"{stem}.hea") for stem in stems], records_dir),
        signals=prepared.stamps([Path(f"{stem}.mat") for stem in stems], records_dir),
    )
    folder = Path(cache_dir or root) / f"{NAME}-prepared-{VERSION}-{labels}-{key}"
    if not prepared.is_prepared(folder):
        _prepare(folder, records_dir, meta, label_file)
    signals = prepared.load_signals(folder, Cinc2017Error)
    cached = pd.read_csv(folder / "meta.csv", dtype={"record_id": str, "label": str,
                                                      "split": str, "label_version": str},
                         keep_default_na=False)
    fingerprint = prepared.fingerprint(folder)
    data = Recordings(name=NAME, version=f"{VERSION}-{labels}-{fingerprint}", signals=signals,
                      meta=cached, fs=FS, lead_names=LEADS, fingerprint=fingerprint)
    return preset_split(data, records_dir) if split == "preset" else data


def preset_split(data: Recordings, records_dir: Path) -> Recordings:
    """NERULA's "preset split of train and validation" (``split="preset"``; the default is the
    dataset-level split): the challenge's validation set (``validation/RECORDS``, sample2017)
    is the test split, and its records stay training records too, as they are in the release
    (the validation set is a subset of the training set), so their scores are not held out; a
    warning says so. The probes' validation split: the dataset split's val records outside it."""
    listed = records_dir.parent / RECORD_FOLDERS[1] / "RECORDS"
    if records_dir.name != RECORD_FOLDERS[0] or not listed.is_file():
        raise Cinc2017Error(f"{listed}: missing; split=preset needs {RECORD_FOLDERS[0]}/ and the "
                            f"challenge's {RECORD_FOLDERS[1]}/ folder beside it")
    preset = np.flatnonzero(data.meta["record_id"].isin(record_list(listed.parent)).to_numpy())
    if not len(preset):
        raise Cinc2017Error(f"{listed}: none of its records is in {records_dir}")
    val = data.meta["split"].to_numpy() == "val"
    val[preset] = False
    meta = data.meta.assign(split=np.where(val, "val", "train"))
    warnings.warn(f"{NAME} split=preset: its {len(preset)} test records (the challenge's validation set) "
                  "are training records too, as in NERULA's preset split; their scores are not held out",
                  stacklevel=2)
    return dataclasses.replace(
        data, version=f"{data.version}-preset", signals=np.concatenate([data.signals, data.signals[preset]]),
        meta=pd.concat([meta, meta.iloc[preset].assign(split="test")], ignore_index=True))


def _check_labels(labels: Any) -> str:
    if labels not in LABEL_VERSIONS:
        raise ConfigError(f"{NAME}: labels must be one of {', '.join(LABEL_VERSIONS)} "
                            f"(label-file revision), got {labels!r}")
    return str(labels)


def _integer(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Cinc2017Error(f"{NAME}: {name} must be an integer, got {value!r}") from None


def find_records(root: str | Path) -> Path:
    """The record folder: ``training2017/`` or ``validation/`` under ``root`` or ``root/cinc2017``
    (or ``root`` itself when it holds the records)."""
    root = Path(root)
    candidates = [base / sub for base in (root, root / FOLDER) for sub in RECORD_FOLDERS]
    for folder in [*candidates, root]:
        if (folder / "RECORDS").is_file() or (folder / "REFERENCE.csv").is_file():
            return folder
    raise Cinc2017Error(f"{root / FOLDER / RECORD_FOLDERS[0]}: missing (CinC 2017 not found "
                        f"under {root}); {_GET_IT}")


def find_labels(records_dir: Path, labels: str) -> Path:
    """``REFERENCE-<v>.csv`` beside or above the record folder, or the folder's REFERENCE.csv."""
    if labels == "folder":
        path = records_dir / "REFERENCE.csv"
        if not path.is_file():
            raise Cinc2017Error(f"{path}: missing (labels='folder' reads the record folder's "
                                "label file)")
        return path
    name = f"REFERENCE-{labels}.csv"
    for folder in (records_dir, records_dir.parent):
        if (folder / name).is_file():
            return folder / name
    raise Cinc2017Error(f"{records_dir.parent / name}: missing; {_GET_IT} "
                        "(or pass labels=folder for the record folder's REFERENCE.csv)")


# ----- metadata --------------------------------------------------------------------------------
def read_labels(path: Path) -> dict[str, str]:
    """``{record_id: class}`` from a headerless ``record,label`` csv (CRLF tolerated)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Cinc2017Error(f"{path}: not a text file") from None
    found: dict[str, str] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or not "".join(row).strip():
            continue
        cells = [cell.strip() for cell in row]
        if len(cells) != 2 or not _RECORD_ID.match(cells[0]):
            raise Cinc2017Error(f"{path}:{number}: expected 'A01234,<class>', got {','.join(row)[:60]!r}")
        record, label = cells
        if label not in CLASSES:
            raise Cinc2017Error(f"{path}:{number}: unknown class {label!r} for {record} "
                                f"(classes: {' '.join(CLASSES)})")
        if record in found:
            raise Cinc2017Error(f"{path}:{number}: {record} is labelled twice")
        found[record] = label
    if not found:
        raise Cinc2017Error(f"{path}: no labels in the file")
    return found


def record_list(records_dir: Path) -> list[str]:
    """Names in the folder's RECORDS file (else the ids of its REFERENCE.csv)."""
    path = records_dir / "RECORDS"
    if not path.is_file():
        return list(read_labels(records_dir / "REFERENCE.csv"))
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad = [name for name in names if not _RECORD_ID.match(name)]
    if bad or not names:
        raise Cinc2017Error(f"{path}: {'bad record name ' + repr(bad[0]) if bad else 'empty'}")
    return names


def read_metadata(records_dir: Path, label_file: Path, labels: str, allow_subset: bool,
                  split_seed: int) -> pd.DataFrame:
    names = record_list(records_dir)
    present = [_missing_file(records_dir / name) is None for name in names]
    if not all(present):
        first = _missing_file(records_dir / names[present.index(False)])
        if not allow_subset:
            raise Cinc2017Error(f"{first}: missing, and {present.count(False)} of {len(names)} "
                                "listed records lack files (pass allow_subset=True to load only "
                                f"the present ones, or {_GET_IT})")
        names = [name for name, ok in zip(names, present) if ok]
        if not names:
            raise Cinc2017Error(f"{first}: missing; no listed record has files")
    known = read_labels(label_file)
    unlabelled = [name for name in names if name not in known]
    if unlabelled:
        raise Cinc2017Error(f"{label_file}: no label for {unlabelled[0]} "
                            f"({len(unlabelled)} of {len(names)} records unlabelled)")
    meta = pd.DataFrame({"record_id": names, "label": [known[name] for name in names]})
    meta["patient_id"] = [int(name[1:]) for name in names]
    meta["label_version"] = labels
    meta["split"] = stratified_split(meta["record_id"], meta["label"], split_seed)
    return meta


def stratified_split(ids: pd.Series, classes: pd.Series, seed: int) -> np.ndarray:
    """train / val / test per class in SPLIT_FRACTIONS, ordered by a seeded hash of the id."""
    split = np.empty(len(ids), dtype=object)
    for _, group in pd.DataFrame({"id": ids, "c": classes}).groupby("c"):
        order = sorted(group.index, key=lambda i: hashlib.sha256(f"{seed}:{ids[i]}".encode()).digest())
        n_train = round(SPLIT_FRACTIONS[0] * len(order))
        n_val = round(SPLIT_FRACTIONS[1] * len(order))
        for rank, index in enumerate(order):
            split[index] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return split.astype(str)


def _missing_file(stem: Path) -> Path | None:
    for path in (Path(f"{stem}.hea"), Path(f"{stem}.mat")):
        if not path.is_file():
            return path
    return None


# ----- signals ---------------------------------------------------------------------------------
def read_header(path: Path) -> dict[str, Any]:
    """The fields we need from a single-signal header; tolerant of the record line's date."""
    try:
        lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("#")]
    except (OSError, UnicodeDecodeError) as error:
        raise Cinc2017Error(f"{path}: unreadable header ({type(error).__name__})") from None
    try:
        record, signal = lines[0], lines[1]
        n_signals, fs, length = int(record[1]), float(record[2].split("/")[0]), int(record[3])
        gain_text = signal[2].split("/")[0]
        gain = float(gain_text.split("(")[0])
        baseline = int(gain_text.split("(")[1].rstrip(")")) if "(" in gain_text else int(signal[4])
    except (IndexError, ValueError):
        raise Cinc2017Error(f"{path}: not a WFDB header with one signal line") from None
    if n_signals != 1 or len(lines) != 2:
        raise Cinc2017Error(f"{path}: {n_signals} signals; CinC 2017 records have one")
    if record[0] != path.stem or signal[0] != f"{path.stem}.mat":
        raise Cinc2017Error(f"{path}: names record {record[0]!r} / file {signal[0]!r}, "
                            f"expected {path.stem} / {path.stem}.mat")
    if gain <= 0:
        raise Cinc2017Error(f"{path}: gain {gain_text!r} is not positive")
    try:
        checksum = int(signal[6])
    except (IndexError, ValueError):
        checksum = 0
    return {"fs": fs, "n_samples": length, "gain": gain, "baseline": baseline, "checksum": checksum}


def read_record(stem: Path) -> np.ndarray:
    """One record as float32 mV ``(n_samples,)``, checked against its header."""
    from scipy.io import loadmat

    header = read_header(Path(f"{stem}.hea"))
    mat = Path(f"{stem}.mat")
    if header["fs"] != FS:
        raise Cinc2017Error(f"{stem}.hea: sampling rate {header['fs']:g} Hz, expected {FS} Hz")
    try:
        val = loadmat(mat)["val"]
    except KeyError:
        raise Cinc2017Error(f"{mat}: no variable 'val'") from None
    except Exception as error:  # scipy raises ValueError, TypeError, MatReadError... on damage
        raise Cinc2017Error(f"{mat}: unreadable .mat ({type(error).__name__}: "
                            f"{' '.join(str(error).split())[:100]}); the file may be truncated") from None
    if val.ndim != 2 or val.shape[0] != 1:
        raise Cinc2017Error(f"{mat}: 'val' has shape {val.shape}, expected (1, n_samples)")
    if val.shape[1] != header["n_samples"]:
        raise Cinc2017Error(f"{mat}: {val.shape[1]} samples, but {stem}.hea says "
                            f"{header['n_samples']}")
    if val.shape[1] == 0:
        raise Cinc2017Error(f"{mat}: no samples")
    values = val[0].astype(np.float64)
    if not np.isfinite(values).all():
        raise Cinc2017Error(f"{mat}: {int((~np.isfinite(values)).sum())} NaN or infinite "
                            f"samples (first at {int(np.flatnonzero(~np.isfinite(values))[0])}); "
                            "missing values are not allowed")
    total = int(values.sum())  # int16 samples: the float64 sum is exact
    if header["checksum"] and (total - header["checksum"]) % 65536:  # 0: none recorded
        raise Cinc2017Error(f"{mat}: samples do not match the checksum in {stem.name}.hea "
                            f"({total % 65536} vs {header['checksum']}); the record or its "
                            "header is damaged")
    return ((values - header["baseline"]) / header["gain"]).astype(np.float32)


def _prepare(folder: Path, records_dir: Path, meta: pd.DataFrame, label_file: Path) -> None:
    """Read every record (all checked before anything is written), then write signals.npy,
    meta.csv and done.json, each to a temp name renamed into place."""
    records = [read_record(records_dir / name) for name in _progress(list(meta["record_id"]))]
    lengths = np.array([len(r) for r in records])
    prepare_cache_folder(folder, Cinc2017Error)

    def write_signals(path: Path) -> None:
        shape = (len(records), 1, int(lengths.max()))
        signals = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
        for index, record in enumerate(records):
            signals[index, 0, : len(record)] = record  # the rest stays zero (padding)
        signals.flush()
        del signals

    meta = meta.assign(n_samples=lengths, seconds=np.round(lengths / FS, 3))
    atomic_write(folder / "signals.npy", write_signals)
    atomic_write(folder / "meta.csv", lambda path: meta.to_csv(path, index=False))
    prepared.finish(folder, {"name": NAME, "version": VERSION, "records": len(meta),
                             "source": str(records_dir), "labels": str(label_file)})


def _progress(items: list) -> Any:
    if len(items) < 500:
        return items
    from rich.progress import track

    return track(items, description=f"reading {NAME} records", transient=True)


# ----- summary ---------------------------------------------------------------------------------
def info(root: str | Path, **options: Any) -> dict[str, Any]:
    """Record counts per class and split, length range, and which label file was used."""
    data = load(root, **options)
    meta = data.meta
    seconds = meta["seconds"]
    return {
        "records": len(meta),
        "label_version": str(meta["label_version"].iloc[0]),
        "classes": {c: int((meta["label"] == c).sum()) for c in CLASSES},
        "splits": {s: {c: int(((meta["split"] == s) & (meta["label"] == c)).sum()) for c in CLASSES}
                   for s in ("train", "val", "test")},
        "seconds": {"min": float(seconds.min()), "median": float(seconds.median()),
                    "max": float(seconds.max())},
        "fs": FS,
        "version": data.version,
    }


def check_options(labels: Any = "v3", **_: Any) -> None:
    """The load options a run sets, checked before any work (``ecgbench run`` validation)."""
    _check_labels(labels)
