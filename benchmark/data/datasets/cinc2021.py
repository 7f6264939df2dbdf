"""PhysioNet/CinC Challenge 2021 training set (1.0.3): 88,253 12-lead ECGs from 8 sources.

Reyna MA, Sadr N, Perez Alday EA, Gu A, Shah AJ, Robichaux C, Rad AB, Elola A, Seyedi S,
Ansari S, Ghanbari H, Li Q, Sharma A, Clifford GD. Will two do? Varying dimensions in
electrocardiography: the PhysioNet/Computing in Cardiology Challenge 2021. Computing in
Cardiology 48 (2021). PhysioNet https://physionet.org/files/challenge-2021/1.0.3/, CC BY 4.0.

The release tree is ``training/<source>/g<k>/<record>.hea|.mat``: a WFDB header (age, sex and
SNOMED CT ``Dx`` codes in its comments) and a MATLAB v4 file whose ``val`` is the int16
``(leads, samples)`` signal (gain 1000/mV). This module holds the code shared by the three
challenge-style corpora: :mod:`ecgbench.data.datasets.cinc2020` (the 2020 release, same layout,
six sources) and :mod:`ecgbench.data.datasets.chapman` (ecg-arrhythmia 1.0.0, the Chapman-Shaoxing
and Ningbo records in ``WFDBRecords/``) bind it to their own :class:`Release`.

Which records: every ``.hea`` under the release folder (``root/cinc2021``, or ``root`` itself
when it holds the records, e.g. a flat folder of samples). The source comes from the record
name (``A`` cpsc_2018, ``Q`` cpsc_2018_extra, ``I`` st_petersburg_incart, ``S`` ptb, ``HR``
ptb-xl, ``E`` georgia, ``JS00001-JS10646`` chapman_shaoxing, ``JS10647-`` ningbo, as the
challenge numbered them); a record filed under another source's folder is refused.

Metadata columns:

* ``record_id`` (the challenge name, e.g. ``HR06000``); ``patient_id``: the challenge publishes
  no patient ids, so each record is its own patient, numbered ``prefix code * 10**6 + number``
  (stable across releases, so the same JS record has the same id in cinc2021 and chapman);
  bootstrap CIs therefore resample records;
* ``source``; ``source_record_id``: the PTB-XL ``ecg_id`` of ``HR`` records (the challenge
  renamed PTB-XL record ``n`` to ``HR{n:05d}``), empty otherwise;
* ``age`` (years, NaN when the header says Unknown/NaN), ``sex`` (0 male, 1 female, as in
  PTB-XL; -1 unknown), ``dx`` (the SNOMED CT codes, comma-separated, in header order);
* ``split``: the challenge's hidden validation/test sets were never released and there are no
  patient ids, so the split is ours and record-level: a record is train / val / test when
  ``sha256(f"{split_seed}:{record_id}")`` falls in the first 80 / next 10 / last 10 % of the
  hash range; it depends on nothing but the id and the seed, so adding a source never moves
  another record (the PTB-XL records do not follow PTB-XL's folds, whose database the
  challenge does not ship);
* ``fs_source``, ``seconds`` (the record as published), ``n_samples`` (samples kept at ``fs``,
  see below) and ``filename`` (the header, relative to the release folder).

Signals: float32 mV ``(N, 12, fs * seconds)`` in :data:`ecgbench.core.contracts.STANDARD_LEADS` order,
resampled to ``fs`` (default 500 Hz, the rate of all but INCART's 257 Hz and PTB's 1 kHz) with
:func:`scipy.signal.resample_poly`, then cut to the first ``seconds`` (default 10 s; INCART's
30-minute and PTB's up-to-2-minute records keep their first 10 s) or zero-padded (Georgia and
CPSC records of 5-9 s); ``n_samples`` is the true length kept, so
:func:`ecgbench.data.adapt.adapt` windows only the real part. Lead II for single-lead encoders comes
from the InputSpec adaptation.

Departures from plain ``wfdb``: the challenge's original Georgia headers name the record with
its extension (``E07500.mat 12 500 5000 05-May-2020 09:49:17``) and wfdb 4.3.1 rejects them,
so a header wfdb cannot parse is read by :func:`parse_header_text` (record line, signal lines,
comments; checked equal to wfdb on every header wfdb accepts). Signals are read with
:func:`scipy.io.loadmat`, as the challenge's own ``helper_code.load_recording`` does: the int16
value -32768 (wfdb's "invalid sample", here the saturated R peaks of a few Georgia and Ningbo
records) stays a value rather than becoming NaN; float ``.mat`` files with NaN are refused.

Leakage: :func:`overlaps` declares which records are also in other ecgbench datasets (PTB-XL
records -> ``ptbxl`` ecg_id; PTB Diagnostic records may share PTB's patients, ids unknown;
Chapman-Shaoxing/Ningbo -> ``chapman``; the 2020 sources -> ``cinc2020``), read by
:mod:`ecgbench.data.leakage`.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgbench.core.config import RunFailed
from ecgbench.core.contracts import STANDARD_LEADS, Recordings
from ecgbench.core.store import atomic_write, prepare_cache_folder
from ecgbench.data.datasets import prepared

NAME = "cinc2021"
SOURCE_VERSION = "1.0.3"
PREPROCESS_VERSION = "1"
VERSION = f"{SOURCE_VERSION}-p{PREPROCESS_VERSION}"
URL = "https://physionet.org/files/challenge-2021/1.0.3/"
LICENSE = "CC BY 4.0"
CITATION = (
    "Reyna MA, Sadr N, Perez Alday EA, Gu A, Shah AJ, Robichaux C, Rad AB, Elola A, Seyedi S, "
    "Ansari S, Ghanbari H, Li Q, Sharma A, Clifford GD. Will two do? Varying dimensions in "
    "electrocardiography: the PhysioNet/Computing in Cardiology Challenge 2021. Computing in "
    "Cardiology 48 (2021). doi:10.23919/CinC53138.2021.9662687"
)
FOLDER = "cinc2021"
SIZE = "~11 GB (estimated: 88,253 records of ~120 kB; sources= fetches fewer)"
FS, SECONDS = 500, 10
SPLIT_FRACTIONS = (0.8, 0.1)  # train, val; the rest is test
_LEAD_BY_UPPER = {lead.upper(): lead for lead in STANDARD_LEADS}
_SEX = {"male": 0, "m": 0, "female": 1, "f": 1}


class CincError(RunFailed):
    """Bad or missing challenge input; one line naming the file and the problem."""


# ----- what the corpora contain ----------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One source database inside the challenge, as the challenge named and sampled it."""

    folder: str
    prefix: str
    code: int  # patient_id = code * 10**6 + record number
    fs: int
    description: str
    first: int = 0  # record-number range (the two JS sources share their prefix)
    last: int = 10**6 - 1


