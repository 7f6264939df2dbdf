"""The separable-embeddings fixture of the protocol tests."""

from __future__ import annotations

import numpy as np
import pytest
from toys import toy_labels, toy_split, toy_task

from ecgbench.evaluation.protocols import EvalInputs


@pytest.fixture
def separable():
    """``separable(kind)``: EvalInputs whose 16-d embeddings hold the label signal plus noise."""

    def make(kind: str, n: int = 400, seed: int = 0) -> EvalInputs:
        rng = np.random.default_rng(seed)
        y, z = toy_labels(kind, n, rng)
        embeddings = np.concatenate([4 * z, rng.normal(size=(n, 14))], axis=1).astype(np.float32)
        return EvalInputs(task=toy_task(kind), y=y, split=toy_split(n), patients=np.arange(n), seed=seed,
                          embeddings=embeddings)

    return make
