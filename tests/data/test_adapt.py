"""adapt(): leads, resampling, windows; variable-length records with a validity mask, and the
two consumers of the mask: embed_windows (mean of valid windows) and the runner's pretraining
windows (only valid ones)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.signal import resample_poly

from ecgbench.core.contracts import STANDARD_LEADS, InputSpec, Recordings
from ecgbench.data.adapt import adapt, lead_indices, resampled_length
from ecgbench.evaluation.embedding import embed_windows


def recordings(lengths, total: int, fs: int = 300, leads=("I",), variable: bool = True) -> Recordings:
    """Records of a recognisable ramp (value = record index + time) zero-padded to ``total``."""
    signals = np.zeros((len(lengths), len(leads), total), dtype=np.float32)
    for i, n in enumerate(lengths):
        signals[i, :, :n] = i + np.sin(np.arange(n) / 7.0) + np.arange(len(leads))[:, None]
    meta = pd.DataFrame({"record_id": [f"r{i}" for i in range(len(lengths))],
                         "patient_id": np.arange(len(lengths)), "split": "train"})
    if variable:
        meta["n_samples"] = np.asarray(lengths, dtype=np.int64)
    return Recordings("toy", "1", signals, meta, fs, tuple(leads))


# ----- equal length: unchanged behaviour -----------------------------------------------------------
def test_equal_length_windows_and_description_are_as_before():
    data = recordings([1000] * 3, 1000, fs=100, leads=STANDARD_LEADS, variable=False)
    out = adapt(data, InputSpec(("II", "V1"), 100, 300))
    expected = data.signals[:, [1, 6], :900].reshape(3, 2, 3, 300).transpose(0, 2, 1, 3)
    np.testing.assert_array_equal(out.windows, expected)
    assert out.valid.shape == (3, 3) and out.valid.all()
    assert out.description == {"leads": ["II", "V1"], "resample": "none", "window_samples": 300,
                               "windows_per_record": 3, "samples_dropped_at_end": 100,
                               "zero_padded_samples": 0}


def test_equal_length_resampled_and_padded():
    data = recordings([500] * 2, 500, fs=500, leads=STANDARD_LEADS, variable=False)
    out = adapt(data, InputSpec(("I",), 100, 250))  # 500 -> 100 samples, shorter than a window
    direct = resample_poly(data.signals[:, [0], :], 1, 5, axis=-1)
    assert out.windows.shape == (2, 1, 1, 250) and out.valid.all()
    np.testing.assert_allclose(out.windows[:, 0, :, :100], direct, atol=1e-5)
    assert not out.windows[:, 0, :, 100:].any()
    assert out.description["zero_padded_samples"] == 150 and out.description["windows_per_record"] == 1


# ----- variable length -------------------------------------------------------------------------------
def test_resampled_length_is_what_resample_poly_gives():
    for n, fs_in, fs_out in [(9000, 300, 256), (3001, 300, 64), (18000, 300, 100), (7, 3, 2)]:
        ratio = Fraction(fs_out, fs_in)
        assert resampled_length(n, fs_in, fs_out) == resample_poly(
            np.ones(n), ratio.numerator, ratio.denominator).shape[0]


def test_variable_length_windows_only_the_true_part():
    lengths = [3000, 9000, 5999, 700]  # 10 s, 30 s, just under 20 s, shorter than a window
    data = recordings(lengths, 9000)
    out = adapt(data, InputSpec(("I",), 300, 1000))
    assert out.windows.shape == (4, 9, 1, 1000)
    assert out.valid.sum(axis=1).tolist() == [3, 9, 5, 1]
    for i, n in enumerate(lengths):
        count = out.valid[i].sum()
        true = data.signals[i, 0, :n]
        if n >= 1000:
            np.testing.assert_array_equal(out.windows[i, :count, 0].reshape(-1), true[: count * 1000])
        else:
            np.testing.assert_array_equal(out.windows[i, 0, 0, :n], true)
            assert not out.windows[i, 0, 0, n:].any()
        assert not out.windows[i, count:].any(), "slots past the record stay empty"
    d = out.description
    assert d["windows_per_record"] == {"min": 1, "max": 9, "mean": 4.5}
    assert d["valid_windows"] == 18 and d["records_zero_padded"] == 1
    assert d["samples_dropped_at_end"] == {"total": 999, "max": 999}
    assert d["record_seconds"] == {"min": round(700 / 300, 3), "max": 30.0}
    assert "true length" in d["variable_length"]


def test_variable_length_resampling_equals_resampling_the_unpadded_record():
    lengths = [9000, 4321]
    data = recordings(lengths, 9000)
    out = adapt(data, InputSpec(("I",), 256, 512))
    for i, n in enumerate(lengths):
        alone = resample_poly(data.signals[i, 0, :n], 256, 300)
        count = len(alone) // 512
        assert out.valid[i].sum() == count
        np.testing.assert_allclose(out.windows[i, :count, 0].reshape(-1), alone[: count * 512], atol=1e-5)


def test_bad_n_samples_is_refused():
    data = recordings([100, 200], 200)
    data.meta["n_samples"] = [100, 201]
    with pytest.raises(ValueError, match="n_samples must be integers in 1..200"):
        adapt(data, InputSpec(("I",), 300, 50))


# ----- leads -----------------------------------------------------------------------------------------
def test_single_lead_dataset_feeds_a_single_lead_encoder_and_says_so():
    data = recordings([600], 600)
    out = adapt(data, InputSpec(("II",), 300, 300))
    assert lead_indices(data, ("II",)) == [0]
    assert out.description["lead_substitution"] == "the dataset's only lead I fed as the encoder's II"
    assert "lead_substitution" not in adapt(data, InputSpec(("I",), 300, 300)).description


def test_multi_lead_encoder_on_a_single_lead_dataset_is_refused():
    """No substitution beyond one lead for one lead (the runner reports the cell n/a)."""
    with pytest.raises(ValueError, match=r"needs leads \['II', 'III'"):
        adapt(recordings([600], 600), InputSpec(STANDARD_LEADS, 300, 300))
    with pytest.raises(ValueError, match="lacks"):
        lead_indices(recordings([600], 600, leads=("I", "II")), ("V1",))


# ----- consumers of the mask -----------------------------------------------------------------------
class MeanEmbedder(torch.nn.Module):
    """embed() = (mean, max) of each window: enough to see which windows were averaged."""

    name = "mean-embedder"

    def embed(self, x):  # (B, leads, T) -> (B, 2)
        return torch.stack([x.mean(dim=(1, 2)), x.amax(dim=(1, 2))], dim=1)


def test_embeddings_average_only_valid_windows():
    windows = np.zeros((2, 3, 1, 4), dtype=np.float32)
    windows[0, :, 0, :] = np.array([1.0, 2.0, 3.0])[:, None]
    windows[1, :, 0, :] = np.array([5.0, 0.0, 0.0])[:, None]  # one real window, two padding
    valid = np.array([[True, True, True], [True, False, False]])
    seen = []
    out = embed_windows(MeanEmbedder(), windows, torch.device("cpu"), batch_size=2,
                        on_batch=seen.append, valid=valid)
    np.testing.assert_allclose(out, [[2.0, 2.0], [5.0, 5.0]])
    assert sum(seen) == 4, "padding windows are not even embedded"
    everything = embed_windows(MeanEmbedder(), windows, torch.device("cpu"))
    np.testing.assert_allclose(everything[1], [5 / 3, 5 / 3], rtol=1e-6)


def test_a_record_without_valid_windows_is_an_error():
    from ecgbench.core.config import RunFailed

    with pytest.raises(RunFailed, match="valid window per record"):
        embed_windows(MeanEmbedder(), np.zeros((1, 2, 1, 4), np.float32), torch.device("cpu"),
                      valid=np.array([[False, False]]))


def test_pretraining_sees_only_valid_windows(tmp_path, monkeypatch, one_torch_thread):
    from rich.progress import Progress

    import ecgbench.models.train
    from ecgbench.running.runner import Runner, RunRequest, resolve

    lengths = [1280 * 3, 1280, 1280 * 2, 640]  # at 128 Hz: 3, 1, 2 windows and one short record
    data = recordings(lengths, 1280 * 3, fs=128)
    data.meta["split"] = ["train", "train", "val", "train"]
    request = RunRequest(methods=["transform-cnn"], tasks=["synth-rhythm"], probes=["lr"], seeds=[0],
                         preset="smoke", results_dir=tmp_path / "results", data_root=tmp_path,
                         pretrain_dataset="toy", track=False,
                         overrides={"transform-cnn.fs": "128", "transform-cnn.n_samples": "1280"})
    plan = resolve(request)
    plan.tasks = []  # no evaluated dataset: nothing for the leakage guard to load
    runner = Runner(plan)
    runner.datasets["toy"] = data
    runner.progress = Progress(disable=True)
    captured = {}

    def fake_pretrain(method, dataset, *args, **kwargs):
        captured["dataset"] = dataset
        return ecgbench.models.train.TrainStats(steps=0)

    monkeypatch.setattr(ecgbench.models.train, "pretrain", fake_pretrain)
    method_cls = __import__("ecgbench.core.registry", fromlist=["METHODS"]).METHODS.get("transform-cnn")
    method = method_cls(runner.plan.method_configs["transform-cnn"])
    runner._train(method, runner.run_config("transform-cnn", 0))
    dataset = captured["dataset"]
    assert dataset.record_index.tolist() == [0, 0, 0, 1, 3]  # the val record never; no padding
    assert len(dataset.windows) == 5 and (np.abs(dataset.windows).reshape(5, -1).max(axis=1) > 0).all()
    assert dataset.patient_ids.tolist() == [0, 0, 0, 1, 3]
