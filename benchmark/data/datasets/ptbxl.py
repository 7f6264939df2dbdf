"""PTB-XL 1.0.3: 21,799 clinical 12-lead ECGs of 10 s from 18,869 patients.

Wagner P, Strodthoff N, Bousseljot RD, Kreiseler D, Lunze FI, Samek W, Schaeffter T.
PTB-XL, a large publicly available electrocardiography dataset. Sci Data 7, 154 (2020).
PhysioNet https://physionet.org/files/ptb-xl/1.0.3/ (doi:10.13026/kfzx-aw45), CC BY 4.0.

:func:`load` reads the original release layout (``ptbxl_database.csv``,
``scp_statements.csv``, ``records100/`` or ``records500/``, WFDB format 16 in mV) and caches
the prepared arrays. Metadata columns:

* ``record_id`` (ecg_id), ``patient_id``, ``fold`` (strat_fold 1-10) and ``split``: folds 1-8
  train, 9 val, 10 test, the official split, patient-wise by construction;
* ``age`` in years (float; an empty cell and the 300 placeholder for ages above 89 become NaN;
  any other value that is not a number >= 0 is refused), ``sex`` (0 male, 1 female, as in the
  file);
* ``NORM MI STTC CD HYP`` (0/1) and ``n_superclasses``: the ``diagnostic_class`` of every
  ``scp_codes`` entry whose statement has ``diagnostic == 1``, at any likelihood, as in the
  PTB-XL benchmark (Strodthoff N, Wagner P, Schaeffter T, Samek W. Deep learning for ECG
  analysis: benchmarks and insights from PTB-XL. IEEE J Biomed Health Inform 25(5), 2021);
  records with ``n_superclasses == 0`` carry no superclass (:func:`info` counts them);
* ``scp_codes`` (the original dict literal) and ``filename`` (the record path that was read).

Signals are float32 ``(N, 12, 1000)`` at 100 Hz or ``(N, 12, 5000)`` at 500 Hz in the order of
:data:`ecgbench.core.contracts.STANDARD_LEADS` (the headers' ``AVR`` etc. are renamed ``aVR``): each column
is placed by the lead name its header line gives, and every record's samples are checked against
its header's WFDB checksums, so a header whose lead lines do not match the data is refused.
"""

from __future__ import annotations

import ast
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from ecgbench.core.config import ConfigError, RunFailed, flag
from ecgbench.core.contracts import STANDARD_LEADS, Recordings
from ecgbench.core.store import atomic_write, prepare_cache_folder
from ecgbench.data.datasets import prepared

NAME = "ptbxl"
SOURCE_VERSION = "1.0.3"
PREPROCESS_VERSION = "1"
VERSION = f"{SOURCE_VERSION}-p{PREPROCESS_VERSION}"
URL = "https://physionet.org/files/ptb-xl/1.0.3/"
LICENSE = "CC BY 4.0"
CITATION = (
    "Wagner P, Strodthoff N, Bousseljot RD, Kreiseler D, Lunze FI, Samek W, Schaeffter T. "
    "PTB-XL, a large publicly available electrocardiography dataset. Sci Data. 2020;7:154. "
    "doi:10.1038/s41597-020-0495-6"
)
FOLDER = "ptb-xl"  # where download() puts the release under the data root
DATABASE, STATEMENTS = "ptbxl_database.csv", "scp_statements.csv"
SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
SECONDS = 10
AGE_PLACEHOLDER = 300  # PTB-XL's stand-in for ages above 89 (de-identification)
RATES = {100: ("records100", "filename_lr"), 500: ("records500", "filename_hr")}
REQUIRED_COLUMNS = ("ecg_id", "patient_id", "age", "sex", "scp_codes", "strat_fold",
                    "filename_lr", "filename_hr")
_LEAD_BY_UPPER = {lead.upper(): lead for lead in STANDARD_LEADS}
_GET_IT = f"get it with `ecgbench data download {NAME}`"


class PtbxlError(RunFailed):
    """Bad or missing PTB-XL input; one line naming the file and the problem."""


