"""Demographic tasks on the CinC 2021 training set (:mod:`ecgbench.data.datasets.cinc2021`, 1.0.3).

Sex and age from the header comments (``# Sex:``, ``# Age:``); records with an unknown value
are left out of the task. The split is the loader's seeded record-level 80/10/10 split (the
challenge has no public test set and no patient ids). These exist mainly so that the real
12-lead path (pretraining on the challenge corpus, probing on it) can be exercised end to end;
on the 50-record sample the numbers mean little.
"""

from __future__ import annotations

from ecgbench.core.contracts import Task
from ecgbench.tasks._labels import age_labels, sex_labels

CITATION = (
    "Reyna MA, Sadr N, Perez Alday EA, Gu A, Shah AJ, Robichaux C, Rad AB, Elola A, Seyedi S, "
    "Ansari S, Ghanbari H, Li Q, Sharma A, Clifford GD. Will two do? Varying dimensions in "
    "electrocardiography: the PhysioNet/Computing in Cardiology Challenge 2021. Computing in "
    "Cardiology 48 (2021). doi:10.23919/CinC53138.2021.9662687"
)


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
