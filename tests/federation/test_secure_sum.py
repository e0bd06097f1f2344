"""Secure summation: plain and Paillier give the same weighted mean (within quantisation);
both implement each side's Protocol, and one factory maps the configured name to a scheme."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.errors import ConfigError
from federation.ml.aggregation import flatten, weighted_mean
from federation.run.config import AGGREGATIONS, RunConfig
from federation.steps import secure_sum
from federation.steps.secure_sum import (
    KIND_COUNTS,
    KIND_STATS,
    KIND_WEIGHTS,
    SUMMATION_SCHEMES,
    WEIGHT_BITS,
    WEIGHT_CLIP,
    BankSummation,
    CoordinatorSummation,
    PaillierBankSum,
    PaillierCoordinatorSum,
    PlainSum,
    bank_summation,
    coordinator_summation,
    summation_scheme,
)
from protocols.errors import ProtocolError, StaleRoundError
from protocols.paillier.keys import generate_paillier_keypair, key_fingerprint

REPO = Path(__file__).resolve().parents[2]


def party(bank, k: int):
    """Bank ``k``'s side under the same key: a sum's contribution boxes must name distinct
    banks, so each vector of a test sum is sealed by another bank index."""
    if isinstance(bank, PaillierBankSum):
        return PaillierBankSum(bank.private_key, bank.max_parties,
                               gradient_bits=bank.gradient_bits, bank=k)
    return bank


@pytest.fixture(scope="module")
def pair() -> tuple[PaillierBankSum, PaillierCoordinatorSum]:
    public, private = generate_paillier_keypair(1024, allow_insecure_test_key=True)
    return PaillierBankSum(private, max_parties=8), PaillierCoordinatorSum(public, max_parties=8)


def fedavg_through(bank, coordinator, updates, run_id="r", rnd=1):
    total = sum(n for _, n in updates)
    sealed = [party(bank, k).seal(np.append(flatten(w) * n / total, n / total),
                                  kind=KIND_WEIGHTS, run_id=run_id, round=rnd)
              for k, (w, n) in enumerate(updates)]
    combined = coordinator.combine(sealed, kind=KIND_WEIGHTS, length=None, run_id=run_id,
                                   round=rnd)
    opened = bank.open(combined, kind=KIND_WEIGHTS, run_id=run_id, round=rnd)
    return opened[:-1] / opened[-1]


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.integers(0, 2**31))
def test_encrypted_fedavg_equals_plain_weighted_mean(pair, parties: int, size: int, seed: int) -> None:
    bank, coordinator = pair
    rng = np.random.default_rng(seed)
    updates = [([np.clip(rng.normal(0, 2, size), -15, 15)], int(rng.integers(10, 5000)))
               for _ in range(parties)]
    expected = flatten(weighted_mean(updates))
    got = fedavg_through(bank, coordinator, updates)
    step = 2 * WEIGHT_CLIP / (2**WEIGHT_BITS - 1)
    # each of the P shares of the sum and of the weight mass is off by at most step/2
    bound = parties * step / 2 * (1 + np.max(np.abs(expected))) * 1.01 + 1e-12
    assert np.max(np.abs(got - expected)) <= bound
    plain = PlainSum()
    assert np.allclose(fedavg_through(plain, plain, updates), expected, atol=1e-12)


def test_survivors_of_a_dropout_still_get_their_weighted_mean(pair) -> None:
    bank, coordinator = pair
    rng = np.random.default_rng(1)
    updates = [([rng.normal(size=5)], n) for n in (100, 300, 600, 1000)]
    total = sum(n for _, n in updates)
    sealed = [party(bank, k).seal(np.append(flatten(w) * n / total, n / total),
                                  kind=KIND_WEIGHTS, run_id="r", round=2)
              for k, (w, n) in enumerate(updates)]
    survivors = [0, 2]  # banks 1 and 3 vanish mid-round
    combined = coordinator.combine([sealed[i] for i in survivors], kind=KIND_WEIGHTS,
                                   length=None, run_id="r", round=2)
    opened = bank.open(combined, kind=KIND_WEIGHTS, run_id="r", round=2)
    expected = flatten(weighted_mean([updates[i] for i in survivors]))
    assert np.allclose(opened[:-1] / opened[-1], expected, atol=1e-5)


def test_stats_are_exact_and_counts_are_integers(pair) -> None:
    bank, coordinator = pair
    stats = [np.array([1200.0, -3.5e9, 4.2e16]), np.array([800.0, 1.25, 7.0e15])]
    sealed = [party(bank, k).seal(s, kind=KIND_STATS, run_id="r", round=0)
              for k, s in enumerate(stats)]
    total = bank.open(coordinator.combine(sealed, kind=KIND_STATS, length=3, run_id="r", round=0),
                      kind=KIND_STATS, run_id="r", round=0)
    assert np.allclose(total, stats[0] + stats[1], rtol=1e-12)
    counts = [np.array([0, 5, 65535]), np.array([3, 0, 1])]
    sealed = [party(bank, k).seal(c, kind=KIND_COUNTS, run_id="r", round=1)
              for k, c in enumerate(counts)]
    total = bank.open(coordinator.combine(sealed, kind=KIND_COUNTS, length=3, run_id="r", round=1),
                      kind=KIND_COUNTS, run_id="r", round=1)
    assert list(total) == [3, 5, 65536]


def test_stale_round_and_wrong_kind_are_refused(pair) -> None:
    bank, coordinator = pair
    old = bank.seal(np.ones(3), kind=KIND_WEIGHTS, run_id="r", round=1)
    with pytest.raises(StaleRoundError):
        coordinator.combine([old], kind=KIND_WEIGHTS, length=3, run_id="r", round=2)
    with pytest.raises(ProtocolError, match="expected a sealed 'counts'"):
        coordinator.combine([old], kind=KIND_COUNTS, length=3, run_id="r", round=1)


def test_both_schemes_satisfy_the_protocol_of_each_side(pair) -> None:
    bank, coordinator = pair
    for summation in (PlainSum(), bank):
        assert isinstance(summation, BankSummation)
        assert isinstance(summation, CoordinatorSummation)
    assert isinstance(coordinator, CoordinatorSummation)
    assert not isinstance(coordinator, BankSummation)  # no private key: it cannot open


def test_key_fingerprint_is_the_scheme_name_or_the_paillier_key(pair) -> None:
    bank, coordinator = pair
    assert PlainSum().key_fingerprint == "plain"  # what plain runs have always signed
    assert bank.key_fingerprint == coordinator.key_fingerprint == key_fingerprint(
        coordinator.public_key)


def test_every_accepted_aggregation_has_exactly_one_scheme() -> None:
    assert tuple(SUMMATION_SCHEMES) == AGGREGATIONS
    assert not summation_scheme("plain").needs_paillier_key
    assert summation_scheme("paillier").needs_paillier_key
    assert summation_scheme("paillier").min_key_bits == 2048


def test_the_factory_builds_each_side_of_the_configured_scheme(pair, monkeypatch) -> None:
    bank, coordinator = pair
    monkeypatch.setattr(secure_sum, "load_public_key", lambda keys_dir: coordinator.public_key)
    monkeypatch.setattr(secure_sum, "load_bank_private_key",
                        lambda keys_dir, index: bank.private_key)
    plain = RunConfig(aggregation="plain", banks=3)
    assert type(bank_summation(plain, 0)) is PlainSum
    assert type(coordinator_summation(plain)) is PlainSum
    encrypted = RunConfig(aggregation="paillier", banks=3, keys_dir="keys")
    bank_side, coordinator_side = bank_summation(encrypted, 1), coordinator_summation(encrypted)
    assert type(bank_side) is PaillierBankSum and bank_side.max_parties == 3
    assert type(coordinator_side) is PaillierCoordinatorSum
    assert not hasattr(coordinator_side, "private_key")
    assert bank_side.key_fingerprint == coordinator_side.key_fingerprint


@pytest.mark.parametrize("name", ["", "Plain", "paillier-2048", "rsa"])
def test_an_unknown_aggregation_name_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="setting 'aggregation'.*choose one of plain, paillier"):
        summation_scheme(name)


def _literal_aggregation_comparisons(source: str) -> list[int]:
    """Lines comparing an ``aggregation`` name or attribute with a string literal."""
    def is_aggregation(node: ast.expr) -> bool:
        return (isinstance(node, ast.Name) and node.id == "aggregation") or (
            isinstance(node, ast.Attribute) and node.attr == "aggregation")

    def is_literal(node: ast.expr) -> bool:
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(is_literal(e) for e in node.elts)
        return isinstance(node, ast.Constant) and isinstance(node.value, str)

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(map(is_aggregation, operands)) and any(map(is_literal, operands)):
                lines.append(node.lineno)
    return lines


def test_only_the_factory_maps_the_aggregation_name_to_a_scheme() -> None:
    assert _literal_aggregation_comparisons('if cfg.aggregation == "paillier": pass')
    assert _literal_aggregation_comparisons('x = aggregation in ("plain",)')
    factory = Path(secure_sum.__file__).resolve()
    found = [f"{path.relative_to(REPO)}:{line}"
             for package in ("protocols", "federation", "clients", "server", "fedcredit", "scripts")
             for path in sorted((REPO / package).rglob("*.py")) if path.resolve() != factory
             for line in _literal_aggregation_comparisons(path.read_text(encoding="utf-8"))]
    assert found == [], "choose the scheme with federation.steps.secure_sum.summation_scheme"


def test_a_sum_opened_again_is_a_fresh_equal_array_and_a_bad_one_fails_every_time(pair) -> None:
    """Banks of one process share the decoded sum (memo): equal values, never one array two
    banks could change, and a tampered payload is refused at every bank, not remembered."""
    from dataclasses import replace

    bank, coordinator = pair
    sealed = [party(bank, k).seal(np.arange(5.0) + k, kind=KIND_COUNTS, run_id="m", round=2)
              for k in range(3)]
    total = coordinator.combine(sealed, kind=KIND_COUNTS, length=None, run_id="m", round=2)
    first = party(bank, 0).open(total, kind=KIND_COUNTS, run_id="m", round=2)
    first[0] = -99.0
    again = party(bank, 1).open(total, kind=KIND_COUNTS, run_id="m", round=2)
    assert np.array_equal(again, 3 * np.arange(5.0) + 3)
    cut = len(total.payload) // 2
    tampered = replace(total, payload=total.payload[:cut] + bytes([total.payload[cut] ^ 1]) +
                       total.payload[cut + 1:])
    for k in range(2):
        with pytest.raises(ProtocolError):
            party(bank, k).open(tampered, kind=KIND_COUNTS, run_id="m", round=2)