# ----- download --------------------------------------------------------------------------------
def download(root: str | Path, fs: int | None = None,
             include: Callable[[str], bool] | None = None, base_url: str = URL) -> Path:
    """Fetch SHA256SUMS.txt, then the listed files into ``root/ptb-xl``; resumable.

    ``fs`` (100 or 500) skips the other rate's record folder (records500 is about 2.6 of the
    3.1 GB unpacked: 21,799 x 120 kB); ``include(relative_path)`` filters further.
    """
    from ecgbench.data.datasets.download import download_file, download_tree, parse_sha256sums

    target = Path(root) / FOLDER
    sums_path = download_file(base_url.rstrip("/") + "/SHA256SUMS.txt", target / "SHA256SUMS.txt")
    keep = set(RATES) if fs is None else {_check_fs(fs)}
    skip = {folder for rate, (folder, _) in RATES.items() if rate not in keep}

    def wanted(relative: str) -> bool:
        return relative.split("/")[0] not in skip and (include is None or include(relative))

    download_tree(base_url, target, parse_sha256sums(sums_path), include=wanted)
    return target


# ----- load ------------------------------------------------------------------------------------
def load(root: str | Path, fs: int = 100, allow_subset: bool = False,
         cache_dir: str | Path | None = None, **unknown: Any) -> Recordings:
    """PTB-XL at ``fs`` (100 or 500 Hz) from the release under ``root`` (or ``root/ptb-xl``).

    Every database row must have its record files unless ``allow_subset`` (then only rows
    whose files exist are loaded). Prepared arrays are cached in
    ``<cache_dir or root>/ptbxl-prepared-<version>-<fs>-<hash>/``; the hash covers the two csv
    files' and every header's contents and every ``.dat``'s size and modification time, so an
    edited, overwritten, truncated or touched source file is read again, never served from a
    stale cache (:mod:`ecgbench.data.datasets.prepared`). A cache hit parses nothing and reads
    no header: one scan of the record folders stamps every file, and the manifest in the cache
    folder supplies the record list and the headers' digest while their stamps are unchanged.
    """
    if unknown:
        raise PtbxlError(f"{NAME}: unknown option(s) {sorted(unknown)}; "
                         "known: fs, allow_subset, cache_dir")
    fs = _check_fs(fs)
    source = find_source(root)
    spot = _locate(source, fs, flag(allow_subset, f"{NAME}.allow_subset"), Path(cache_dir or root))
    folder = spot.folder
    if not prepared.is_prepared(folder):
        meta = read_metadata(source, fs) if spot.meta is None else spot.meta
        _prepare(folder, source, meta[spot.present].reset_index(drop=True), fs, spot.manifest)
    elif spot.manifest is not None:
        prepared.write_manifest(folder, source, spot.manifest)
    signals = prepared.load_signals(folder, PtbxlError)
    cached = pd.read_csv(folder / "meta.csv", dtype={"split": str, "scp_codes": str})
    fingerprint = prepared.fingerprint(folder)
    return Recordings(name=NAME, version=f"{VERSION}-{fs}-{fingerprint}", signals=signals,
                      meta=cached, fs=fs, lead_names=STANDARD_LEADS, fingerprint=fingerprint)


def _check_fs(fs: Any) -> int:
    try:
        rate = int(fs)
    except (TypeError, ValueError):
        rate = None
    if rate not in RATES:
        raise ConfigError(f"{NAME}: fs must be 100 or 500 (the release's two rates), got {fs!r}")
    return rate


def find_source(root: str | Path) -> Path:
    """The release folder: ``root`` itself or ``root/ptb-xl``, whichever has the database."""
    root = Path(root)
    for candidate in (root, root / FOLDER):
        if (candidate / DATABASE).is_file():
            if not (candidate / STATEMENTS).is_file():
                raise PtbxlError(f"{candidate / STATEMENTS}: missing; {_GET_IT}")
            return candidate
    raise PtbxlError(f"{root / FOLDER / DATABASE}: missing (PTB-XL not found under {root}); "
                     f"{_GET_IT}")


# ----- metadata --------------------------------------------------------------------------------
def read_metadata(source: Path, fs: int) -> pd.DataFrame:
    """One row per database record with ids, fold, split, age, sex and superclass columns."""
    table = _read_csv(source / DATABASE, dtype={"age": str})  # ages quoted as written
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise PtbxlError(f"{source / DATABASE}: missing required columns {missing}")
    diagnostic = superclass_map(source / STATEMENTS)
    meta = pd.DataFrame({
        "record_id": _unique(_integers(table, "ecg_id", source / DATABASE), source / DATABASE),
        "patient_id": _integers(table, "patient_id", source / DATABASE),
        "fold": _folds(table, source / DATABASE),
    })
    meta["split"] = np.select([meta["fold"] <= 8, meta["fold"] == 9], ["train", "val"], "test")
    meta["age"] = _ages(table, source / DATABASE)
    meta["sex"] = _sexes(table, source / DATABASE)
    codes = _parse_codes(table, source / DATABASE)
    for name in SUPERCLASSES:
        meta[name] = [int(any(diagnostic.get(code) == name for code in c)) for c in codes]
    meta["n_superclasses"] = meta[list(SUPERCLASSES)].sum(axis=1)
    meta["scp_codes"] = table["scp_codes"].astype(str)
    meta["filename"] = table[RATES[fs][1]].astype(str)
    return meta


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise PtbxlError(f"{path}: not a readable csv table ({reason})") from None


