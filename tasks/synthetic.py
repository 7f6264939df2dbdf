"""Tasks on the offline synthetic ECG suite (:mod:`ecgbench.data.datasets.synthetic`).

Four stand-ins for the real task families: PTB-XL superclasses (multilabel), CinC 2017-like
rhythm (multiclass), sex (binary) and age (regression). They run anywhere without downloads
and are what the fast tests and the ``smoke`` / ``cpu`` presets use.

A task's version is the suite's version (:data:`SUITE_VERSION`, the generator's default):
``synth-superclass@v4`` is scored on suite version 4. ``--set data.version=3`` (or ``=1``, ``=2``)
loads an older suite and evaluates the tasks at that version, so results keyed ``@v1`` to ``@v3``
keep meaning what they meant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgbench.core.contracts import Task
from ecgbench.tasks._labels import age_labels, present_columns, sex_labels

# Copies of the dataset module's constants (a test keeps them equal), so that importing a
# task never imports the generator.
SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
RHYTHMS = ("SR", "AF", "SBRAD", "STACH")
SUITE_VERSION = 4  # = int(datasets.synthetic.VERSION); a test keeps them equal
CITATION = (
    "Synthetic suite of ecgbench (benchmark/datasets/synthetic.py), after McSharry PE, "
    "Clifford GD, Tarassenko L, Smith LA. A dynamical model for generating synthetic "
    "electrocardiogram signals. IEEE Trans Biomed Eng. 2003;50(3):289-294."
)


def superclass_labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return present_columns(meta, SUPERCLASSES)


def rhythm_labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    index = {name: i for i, name in enumerate(RHYTHMS)}
    y = meta["rhythm"].map(index)
    usable = y.notna().to_numpy()
    return y.fillna(-1).to_numpy(dtype=int), usable


SYNTH_SUPERCLASS = Task(
    name="synth-superclass",
    description="Synthetic 12-lead ECG: five PTB-XL-like diagnostic superclasses (multilabel).",
    version=SUITE_VERSION,
    version_option="version",
    dataset_options={"version": SUITE_VERSION},
    dataset="synthetic",
    kind="multilabel",
    labels=superclass_labels,
    main_metric="macro_auroc",
    classes=SUPERCLASSES,
    citation=CITATION,
)

SYNTH_RHYTHM = Task(
    name="synth-rhythm",
    description="Synthetic 12-lead ECG: sinus, AF, sinus bradycardia or tachycardia.",
    version=SUITE_VERSION,
    version_option="version",
    dataset_options={"version": SUITE_VERSION},
    dataset="synthetic",
    kind="multiclass",
    labels=rhythm_labels,
    main_metric="macro_f1",
    classes=RHYTHMS,
    citation=CITATION,
)

SYNTH_SEX = Task(
    name="synth-sex",
    description="Synthetic 12-lead ECG: patient sex (0 male, 1 female) from subtle morphology.",
    version=SUITE_VERSION,
    version_option="version",
    dataset_options={"version": SUITE_VERSION},
    dataset="synthetic",
    kind="binary",
    labels=sex_labels,
    main_metric="macro_auroc",
    classes=("male", "female"),
    citation=CITATION,
)

SYNTH_AGE = Task(
    name="synth-age",
    description="Synthetic 12-lead ECG: patient age in years (regression).",
    version=SUITE_VERSION,
    version_option="version",
    dataset_options={"version": SUITE_VERSION},
    dataset="synthetic",
    kind="regression",
    labels=age_labels,
    main_metric="mae",
    citation=CITATION,
)
