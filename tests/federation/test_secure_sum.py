"""Secure summation: plain and Paillier give the same weighted mean (within quantisation)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from federation.ml.aggregation import flatten, weighted_mean
from federation.steps.secure_sum import (
    KIND_COUNTS, KIND_STATS, KIND_WEIGHTS, WEIGHT_BITS, WEIGHT_CLIP, PaillierBankSum,
    PaillierCoordinatorSum, PlainSum,
)
from protocols.errors import ProtocolError, StaleRoundError
from protocols.paillier.keys import generate_paillier_keypair


@pytest.fixture(scope="module")
def pair() -> tuple[PaillierBankSum, PaillierCoordinatorSum]:
    public, private = generate_paillier_keypair(1024, allow_insecure_test_key=True)
    return PaillierBankSum(private, max_parties=8), PaillierCoordinatorSum(public, max_parties=8)


def fedavg_through(bank, coordinator, updates, run_id="r", rnd=1):
    total = sum(n for _, n in updates)
    sealed = [bank.seal(np.append(flatten(w) * n / total, n / total), kind=KIND_WEIGHTS,
                        run_id=run_id, round=rnd) for w, n in updates]
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
    sealed = [bank.seal(np.append(flatten(w) * n / total, n / total), kind=KIND_WEIGHTS,
                        run_id="r", round=2) for w, n in updates]
    survivors = [0, 2]  # banks 1 and 3 vanish mid-round
    combined = coordinator.combine([sealed[i] for i in survivors], kind=KIND_WEIGHTS,
                                   length=None, run_id="r", round=2)
    opened = bank.open(combined, kind=KIND_WEIGHTS, run_id="r", round=2)
    expected = flatten(weighted_mean([updates[i] for i in survivors]))
    assert np.allclose(opened[:-1] / opened[-1], expected, atol=1e-5)


def test_stats_are_exact_and_counts_are_integers(pair) -> None:
    bank, coordinator = pair
    stats = [np.array([1200.0, -3.5e9, 4.2e16]), np.array([800.0, 1.25, 7.0e15])]
    sealed = [bank.seal(s, kind=KIND_STATS, run_id="r", round=0) for s in stats]
    total = bank.open(coordinator.combine(sealed, kind=KIND_STATS, length=3, run_id="r", round=0),
                      kind=KIND_STATS, run_id="r", round=0)
    assert np.allclose(total, stats[0] + stats[1], rtol=1e-12)
    counts = [np.array([0, 5, 65535]), np.array([3, 0, 1])]
    sealed = [bank.seal(c, kind=KIND_COUNTS, run_id="r", round=1) for c in counts]
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
