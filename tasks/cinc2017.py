"""CinC 2017 AF classification (:mod:`ecgbench.data.datasets.cinc2017`): N, A, O, ~ from one lead.

Labels: the third label revision (``REFERENCE-v3.csv``, the dataset's default ``labels="v3"``).
Split: the challenge's test set is hidden, so the dataset's seeded, class-stratified,
record-level 70/15/15 split is used (no patient ids exist; each record is its own patient).
Main metric: ``macro_f1`` over all four classes. The challenge scored the same F1 family but
averaged only N, A and O (noise left out), so our numbers are not the challenge's score.
Records are 9-61 s; window embeddings are averaged over the record's true length.

``cinc2017-af3``: NERULA's "a total of three classes" (arXiv:2405.19348, Section 5.1), read as
the three rhythm classes N, A, O with the noisy (~) recordings left out: NERULA calls them
"Cardiac Arrhythmia classes", noise is a recording-quality label rather than a rhythm, and the
challenge's own score averaged F1 over exactly N, A and O. (Merging ~ into O would make
"Other" a mix of rhythms and unreadable signals; no reading keeps four classes.) NERULA's
"preset split of train and validation" is ``--set data.cinc2017.split=preset``: the challenge's
300 validation records are scored, and, being a subset of the training set, trained on as well
(the loader warns); the dataset-level split stays the default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgbench.core.contracts import Task

# A copy of the dataset module's constant (a test keeps them equal), so that importing a task
# never imports the loader.
CLASSES = ("N", "A", "O", "~")
CITATION = (
    "Clifford GD, Liu C, Moody B, Lehman LH, Silva I, Li Q, Johnson AE, Mark RG. AF "
    "classification from a short single lead ECG recording: the PhysioNet/Computing in "
    "Cardiology Challenge 2017. Comput Cardiol. 2017;44. doi:10.22489/CinC.2017.065-469"
)


RHYTHMS = ("N", "A", "O")  # NERULA's three classes: the noisy recordings (~) left out


def labels_of(classes: tuple[str, ...]):
    """A label function: ``label`` -> index in ``classes``; other labels are not usable."""

    def labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        y = meta["label"].map({name: i for i, name in enumerate(classes)})
        usable = y.notna().to_numpy()
        return y.fillna(-1).to_numpy(dtype=int), usable

    labels.__name__ = f"{''.join(c for c in classes if c.isalnum()).lower()}_labels"
    return labels


rhythm_labels = labels_of(CLASSES)


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

CINC2017_AF3 = Task(
    name="cinc2017-af3",
    description="CinC 2017: normal, AF or other rhythm, noisy recordings left out (NERULA's three classes).",
    version=1,
    dataset="cinc2017",
    kind="multiclass",
    labels=labels_of(RHYTHMS),
    main_metric="macro_f1",
    classes=RHYTHMS,
    citation=CITATION,
    dataset_options={"labels": "v3"},
)
