"""GBDTConfig: defaults are valid, every bad setting is refused in one line naming it."""

from __future__ import annotations

import dataclasses

import pytest

from federation.errors import ConfigError
from federation.ml.gbdt.config import GBDTConfig


def test_defaults_are_valid_and_frozen() -> None:
    config = GBDTConfig()
    assert (config.trees, config.depth, config.bins, config.learning_rate) == (100, 4, 32, 0.1)
    assert config.max_rows == 2**33  # exact float64 sums at 2**-20
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.depth = 3  # type: ignore[misc]


@pytest.mark.parametrize(("setting", "value", "flag"), [
    ("depth", 0, "--depth"), ("bins", 1, "--bins"), ("trees", 0, "--trees"),
    ("bins", 256, "--bins"), ("depth", 13, "--depth"), ("depth", 2.0, "--depth"),
    ("trees", True, "--trees"), ("learning_rate", 0.0, "--learning-rate"),
    ("learning_rate", float("nan"), "--learning-rate"), ("learning_rate", 1.5, "--learning-rate"),
    ("l2", -1.0, "--l2"), ("l2", float("inf"), "--l2"),
    ("min_child_weight", -0.5, "--min-child-weight"), ("subsample", 0.0, "--subsample"),
    ("subsample", 1.01, "--subsample"), ("seed", -1, "--seed"),
    ("early_stopping_rounds", -1, "--early-stopping-rounds"),
    ("early_stopping_metric", "gini", "--early-stopping-metric"),
    ("gradient_bits", 7, "--gradient-bits"), ("gradient_bits", 31, "--gradient-bits"),
])
def test_bad_settings_are_refused_in_one_line(setting: str, value: object, flag: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GBDTConfig(**{setting: value})  # type: ignore[arg-type]
    message = str(caught.value)
    assert f"'{flag}'" in message and "\n" not in message


def test_zero_l2_needs_a_positive_min_child_weight() -> None:
    GBDTConfig(l2=0.0, min_child_weight=1.0)
    with pytest.raises(ConfigError, match="'--l2' and '--min-child-weight'"):
        GBDTConfig(l2=0.0, min_child_weight=0.0)


def test_another_schema_version_is_refused() -> None:
    with pytest.raises(ConfigError, match="schema_version 2"):
        GBDTConfig(schema_version=2)
