"""DREAMER (:mod:`ecgbench.data.datasets.dreamer`): high vs low arousal and valence from 10 s of ECG.

The tasks of Sarkar & Etemad (IEEE TAFFC 2022) and the seed report on residual connections in
their transformation-recognition CNN: each 10 s window of a film clip carries the viewer's
self-assessment of that clip (1-5), binarised at :data:`THRESHOLD` (score > 3 is high, the
benchmark's stated default; a 3 counts as low). Main metric macro F1 (the report gives accuracy
and F1; F1 is not fooled by the high/low imbalance a threshold creates). Splits are by
volunteer (never by window), seeded; see the dataset module. Each of the two ECG channels is
embedded by the single-lead encoder and the two embeddings are concatenated
(``channels="each"``), because the release does not name the channels' leads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgbench.core.contracts import Task

THRESHOLD = 3  # high: score > THRESHOLD
CITATION = (
    "Katsigiannis S, Ramzan N. DREAMER: a database for emotion recognition through EEG and ECG "
    "signals from wireless low-cost off-the-shelf devices. IEEE J Biomed Health Inform. "
    "2018;22(1):98-107. Sarkar P, Etemad A. Self-supervised ECG representation learning for "
    "emotion recognition. IEEE Trans Affect Comput. 2022;13(3):1541-1554."
)


def high_low(column: str):
    """A label function: ``column`` > THRESHOLD -> 1 (high), else 0 (low)."""

    def labels(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        score = pd.to_numeric(meta[column], errors="coerce")
        usable = score.isin([1, 2, 3, 4, 5]).to_numpy()
        return np.where(usable, (score > THRESHOLD).to_numpy(dtype=int), -1), usable

    labels.__name__ = f"{column}_high_low"
    return labels


DREAMER_AROUSAL = Task(
    name="dreamer-arousal",
    description="DREAMER: self-assessed arousal high (>3) vs low from 10 s of 2-channel ECG (binary).",
    version=1,
    dataset="dreamer",
    kind="binary",
    labels=high_low("arousal"),
    main_metric="macro_f1",
    classes=("low", "high"),
    citation=CITATION,
    channels="each",
)

DREAMER_VALENCE = Task(
    name="dreamer-valence",
    description="DREAMER: self-assessed valence high (>3) vs low from 10 s of 2-channel ECG (binary).",
    version=1,
    dataset="dreamer",
    kind="binary",
    labels=high_low("valence"),
    main_metric="macro_f1",
    classes=("low", "high"),
    citation=CITATION,
    channels="each",
)
