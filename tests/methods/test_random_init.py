"""The untrained controls: each is the encoder of the method it controls for, never trained."""

from __future__ import annotations

import dataclasses

import pytest

from ecgbench.core.registry import METHODS
from ecgbench.reporting.leaderboard import registered_methods

CONTROLLED = {"random-init": ("simclr", "byol"), "random-init-lead2": ("simclr-lead2",)}


def built(name: str, preset: str):
    cls = METHODS.get(name)
    return cls(dataclasses.replace(cls.Config(), **cls.preset_overrides(preset)))


@pytest.mark.parametrize("preset", ["smoke", "cpu"])
@pytest.mark.parametrize("control", sorted(CONTROLLED))
def test_a_control_is_the_untrained_encoder_of_the_methods_it_controls_for(control, preset):
    untrained = built(control, preset)
    assert not type(untrained).needs_training and not type(untrained).uses_labels
    for name in CONTROLLED[control]:
        trained = built(name, preset)
        assert untrained.input_spec == trained.input_spec
        shapes = [tuple(p.shape) for p in untrained.encoder.parameters()]
        assert shapes == [tuple(p.shape) for p in trained.encoder.parameters()]
    assert registered_methods()[control] == f"{control} (control)"  # every table marks it


def test_the_single_lead_control_applies_where_twelve_lead_encoders_do_not():
    assert built("random-init-lead2", "cpu").input_spec.leads == ("II",)  # CinC 2017's lead I feeds it
    assert len(built("random-init", "cpu").input_spec.leads) == 12