SOURCES = {s.folder: s for s in (
    Source("cpsc_2018", "A", 1, 500, "China Physiological Signal Challenge 2018"),
    Source("cpsc_2018_extra", "Q", 2, 500, "CPSC 2018, unused records"),
    Source("st_petersburg_incart", "I", 3, 257, "St Petersburg INCART 12-lead arrhythmia database"),
    Source("ptb", "S", 4, 1000, "PTB Diagnostic ECG database"),
    Source("ptb-xl", "HR", 5, 500, "PTB-XL"),
    Source("georgia", "E", 6, 500, "Georgia 12-lead ECG challenge database (G12EC)"),
    Source("chapman_shaoxing", "JS", 7, 500, "Chapman University / Shaoxing People's Hospital",
           1, 10646),
    Source("ningbo", "JS", 7, 500, "Ningbo First Hospital", 10647),
)}
SOURCES_2020 = ("cpsc_2018", "cpsc_2018_extra", "st_petersburg_incart", "ptb", "ptb-xl", "georgia")
_NAME = re.compile(r"^([A-Z]+)(\d+)$")


@dataclass(frozen=True)
class Overlap:
    """Records of ``sources`` are (or may be) in ecgbench dataset ``dataset``: their id there is
    in metadata column ``id_column``; None when only patients may be shared, ids unknown."""

    dataset: str
    sources: tuple[str, ...]
    id_column: str | None


