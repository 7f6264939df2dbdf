"""Chapman-Shaoxing and Ningbo 12-lead ECGs: PhysioNet ecg-arrhythmia 1.0.0 (45,152 records).

Zheng J, Guo H, Chu H. A large scale 12-lead electrocardiogram database for arrhythmia study
(version 1.0.0). PhysioNet (2022), doi:10.13026/wgex-er52, CC BY 4.0; and Zheng J, Zhang J,
Danioko S, Yao H, Guo H, Rakovski C. A 12-lead electrocardiogram database for arrhythmia
research covering more than 10,000 patients. Sci Data 7, 48 (2020).
https://physionet.org/files/ecg-arrhythmia/1.0.0/

A pretraining corpus. The release holds ``WFDBRecords/<nn>/<nnn>/JSxxxxx.hea|.mat`` (500 Hz,
10 s, 12 leads, ``val`` int16 at 1000/mV) beside ``ConditionNames_SNOMED-CT.csv``, ``RECORDS``
and ``LICENSE.txt``; the headers are the challenge style (``#Age:``, ``#Sex:``, ``#Dx:`` with
SNOMED CT codes), so header parsing, signal reading, metadata, split and preprocessing are
:mod:`ecgbench.data.datasets.cinc2021`'s, bound here to this release. ``source`` is
chapman_shaoxing for JS00001-JS10646 and ningbo after, the numbering the 2021 challenge used
for these same records; one record per patient, as the database describes it.

Leakage: these are the records the 2021 challenge distributed under the same names, so every
record is declared to be in ``cinc2021``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ecgbench.core.contracts import Recordings
from ecgbench.data.datasets.cinc2021 import (
    FS,
    SECONDS,
    Overlap,
    Release,
    download_release,
    load_release,
    release_info,
    release_overlaps,
)

NAME = "chapman"
SOURCE_VERSION = "1.0.0"
PREPROCESS_VERSION = "1"
VERSION = f"{SOURCE_VERSION}-p{PREPROCESS_VERSION}"
URL = "https://physionet.org/files/ecg-arrhythmia/1.0.0/"
LICENSE = "CC BY 4.0"
CITATION = (
    "Zheng J, Guo H, Chu H. A large scale 12-lead electrocardiogram database for arrhythmia "
    "study (version 1.0.0). PhysioNet. 2022. doi:10.13026/wgex-er52. Zheng J, Zhang J, Danioko "
    "S, Yao H, Guo H, Rakovski C. A 12-lead electrocardiogram database for arrhythmia research "
    "covering more than 10,000 patients. Sci Data. 2020;7:48. doi:10.1038/s41597-020-0386-x"
)
FOLDER = "ecg-arrhythmia"
SIZE = "~5.5 GB (estimated: 45,152 records of ~120 kB)"
SOURCES = ("chapman_shaoxing", "ningbo")
RELEASE = Release(NAME, VERSION, URL, FOLDER, SOURCES, records_under="WFDBRecords",
                  source_folders=False, overlaps=(Overlap("cinc2021", SOURCES, "record_id"),))


def download(root: str | Path, base_url: str = URL) -> Path:
    """Fetch SHA256SUMS.txt, then every listed file into ``root/ecg-arrhythmia``; resumable."""
    return download_release(RELEASE, root, None, base_url)


def load(root: str | Path, fs: int = FS, seconds: int = SECONDS, sources: Any = None,
         split_seed: int = 0, cache_dir: str | Path | None = None, **unknown: Any) -> Recordings:
    """See :func:`ecgbench.data.datasets.cinc2021.load`."""
    return load_release(RELEASE, root, fs, seconds, sources, split_seed, cache_dir, **unknown)


def overlaps(meta: pd.DataFrame, dataset: str) -> pd.Series | None:
    return release_overlaps(RELEASE, meta, dataset)


def info(root: str | Path, **options: Any) -> dict[str, Any]:
    return release_info(load(root, **options))
