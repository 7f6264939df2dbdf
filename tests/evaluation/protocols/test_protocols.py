"""The protocol registry: names checked with "did you mean", typed settings from --set
eval.<protocol>.<field>, result keys with the protocol in them (frozen-probe's unchanged)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ecgbench.core.config import ConfigError, EvalSettings, short_hash
from ecgbench.evaluation.protocols import (
    CONFIGS,
    PROTOCOLS,
    FinetuneSettings,
    HeadSettings,
    check_protocols,
    evaluations,
    get,
    protocol_label,
    resolve_settings,
    result_spec,
    split_protocol_overrides,
)


def test_unknown_protocol_names_say_what_was_meant():
    assert check_protocols(["head", "frozen-probe", "head"]) == ["head", "frozen-probe"]
    with pytest.raises(ConfigError, match="Did you mean 'finetune'"):
        check_protocols(["fine-tune"])
    with pytest.raises(ConfigError, match="no protocol"):
        check_protocols([])


def test_every_protocol_has_settings_and_an_implementation():
    assert set(CONFIGS) == set(PROTOCOLS)
    for name in PROTOCOLS:
        implementation = get(name)
        assert implementation.name == name and callable(implementation.fit_predict)
    assert evaluations(["frozen-probe", "head", "finetune"], ["lr", "svc"]) == [
        ("frozen-probe", "lr"), ("frozen-probe", "svc"), ("head", "head"), ("finetune", "finetune")]


def test_settings_come_from_eval_prefixed_assignments():
    rest, settings = split_protocol_overrides(
        {"bootstrap": "50", "head.lr": "0.01", "finetune.optimizer": "adam", "finetune.encoder_lr": "1e-5"},
        ["frozen-probe", "head", "finetune"])
    assert rest == {"bootstrap": "50"}
    assert settings["head"] == HeadSettings(lr=0.01)
    assert settings["finetune"] == FinetuneSettings(optimizer="adam", encoder_lr=1e-5)
    with pytest.raises(ConfigError, match="not selected"):
        split_protocol_overrides({"linear.lr": "0.1"}, ["head"])
    with pytest.raises(ConfigError, match="Did you mean 'head'"):
        split_protocol_overrides({"haed.lr": "0.1"}, ["head"])
    with pytest.raises(ConfigError, match="Did you mean 'patience'"):
        split_protocol_overrides({"head.patiense": "3"}, ["head"])


@pytest.mark.parametrize("field,value", [("optimizer", "rmsprop"), ("lr", "0"), ("activation", "gelu"),
                                         ("max_epochs", "-1")])
def test_bad_settings_are_one_line_errors_before_any_work(field, value):
    with pytest.raises(ConfigError, match=f"eval.head.{field}"):
        resolve_settings("head", {field: value})


def test_the_protocol_is_part_of_every_result_key():
    settings = EvalSettings()
    old_spec = {"protocol": "frozen-probe", "probe": "lr", "grid": "full", "bootstrap": 1000}
    assert result_spec("frozen-probe", "lr", None, settings) == (f"frozen-probe-lr-{short_hash(old_spec, 8)}", old_spec)
    head_name, head_spec = result_spec("head", "head", HeadSettings(), settings)
    assert head_name.startswith("head-") and tuple(head_spec["settings"]["hidden"]) == (64, 64)
    assert result_spec("head", "head", HeadSettings(lr=0.01), settings)[0] != head_name
    assert result_spec("head", "head", HeadSettings(), settings, 0.1)[1]["label_fraction"] == 0.1
    assert result_spec("finetune", "finetune", FinetuneSettings(), settings)[0].startswith("finetune-")
    assert protocol_label("head") == "head" and protocol_label("finetune", 0.01) == "finetune-1%-labels"


def test_importing_the_registry_loads_neither_torch_nor_sklearn():
    code = "import sys, ecgbench.evaluation.protocols; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False", "False"]


def test_list_protocols(capsys):
    from ecgbench.cli import main

    assert main(["list", "protocols"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == list(PROTOCOLS)