@dataclass(frozen=True)
class Release:
    """A challenge-style corpus: where it lives, what it contains, what it shares."""

    name: str
    version: str
    url: str
    folder: str
    sources: tuple[str, ...]
    overlaps: tuple[Overlap, ...]
    records_under: str  # subfolder of the release holding the records
    source_folders: bool = True  # records_under/<source>/... (the challenge trees)


PTBXL_OVERLAPS = (Overlap("ptbxl", ("ptb-xl",), "source_record_id"), Overlap("ptbxl", ("ptb",), None))
RELEASE = Release(
    NAME, VERSION, URL, FOLDER, tuple(SOURCES), records_under="training",
    overlaps=PTBXL_OVERLAPS + (Overlap("chapman", ("chapman_shaoxing", "ningbo"), "record_id"),
                       Overlap("cinc2020", SOURCES_2020, "record_id")),
)


# ----- download --------------------------------------------------------------------------------
def download(root: str | Path, sources: Any = None, base_url: str = URL) -> Path:
    """Fetch SHA256SUMS.txt, then the listed record files into ``root/cinc2021``; resumable.

    ``sources`` (names or a comma-separated string) limits it to some source folders.
    """
    return download_release(RELEASE, root, sources, base_url)


def download_release(release: Release, root: str | Path, sources: Any = None,
                     base_url: str | None = None) -> Path:
    from ecgbench.data.datasets.download import download_file, download_tree, parse_sha256sums

    base_url = base_url or release.url
    target = Path(root) / release.folder
    sums_path = download_file(base_url.rstrip("/") + "/SHA256SUMS.txt", target / "SHA256SUMS.txt")
    keep = _sources_option(release, sources)

    def wanted(relative: str) -> bool:
        parts = relative.split("/")
        if release.records_under and parts[0] != release.records_under:
            return len(parts) == 1  # top-level files (licence, RECORDS, condition names)
        return not release.source_folders or (len(parts) > 1 and parts[1] in keep)

    download_tree(base_url, target, parse_sha256sums(sums_path), include=wanted)
    return target


# ----- headers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Header:
    """The header fields the loaders use (names as in ``wfdb.Record``)."""

    record_name: str
    n_sig: int
    fs: float
    sig_len: int
    file_name: tuple[str, ...]
    adc_gain: tuple[float, ...]
    baseline: tuple[int, ...]
    units: tuple[str, ...]
    sig_name: tuple[str, ...]
    comments: tuple[str, ...]
    checksum: tuple[int | None, ...] = ()  # WFDB 16-bit sum of each signal's samples


def _header_text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as error:
        raise CincError(f"{path}: unreadable header ({error.strerror})") from None


def read_header(path: Path) -> Header:
    """wfdb's parse of ``path``; :func:`parse_header_text` where wfdb rejects the header."""
    wfdb = _import_wfdb()
    try:
        record = wfdb.rdheader(str(path.with_suffix("")))
    except Exception:  # wfdb raises HeaderSyntaxError, ValueError... on headers it rejects
        return parse_header_text(_header_text(path), path)
    if record.n_sig is None or not record.sig_name or record.sig_len is None:
        return parse_header_text(_header_text(path), path)
    return Header(
        record_name=record.record_name, n_sig=int(record.n_sig), fs=float(record.fs),
        sig_len=int(record.sig_len), file_name=tuple(record.file_name),
        adc_gain=tuple(float(g) for g in record.adc_gain),
        baseline=tuple(int(b) for b in record.baseline), units=tuple(record.units),
        sig_name=tuple(record.sig_name), comments=tuple(record.comments),
        checksum=tuple(record.checksum or ()),
    )


