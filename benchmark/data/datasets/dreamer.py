"""DREAMER: EEG and ECG of 23 volunteers watching 18 film clips, with self-assessed emotions.

Katsigiannis S, Ramzan N. DREAMER: a database for emotion recognition through EEG and ECG
signals from wireless low-cost off-the-shelf devices. IEEE J Biomed Health Inform 22(1):98-107,
2018. doi:10.1109/JBHI.2017.2688239. Zenodo record 546113; access on request under the
DREAMER end-user licence agreement, so :func:`download` cannot fetch it: it takes the path of a
``DREAMER.mat`` the user obtained, checks its structure and copies (or links) it into the data
root as ``dreamer/DREAMER.mat``.

The file (MATLAB v5) holds one struct ``DREAMER`` with ``Data`` (a 1 x 23 cell, one struct per
volunteer), ``ECG_SamplingRate`` (256), ``EEG_SamplingRate`` (128) and descriptive fields. Each
volunteer has ``Age``, ``Gender``, ``EEG`` and ``ECG`` (structs of ``baseline`` and ``stimuli``,
18 x 1 cells of ``samples x channels`` arrays; ECG has 2 channels from a Shimmer2 sensor) and
``ScoreValence`` / ``ScoreArousal`` / ``ScoreDominance`` (18 x 1, self-assessment 1-5).
:func:`read_release` checks all of this and names what is wrong. EEG is not read.

Records: non-overlapping 10 s windows (2,560 samples) of every stimulus (film clip) segment,
from its start; the last partial window of a clip is dropped (:func:`info` counts the seconds).
Each window carries its clip's scores. Baseline segments (the neutral clip shown before each
film) are neither windowed nor subtracted: with ``normalize="baseline"`` (default) they give
each volunteer's per-channel mean and standard deviation, and all of that volunteer's windows are
z-scored with them (the recordings are in the sensor's units, and amplitudes differ between
people; user-specific z-scoring follows Sarkar & Etemad, IEEE TAFFC 2022, who normalise per
user); ``normalize="none"`` keeps the raw values.

The two channels are named ``ECG1`` and ``ECG2`` (the file's column order): the release does not
say which electrode pairs they are (the Shimmer2 ECG board records RA-LL and LA-LL), so no
standard lead name is claimed. The DREAMER tasks feed each channel to a single-lead encoder and
concatenate the two embeddings (``Task.channels == "each"``).

Metadata: ``record_id`` (1-based), ``patient_id`` = ``subject`` (1-23, the cell index),
``clip`` (1-18), ``window`` (0-based within the clip), ``start_s``, ``valence``, ``arousal``,
``dominance`` (1-5), ``age``, ``gender`` (as in the file), ``split``. The split is by
volunteer, never by window: the :data:`TEST_SUBJECTS` volunteers that come first when ordered by
``sha256(f"{split_seed}:{subject}")`` are test, the next :data:`VAL_SUBJECTS` validation, the
rest train (seed :data:`SPLIT_SEED` by default; a hash, not an RNG stream, so no library upgrade
moves a volunteer).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgbench.core.config import RunFailed, flag
from ecgbench.core.contracts import Recordings
from ecgbench.core.store import atomic_write, prepare_cache_folder, write_npy
from ecgbench.data.datasets import prepared

NAME = "dreamer"
SOURCE_VERSION = "1"  # the single public release (Zenodo 546113)
PREPROCESS_VERSION = "1"
VERSION = f"{SOURCE_VERSION}-p{PREPROCESS_VERSION}"
URL = "https://zenodo.org/record/546113"  # landing page; the file is sent on request
LICENSE = "DREAMER EULA (access on request, research use)"
SIZE = "one MATLAB file, DREAMER.mat, supplied by the user"
CITATION = (
    "Katsigiannis S, Ramzan N. DREAMER: a database for emotion recognition through EEG and ECG "
    "signals from wireless low-cost off-the-shelf devices. IEEE J Biomed Health Inform. "
    "2018;22(1):98-107. doi:10.1109/JBHI.2017.2688239"
)
FOLDER = "dreamer"
FILE = "DREAMER.mat"
FS = 256
WINDOW_SECONDS = 10
WINDOW = FS * WINDOW_SECONDS  # 2,560 samples
SUBJECTS = 23
CLIPS = 18
CHANNELS = ("ECG1", "ECG2")
SCORES = {"valence": "ScoreValence", "arousal": "ScoreArousal", "dominance": "ScoreDominance"}
SUBJECT_FIELDS = ("Age", "Gender", "ECG", *SCORES.values())
NORMALIZE = ("baseline", "none")
TEST_SUBJECTS, VAL_SUBJECTS = 5, 3  # of 23; the other 15 train
SPLIT_SEED = 0
_HOW = (f"request DREAMER.mat at {URL} (EULA), then run `ecgbench data download {NAME} --set "
        f"source=PATH` (add --set link=true to symlink instead of copying)")


class DreamerError(RunFailed):
    """Bad or missing DREAMER input; one line naming the file and the problem."""


@dataclass
class Subject:
    """One volunteer's ECG and scores, checked (arrays float32, scores int 1-5)."""

    number: int
    age: str
    gender: str
    baseline: list[np.ndarray]  # 18 x (samples, 2)
    stimuli: list[np.ndarray]  # 18 x (samples, 2)
    scores: dict[str, np.ndarray]  # valence/arousal/dominance -> (18,)


