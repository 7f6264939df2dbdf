"""finetune: the encoder is trained (a copy: the pretrained one stays as it was), window
outputs average per record, the fine-tuned model is cached and a killed run resumes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from toys import toy_labels, toy_split, toy_task

from ecgbench.core.contracts import NotApplicable
from ecgbench.data.adapt import Adapted
from ecgbench.evaluation.metrics import metric_value
from ecgbench.evaluation.protocols import EvalInputs, FinetuneSettings
from ecgbench.evaluation.protocols.finetune import FinetuneProtocol, predict_records

SETTINGS = FinetuneSettings(max_epochs=6, patience=3, batch_size=16, lr=0.05, encoder_lr=0.01)


def tiny_method(seed: int = 0) -> SimpleNamespace:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Conv1d(1, 4, 5), nn.BatchNorm1d(4), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())
    return SimpleNamespace(encoder=encoder, embedding_dim=4)


def toy_windows(kind: str, n: int = 160, windows: int = 2, length: int = 32, seed: int = 0):
    """Each record's windows: noise whose offset follows the label signal; the last record of
    every ten has its second window as padding (invalid)."""
    rng = np.random.default_rng(seed)
    y, z = toy_labels(kind, n, rng)
    x = rng.normal(size=(n, windows, 1, length)).astype(np.float32) + 2 * z[:, 0, None, None, None].astype(np.float32)
    valid = np.ones((n, windows), dtype=bool)
    valid[9::10, 1] = False
    x[9::10, 1] = 1000.0  # padding that must never reach a prediction
    return y, Adapted(x, {}, valid)


def inputs_for(kind: str, tmp_path, method=None, **changes) -> EvalInputs:
    y, adapted = toy_windows(kind)
    base = dict(task=toy_task(kind), y=y, split=toy_split(len(y)), patients=np.arange(len(y)), seed=3,
                method=method or tiny_method(), windows=adapted, device=torch.device("cpu"),
                checkpoint=tmp_path / "ft.pt", partial_checkpoint=tmp_path / "ft.partial.pt")
    base.update(changes)
    return EvalInputs(**base)


def test_predictions_average_the_valid_windows_of_each_record():
    windows = np.arange(3 * 2, dtype=np.float32).reshape(3, 2, 1, 1)  # record r, window w -> 2r + w
    valid = np.array([[True, True], [True, False], [False, True]])
    outputs = predict_records(nn.Flatten(), windows, valid, np.array([0, 1, 2]), torch.device("cpu"), 4)
    assert outputs[:, 0].tolist() == [0.5, 2.0, 5.0]


def test_finetune_learns_a_toy_problem_and_leaves_the_pretrained_encoder_alone(tmp_path):
    method = tiny_method()
    before = {k: v.clone() for k, v in method.encoder.state_dict().items()}
    inputs = inputs_for("binary", tmp_path, method=method)
    outcome = FinetuneProtocol.fit_predict(inputs, "finetune", SETTINGS, None)
    test = inputs.split["test"]
    assert metric_value("binary", "macro_auroc", inputs.y[test], outcome.y_pred, outcome.scores) > 0.9
    assert all(torch.equal(before[k], v) for k, v in method.encoder.state_dict().items())
    tuned = torch.load(tmp_path / "ft.pt", weights_only=False)["model"]
    assert not torch.equal(tuned["encoder.0.weight"], before["0.weight"]), "the encoder was not trained"
    assert outcome.params["train_windows"] == 80 * 2 - 8  # padding windows never train
    assert not (tmp_path / "ft.partial.pt").exists()


def test_the_fine_tuned_model_is_cached(tmp_path):
    first = FinetuneProtocol.fit_predict(inputs_for("multiclass", tmp_path), "finetune", SETTINGS, None)
    epochs = []
    again = FinetuneProtocol.fit_predict(inputs_for("multiclass", tmp_path, on_epoch=epochs.append),
                                         "finetune", SETTINGS, None)
    assert epochs == [] and np.array_equal(first.scores, again.scores)
    assert (first.params, first.val_score, first.history) == (again.params, again.val_score, again.history)


class Killed(Exception):
    pass


def test_a_killed_fine_tune_resumes_from_its_last_epoch(tmp_path):
    whole = FinetuneProtocol.fit_predict(inputs_for("regression", tmp_path / "whole"), "finetune", SETTINGS, None)

    def kill_after_two(log):
        if log.epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        FinetuneProtocol.fit_predict(inputs_for("regression", tmp_path, on_epoch=kill_after_two), "finetune",
                                     SETTINGS, None)
    assert (tmp_path / "ft.partial.pt").exists() and not (tmp_path / "ft.pt").exists()
    epochs = []
    resumed = FinetuneProtocol.fit_predict(inputs_for("regression", tmp_path, on_epoch=epochs.append),
                                           "finetune", SETTINGS, None)
    assert epochs[0].epoch == 3
    assert resumed.history == whole.history and np.array_equal(resumed.y_pred, whole.y_pred)


def test_per_channel_tasks_are_not_applicable(tmp_path):
    inputs = inputs_for("binary", tmp_path, task=toy_task("binary", channels="each"))
    with pytest.raises(NotApplicable):
        FinetuneProtocol.fit_predict(inputs, "finetune", SETTINGS, None)