_GAIN = re.compile(r"^([-+]?[0-9.]+(?:[eE][-+]?\d+)?)(?:\(([-+]?\d+)\))?(?:/(\S+))?$")


def parse_header_text(text: str, path: Path) -> Header:
    """A minimal WFDB header parser for the challenge headers wfdb rejects.

    Record line ``name[.mat] n_sig fs n_samples [time date]`` (the extension is the Georgia
    quirk); signal lines ``file format gain[(baseline)][/units] adcres adczero initval checksum
    blocksize name``; ``#`` comment lines.
    """
    lines = [line.strip() for line in text.splitlines()]
    specs = [line for line in lines if line and not line.startswith("#")]
    comments = tuple(line.strip(" \t#") for line in lines if line.startswith("#"))
    try:
        name, n_sig, fs, sig_len = specs[0].split()[:4]
        n_sig, sig_len = int(n_sig), int(sig_len)
        fs = float(fs.split("/")[0])
        signals = [_signal_line(line) for line in specs[1:1 + n_sig]]
    except (IndexError, ValueError) as error:
        raise CincError(f"{path}: not a WFDB header ({error or 'too few fields'})") from None
    if len(signals) != n_sig:
        raise CincError(f"{path}: header declares {n_sig} signals but has {len(signals)} "
                        "signal lines")
    columns = list(zip(*signals)) if signals else [()] * 6
    return Header(
        record_name=name[:-4] if name.endswith((".mat", ".hea")) else name, n_sig=n_sig,
        fs=fs, sig_len=sig_len, file_name=columns[0], adc_gain=columns[1],
        baseline=columns[2], units=columns[3], sig_name=columns[4], comments=comments,
        checksum=columns[5],
    )


def _signal_line(line: str) -> tuple[str, float, int, str, str, int]:
    fields = line.split(maxsplit=8)
    match = _GAIN.match(fields[2])
    if not match or len(fields) < 9:
        raise ValueError(f"signal line {line[:60]!r}")
    gain = float(match.group(1))
    adc_zero = int(fields[4])
    baseline = int(match.group(2)) if match.group(2) is not None else adc_zero
    return fields[0], gain, baseline, match.group(3) or "mV", fields[8].strip(), int(fields[6])


def demographics(header: Header, path: Path) -> tuple[float, int, str]:
    """``(age, sex, dx)`` from the ``Age:``, ``Sex:`` and ``Dx:`` comments."""
    fields = {}
    for comment in header.comments:
        key, colon, value = comment.partition(":")
        if colon:
            fields.setdefault(key.strip().lower(), value.strip())
    if "dx" not in fields:
        raise CincError(f"{path}: no 'Dx:' comment (the SNOMED CT diagnosis codes)")
    codes = [code.strip() for code in fields["dx"].split(",") if code.strip()]  # 'a,,b,' occurs
    bad = [code for code in codes if not code.isdigit()]
    if not codes or bad:
        raise CincError(f"{path}: Dx {fields['dx']!r} is not a list of SNOMED CT codes")
    return _age(fields.get("age")), _SEX.get(fields.get("sex", "").lower(), -1), ",".join(codes)


def _age(text: str | None) -> float:
    try:
        age = float(text) if text is not None else np.nan
    except ValueError:
        return np.nan  # 'Unknown'
    return age if np.isfinite(age) and age >= 0 else np.nan


