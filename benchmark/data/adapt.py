"""Adapt recordings to what an encoder consumes (leads, sampling rate, window length).

Records are resampled with :func:`scipy.signal.resample_poly` (polyphase, anti-aliased),
then cut into non-overlapping windows of the encoder's length; a record shorter than one
window is zero-padded at the end. Every step taken is described in a dict that is stored
with each result, so a table can say exactly what its encoder saw.

Variable-length datasets (CinC 2017) keep zero-padded signals plus an ``n_samples`` metadata
column with each record's true length. Only that part is windowed (its resampled length is
``ceil(n_samples * fs_out / fs_in)``, exactly what resample_poly gives for the unpadded record,
since it treats samples past the end as zeros too); records then have different numbers of
windows, and :attr:`Adapted.valid` marks which of the ``W`` window slots are real. Embeddings
average the valid windows only and pretraining samples only valid windows. Datasets without
the column have all windows valid, as before.

A single-lead dataset feeds the one lead of a single-lead encoder whatever its name (the
encoder's lead II gets CinC 2017's lead I); the description says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ecgbench.core.contracts import InputSpec, NotApplicable, Recordings

_CHUNK = 256  # records per resampling chunk, to bound memory on 12-lead data


@dataclass
class Adapted:
    windows: np.ndarray  # (N, W, leads, n_samples) float32
    description: dict
    valid: np.ndarray | None = None  # (N, W) bool; None means every window is real

    def __post_init__(self) -> None:
        if self.valid is None:
            self.valid = np.ones(self.windows.shape[:2], dtype=bool)

    @property
    def n_windows(self) -> int:
        return self.windows.shape[1]


def lead_indices(recordings: Recordings, leads: tuple[str, ...]) -> list[int]:
    if _single_lead_substitute(recordings, leads):
        return [0]
    missing = [lead for lead in leads if lead not in recordings.lead_names]
    if missing:
        raise NotApplicable(
            f"{recordings.name}: the encoder needs leads {missing} which the dataset lacks "
            f"(it has {list(recordings.lead_names)})"
        )
    return [recordings.lead_names.index(lead) for lead in leads]


def resample(x: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Polyphase resampling along the last axis."""
    if fs_in == fs_out:
        return np.asarray(x, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(fs_out, fs_in)
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def _single_lead_substitute(recordings: Recordings, leads: tuple[str, ...]) -> bool:
    return len(leads) == 1 and len(recordings.lead_names) == 1 and leads[0] not in recordings.lead_names


def true_lengths(recordings: Recordings) -> np.ndarray | None:
    """Each record's true length (``n_samples`` column), or None when all use the full T."""
    if "n_samples" not in recordings.meta.columns:
        return None
    lengths = recordings.meta["n_samples"].to_numpy()
    total = recordings.signals.shape[-1]
    if not np.issubdtype(lengths.dtype, np.integer) or (lengths < 1).any() or (lengths > total).any():
        raise ValueError(f"{recordings.name}: n_samples must be integers in 1..{total} "
                         f"(the padded length)")
    return lengths.astype(np.int64)


def resampled_length(n: np.ndarray | int, fs_in: int, fs_out: int) -> np.ndarray:
    """Length resample_poly gives for ``n`` input samples: ceil(n * up / down)."""
    ratio = Fraction(fs_out, fs_in)
    return -(-np.asarray(n, dtype=np.int64) * ratio.numerator // ratio.denominator)


def adapt(recordings: Recordings, spec: InputSpec) -> Adapted:
    leads = lead_indices(recordings, spec.leads)
    lengths = true_lengths(recordings)
    full = resampled_length(recordings.signals.shape[-1], recordings.fs, spec.fs)
    out_lengths = (np.full(len(recordings), full) if lengths is None
                   else resampled_length(lengths, recordings.fs, spec.fs))  # (N,) at spec.fs
    n = spec.n_samples
    counts = np.maximum(out_lengths // n, 1)  # windows per record; a short record gets one
    windows = np.zeros((len(recordings), int(counts.max()), len(leads), n), dtype=np.float32)
    valid = np.arange(windows.shape[1])[None, :] < counts[:, None]  # (N, W)
    for start in range(0, len(recordings), _CHUNK):
        chunk = resample(np.asarray(recordings.signals[start : start + _CHUNK, leads, :]),
                         recordings.fs, spec.fs)  # (c, leads, T')
        for offset, signal in enumerate(chunk):
            index = start + offset
            _cut(signal[:, : out_lengths[index]], counts[index], n, windows[index])
    description = {
        "leads": list(spec.leads),
        "resample": f"{recordings.fs} Hz -> {spec.fs} Hz (scipy.signal.resample_poly)"
        if recordings.fs != spec.fs
        else "none",
        "window_samples": n,
    }
    if _single_lead_substitute(recordings, spec.leads):
        description["lead_substitution"] = (f"the dataset's only lead {recordings.lead_names[0]} "
                                            f"fed as the encoder's {spec.leads[0]}")
    if lengths is None:
        description.update(windows_per_record=int(counts[0]),
                           samples_dropped_at_end=int(out_lengths[0] - counts[0] * n) if full >= n else 0,
                           zero_padded_samples=int(max(n - full, 0)))
    else:
        description.update(_variable_description(out_lengths, counts, n, spec.fs))
    return Adapted(windows, description, valid)


def _cut(signal: np.ndarray, count: int, n: int, out: np.ndarray) -> None:
    """(leads, L) -> ``count`` windows of n samples into out[:count] (zero-padded if L < n)."""
    if signal.shape[-1] < n:
        out[0, :, : signal.shape[-1]] = signal
        return
    out[:count] = signal[:, : count * n].reshape(signal.shape[0], count, n).transpose(1, 0, 2)


def _variable_description(lengths: np.ndarray, counts: np.ndarray, n: int, fs: int) -> dict:
    dropped = np.where(lengths >= n, lengths - counts * n, 0)
    return {
        "variable_length": "windows cut from each record's true length (n_samples); padding "
                           "windows are masked out of embeddings (mean of valid windows) and "
                           "pretraining",
        "record_seconds": {"min": round(float(lengths.min()) / fs, 3),
                           "max": round(float(lengths.max()) / fs, 3)},
        "windows_per_record": {"min": int(counts.min()), "max": int(counts.max()),
                               "mean": round(float(counts.mean()), 3)},
        "valid_windows": int(counts.sum()),
        "samples_dropped_at_end": {"total": int(dropped.sum()), "max": int(dropped.max())},
        "records_zero_padded": int((lengths < n).sum()),
    }


def adapt_each_channel(recordings: Recordings, spec: InputSpec) -> Adapted:
    """Every channel of every record as the one lead of a single-lead encoder (``Task.channels
    == "each"``, NERULA's per-axis evaluation of HAR).

    The N records become ``N * C`` single-lead pseudo-records, record-major (row ``i * C + c``
    is channel ``c`` of record ``i``), adapted by :func:`adapt`; the caller embeds them and
    reshapes the ``(N * C, D)`` embeddings to ``(N, C * D)``, channels concatenated in the
    dataset's order. A multi-lead encoder is not applicable.
    """
    if len(spec.leads) != 1:
        raise NotApplicable(
            f"{recordings.name}: the task embeds each of its {len(recordings.lead_names)} "
            f"channels separately with a single-lead encoder; this encoder takes "
            f"{len(spec.leads)} leads"
        )
    n, c, t = recordings.signals.shape
    view = Recordings(
        name=recordings.name, version=recordings.version,
        signals=recordings.signals.reshape(n * c, 1, t),  # a view, also of a memmap
        meta=recordings.meta.iloc[np.repeat(np.arange(n), c)].reset_index(drop=True),
        fs=recordings.fs, lead_names=spec.leads, fingerprint=recordings.fingerprint,
    )
    adapted = adapt(view, spec)
    adapted.description["channels"] = (
        f"each of the {c} channels ({', '.join(recordings.lead_names)}) fed separately as the "
        f"encoder's lead {spec.leads[0]}; the {c} per-channel embeddings are concatenated in "
        "that order"
    )
    return adapted
