"""ecgbench.evaluation.decoding: ridge R^2 of generator truth from cached embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgbench.core.contracts import STANDARD_LEADS, Recordings
from ecgbench.core.store import write_json, write_npy
from ecgbench.evaluation import decoding


def splits(n: int) -> np.ndarray:
    return np.array(["train"] * (n // 2) + ["val"] * (n // 4) + ["test"] * (n - n // 2 - n // 4))


def test_ridge_matches_sklearn_at_the_alpha_validation_picks():
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20)) * rng.uniform(0.1, 10, 20)
    y = x[:, :3] @ np.array([1.0, -0.5, 0.2]) + rng.normal(0, 1, 400)
    split = splits(400)
    train, val, test = (split == s for s in ("train", "val", "test"))
    scaler = StandardScaler().fit(x[train])

    def r2(alpha: float, rows: np.ndarray) -> float:
        model = Ridge(alpha=alpha).fit(scaler.transform(x[train]), y[train])
        residual = y[rows] - model.predict(scaler.transform(x[rows]))
        return 1 - (residual ** 2).sum() / ((y[rows] - y[train].mean()) ** 2).sum()

    best = max(decoding.ALPHAS, key=lambda a: r2(a, val))
    assert decoding.decode_r2(x, y, split) == pytest.approx(r2(best, test), abs=1e-9)
    assert decoding.decode_r2(rng.normal(size=(400, 20)), y, split) < 0.05  # unrelated features


def recordings(n: int, rng: np.random.Generator) -> Recordings:
    meta = pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": np.arange(n), "split": splits(n),
                         **{c: rng.normal(size=n) for c in decoding.TRUTH}})
    return Recordings(name="synthetic", version="3-abc", signals=np.zeros((n, 12, 10), np.float32), meta=meta,
                      fs=100, lead_names=STANDARD_LEADS)


def store_run(root, run_id: str, method: str, seed: int, embeddings: np.ndarray | None, **extra) -> None:
    adaptation = {"dataset": "synthetic@3-abc", "window_samples": 250}
    write_json(root / "runs" / run_id / "synth-sex@v3" / "frozen-probe-lr-0.json",
               {"key": f"{run_id}/synth-sex@v3/frozen-probe-lr-0", "run_id": run_id, "method": method,
                "task": "synth-sex", "task_key": "synth-sex@v3", "task_kind": "binary", "main_metric": "macro_auroc",
                "probe": "lr", "protocol": "frozen-probe", "metrics": {"macro_auroc": 0.5}, "preset": "cpu",
                "seed": seed, "adaptation": adaptation, **extra})
    if embeddings is not None:
        folder = root / "cache" / "embeddings" / run_id
        write_json(folder / "synthetic-3-abc-1234.json", {"adaptation": adaptation, "shape": list(embeddings.shape)})
        write_npy(folder / "synthetic-3-abc-1234.npy", embeddings)


def test_embeddings_that_carry_the_rate_decode_it_and_missing_ones_are_listed(tmp_path):
    rng = np.random.default_rng(1)
    data = recordings(300, rng)
    rate = data.meta["heart_rate"].to_numpy()
    store_run(tmp_path, "keeps-rate-0", "keeps-rate", 0, np.column_stack([rate, rng.normal(size=(300, 7))]))
    store_run(tmp_path, "keeps-rate-1", "keeps-rate", 1, np.column_stack([rate + rng.normal(0, 0.5, 300),
                                                                          rng.normal(size=(300, 7))]))
    store_run(tmp_path, "random-init-0", "random-init", 0, rng.normal(size=(300, 8)), control=True)
    store_run(tmp_path, "gone-0", "gone", 0, None)
    store_run(tmp_path, "supervised-0", "supervised", 0, rng.normal(size=(300, 8)), uses_labels=True)
    rows = {r["method"]: r for r in decoding.what_embeddings_hold(data, tmp_path)}
    assert set(rows) == {"keeps-rate", "random-init", "gone", "supervised (trained on synth-sex)"}
    assert rows["keeps-rate"]["seeds"] == [0, 1] and rows["keeps-rate"]["r2"]["heart_rate"] > 0.7
    assert rows["keeps-rate"]["r2"]["age"] < 0.1 and rows["random-init"]["r2"]["heart_rate"] < 0.1
    assert rows["gone"]["missing"] == [0] and rows["gone"]["r2"] == {}
    table = decoding.decoding_table(list(rows.values())).splitlines()
    assert "random-init (control)" in table[2] and any("embeddings not cached" in line for line in table)