# ----- which records are there -----------------------------------------------------------------
def find_source(release: Release, root: str | Path) -> Path:
    """The release folder: ``root/<folder>`` when present, else ``root`` itself when it holds
    records (a downloaded tree's ``training/``, or headers directly)."""
    root = Path(root)
    for candidate in (root / release.folder, root):
        if _holds_records(release, candidate):
            return candidate
    raise CincError(f"{root / release.folder}: missing ({release.name} not found under "
                    f"{root}); get it with `ecgbench data download {release.name}`")


def _holds_records(release: Release, folder: Path) -> bool:
    if not folder.is_dir():
        return False
    if release.records_under and (folder / release.records_under).is_dir():
        return True
    return any(folder.glob("*.hea")) or any((folder / s).is_dir() for s in release.sources)


def find_headers(folder: Path) -> list[Path]:
    """Every header under ``folder``, by record name; a record name twice is refused."""
    headers: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.hea")):
        if path.stem in headers:
            raise CincError(f"{path}: record {path.stem} appears twice (also "
                            f"{headers[path.stem]}); keep one copy of the release")
        headers[path.stem] = path
    if not headers:
        raise CincError(f"{folder}: no .hea records found")
    return [headers[name] for name in sorted(headers)]


def source_of(release: Release, path: Path, folder: Path) -> Source:
    """The source of a record from its name; its folder, if a source folder, must agree."""
    match = _NAME.match(path.stem)
    number = int(match.group(2)) if match else -1
    found = [s for s in SOURCES.values() if match and s.prefix == match.group(1)
             and s.first <= number <= s.last]
    if not found or found[0].folder not in release.sources:
        raise CincError(f"{path}: {path.stem!r} is not a record name of {release.name} "
                        f"(sources {', '.join(release.sources)})")
    folders = [part for part in path.relative_to(folder).parts if part in SOURCES]
    if folders and folders[-1] != found[0].folder:
        raise CincError(f"{path}: a {found[0].folder} record filed under {folders[-1]}/")
    return found[0]


# ----- metadata --------------------------------------------------------------------------------
def read_metadata(release: Release, folder: Path, sources: tuple[str, ...] | None = None,
                  split_seed: int = 0) -> tuple[pd.DataFrame, list[Header]]:
    """One row per record (see the module docstring) and the parsed headers, in name order."""
    rows, headers = [], []
    for path in find_headers(folder):
        source = source_of(release, path, folder)
        if sources is not None and source.folder not in sources:
            continue
        header = read_header(path)
        _check_header(header, source, path)
        age, sex, dx = demographics(header, path)
        number = int(_NAME.match(path.stem).group(2))
        rows.append({
            "record_id": path.stem, "patient_id": source.code * 10**6 + number,
            "source": source.folder, "source_record_id": str(number) if source.prefix == "HR" else "",
            "age": age, "sex": sex, "dx": dx, "fs_source": int(round(header.fs)),
            "seconds": header.sig_len / header.fs,
            "filename": path.relative_to(folder).as_posix(),
        })
        headers.append(header)
    if not rows:
        raise CincError(f"{folder}: no records of the sources {', '.join(sources or ())}")
    meta = pd.DataFrame(rows)
    meta.insert(3, "split", assign_splits(meta["record_id"], split_seed))
    return meta, headers


def _check_header(header: Header, source: Source, path: Path) -> None:
    if header.record_name != path.stem:
        raise CincError(f"{path}: header names record {header.record_name!r}")
    if abs(header.fs - source.fs) > 1e-6:
        raise CincError(f"{path}: sampling rate {header.fs:g} Hz, but {source.folder} records "
                        f"are {source.fs} Hz")
    if header.sig_len <= 0:
        raise CincError(f"{path}: {header.sig_len} samples")
    _lead_order(header, path)
    if len(set(header.file_name)) != 1 or not header.file_name[0].endswith(".mat"):
        raise CincError(f"{path}: signals must be in one .mat file, header names "
                        f"{sorted(set(header.file_name))}")
    bad = [u for u in header.units if u.lower() not in ("mv", "uv")]
    if bad or any(g <= 0 for g in header.adc_gain):
        raise CincError(f"{path}: units {sorted(set(header.units))} / gains "
                        f"{sorted(set(header.adc_gain))} are not positive gains in mV or uV")


