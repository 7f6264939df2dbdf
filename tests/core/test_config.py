import pytest

from ecgbench.core.config import (
    ConfigError,
    EvalSettings,
    RunConfig,
    apply_overrides,
    derive_seed,
    parse_assignments,
    short_hash,
    split_overrides,
)


def test_parse_assignments_rejects_missing_equals():
    assert parse_assignments(["lr=1e-3", " a.b = 2 "]) == {"lr": "1e-3", "a.b": "2"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["lr"])


def test_overrides_are_coerced_to_field_types():
    settings = apply_overrides(EvalSettings(), {"bootstrap": "50", "probe_grid": "small"}, "eval")
    assert settings.bootstrap == 50 and settings.probe_grid == "small"
    with pytest.raises(ConfigError, match="expected a int"):
        apply_overrides(EvalSettings(), {"bootstrap": "many"}, "eval")
    with pytest.raises(ConfigError, match="Did you mean 'bootstrap'"):
        apply_overrides(EvalSettings(), {"bootstrapp": "5"}, "eval")


def test_split_overrides_routes_keys():
    fields = {"simclr": ["lr", "temperature"], "byol": ["lr", "tau"]}
    per_method, evals, data = split_overrides(
        {"lr": "1", "simclr.temperature": "0.2", "eval.bootstrap": "9", "data.n_patients": "5"},
        ["simclr", "byol"], fields,
    )
    assert per_method == {"simclr": {"lr": "1", "temperature": "0.2"}, "byol": {"lr": "1"}}
    assert evals == {"bootstrap": "9"} and data == {"n_patients": "5"}
    with pytest.raises(ConfigError, match="no selected method"):
        split_overrides({"tempreature": "1"}, ["simclr"], fields)
    with pytest.raises(ConfigError, match="not a selected method"):
        split_overrides({"clocs.lr": "1"}, ["simclr"], fields)


def test_run_id_changes_with_any_field_and_is_stable():
    base = RunConfig("simclr", 1, {"lr": 1e-3, "leads": ("II",)}, "smoke", "synthetic@1:train", 0)
    assert base.run_id == RunConfig("simclr", 1, {"leads": ("II",), "lr": 1e-3}, "smoke", "synthetic@1:train", 0).run_id
    changed = [
        RunConfig("simclr", 2, base.method_config, "smoke", base.pretrain_data, 0),
        RunConfig("simclr", 1, {"lr": 2e-3, "leads": ("II",)}, "smoke", base.pretrain_data, 0),
        RunConfig("simclr", 1, base.method_config, "cpu", base.pretrain_data, 0),
        RunConfig("simclr", 1, base.method_config, "smoke", "synthetic@2:train", 0),
        RunConfig("simclr", 1, base.method_config, "smoke", base.pretrain_data, 1),
    ]
    assert len({c.run_id for c in changed} | {base.run_id}) == 6
    assert base.run_id.startswith("simclr-")


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "pretrain") == derive_seed(0, "pretrain")
    assert len({derive_seed(s, stage) for s in range(3) for stage in ("pretrain", "probe", "init")}) == 9
    assert short_hash({"a": 1, "b": [1, 2]}) == short_hash({"b": (1, 2), "a": 1})


def test_tuple_overrides_keep_element_types():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Example:
        leads: tuple = ("II",)
        blocks: tuple = ()
        sizes: tuple = (1, 2)

    changed = apply_overrides(Example(), {"leads": "I,II", "blocks": "1,2", "sizes": "(3, 4)"}, "x")
    assert changed.leads == ("I", "II") and changed.blocks == (1, 2) and changed.sizes == (3, 4)


def test_rules_in_field_metadata_are_checked_and_inherited():
    from dataclasses import dataclass, field

    from ecgbench.core.config import at_least, check_fields, one_of

    @dataclass(frozen=True)
    class Base:
        steps: int = field(default=1, metadata=at_least(1, "an integer"))
        mode: str = field(default="a", metadata=one_of("a", "b"))

    @dataclass(frozen=True)
    class Child(Base):
        steps: int = 5  # a new default re-declares the field without its metadata

        def validate(self):
            if self.steps == 7:
                raise ConfigError("child.steps=7: unlucky")

    assert apply_overrides(Child(), {"steps": "3"}, "child").steps == 3
    with pytest.raises(ConfigError, match=r"^child.steps=0: must be an integer >= 1$"):
        apply_overrides(Child(), {"steps": "0"}, "child")
    with pytest.raises(ConfigError, match="must be one of a, b"):
        apply_overrides(Child(), {"mode": "c"}, "child")
    with pytest.raises(ConfigError, match="unlucky"):
        apply_overrides(Child(), {"steps": "7"}, "child")
    with pytest.raises(ConfigError, match="finite"):
        check_fields(Child(steps=float("nan")), "child")


def test_every_method_preset_passes_its_rules():
    from ecgbench.core.registry import METHODS

    for name in METHODS.names():
        cls = METHODS.get(name)
        for preset in ("smoke", "cpu", "paper"):
            apply_overrides(cls.Config(), cls.preset_overrides(preset), name)


def test_did_you_mean_prefers_abbreviations():
    from ecgbench.core.config import did_you_mean

    fields = ["lr", "scale_range", "weight_decay", "temperature"]
    assert did_you_mean("learning_rate", fields) == " Did you mean 'lr'?"
    assert did_you_mean("wd", fields) == " Did you mean 'weight_decay'?"
    assert "'temperature'" in did_you_mean("temprature", fields)
    assert did_you_mean("zzz", fields) == ""


def test_short_hash_of_mixed_values_is_pinned():
    """Every cache key and run id hashes this canonical form; pinned on 762b7ae's _plain, before
    plain str/int/float/bool/None values took a shortcut (numpy scalars still convert)."""
    import dataclasses

    import numpy as np

    @dataclasses.dataclass
    class Part:
        x: float = 0.5
        y: tuple = (1, np.int64(2))

    value = {"a": [1, 2.5, True, None, "x", np.float64(1.5)], "b": {"c": np.float32(0.25), "d": (1, np.int64(3))},
             3: "int key", "e": Part(), "f": {"s.dat": [12000, 1765000000123456789]}}
    assert short_hash(value) == "d029ed11684b"
