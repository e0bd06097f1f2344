"""A bank's own policy: where it comes from, its safe defaults, and each refusal (issue 12)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from federation.run.config import RunConfig
from federation.run.node_config import NodeConfigError, load_node_config
from federation.run.policy import (
    DEFAULT_POLICY,
    SIMULATION_POLICY,
    BankPolicy,
    PolicyError,
    PolicyRefusal,
    check_contributors,
    check_run_config,
    check_vertical_config,
    policy_of_node,
)
from federation.run.vertical_config import VerticalConfig

ENCRYPTED = RunConfig(aggregation="paillier", banks=3, release_model=False)


def test_the_defaults_are_the_safe_ones() -> None:
    assert DEFAULT_POLICY == BankPolicy(aggregation=("paillier", "paillier-secagg"),
                                        min_contributors=3,
                                        release_model=False, short_exponents=False,
                                        min_key_bits=2048)


@pytest.mark.parametrize("node, expected", [
    ({"data-path": "/srv/bank.csv", "bank-index": 0}, DEFAULT_POLICY),  # deployed, no [policy]
    ({"data-path": "/srv/bank.csv", "partition-id": 0}, DEFAULT_POLICY),
    ({"partition-id": 1, "num-partitions": 3}, SIMULATION_POLICY),  # Flower simulation
    ({}, DEFAULT_POLICY),
])
def test_the_policy_comes_from_the_node_config_only(node: dict, expected: BankPolicy) -> None:
    assert policy_of_node(node) == expected


def test_policy_keys_override_and_missing_ones_stay_safe() -> None:
    policy = policy_of_node({"partition-id": 0, "policy-aggregation": "plain, paillier",
                             "policy-min-contributors": 2})
    assert policy.aggregation == ("plain", "paillier") and policy.min_contributors == 2
    assert not policy.release_model and policy.min_key_bits == 2048
    assert policy_of_node(policy.to_node_config()) == policy


@pytest.mark.parametrize("values, setting", [
    ({"min_contributors": 1}, "min-contributors"),
    ({"min_contributors": 0}, "min-contributors"),
    ({"aggregation": ("clear",)}, "aggregation"),
    ({"aggregation": ()}, "aggregation"),
    ({"release_model": "yes"}, "release-model"),
])
def test_an_unsafe_or_malformed_policy_is_refused(values: dict, setting: str) -> None:
    with pytest.raises(PolicyError, match=setting):
        BankPolicy(**values)


@pytest.mark.parametrize("cfg, setting", [
    (replace(ENCRYPTED, aggregation="plain"), "'aggregation' = plain"),
    (replace(ENCRYPTED, release_model=True), "'release-model' = true"),
    (replace(ENCRYPTED, banks=5, min_banks=2), "'min-banks' = 2"),
    (replace(ENCRYPTED, banks=2), "'banks' = 2"),
])
def test_a_deviating_run_config_is_refused_in_one_line_naming_the_setting(
    cfg: RunConfig, setting: str,
) -> None:
    with pytest.raises(PolicyRefusal) as refused:
        check_run_config(DEFAULT_POLICY, cfg)
    message = str(refused.value)
    assert setting in message and "\n" not in message and "policy" in message


def test_the_plain_refusal_names_the_policy_setting() -> None:
    with pytest.raises(PolicyRefusal, match=r'\[policy\] aggregation = \["paillier", "paillier-secagg"\]'):
        check_run_config(DEFAULT_POLICY, replace(ENCRYPTED, aggregation="plain"))


def test_an_accepted_run_config_and_a_larger_key_minimum() -> None:
    check_run_config(DEFAULT_POLICY, ENCRYPTED)
    check_run_config(DEFAULT_POLICY, replace(ENCRYPTED, banks=5, min_banks=3))
    with pytest.raises(PolicyRefusal, match="'key-bits' = 2048"):
        check_run_config(replace(DEFAULT_POLICY, min_key_bits=3072), ENCRYPTED)
    check_run_config(SIMULATION_POLICY, RunConfig(banks=2))  # plain, release: simulation only


def test_short_exponents_and_small_vertical_keys_are_refused() -> None:
    with pytest.raises(PolicyRefusal, match="'vertical-short-exponent' = true"):
        check_vertical_config(DEFAULT_POLICY, VerticalConfig(short_exponent=True))
    with pytest.raises(PolicyRefusal, match="'vertical-key-bits' = 2048"):
        check_vertical_config(replace(DEFAULT_POLICY, min_key_bits=3072), VerticalConfig())
    check_vertical_config(DEFAULT_POLICY, VerticalConfig())
    check_vertical_config(SIMULATION_POLICY, VerticalConfig(short_exponent=True))


def test_a_sum_of_fewer_banks_than_the_policy_minimum_is_not_opened() -> None:
    for parties in (1, 2):
        with pytest.raises(PolicyRefusal, match="min-contributors = 3"):
            check_contributors(DEFAULT_POLICY, parties, "weights-sum")
    check_contributors(DEFAULT_POLICY, 3, "weights-sum")


def _bank_toml(folder: Path, policy: str) -> Path:
    (folder / "bank.csv").write_text("ID,x,bad\n1,2,0\n")
    path = folder / "node.toml"
    path.write_text('[node]\nrole = "bank"\nname = "bank-0"\nbank-index = 0\n'
                    '[data]\npath = "bank.csv"\ntarget = "bad"\n'
                    '[coordinator]\naddress = "127.0.0.1:9093"\ninsecure = true\n' + policy)
    return path


def test_the_node_toml_policy_table(tmp_path: Path) -> None:
    assert load_node_config(_bank_toml(tmp_path, "")).policy == DEFAULT_POLICY
    cfg = load_node_config(_bank_toml(tmp_path, '[policy]\naggregation = ["plain", "paillier"]\n'
                                                'release-model = true\nmin-key-bits = 3072\n'))
    assert cfg.policy == BankPolicy(aggregation=("plain", "paillier"), release_model=True,
                                    min_key_bits=3072)
    node = cfg.to_flower_node_config()
    assert node["policy-aggregation"] == "plain,paillier" and policy_of_node(node) == cfg.policy


@pytest.mark.parametrize("table, setting", [
    ("min-contributors = 1\n", "[policy] min-contributors"),
    ('aggregation = "plain"\n', "[policy] aggregation"),
    ("allow-everything = true\n", "[policy] allow-everything"),
])
def test_a_bad_policy_table_stops_the_node(tmp_path: Path, table: str, setting: str) -> None:
    with pytest.raises(NodeConfigError, match=setting.replace("[", r"\[").replace("]", r"\]")):
        load_node_config(_bank_toml(tmp_path, "[policy]\n" + table))


def test_a_sampled_round_below_the_minimum_contributors_is_refused_up_front() -> None:
    """12 banks at fraction-fit 0.5: a round samples 6 and needs 4 of them, so a bank asking for
    at least 5 contributors refuses the run before any data is read (the whole federation's 8
    would pass); at fraction-fit 1 it accepts."""
    strict = replace(DEFAULT_POLICY, min_contributors=5)
    cfg = replace(ENCRYPTED, banks=12, fraction_fit=0.5)
    assert (cfg.required_banks, cfg.round_required_banks) == (8, 4)
    with pytest.raises(PolicyRefusal, match="'fraction-fit' = 0.5 .*min-contributors = 5"):
        check_run_config(strict, cfg)
    check_run_config(strict, replace(cfg, fraction_fit=1.0))