# ----- "download" ------------------------------------------------------------------------------
def download(root: str | Path, source: str | Path | None = None, link: bool | str = False) -> Path:
    """Check a user-supplied DREAMER.mat and copy (``link``: symlink) it to ``root/dreamer/``.

    Options may arrive as strings from ``ecgbench data download dreamer --set source=PATH``.
    """
    if source is None:
        raise DreamerError(f"{NAME}: cannot be downloaded automatically (access on request "
                           f"under an EULA): {_HOW}")
    source = Path(source).expanduser()
    read_release(source)  # refuses anything that is not the release's structure
    target = Path(root) / FOLDER / FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    if flag(link, f"{NAME}.link"):
        tmp = target.with_name(f".{FILE}.link-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(source.resolve())
        os.replace(tmp, target)
    else:
        atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))
    return target


# ----- reading and checking the file -----------------------------------------------------------
def find_file(root: str | Path) -> Path:
    """``root/dreamer/DREAMER.mat``, or ``root/DREAMER.mat``, or ``root`` itself if it is the file."""
    root = Path(root)
    for candidate in (root / FOLDER / FILE, root / FILE, root):
        if candidate.is_file():
            return candidate
    raise DreamerError(f"{root / FOLDER / FILE}: missing (DREAMER not found under {root}); {_HOW}")


def read_release(path: str | Path) -> list[Subject]:
    """The 23 volunteers of a DREAMER.mat, after checking the structure described above."""
    path = Path(path)
    top = _top_struct(path, _loadmat(path))
    rate = _number(top["ECG_SamplingRate"])
    if rate != FS:
        raise DreamerError(f"{path}: DREAMER.ECG_SamplingRate is {_show(top['ECG_SamplingRate'])}, "
                           f"expected {FS} Hz")
    data = _cells(top["Data"])
    if len(data) != SUBJECTS:
        raise DreamerError(f"{path}: DREAMER.Data has {len(data)} volunteers, expected {SUBJECTS}")
    return [_subject(path, number, cell) for number, cell in enumerate(data, 1)]


def _loadmat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat

    if not path.is_file():
        raise DreamerError(f"{path}: missing; {_HOW}")
    try:
        return loadmat(path, simplify_cells=True)
    except NotImplementedError:  # scipy's answer to an HDF5-based v7.3 file
        raise DreamerError(f"{path}: a MATLAB v7.3 (HDF5) file; the DREAMER release is a v5 "
                           "MAT file, so this is not it (or a re-saved copy)") from None
    except Exception as error:  # scipy raises ValueError, TypeError, MatReadError... on junk
        raise DreamerError(f"{path}: not a readable MATLAB file ({type(error).__name__}: "
                           f"{_one_line(error)})") from None


def _top_struct(path: Path, mat: dict[str, Any]) -> dict[str, Any]:
    variables = sorted(k for k in mat if not k.startswith("__"))
    if "DREAMER" not in mat:
        raise DreamerError(f"{path}: no variable 'DREAMER' (found {variables}); not the DREAMER "
                           "release")
    top = mat["DREAMER"]
    if not isinstance(top, dict):
        raise DreamerError(f"{path}: DREAMER is a {type(top).__name__}, expected a struct")
    missing = [f for f in ("Data", "ECG_SamplingRate") if f not in top]
    if missing:
        raise DreamerError(f"{path}: DREAMER lacks field(s) {missing} (has {sorted(top)})")
    return top


