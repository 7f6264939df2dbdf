"""cinc2021-sex and cinc2021-age on the 50 real CinC 2021 records (../shared/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.registry import TASKS
from ecgbench.data.datasets import cinc2021
from ecgbench.tasks import cinc2021 as cinc_tasks

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cinc2021-samples"


def test_registered_with_kind_metric_and_citation():
    sex, age = TASKS.get("cinc2021-sex"), TASKS.get("cinc2021-age")
    assert sex is cinc_tasks.CINC2021_SEX and age is cinc_tasks.CINC2021_AGE
    assert (sex.kind, sex.main_metric, sex.classes) == ("binary", "macro_auroc", ("male", "female"))
    assert (age.kind, age.main_metric) == ("regression", "mae")
    assert sex.dataset == age.dataset == "cinc2021" and cinc_tasks.CITATION == cinc2021.CITATION


def test_unknown_sex_and_age_are_not_usable():
    meta = pd.DataFrame({"sex": [0, 1, -1], "age": [50.0, np.nan, 70.0]})
    y, usable = cinc_tasks.sex_labels(meta)
    assert y.tolist() == [0, 1, -1] and usable.tolist() == [True, True, False]
    age, usable = cinc_tasks.age_labels(meta)
    assert usable.tolist() == [True, False, True] and age[0] == 50.0


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared CinC 2021 samples absent")
def test_labels_on_the_real_sample(tmp_path):
    meta = cinc2021.load(SAMPLES, cache_dir=tmp_path).meta
    y, usable = cinc_tasks.sex_labels(meta)
    assert usable.all() and np.bincount(y).tolist() == [23, 27]
    for split in ("train", "val", "test"):  # both classes in every split of the sample
        assert set(y[meta["split"] == split]) == {0, 1}
    age, usable = cinc_tasks.age_labels(meta)
    assert usable.all() and age.dtype == float
    patients = [set(meta.loc[meta["split"] == s, "patient_id"]) for s in ("train", "val", "test")]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
