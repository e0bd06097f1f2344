"""Run config: validated, and round-trips through Flower's run-config form."""

from __future__ import annotations

import pytest

from federation.errors import ConfigError
from federation.run.config import RunConfig


def test_round_trip_through_user_config() -> None:
    cfg = RunConfig(banks=3, rounds=2, model="mlp", partition="dirichlet", alpha=0.3)
    assert RunConfig.from_user_config(cfg.to_user_config()) == cfg


@pytest.mark.parametrize("values, message", [
    ({"model": "svm"}, "setting 'model' is 'svm'"),
    ({"banks": 0}, "'banks' must be positive"),
    ({"test-fraction": 1.5}, "test-fraction"),
    ({"rounds": "many"}, "'rounds' must be int"),
    ({"colour": "red"}, "unknown run-config setting 'colour'"),
])
def test_invalid_settings_are_named(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_user_config(values)


def test_prox_mu_only_for_fedprox() -> None:
    assert RunConfig(mu=0.5).prox_mu == 0.0
    assert RunConfig(mu=0.5, strategy="fedprox").prox_mu == 0.5
