"""Tasks on PTB-XL 1.0.3 (:mod:`ecgbench.data.datasets.ptbxl`), official folds: 1-8 / 9 / 10.

Superclass labels follow the PTB-XL benchmark of Strodthoff et al. (2021): the
``diagnostic_class`` of every diagnostic statement in ``scp_codes``, at any likelihood.
``ptbxl-superclass-single`` keeps the records with exactly one superclass, as in the
single-label evaluations of SSL papers (e.g. the dual-view report); sex and age are the
demographic probes. All tasks use the 100 Hz release (``dataset_options``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgbench.core.contracts import Task
from ecgbench.tasks._labels import age_labels, present_columns, sex_labels

# A copy of the dataset module's constant (a test keeps them equal), so that importing a task
# never imports the loader.
SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
CITATION = (
    "Wagner P, Strodthoff N, Bousseljot RD, Kreiseler D, Lunze FI, Samek W, Schaeffter T. "
    "PTB-XL, a large publicly available electrocardiography dataset. Sci Data. 2020;7:154. "
    "Strodthoff N, Wagner P, Schaeffter T, Samek W. Deep learning for ECG analysis: benchmarks "
    "and insights from PTB-XL. IEEE J Biomed Health Inform. 2021;25(5):1519-1528."
)
OPTIONS = {"fs": 100}


def superclass_labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return present_columns(meta, SUPERCLASSES)


def single_superclass_labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    onehot = meta[list(SUPERCLASSES)].to_numpy(dtype=int)
    usable = onehot.sum(1) == 1
    return np.where(usable, onehot.argmax(1), -1), usable


PTBXL_SUPERCLASS = Task(
    name="ptbxl-superclass",
    description="PTB-XL: five diagnostic superclasses NORM/MI/STTC/CD/HYP (multilabel).",
    version=1,
    dataset="ptbxl",
    kind="multilabel",
    labels=superclass_labels,
    main_metric="macro_auroc",
    classes=SUPERCLASSES,
    citation=CITATION,
    dataset_options=dict(OPTIONS),
)

PTBXL_SUPERCLASS_SINGLE = Task(
    name="ptbxl-superclass-single",
    description="PTB-XL: records with exactly one diagnostic superclass (multiclass).",
    version=1,
    dataset="ptbxl",
    kind="multiclass",
    labels=single_superclass_labels,
    main_metric="macro_f1",
    classes=SUPERCLASSES,
    citation=CITATION,
    dataset_options=dict(OPTIONS),
)

PTBXL_SEX = Task(
    name="ptbxl-sex",
    description="PTB-XL: patient sex (0 male, 1 female) from the 12-lead ECG.",
    version=1,
    dataset="ptbxl",
    kind="binary",
    labels=sex_labels,
    main_metric="macro_auroc",
    classes=("male", "female"),
    citation=CITATION,
    dataset_options=dict(OPTIONS),
)

PTBXL_AGE = Task(
    name="ptbxl-age",
    description="PTB-XL: patient age in years (regression; ages above 89 are masked).",
    version=1,
    dataset="ptbxl",
    kind="regression",
    labels=age_labels,
    main_metric="mae",
    citation=CITATION,
    dataset_options=dict(OPTIONS),
)