def _subject(path: Path, number: int, cell: Any) -> Subject:
    where = f"{path}: DREAMER.Data{{{number}}}"
    if not isinstance(cell, dict):
        raise DreamerError(f"{where} is a {type(cell).__name__}, expected a struct")
    missing = [f for f in SUBJECT_FIELDS if f not in cell]
    if missing:
        raise DreamerError(f"{where} lacks field(s) {missing} (has {sorted(cell)})")
    ecg = cell["ECG"]
    if not isinstance(ecg, dict) or not {"baseline", "stimuli"} <= set(ecg):
        raise DreamerError(f"{where}.ECG must be a struct with baseline and stimuli")
    return Subject(
        number=number, age=_show(cell["Age"]), gender=_show(cell["Gender"]),
        baseline=_segments(f"{where}.ECG.baseline", ecg["baseline"]),
        stimuli=_segments(f"{where}.ECG.stimuli", ecg["stimuli"]),
        scores={name: _scores(f"{where}.{field}", cell[field]) for name, field in SCORES.items()},
    )


def _segments(where: str, value: Any) -> list[np.ndarray]:
    clips = _cells(value)
    if len(clips) != CLIPS:
        raise DreamerError(f"{where} has {len(clips)} clips, expected {CLIPS}")
    arrays = []
    for clip, array in enumerate(clips, 1):
        array = np.asarray(array)
        if array.ndim != 2 or array.shape[1] != len(CHANNELS) or not np.issubdtype(array.dtype, np.number):
            raise DreamerError(f"{where}{{{clip}}} is {array.dtype} {array.shape}, expected a "
                               f"samples x {len(CHANNELS)} numeric ECG array")
        if not np.isfinite(array).all():
            raise DreamerError(f"{where}{{{clip}}}: {int((~np.isfinite(array)).sum())} non-finite "
                               "samples (NaN or inf)")
        arrays.append(array.astype(np.float32))
    return arrays


def _scores(where: str, value: Any) -> np.ndarray:
    scores = np.atleast_1d(np.asarray(value, dtype=object)).ravel()
    try:
        numbers = scores.astype(float)
    except (TypeError, ValueError):
        numbers = np.full(len(scores), np.nan)
    if len(numbers) != CLIPS:
        raise DreamerError(f"{where} has {len(numbers)} scores, expected {CLIPS} (one per clip)")
    bad = ~np.isin(numbers, [1, 2, 3, 4, 5])
    if bad.any():
        clip = int(np.flatnonzero(bad)[0])
        raise DreamerError(f"{where}({clip + 1}) is {_show(scores[clip])}, expected an integer "
                           "score 1-5")
    return numbers.astype(np.int64)


def _cells(value: Any) -> list:
    """A MATLAB cell as a list (``simplify_cells`` gives a lone element for a 1 x 1 cell)."""
    if isinstance(value, list):
        return value
    if isinstance(value, np.ndarray) and value.dtype == object:
        return list(value.ravel())
    return [value]


def _number(value: Any) -> float | None:
    try:
        return float(np.asarray(value, dtype=float).item())
    except (TypeError, ValueError):
        return None


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tolist()
    return str(value).strip()


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:120] or type(error).__name__