def superclass_map(path: Path) -> dict[str, str]:
    """``{scp_code: diagnostic_class}`` for the statements with ``diagnostic == 1``."""
    table = _read_csv(path, index_col=0)
    missing = [c for c in ("diagnostic", "diagnostic_class") if c not in table.columns]
    if missing:
        raise PtbxlError(f"{path}: missing required columns {missing}")
    rows = table[pd.to_numeric(table["diagnostic"], errors="coerce") == 1]
    unknown = set(rows["diagnostic_class"].dropna()) - set(SUPERCLASSES)
    if unknown:
        raise PtbxlError(f"{path}: unknown diagnostic_class values {sorted(unknown)}")
    return rows["diagnostic_class"].dropna().astype(str).to_dict()


def _integers(table: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        cell = _cell(table[column].iloc[row])
        raise PtbxlError(f"{path}: {column} {cell} in data row {row + 1} is not an integer")
    return values.astype(np.int64)


def _unique(ids: np.ndarray, path: Path) -> np.ndarray:
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise PtbxlError(f"{path}: ecg_id {values[counts > 1][0]} appears "
                         f"{counts[counts > 1][0]} times")
    return ids


def _cell(value: Any) -> str:
    """A csv cell for a message: ``empty`` for a blank, else its text (no numpy reprs)."""
    return "empty" if pd.isna(value) else repr(str(value))


def _folds(table: pd.DataFrame, path: Path) -> np.ndarray:
    folds = _integers(table, "strat_fold", path)
    if not np.isin(folds, np.arange(1, 11)).all():
        row = int(np.flatnonzero(~np.isin(folds, np.arange(1, 11)))[0])
        raise PtbxlError(f"{path}: strat_fold {folds[row]} in data row {row + 1} is not 1-10")
    return folds


def _ages(table: pd.DataFrame, path: Path) -> np.ndarray:
    age = pd.to_numeric(table["age"], errors="coerce").to_numpy(dtype=float, copy=True)
    bad = (table["age"].notna().to_numpy() & ~np.isfinite(age)) | (age < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PtbxlError(f"{path}: age {_cell(table['age'].iloc[row])} in data row {row + 1} is "
                         f"not a number of years >= 0 (empty for unknown, {AGE_PLACEHOLDER} for "
                         "over 89)")
    age[age >= AGE_PLACEHOLDER] = np.nan
    return age


def _sexes(table: pd.DataFrame, path: Path) -> np.ndarray:
    sex = pd.to_numeric(table["sex"], errors="coerce")
    bad = ~sex.isin([0, 1]).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PtbxlError(f"{path}: sex {_cell(table['sex'].iloc[row])} in data row {row + 1} "
                         "is not 0 (male) or 1 (female)")
    return sex.to_numpy(dtype=np.int64)


def _parse_codes(table: pd.DataFrame, path: Path) -> list[dict]:
    parsed = []
    for row, (ecg_id, text) in enumerate(zip(table["ecg_id"], table["scp_codes"]), 1):
        try:
            codes = ast.literal_eval(text) if isinstance(text, str) else None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            codes = None
        if not isinstance(codes, dict):
            raise PtbxlError(f"{path}: scp_codes of ecg_id {ecg_id} (data row {row}) is not a "
                             f"dict literal: {str(text)[:60]!r}")
        parsed.append(codes)
    return parsed


# ----- which records are there, and the cache key --------------------------------------------
@dataclass(frozen=True)
class _Located:
    folder: Path  # the cache folder of the tree as it is now
    meta: pd.DataFrame | None  # the parsed database, or None when the manifest's stems served
    present: np.ndarray  # which database rows have both files
    manifest: dict[str, Any] | None  # to write into ``folder``; None when it is there already


def _locate(source: Path, fs: int, allow_subset: bool, cache: Path) -> _Located:
    """Where the cache of the tree as it is now lives, from one scan of its record folders.

    The key covers the fs, the digest of both csv files, the digest of every present header's
    bytes and the ``[size, mtime_ns]`` of every present ``.dat`` (:mod:`.prepared`). The newest
    manifest of this source saves work without changing the key: its record list when the csv
    digest is the same (no csv parsing), its headers' digest when every header's stamp is the
    one it recorded (else all headers are read again: the digest covers them all). So a header
    rewritten with its size and mtime_ns put back is not seen, as for a ``.dat``.
    """
    csv = prepared.digest_files([source / DATABASE, source / STATEMENTS], source)
    prefix = f"ptbxl-prepared-{VERSION}-{fs}-"
    memo_folder, memo = prepared.newest_manifest(cache, prefix, source)
    same_csv = memo.get("csv") == csv and _strings(memo.get("stems"))
    meta = None if same_csv else read_metadata(source, fs)
    stems = memo["stems"] if same_csv else _stems(meta)
    files = prepared.scan(source, {stem.rpartition("/")[0] for stem in stems})
    present = _present(stems, files, source, allow_subset)
    kept = [stem for stem, here in zip(stems, present) if here]
    headers = {f"{stem}.hea": files[f"{stem}.hea"] for stem in kept}
    reused = same_csv and memo.get("headers") == headers and isinstance(memo.get("headers_digest"), str)
    digest = memo["headers_digest"] if reused else prepared.digest_files([source / h for h in headers], source)
    key = prepared.build_key(fs=fs, csv=csv, headers=digest,
                             signals={f"{stem}.dat": files[f"{stem}.dat"] for stem in kept})
    folder = cache / f"{prefix}{key}"
    manifest = {"csv": csv, "stems": stems, "headers": headers, "headers_digest": digest}
    return _Located(folder, meta, present, None if reused and memo_folder == folder else manifest)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _stems(meta: pd.DataFrame) -> list[str]:
    """Record paths relative to the release, spelled as the key's file names spell them."""
    return [PurePosixPath(name).as_posix() for name in meta["filename"]]


def _present(stems: list[str], files: dict[str, list[int]], source: Path,
             allow_subset: bool) -> np.ndarray:
    present = np.array([f"{s}.hea" in files and f"{s}.dat" in files for s in stems], dtype=bool)
    if present.all():
        return present
    stem = stems[int(np.flatnonzero(~present)[0])]
    first = source / (f"{stem}.hea" if f"{stem}.hea" not in files else f"{stem}.dat")
    if not allow_subset:
        raise PtbxlError(f"{first}: missing, and {int((~present).sum())} of {len(stems)} "
                         "records lack files (pass allow_subset=True to load only the present "
                         f"ones, or {_GET_IT})")
    if not present.any():
        raise PtbxlError(f"{first}: missing; no record of {source / DATABASE} has files at "
                         f"this rate; {_GET_IT}")
    return present


# ----- signals ---------------------------------------------------------------------------------
def _prepare(folder: Path, source: Path, meta: pd.DataFrame, fs: int,
             manifest: dict[str, Any] | None) -> None:
    """signals.npy, meta.csv, the manifest, then done.json, each written to a temp name and
    renamed."""
    prepare_cache_folder(folder, PtbxlError)
    tmp = folder / f"signals.tmp-{os.getpid()}.npy"  # pid-tagged: a killed run's is found later
    try:
        _write_signals(tmp, source, meta, fs)
        os.replace(tmp, folder / "signals.npy")
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write(folder / "meta.csv", lambda path: meta.to_csv(path, index=False))
    if manifest is not None:
        prepared.write_manifest(folder, source, manifest)
    prepared.finish(folder, {"name": NAME, "version": VERSION, "fs": fs, "records": len(meta),
                             "source": str(source), "patients": int(meta["patient_id"].nunique())})


def _write_signals(path: Path, source: Path, meta: pd.DataFrame, fs: int) -> None:
    shape = (len(meta), len(STANDARD_LEADS), fs * SECONDS)
    signals = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    for index, name in _progress(list(enumerate(meta["filename"]))):
        signals[index] = read_record(source / name, fs)
    signals.flush()
    del signals


def _progress(items: list) -> Any:
    if len(items) < 500:
        return items
    from rich.progress import track

    return track(items, description=f"reading {NAME} records", transient=True)


def read_record(stem: Path, fs: int) -> np.ndarray:
    """One record as float32 ``(12, fs * 10)`` mV in STANDARD_LEADS order, checked."""
    wfdb = _import_wfdb()
    dat = f"{stem}.dat"
    try:
        record = wfdb.rdrecord(str(stem), physical=False)
        checksums = record.calc_checksum()
        signal = record.dac(return_res=64)  # mV as wfdb.rdsamp gives them, -32768 -> NaN
    except Exception as error:  # wfdb raises ValueError, IndexError... on damaged files
        raise PtbxlError(f"{dat}: unreadable by wfdb ({type(error).__name__}: "
                         f"{_one_line(error)}); the file may be truncated or damaged") from None
    fields = {"fs": record.fs, "sig_name": record.sig_name}
    if int(round(fields["fs"])) != fs:
        raise PtbxlError(f"{stem}.hea: sampling rate {fields['fs']} Hz, but the record is "
                         f"under {RATES[fs][0]}/ ({fs} Hz)")
    if signal.shape[0] != fs * SECONDS:
        raise PtbxlError(f"{dat}: {signal.shape[0]} samples ({signal.shape[0] / fs:g} s), "
                         f"expected {fs * SECONDS} ({SECONDS} s at {fs} Hz)")
    _check_checksums(checksums, record.checksum, record.sig_name, stem)
    order = _lead_order(fields["sig_name"], stem)
    if np.isnan(signal).any():
        lead = fields["sig_name"][int(np.flatnonzero(np.isnan(signal).any(axis=0))[0])]
        raise PtbxlError(f"{dat}: {int(np.isnan(signal).sum())} NaN samples (first in lead "
                         f"{lead}); missing values are not allowed")
    return signal[:, order].T.astype(np.float32)


def _import_wfdb() -> Any:
    """wfdb 4.3 warns about pandas deprecations in its own import; that is not our user's news."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"wfdb(\.|$)")
        import wfdb
    return wfdb


def _check_checksums(actual: list[int], declared: list[int] | None, names: list[str],
                     stem: Path) -> None:
    """The header's 16-bit checksum of each signal against the samples read (mod 2**16, as
    wfdb compares them): a damaged .dat, or lead lines that do not match the data, fail here."""
    for name, got, expected in zip(names, actual, declared or [None] * len(names), strict=True):
        if expected is not None and (got - expected) % 65536:
            raise PtbxlError(f"{stem}.dat: samples of lead {name} do not match the checksum in "
                             f"{stem.name}.hea ({got} vs {expected}); the record or its header "
                             "is damaged or its lead lines are out of order")


def _lead_order(names: list[str], stem: Path) -> list[int]:
    """Column of each standard lead in the header's order (``AVR`` -> ``aVR`` etc.)."""
    normalised = [_LEAD_BY_UPPER.get(str(name).strip().upper()) for name in names]
    if sorted(filter(None, normalised)) != sorted(STANDARD_LEADS) or len(names) != 12:
        raise PtbxlError(f"{stem}.hea: leads {names} are not the 12 standard leads")
    return [normalised.index(lead) for lead in STANDARD_LEADS]


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text[:120] or type(error).__name__


# ----- summary ---------------------------------------------------------------------------------
def info(root: str | Path, fs: int = 100, **options: Any) -> dict[str, Any]:
    """Record and patient counts overall, per fold, per split and per superclass.

    ``no_superclass`` is the number of records the superclass tasks cannot use;
    ``single_superclass`` counts the records with exactly one superclass, by class.
    """
    meta = load(root, fs=fs, **options).meta
    labelled = meta[meta["n_superclasses"] > 0]
    single = meta[meta["n_superclasses"] == 1]
    return {
        "records": len(meta),
        "patients": int(meta["patient_id"].nunique()),
        "folds": {int(f): _counts(g) for f, g in meta.groupby("fold")},
        "splits": {str(s): _counts(g) for s, g in meta.groupby("split")},
        "superclasses": {c: _counts(meta[meta[c] == 1]) for c in SUPERCLASSES},
        "no_superclass": int(len(meta) - len(labelled)),
        "single_superclass": {c: int((single[c] == 1).sum()) for c in SUPERCLASSES},
        "missing_age": int(meta["age"].isna().sum()),
    }


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    return {"records": len(frame), "patients": int(frame["patient_id"].nunique())}



def check_options(fs: Any = 100, **_: Any) -> None:
    """The load options a run sets, checked before any work (``ecgbench run`` validation)."""
    _check_fs(fs)
