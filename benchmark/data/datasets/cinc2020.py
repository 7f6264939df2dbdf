"""PhysioNet/CinC Challenge 2020 training set (1.0.2): 43,101 12-lead ECGs from 6 sources.

Perez Alday EA, Gu A, Shah AJ, Robichaux C, Wong AKI, Liu C, Liu F, Rad AB, Elola A, Seyedi S,
Li Q, Sharma A, Clifford GD, Reyna MA. Classification of 12-lead ECGs: the PhysioNet/Computing
in Cardiology Challenge 2020. Physiol Meas 41(12):124003 (2020).
PhysioNet https://physionet.org/files/challenge-2020/1.0.2/, CC BY 4.0.

The same tree, header style and signal files as the 2021 release (``training/<source>/g<k>/``;
CPSC 2018 ``A0001``.., CPSC extra ``Q``, INCART ``I``, PTB ``S``, PTB-XL ``HR``, Georgia ``E``);
2021 re-released these records under the same names and added Chapman-Shaoxing and Ningbo.
All the loading code, its metadata columns, split and preprocessing are
:mod:`ecgbench.data.datasets.cinc2021`'s, bound here to the 2020 release. Leakage declarations: the
PTB-XL and PTB records as in 2021, and every record is also a ``cinc2021`` record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ecgbench.core.contracts import Recordings
from ecgbench.data.datasets.cinc2021 import (
    FS,
    PTBXL_OVERLAPS,
    SECONDS,
    SOURCES_2020,
    Overlap,
    Release,
    download_release,
    load_release,
    release_info,
    release_overlaps,
)

NAME = "cinc2020"
SOURCE_VERSION = "1.0.2"
PREPROCESS_VERSION = "1"
VERSION = f"{SOURCE_VERSION}-p{PREPROCESS_VERSION}"
URL = "https://physionet.org/files/challenge-2020/1.0.2/"
LICENSE = "CC BY 4.0"
CITATION = (
    "Perez Alday EA, Gu A, Shah AJ, Robichaux C, Wong AKI, Liu C, Liu F, Rad AB, Elola A, "
    "Seyedi S, Li Q, Sharma A, Clifford GD, Reyna MA. Classification of 12-lead ECGs: the "
    "PhysioNet/Computing in Cardiology Challenge 2020. Physiol Meas. 2020;41(12):124003. "
    "doi:10.1088/1361-6579/abc960"
)
FOLDER = "cinc2020"
SIZE = "~6 GB (estimated: 43,101 records, CPSC ones up to 144 s; sources= fetches fewer)"
RELEASE = Release(NAME, VERSION, URL, FOLDER, SOURCES_2020, records_under="training",
                  overlaps=PTBXL_OVERLAPS + (Overlap("cinc2021", SOURCES_2020, "record_id"),))


def download(root: str | Path, sources: Any = None, base_url: str = URL) -> Path:
    """Fetch SHA256SUMS.txt, then the listed record files into ``root/cinc2020``; resumable."""
    return download_release(RELEASE, root, sources, base_url)


def load(root: str | Path, fs: int = FS, seconds: int = SECONDS, sources: Any = None,
         split_seed: int = 0, cache_dir: str | Path | None = None, **unknown: Any) -> Recordings:
    """See :func:`ecgbench.data.datasets.cinc2021.load`."""
    return load_release(RELEASE, root, fs, seconds, sources, split_seed, cache_dir, **unknown)


def overlaps(meta: pd.DataFrame, dataset: str) -> pd.Series | None:
    return release_overlaps(RELEASE, meta, dataset)


def info(root: str | Path, **options: Any) -> dict[str, Any]:
    return release_info(load(root, **options))
