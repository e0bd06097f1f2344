"""A bank's ``[policy] max-epsilon``: runs must be differentially private within it."""

from __future__ import annotations

import pytest

from federation.run.config import RunConfig
from federation.run.policy import (
    DEFAULT_POLICY,
    SIMULATION_POLICY,
    BankPolicy,
    PolicyError,
    PolicyRefusal,
    check_run_config,
    policy_of_node,
)

POLICY = BankPolicy(aggregation=("plain",), min_contributors=2, release_model=True,
                    max_epsilon=3.0)


def test_no_requirement_by_default() -> None:
    assert DEFAULT_POLICY.max_epsilon == SIMULATION_POLICY.max_epsilon == 0.0
    check_run_config(BankPolicy(aggregation=("plain",), min_contributors=2, release_model=True),
                     RunConfig(banks=3))


@pytest.mark.parametrize("epsilon", [0.0, 3.5, 100.0])
def test_a_run_without_dp_or_above_the_maximum_is_refused_naming_the_setting(
        epsilon: float) -> None:
    with pytest.raises(PolicyRefusal) as info:
        check_run_config(POLICY, RunConfig(banks=3, dp_epsilon=epsilon))
    message = str(info.value)
    assert "'dp-epsilon'" in message and "[policy] max-epsilon = 3" in message
    assert "\n" not in message


@pytest.mark.parametrize("epsilon", [0.5, 3.0])
def test_a_run_within_the_maximum_is_accepted(epsilon: float) -> None:
    check_run_config(POLICY, RunConfig(banks=3, dp_epsilon=epsilon))


def test_it_travels_in_the_node_config_and_the_toml_table() -> None:
    node = POLICY.to_node_config()
    assert node["policy-max-epsilon"] == "3.0"
    assert policy_of_node(node) == POLICY
    assert "policy-max-epsilon" not in DEFAULT_POLICY.to_node_config()  # absent: no requirement
    assert BankPolicy.from_table({"max-epsilon": 1}).max_epsilon == 1


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), True, "3"])
def test_bad_values_name_the_setting(value: object) -> None:
    with pytest.raises(PolicyError, match=r"\[policy\] max-epsilon"):
        BankPolicy(max_epsilon=value)  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match=r"\[policy\] max-epsilon"):
        policy_of_node({"policy-max-epsilon": "lots"})
