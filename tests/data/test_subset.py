"""--limit (ecgbench.data.subset): the first N patients of each split, patient-wise, marked in the version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.contracts import Recordings
from ecgbench.data.subset import LimitError, first_patients


def recordings() -> Recordings:
    meta = pd.DataFrame({"record_id": range(9), "patient_id": [1, 1, 2, 3, 4, 4, 5, 6, 7],
                         "split": ["train"] * 4 + ["val"] * 3 + ["test"] * 2})
    return Recordings("toy", "1-abc", np.arange(9 * 2 * 4, dtype=np.float32).reshape(9, 2, 4), meta, 100, ("I", "II"),
                      fingerprint="f00")


def test_the_first_patients_of_each_split_with_all_their_records():
    cut = first_patients(recordings(), 2)
    assert cut.meta["record_id"].tolist() == [0, 1, 2, 4, 5, 6, 7, 8]  # patient 3 (train) left out
    assert cut.signals.shape == (8, 2, 4) and cut.signals[3, 0, 0] == recordings().signals[4, 0, 0]
    assert cut.version == "1-abc-limit2" and cut.fingerprint not in ("", "f00")


@pytest.mark.parametrize("value, message", [(0, "at least 1"), ("many", "whole number")])
def test_a_bad_limit_is_one_line(value, message):
    with pytest.raises(LimitError, match=message):
        first_patients(recordings(), value)