def _lead_order(header: Header, path: Path) -> list[int]:
    names = [_LEAD_BY_UPPER.get(name.strip().upper()) for name in header.sig_name]
    if header.n_sig != 12 or sorted(filter(None, names)) != sorted(STANDARD_LEADS):
        raise CincError(f"{path}: leads {list(header.sig_name)} are not the 12 standard leads")
    return [names.index(lead) for lead in STANDARD_LEADS]


def assign_splits(record_ids: pd.Series, seed: int = 0) -> np.ndarray:
    """train / val / test by where ``sha256(f"{seed}:{id}")`` falls (80 / 10 / 10 %)."""
    position = np.array([int(hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest()[:13], 16)
                         for rid in record_ids], dtype=np.float64) / 16.0**13
    train, val = SPLIT_FRACTIONS
    return np.select([position < train, position < train + val], ["train", "val"], "test")


# ----- signals ---------------------------------------------------------------------------------
def read_signal(path: Path, header: Header) -> np.ndarray:
    """The ``.mat`` named by the header at ``path``: float64 mV ``(12, sig_len)``, standard order."""
    from scipy.io import loadmat

    mat = path.parent / header.file_name[0]
    if not mat.is_file():
        raise CincError(f"{mat}: missing (the signal file of {path.name})")
    try:
        val = loadmat(str(mat)).get("val")
    except Exception as error:  # scipy raises ValueError, TypeError, OSError... on damaged files
        raise CincError(f"{mat}: unreadable .mat ({type(error).__name__}: "
                        f"{' '.join(str(error).split())[:100]}); the file may be truncated") from None
    if not isinstance(val, np.ndarray) or val.ndim != 2:
        raise CincError(f"{mat}: no 2-D 'val' array (the challenge's signal variable)")
    if val.shape != (header.n_sig, header.sig_len):
        raise CincError(f"{mat}: holds {val.shape[0]} signals x {val.shape[1]} samples, but "
                        f"{path.name} says {header.n_sig} x {header.sig_len}")
    signal = val.astype(np.float64)
    if not np.isfinite(signal).all():
        lead = header.sig_name[int(np.flatnonzero(~np.isfinite(signal).all(axis=1))[0])]
        raise CincError(f"{mat}: {int((~np.isfinite(signal)).sum())} NaN/infinite samples "
                        f"(first in lead {lead}); missing values are not allowed")
    _check_checksums(signal, header, mat, path)
    gain = np.array(header.adc_gain)[:, None]
    scale = np.array([1e-3 if u.lower() == "uv" else 1.0 for u in header.units])[:, None]
    signal = (signal - np.array(header.baseline)[:, None]) / gain * scale
    return signal[_lead_order(header, path)]


def _check_checksums(signal: np.ndarray, header: Header, mat: Path, path: Path) -> None:
    """Each signal's samples against its header line's 16-bit checksum (mod 2**16, as wfdb
    compares them): a damaged .mat, or lead lines that do not match the data, fail here."""
    totals = signal.sum(axis=1)  # integer samples: the float64 sums are exact
    for name, total, expected in zip(header.sig_name, totals, header.checksum):
        if expected is not None and (int(total) - expected) % 65536:
            raise CincError(f"{mat}: samples of lead {name} do not match the checksum in "
                            f"{path.name} ({int(total) % 65536} vs {expected}); the record or "
                            "its header is damaged or its lead lines are out of order")


