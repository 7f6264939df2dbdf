"""Clinical ECG parameters per record: heart rate, PR, QRS, QT, QTc and the frontal QRS axis,
measured once per record with neurokit2 and cached on disk.

The parameters come from neurokit2's R-peak detection (``ecg_peaks``) and DWT delineation
(``ecg_delineate``) on lead II; QTc by Bazett; the axis from the net QRS deflections of leads
I and aVF (= II - I / 2). A parameter that cannot be measured (no beats found, delineation
error, or outside a plausible range) is filled with a typical adult value (75 bpm, 160, 95,
400, 410 ms, 45 degrees), and a last column counts the filled parameters, so a model can tell
measured from filled: :data:`N_COLUMNS` columns in all.

:func:`record_features` measures each record once, on the record as the encoder sees it (its
leads at the encoder's rate: its valid windows joined end to end), in parallel (worker processes), and
keeps one table per dataset (name, version, content fingerprint), input spec and
:data:`EXTRACTOR_VERSION`, by record id, so any subset of the dataset reuses it. The runner
keeps the table beside the datasets (the data root's ``derived`` folder), so every results
folder shares it (atomic writes: a killed run leaves no half-written table).
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ecgbench.core.config import short_hash
from ecgbench.core.contracts import InputSpec, Recordings
from ecgbench.core.store import write_json

EXTRACTOR_VERSION = 1  # bump when the measurement changes: it is part of every cache key
FIELDS: tuple[str, ...] = ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms", "qrs_axis_deg")
TYPICAL_VALUES: tuple[float, ...] = (75.0, 160.0, 95.0, 400.0, 410.0, 45.0)
PLAUSIBLE: tuple[tuple[float, float], ...] = ((20, 300), (60, 400), (40, 250), (200, 700),
                                              (200, 700), (-180, 180))
N_COLUMNS = len(FIELDS) + 1  # the parameters, then how many of them were filled
PARALLEL_FROM = 16  # records: below this, starting worker processes costs more than it saves


def _median_ms(stop: np.ndarray, start: np.ndarray, fs: float) -> float:
    d = (np.asarray(stop, float) - np.asarray(start, float)) / fs * 1000.0
    d = d[np.isfinite(d) & (d > 0)]
    return float(np.median(d)) if len(d) else float("nan")


def _net_qrs(signal: np.ndarray, onsets: np.ndarray, offsets: np.ndarray) -> float:
    """Median over beats of the net QRS deflection (largest positive + largest negative swing
    from the QRS onset level)."""
    values = []
    for on, off in zip(onsets, offsets):
        if np.isfinite(on) and np.isfinite(off) and off > on:
            segment = signal[int(on): int(off) + 1] - signal[int(on)]
            values.append(segment.max() + segment.min())
    return float(np.median(values)) if values else float("nan")


def clinical_parameters(signal: np.ndarray, fs: float, leads: tuple[str, ...]) -> np.ndarray:
    """(leads, T) -> (6,) heart rate, PR, QRS, QT, QTc, QRS axis; NaN where not measurable."""
    import neurokit2 as nk

    out = np.full(len(FIELDS), np.nan)
    if "II" not in leads:
        return out
    lead_ii = signal[leads.index("II")].astype(float)
    with warnings.catch_warnings():  # neurokit2 warns on short or noisy signals
        warnings.simplefilter("ignore")
        try:
            clean = nk.ecg_clean(lead_ii, sampling_rate=int(fs))
            _, info = nk.ecg_peaks(clean, sampling_rate=int(fs))
            peaks = np.asarray(info["ECG_R_Peaks"], dtype=float)
            if len(peaks) < 2:
                return out
            rr = float(np.median(np.diff(peaks))) / fs  # seconds
            out[0] = 60.0 / rr
            if not PLAUSIBLE[0][0] <= out[0] <= PLAUSIBLE[0][1]:
                return np.full(len(FIELDS), np.nan)  # no rhythm: skip the delineation
            _, waves = nk.ecg_delineate(clean, peaks.astype(int), sampling_rate=int(fs),
                                        method="dwt")
        except Exception as error:  # noqa: BLE001 - any delineation failure is a missing value
            logging.getLogger(__name__).debug("delineation failed: %s", error)
            return out
    p_on, r_on, r_off, t_off = (np.asarray(waves.get(k, []), dtype=float) for k in
                                ("ECG_P_Onsets", "ECG_R_Onsets", "ECG_R_Offsets", "ECG_T_Offsets"))
    n = min(len(p_on), len(r_on), len(r_off), len(t_off))
    p_on, r_on, r_off, t_off = p_on[:n], r_on[:n], r_off[:n], t_off[:n]
    out[1] = _median_ms(r_on, p_on, fs)
    out[2] = _median_ms(r_off, r_on, fs)
    out[3] = _median_ms(t_off, r_on, fs)
    out[4] = out[3] / np.sqrt(rr)  # Bazett, RR in seconds
    if "I" in leads:
        lead_i = signal[leads.index("I")].astype(float)
        net_i = _net_qrs(lead_i, r_on, r_off)
        net_avf = _net_qrs(lead_ii - lead_i / 2.0, r_on, r_off)
        if np.isfinite(net_i) and np.isfinite(net_avf) and (net_i or net_avf):
            out[5] = float(np.degrees(np.arctan2(net_avf, net_i)))
    for i, (low, high) in enumerate(PLAUSIBLE):
        if not low <= out[i] <= high:
            out[i] = np.nan
    return out


def clinical_features(signals: list[np.ndarray] | np.ndarray, fs: float,
                      leads: tuple[str, ...], n_jobs: int = -1) -> np.ndarray:
    """One (leads, T_i) signal per row -> (rows, 7): the six parameters with missing ones
    filled by typical values, then the number filled. Many rows run in parallel (worker processes)."""
    if len(signals) >= PARALLEL_FROM and n_jobs != 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from ecgbench.core.machine import usable_cores

        workers = usable_cores() if n_jobs < 1 else n_jobs
        # a pool that ends with the call: joblib's reusable loky workers idle on for minutes,
        # and a process that started them waits for them before it can exit
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows = list(pool.map(clinical_parameters, signals, [fs] * len(signals), [leads] * len(signals),
                                 chunksize=max(1, len(signals) // (8 * workers))))
    else:
        rows = [clinical_parameters(s, fs, leads) for s in signals]
    values = np.stack(rows).reshape(len(signals), len(FIELDS))
    missing = np.isnan(values)
    filled = np.where(missing, np.asarray(TYPICAL_VALUES)[None, :], values)
    return np.concatenate([filled, missing.sum(axis=1, keepdims=True)], axis=1).astype(np.float32)


def cache_path(data: Recordings, spec: InputSpec, cache_dir: Path) -> Path:
    """The table of ``data``'s dataset (name, version, content fingerprint) for ``spec``: one
    row per record measured so far, whatever subset asked for it."""
    content = f"-{data.fingerprint}" if data.fingerprint else ""
    return Path(cache_dir) / (f"clinical-{data.name}-{data.version}{content}-{short_hash(spec, 8)}"
                              f"-x{EXTRACTOR_VERSION}.npz")


def record_features(data: Recordings, spec: InputSpec, cache_dir: Path,
                    n_jobs: int = -1) -> np.ndarray:
    """(N, 7) clinical features of every record of ``data`` as ``spec`` adapts it. Each record
    is measured once per dataset version and input spec: the table in ``cache_dir`` keeps
    every record measured so far (by record id), and a call measures only the records it
    lacks (under a file lock: processes sharing the cache measure each record once)."""
    from filelock import FileLock

    path = cache_path(data, spec, cache_dir)
    ids = np.asarray([str(r) for r in data.meta["record_id"]])
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        known = _read_table(path)
        missing = np.flatnonzero([record not in known for record in ids])
        if len(missing):
            measured = _measure(data, missing, spec, n_jobs)
            known.update(zip(ids[missing], measured))
            _write_table(path, known, data, spec)
    return np.stack([known[record] for record in ids]).astype(np.float32)


def _measure(data: Recordings, rows: np.ndarray, spec: InputSpec, n_jobs: int) -> np.ndarray:
    import dataclasses

    from ecgbench.data.adapt import adapt

    subset = dataclasses.replace(data, signals=np.asarray(data.signals[rows]),
                                 meta=data.meta.iloc[rows].reset_index(drop=True))
    adapted = adapt(subset, spec)  # (n, W, leads, samples) windows at the encoder's leads and rate
    signals = [np.concatenate(list(windows[valid]), axis=-1)  # (leads, valid windows * samples)
               for windows, valid in zip(adapted.windows, adapted.valid)]
    return clinical_features(signals, spec.fs, tuple(spec.leads), n_jobs)


def _read_table(path: Path) -> dict[str, np.ndarray]:
    """record id -> feature row; empty when the table is missing or damaged (remeasured)."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as table:
            ids, features = table["record_id"], table["features"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        logging.getLogger(__name__).warning("%s: unreadable clinical-feature table; measuring again", path)
        return {}
    if features.shape != (len(ids), N_COLUMNS):
        return {}
    return dict(zip(ids.astype(str), features))


def _write_table(path: Path, known: dict[str, np.ndarray], data: Recordings, spec: InputSpec) -> None:
    from ecgbench.core.store import atomic_write

    ids = np.asarray(sorted(known))
    features = np.stack([known[record] for record in ids]).astype(np.float32)
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would append .npz to a path
            np.savez(handle, record_id=ids, features=features)

    atomic_write(path, save)
    write_json(path.with_suffix(".json"), {
        "dataset": f"{data.name}@{data.version}", "fingerprint": data.fingerprint,
        "records": len(ids), "input_spec": repr(spec), "extractor_version": EXTRACTOR_VERSION,
        "columns": [*FIELDS, "n_filled"],
        "mean_filled_per_record": round(float(features[:, -1].mean()), 3),
    })