# ----- windows ---------------------------------------------------------------------------------
def windows(subjects: list[Subject], normalize: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Signals ``(N, 2, 2560)`` float32 and one metadata row per window."""
    signals, rows = [], []
    for subject in subjects:
        mean, std = _baseline_stats(subject) if normalize == "baseline" else (0.0, 1.0)
        for clip, stimulus in enumerate(subject.stimuli, 1):
            count = len(stimulus) // WINDOW
            cut = stimulus[: count * WINDOW].reshape(count, WINDOW, len(CHANNELS))
            signals.append(((cut - mean) / std).transpose(0, 2, 1).astype(np.float32))
            for window in range(count):
                rows.append({
                    "subject": subject.number, "clip": clip, "window": window,
                    "start_s": window * WINDOW_SECONDS,
                    "dropped_s": round((len(stimulus) - count * WINDOW) / FS, 3),
                    **{name: int(s[clip - 1]) for name, s in subject.scores.items()},
                    "age": subject.age, "gender": subject.gender,
                })
    if not rows:
        raise DreamerError(f"no stimulus segment holds a {WINDOW_SECONDS} s window "
                           f"({WINDOW} samples); the release's clips are 65-393 s long")
    meta = pd.DataFrame(rows)
    meta.insert(0, "record_id", np.arange(1, len(meta) + 1))
    meta.insert(1, "patient_id", meta["subject"])
    return np.concatenate(signals), meta


def _baseline_stats(subject: Subject) -> tuple[np.ndarray, np.ndarray]:
    baseline = np.concatenate(subject.baseline)  # (samples, 2)
    mean, std = baseline.mean(axis=0), baseline.std(axis=0)
    if (std == 0).any() or len(baseline) < 2:
        raise DreamerError(f"DREAMER.Data{{{subject.number}}}.ECG.baseline: a flat channel "
                           "(zero variance); cannot z-score with it (normalize='none' skips it)")
    return mean.astype(np.float32), std.astype(np.float32)


# ----- load ------------------------------------------------------------------------------------
def load(root: str | Path, normalize: str = "baseline", split_seed: int = SPLIT_SEED,
         cache_dir: str | Path | None = None, **unknown: Any) -> Recordings:
    """The 10 s stimulus windows of DREAMER.mat under ``root`` (see the module docstring).

    Prepared arrays are cached in ``<cache_dir or root>/dreamer-prepared-<version>-<hash>/``;
    the hash covers the file's size and modification time and ``normalize``.
    """
    if unknown:
        raise DreamerError(f"{NAME}: unknown option(s) {sorted(unknown)}; "
                           "known: normalize, split_seed, cache_dir")
    if normalize not in NORMALIZE:
        raise DreamerError(f"{NAME}: normalize must be one of {NORMALIZE}, got {normalize!r}")
    seed = _seed(split_seed)
    path = find_file(root)
    key = prepared.build_key(source=prepared.stamp(path), normalize=normalize)
    folder = Path(cache_dir or (root if Path(root).is_dir() else path.parent)) / f"{NAME}-prepared-{VERSION}-{key}"
    if not prepared.is_prepared(folder):
        _prepare(folder, path, normalize)
    signals = prepared.load_signals(folder, DreamerError)
    meta = pd.read_csv(folder / "meta.csv", dtype={"age": str, "gender": str})
    meta["split"] = assign_split(meta["subject"].to_numpy(), seed)
    fingerprint = prepared.fingerprint(folder, split_seed=seed)
    return Recordings(name=NAME, version=f"{VERSION}-{fingerprint}", signals=signals, meta=meta,
                      fs=FS, lead_names=CHANNELS, fingerprint=fingerprint)


def _seed(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DreamerError(f"{NAME}: split_seed must be an integer, got {value!r}") from None


def assign_split(subject: np.ndarray, seed: int = SPLIT_SEED) -> np.ndarray:
    """test / val / train per volunteer, by hash order (see the module docstring)."""
    order = sorted({int(s) for s in subject}, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    test, val = set(order[:TEST_SUBJECTS]), set(order[TEST_SUBJECTS:TEST_SUBJECTS + VAL_SUBJECTS])
    return np.array(["test" if s in test else "val" if s in val else "train" for s in subject])


def _prepare(folder: Path, path: Path, normalize: str) -> None:
    """signals.npy, meta.csv, then done.json, each written atomically; nothing on failure."""
    try:
        signals, meta = windows(read_release(path), normalize)
    except DreamerError as error:
        message = str(error)
        raise DreamerError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    prepare_cache_folder(folder, DreamerError)
    write_npy(folder / "signals.npy", signals)
    atomic_write(folder / "meta.csv", lambda tmp: meta.to_csv(tmp, index=False))
    prepared.finish(folder, {"name": NAME, "version": VERSION, "source": str(path),
                             "normalize": normalize, "records": len(meta)})


# ----- summary ---------------------------------------------------------------------------------
def info(root: str | Path, **options: Any) -> dict[str, Any]:
    """Windows and volunteers per split, high/low counts at the tasks' threshold, dropped tails."""
    meta = load(root, **options).meta
    clips = meta.drop_duplicates(["subject", "clip"])
    return {
        "records": len(meta),
        "patients": int(meta["subject"].nunique()),
        "splits": {s: {"records": len(g), "patients": int(g["subject"].nunique()),
                       "subjects": sorted(int(x) for x in g["subject"].unique())}
                   for s, g in meta.groupby("split")},
        "high_over_3": {name: int((meta[name] > 3).sum()) for name in SCORES},
        "clips": len(clips),
        "dropped_seconds": round(float(clips["dropped_s"].sum()), 3),
    }