def fixed_length(signal: np.ndarray, fs_in: int, fs: int, seconds: int) -> tuple[np.ndarray, int]:
    """Resample to ``fs``, keep the first ``seconds`` or zero-pad; (signal, true length kept)."""
    from ecgbench.data.adapt import resample

    out = resample(signal, fs_in, fs) if fs_in != fs else signal.astype(np.float32)
    total = fs * seconds
    kept = min(out.shape[-1], total)
    fixed = np.zeros((out.shape[0], total), dtype=np.float32)
    fixed[:, :kept] = out[:, :kept]
    return fixed, kept


# ----- load ------------------------------------------------------------------------------------
def load(root: str | Path, fs: int = FS, seconds: int = SECONDS, sources: Any = None,
         split_seed: int = 0, cache_dir: str | Path | None = None, **unknown: Any) -> Recordings:
    """The CinC 2021 training set under ``root`` as :class:`Recordings` (prepared once, cached).

    ``sources`` limits the records to some source folders (names or comma-separated).
    Prepared arrays go to ``<cache_dir or root>/cinc2021-prepared-<version>-<hash>/``; the hash
    covers every header's bytes, every signal file's size and modification time and the
    options, so an edited, overwritten, truncated or touched source file is read again
    (:mod:`ecgbench.data.datasets.prepared`).
    """
    return load_release(RELEASE, root, fs, seconds, sources, split_seed, cache_dir, **unknown)


def load_release(release: Release, root: str | Path, fs: int = FS, seconds: int = SECONDS,
                 sources: Any = None, split_seed: int = 0, cache_dir: str | Path | None = None,
                 **unknown: Any) -> Recordings:
    if unknown:
        raise CincError(f"{release.name}: unknown option(s) {sorted(unknown)}; known: fs, "
                        "seconds, sources, split_seed, cache_dir")
    fs, seconds = _integer(release, "fs", fs, 1), _integer(release, "seconds", seconds, 1)
    split_seed = _integer(release, "split_seed", split_seed, 0)
    keep = _sources_option(release, sources)
    folder = find_source(release, root)
    options = {"fs": fs, "seconds": seconds, "sources": sorted(keep), "split_seed": split_seed}
    headers = sorted(folder.rglob("*.hea"))
    key = prepared.build_key(options=options, headers=prepared.digest_files(headers, folder),
                             signals=prepared.stamps([p.with_suffix(".mat") for p in headers], folder))
    cache = Path(cache_dir or root) / f"{release.name}-prepared-{release.version}-{key}"
    if not prepared.is_prepared(cache):
        _prepare(release, cache, folder, keep, fs, seconds, split_seed)
    signals = prepared.load_signals(cache, CincError)
    meta = pd.read_csv(cache / "meta.csv", keep_default_na=False, na_values={"age": ["", "NaN"]},
                       dtype={"record_id": str, "source": str, "source_record_id": str,
                              "dx": str, "split": str, "filename": str})
    fingerprint = prepared.fingerprint(cache)
    return Recordings(name=release.name, version=f"{release.version}-{fingerprint}", signals=signals,
                      meta=meta, fs=fs, lead_names=STANDARD_LEADS, fingerprint=fingerprint)


def _integer(release: Release, name: str, value: Any, minimum: int) -> int:
    """Options may arrive as strings from ``--set``."""
    try:
        number = int(str(value).strip())
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise CincError(f"{release.name}: {name} must be an integer >= {minimum}, got {value!r}")
    return number


def _sources_option(release: Release, sources: Any) -> tuple[str, ...]:
    if sources is None or sources == "":
        return release.sources
    names = [s.strip() for s in sources.split(",")] if isinstance(sources, str) else list(sources)
    unknown = [s for s in names if s not in release.sources]
    if unknown or not names:
        raise CincError(f"{release.name}: unknown source(s) {unknown}; choose from "
                        f"{', '.join(release.sources)}")
    return tuple(s for s in release.sources if s in names)


