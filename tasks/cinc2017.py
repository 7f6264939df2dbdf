"""CinC 2017 AF classification (:mod:`ecgbench.datasets.cinc2017`): N, A, O, ~ from one lead.

Labels: the third label revision (``REFERENCE-v3.csv``, the dataset's default ``labels="v3"``).
Split: the challenge's test set is hidden, so the dataset's seeded, class-stratified,
record-level 70/15/15 split is used (no patient ids exist; each record is its own patient).
Main metric: ``macro_f1`` over all four classes. The challenge scored the same F1 family but
averaged only N, A and O (noise left out), so our numbers are not the challenge's score.
Records are 9-61 s; window embeddings are averaged over the record's true length.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgbench.api import Task

# A copy of the dataset module's constant (a test keeps them equal), so that importing a task
# never imports the loader.
CLASSES = ("N", "A", "O", "~")
CITATION = (
    "Clifford GD, Liu C, Moody B, Lehman LH, Silva I, Li Q, Johnson AE, Mark RG. AF "
    "classification from a short single lead ECG recording: the PhysioNet/Computing in "
    "Cardiology Challenge 2017. Comput Cardiol. 2017;44. doi:10.22489/CinC.2017.065-469"
)


def rhythm_labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    y = meta["label"].map({name: i for i, name in enumerate(CLASSES)})
    usable = y.notna().to_numpy()
    return y.fillna(-1).to_numpy(dtype=int), usable


CINC2017_AF = Task(
    name="cinc2017-af",
    description="CinC 2017: normal, AF, other rhythm or noisy, from a single-lead ECG (multiclass).",
    version=1,
    dataset="cinc2017",
    kind="multiclass",
    labels=rhythm_labels,
    main_metric="macro_f1",
    classes=CLASSES,
    citation=CITATION,
    dataset_options={"labels": "v3"},
)
