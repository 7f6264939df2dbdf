"""UCI HAR (:mod:`ecgbench.data.datasets.uci_har`): six activities from smartphone inertial signals.

Not ECG: NERULA (its Table 6, RF probe accuracy) uses it to test how far ECG representations
transfer to other physiological time series. As there, each of the nine inertial channels is
embedded on its own by the single-lead encoder and the nine embeddings are concatenated
(``channels="each"``); a multi-lead encoder is not applicable. Windows are the release's
2.56 s at 50 Hz, resampled and zero-padded to the encoder's input by the runner (recorded in
every result's ``adaptation``). Splits: the official subject-wise train/test, validation
carved out of the training volunteers by subject (see the dataset module).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgbench.core.contracts import Task

# A copy of the dataset module's constant (a test keeps them equal), so that importing a task
# never imports the loader.
ACTIVITIES = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING")
CITATION = (
    "Anguita D, Ghio A, Oneto L, Parra X, Reyes-Ortiz JL. A public domain dataset for human "
    "activity recognition using smartphones. ESANN 2013. doi:10.24432/C54S4K. Protocol: "
    "Manimaran et al., NERULA: a dual-pathway self-supervised learning framework for ECG "
    "(Table 6)."
)


def activity_labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Activity ids 1-6 -> classes 0-5 (the order of activity_labels.txt)."""
    activity = pd.to_numeric(meta["activity"], errors="coerce")
    usable = activity.isin(range(1, len(ACTIVITIES) + 1)).to_numpy()
    return np.where(usable, activity.fillna(0).to_numpy(dtype=int) - 1, -1), usable


HAR = Task(
    name="har",
    description="UCI HAR: six activities from 9 inertial channels, each embedded alone (multiclass).",
    version=1,
    dataset="uci_har",
    kind="multiclass",
    labels=activity_labels,
    main_metric="accuracy",
    classes=ACTIVITIES,
    citation=CITATION,
    channels="each",
)
