"""Evaluation protocols: how a pretrained encoder is turned into task predictions.

Every protocol fits on the training split (or the label-fraction subset of it), selects on the
validation split only, and predicts the test split once; the evaluate stage scores those test
predictions with the same metrics and patient-level bootstrap for every protocol, and the
protocol is part of every result key (results of two protocols never share a table or a ranking).

========================  ==========================================================  =====================
protocol                  what is trained                                             input
========================  ==========================================================  =====================
``frozen-probe``          scikit-learn probes (:mod:`..probes`), grid on val          frozen embeddings
``linear``                one linear layer in torch, early stopping on val            frozen embeddings
``head``                  seed 004's head: two dense layers of 64, sigmoid,           frozen embeddings
                          dropout 0.6, L2 1e-4 (:mod:`.heads`)
``finetune``              encoder unfrozen (its own lower lr) + a linear head,        windows
                          SGD or Adam, early stopping on val (:mod:`.finetune`)
========================  ==========================================================  =====================

Settings are typed dataclasses (:data:`CONFIGS`) overridden with ``--set eval.<protocol>.<field>=...``.
This module is imported by the CLI, so it stays light: torch and scikit-learn load only in the
protocol modules, when a protocol runs.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecgbench.core.config import ConfigError, apply_overrides
from ecgbench.core.registry import did_you_mean

FROZEN_PROBE = "frozen-probe"
PROTOCOLS: dict[str, str] = {
    FROZEN_PROBE: "scikit-learn probes on frozen embeddings, hyper-parameters chosen on validation",
    "linear": "a linear layer trained in torch on frozen embeddings, early stopping on validation",
    "head": "seed 004's dense head (2 x 64 sigmoid units, dropout, L2) on frozen embeddings",
    "finetune": "encoder unfrozen with its own lower learning rate, early stopping on validation",
}
# protocol -> (module, class) of its implementation; imported only when the protocol runs
_IMPLEMENTATIONS = {
    FROZEN_PROBE: ("ecgbench.evaluation.protocols.frozen_probe", "FrozenProbe"),
    "linear": ("ecgbench.evaluation.protocols.heads", "LinearProtocol"),
    "head": ("ecgbench.evaluation.protocols.heads", "HeadProtocol"),
    "finetune": ("ecgbench.evaluation.protocols.finetune", "FinetuneProtocol"),
}


@dataclass(frozen=True)
class NoSettings:
    """frozen-probe: its settings are the probe grid and bootstrap in :class:`EvalSettings`."""


@dataclass(frozen=True)
class TrainSettings:
    """What every trained protocol shares: optimiser, epochs, early stopping on validation."""

    optimizer: str = "adam"  # adam | sgd (momentum 0.9)
    lr: float = 1e-3  # we pick: Adam's default (seed 004's Ray Tune search found 2.0e-3-2.4e-3 for the pretext)
    weight_decay: float = 0.0  # L2 on the trained weights
    batch_size: int = 32  # seed 004's search tried 32 and 64
    max_epochs: int = 100  # seed 004 trained 100 epochs
    patience: int = 20  # we pick: epochs without a better validation score before stopping (a sigmoid head plateaus early)


@dataclass(frozen=True)
class LinearSettings(TrainSettings):
    """``linear``: one linear layer on standardised embeddings."""


@dataclass(frozen=True)
class HeadSettings(TrainSettings):
    """``head``: seed 004's emotion network head on the frozen convolutional layers."""

    hidden: tuple[int, ...] = (64, 64)  # seed 004: two dense layers with 64 hidden units
    activation: str = "sigmoid"  # seed 004: sigmoid activation
    dropout: float = 0.6  # seed 004: dropout 60 % on the dense layers
    weight_decay: float = 1e-4  # seed 004: L2 regularisation beta = 0.0001


@dataclass(frozen=True)
class FinetuneSettings(TrainSettings):
    """``finetune``: the whole encoder trained with a linear head on task labels."""

    optimizer: str = "sgd"  # seed 004 fine-tunes with SGD and categorical cross-entropy
    lr: float = 1e-2  # head; we pick (SGD with momentum 0.9)
    encoder_lr: float = 1e-3  # we pick: 10x lower than the head, so pretrained features are not wiped out
    max_epochs: int = 30  # we pick: windows are many more samples per epoch than records
    patience: int = 5  # we pick
    grad_clip: float = 3.0  # max gradient norm, as in pretraining; 0 disables


CONFIGS: dict[str, type] = {
    FROZEN_PROBE: NoSettings,
    "linear": LinearSettings,
    "head": HeadSettings,
    "finetune": FinetuneSettings,
}
OPTIMIZERS = ("adam", "sgd")
ACTIVATIONS = ("sigmoid", "relu", "tanh")  # of the head's hidden layers (ecgbench.evaluation.protocols.heads)


def check_protocols(names: list[str]) -> list[str]:
    """The names, in order and without repeats; an unknown one raises a one-line ConfigError."""
    for name in names:
        if name not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {name!r}.{did_you_mean(name, list(PROTOCOLS))} "
                              f"Protocols: {', '.join(PROTOCOLS)}.")
    if not names:
        raise ConfigError(f"no protocol selected; choose from {', '.join(PROTOCOLS)}")
    return list(dict.fromkeys(names))


