"""Demographic tasks on the CinC 2021 training set (:mod:`ecgbench.datasets.cinc2021`, 1.0.3).

Sex and age from the header comments (``# Sex:``, ``# Age:``); records with an unknown value
are left out of the task. The split is the loader's seeded record-level 80/10/10 split (the
challenge has no public test set and no patient ids). These exist mainly so that the real
12-lead path (pretraining on the challenge corpus, probing on it) can be exercised end to end;
on the 50-record sample the numbers mean little.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgbench.api import Task

CITATION = (
    "Reyna MA, Sadr N, Perez Alday EA, Gu A, Shah AJ, Robichaux C, Rad AB, Elola A, Seyedi S, "
    "Ansari S, Ghanbari H, Li Q, Sharma A, Clifford GD. Will two do? Varying dimensions in "
    "electrocardiography: the PhysioNet/Computing in Cardiology Challenge 2021. Computing in "
    "Cardiology 48 (2021). doi:10.23919/CinC53138.2021.9662687"
)


def sex_labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    sex = pd.to_numeric(meta["sex"], errors="coerce")
    usable = sex.isin([0, 1]).to_numpy()
    return sex.where(usable, -1).to_numpy(dtype=int), usable


def age_labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    age = pd.to_numeric(meta["age"], errors="coerce").to_numpy(dtype=float)
    return age, np.isfinite(age)


CINC2021_SEX = Task(
    name="cinc2021-sex",
    description="CinC 2021: patient sex (0 male, 1 female) from the 12-lead ECG.",
    version=1,
    dataset="cinc2021",
    kind="binary",
    labels=sex_labels,
    main_metric="macro_auroc",
    classes=("male", "female"),
    citation=CITATION,
)

CINC2021_AGE = Task(
    name="cinc2021-age",
    description="CinC 2021: patient age in years (regression; unknown ages left out).",
    version=1,
    dataset="cinc2021",
    kind="regression",
    labels=age_labels,
    main_metric="mae",
    citation=CITATION,
)