def _prepare(release: Release, cache: Path, folder: Path, sources: tuple[str, ...], fs: int,
             seconds: int, split_seed: int) -> None:
    """signals.npy, meta.csv, then done.json, each written to a temp name and renamed; a failed
    preparation leaves no signals behind."""
    meta, headers = read_metadata(release, folder, sources, split_seed)
    prepare_cache_folder(cache, CincError)
    tmp = cache / f"signals.tmp-{os.getpid()}.npy"
    try:
        kept = _write_signals(tmp, folder, meta, headers, fs, seconds)
        os.replace(tmp, cache / "signals.npy")
    finally:
        tmp.unlink(missing_ok=True)
    meta["n_samples"] = kept
    atomic_write(cache / "meta.csv", lambda path: meta.to_csv(path, index=False))
    prepared.finish(cache, {
        "name": release.name, "version": release.version, "fs": fs, "seconds": seconds,
        "records": len(meta), "source": str(folder), "split_seed": split_seed,
        "sources": meta["source"].value_counts().sort_index().to_dict(),
    })


def _write_signals(path: Path, folder: Path, meta: pd.DataFrame, headers: list[Header], fs: int,
                   seconds: int) -> np.ndarray:
    shape = (len(meta), len(STANDARD_LEADS), fs * seconds)
    signals = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    kept = np.zeros(len(meta), dtype=np.int64)
    for index, (name, header) in _progress(list(enumerate(zip(meta["filename"], headers)))):
        raw = read_signal(folder / name, header)
        signals[index], kept[index] = fixed_length(raw, int(round(header.fs)), fs, seconds)
    signals.flush()
    del signals
    return kept


def _progress(items: list) -> Any:
    if len(items) < 500:
        return items
    from rich.progress import track

    return track(items, description="reading challenge records", transient=True)


def _import_wfdb() -> Any:
    with warnings.catch_warnings():  # wfdb 4.3 warns about pandas deprecations in its import
        warnings.filterwarnings("ignore", module=r"wfdb(\.|$)")
        import wfdb
    return wfdb


# ----- leakage declarations and summary --------------------------------------------------------
def overlaps(meta: pd.DataFrame, dataset: str) -> pd.Series | None:
    """Per row, its record id in ``dataset`` ("" when only patients may be shared), NaN where
    the row is not in ``dataset``; None when nothing of this corpus is there."""
    return release_overlaps(RELEASE, meta, dataset)


def release_overlaps(release: Release, meta: pd.DataFrame, dataset: str) -> pd.Series | None:
    rules = [rule for rule in release.overlaps if rule.dataset == dataset]
    if not rules:
        return None
    ids = pd.Series(np.nan, index=meta.index, dtype=object)
    for rule in rules:
        rows = meta["source"].isin(rule.sources).to_numpy()
        ids[rows] = meta.loc[rows, rule.id_column].astype(str) if rule.id_column else ""
    return ids


def info(root: str | Path, **options: Any) -> dict[str, Any]:
    return release_info(load(root, **options))


def release_info(recordings: Recordings) -> dict[str, Any]:
    """Record counts per source and split, sex and age coverage, the most frequent Dx codes."""
    meta = recordings.meta
    codes = pd.Series([c for dx in meta["dx"] for c in dx.split(",")]).value_counts()
    total = recordings.signals.shape[-1]
    return {
        "records": len(meta),
        "sources": meta["source"].value_counts().sort_index().to_dict(),
        "splits": meta["split"].value_counts().sort_index().to_dict(),
        "sex": {"male": int((meta["sex"] == 0).sum()), "female": int((meta["sex"] == 1).sum()),
                "unknown": int((meta["sex"] == -1).sum())},
        "missing_age": int(meta["age"].isna().sum()),
        "top_dx": {str(k): int(v) for k, v in codes.head(10).items()},
        "cropped": int((meta["seconds"] * recordings.fs > total + 0.5).sum()),
        "zero_padded": int((meta["n_samples"] < total).sum()),
        "resampled": int((meta["fs_source"] != recordings.fs).sum()),
    }