def split_protocol_overrides(eval_overrides: dict[str, str], protocols: list[str]
                             ) -> tuple[dict[str, str], dict[str, Any]]:
    """``eval.<protocol>.<field>`` assignments -> each selected protocol's typed settings; the
    rest are left for :class:`ecgbench.core.config.EvalSettings`."""
    rest: dict[str, str] = {}
    per_protocol: dict[str, dict[str, str]] = {name: {} for name in protocols}
    for key, value in eval_overrides.items():
        prefix, dot, name = key.partition(".")
        if not dot:
            rest[key] = value
        elif prefix in per_protocol:
            per_protocol[prefix][name] = value
        elif prefix in PROTOCOLS:
            raise ConfigError(f"--set eval.{key}: protocol {prefix} is not selected (--protocols)")
        else:
            raise ConfigError(f"--set eval.{key}: {prefix!r} is not a protocol."
                              f"{did_you_mean(prefix, list(PROTOCOLS))}")
    settings = {name: resolve_settings(name, changes) for name, changes in per_protocol.items()}
    return rest, settings


def resolve_settings(protocol: str, overrides: dict[str, Any] | None = None) -> Any:
    """The protocol's settings: typed defaults with ``overrides`` applied, checked."""
    settings = apply_overrides(CONFIGS[protocol](), overrides or {}, f"eval.{protocol}")
    optimizer = getattr(settings, "optimizer", None)
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise ConfigError(f"eval.{protocol}.optimizer={optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    activation = getattr(settings, "activation", None)
    if activation is not None and activation not in ACTIVATIONS:
        raise ConfigError(f"eval.{protocol}.activation={activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    for name in ("lr", "encoder_lr", "batch_size", "max_epochs", "patience"):
        value = getattr(settings, name, 1)
        if value <= 0:
            raise ConfigError(f"eval.{protocol}.{name}={value}: must be positive")
    return settings


def evaluations(protocols: list[str], probes: list[str]) -> list[tuple[str, str]]:
    """(protocol, probe) pairs to score: frozen-probe once per requested probe, every other
    protocol once (its probe is its own name)."""
    return [(protocol, probe) for protocol in protocols
            for probe in (probes if protocol == FROZEN_PROBE else [protocol])]


def get(protocol: str) -> Any:
    """The protocol's implementation class (imports its module)."""
    check_protocols([protocol])
    module, attribute = _IMPLEMENTATIONS[protocol]
    return getattr(importlib.import_module(module), attribute)


def result_spec(protocol: str, probe: str, settings: Any, eval_settings: Any, label_fraction: float = 1.0,
                data: str | None = None) -> tuple[str, dict[str, Any]]:
    """(result file name, spec) of one evaluation: everything that decides its numbers besides
    the run and the task, hashed into the name. frozen-probe keys are unchanged from before
    protocols existed, so stored probe results stay valid. ``data``: the evaluated data's tag
    where the run id does not name it (:func:`ecgbench.running.stages.evaluate.data_tag`)."""
    from ecgbench.core.config import short_hash

    spec: dict[str, Any] = {"protocol": protocol, "probe": probe, "bootstrap": eval_settings.bootstrap}
    if protocol == FROZEN_PROBE:
        spec["grid"] = eval_settings.probe_grid
    else:
        spec["settings"] = dataclasses.asdict(settings)
    if label_fraction != 1:  # only then, so full-label keys stay what they were
        spec["label_fraction"] = float(label_fraction)
    if data:
        spec["data"] = data
    name = f"{protocol}-{probe}" if protocol == FROZEN_PROBE else protocol
    return f"{name}-{short_hash(spec, 8)}", spec


def protocol_label(protocol: str, label_fraction: float = 1.0) -> str:
    """The ``protocol`` field of a result: ``head``, or ``head-10%-labels`` on a label subset."""
    if label_fraction == 1:
        return protocol
    return f"{protocol}-{label_fraction * 100:g}%-labels"


@dataclass
class EvalInputs:
    """What a protocol may use for one (run, task, label fraction). ``split`` holds row indices
    (train already cut to the label fraction); only ``split["test"]`` rows are ever predicted
    for scoring, and nothing here is fitted or selected on them."""

    task: Any  # ecgbench.core.contracts.Task
    y: np.ndarray  # targets for every row of the dataset (see Task.labels)
    split: dict[str, np.ndarray]  # train / val / test row indices, usable labels only
    patients: np.ndarray  # patient id per row
    seed: int  # the protocol's seed (derived per run, task and protocol)
    embeddings: np.ndarray | None = None  # (N, D) frozen record embeddings
    method: Any = None  # the pretrained ecgbench.models.method.Method (finetune)
    windows: Any = None  # ecgbench.data.adapt.Adapted windows of the task's dataset (finetune)
    device: Any = None  # torch.device (finetune)
    checkpoint: Any = None  # Path of the fine-tuned model's checkpoint (finetune)
    partial_checkpoint: Any = None  # Path of its per-epoch checkpoint, for resume (finetune)
    on_epoch: Any = None  # callback(EpochLog) after each training epoch (progress)

    @property
    def n_classes(self) -> int | None:
        return len(self.task.classes) if self.task.kind == "multiclass" else None


@dataclass
class Outcome:
    """What a protocol hands back: test predictions and how the model was chosen."""

    y_pred: np.ndarray
    scores: np.ndarray | None  # as ecgbench.evaluation.probes.Prediction: (N, C), (N,) binary, None regression
    params: dict[str, Any]  # the chosen hyper-parameters (and the best epoch of trained ones)
    val_score: float  # the main metric on validation of the chosen model
    history: list[dict[str, Any]] = field(default_factory=list)  # per epoch: loss, val score
