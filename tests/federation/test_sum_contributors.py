"""Contribution tags under Paillier: a bank opens a sum only when it holds exactly the
contributions its sealed boxes name (issue 12: a coordinator relabelling one bank's vector as
a sum is refused)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from federation.steps.secure_sum import (
    KIND_COUNTS,
    KIND_GRADIENTS,
    KIND_STATS,
    KIND_WEIGHTS,
    ContributorsError,
    PaillierBankSum,
    PaillierCoordinatorSum,
    Sealed,
)
from protocols.aggregation.contribution_tags import BOX_BYTES
from protocols.aggregation.serde import encrypted_vector_from_bytes, encrypted_vector_to_bytes
from protocols.aggregation.wide_sum import wide_from_bytes, wide_to_bytes
from protocols.paillier.keys import generate_paillier_keypair

BANKS, BITS, RUN, ROUND = 3, 20, "run-1", 4


@pytest.fixture(scope="module")
def parties() -> tuple[list[PaillierBankSum], PaillierCoordinatorSum]:
    public, private = generate_paillier_keypair(512, allow_insecure_test_key=True)
    banks = [PaillierBankSum(private, BANKS, gradient_bits=BITS, bank=k) for k in range(BANKS)]
    return banks, PaillierCoordinatorSum(public, BANKS, gradient_bits=BITS)


def _vector(kind: str, k: int) -> np.ndarray:
    values = np.arange(6, dtype=np.float64) + 10 * k
    if kind == KIND_GRADIENTS:
        return np.ldexp(values, -BITS)
    return values / 8 if kind == KIND_WEIGHTS else values


def _sealed(parties, kind: str) -> tuple[list[Sealed], Sealed]:
    banks, coordinator = parties
    sealed = [b.seal(_vector(kind, b.bank), kind=kind, run_id=RUN, round=ROUND) for b in banks]
    return sealed, coordinator.combine(sealed, kind=kind, length=None, run_id=RUN, round=ROUND)


def _relabelled(one: Sealed, claimed: int, boxes: bytes, coordinator) -> Sealed:
    """What a deviating coordinator sends: one bank's ciphertexts, every count set to
    ``claimed`` (inside the payload too) and the boxes of an honest sum beside them."""
    if one.kind == KIND_STATS:
        payload = wide_to_bytes(replace(wide_from_bytes(one.payload), n_parties=claimed))
    else:
        vec = encrypted_vector_from_bytes(one.payload, public_key=coordinator.public_key,
                                          expected_length=one.length + 1, run_id=RUN,
                                          round=ROUND, codec=coordinator.codec(one.kind))
        payload = encrypted_vector_to_bytes(replace(vec, n_parties=claimed))
    return replace(one, parties=claimed, payload=payload, contributors=boxes)


KINDS = (KIND_STATS, KIND_WEIGHTS, KIND_COUNTS, KIND_GRADIENTS)


@pytest.mark.parametrize("kind", KINDS)
def test_an_honest_sum_opens_to_the_sum_without_its_tag(parties, kind: str) -> None:
    sealed, total = _sealed(parties, kind)
    assert total.parties == BANKS and len(total.contributors) == BANKS * BOX_BYTES
    opened = parties[0][1].open(total, kind=kind, run_id=RUN, round=ROUND)
    expected = sum(_vector(kind, k) for k in range(BANKS))
    assert opened.shape == expected.shape
    assert np.allclose(opened, expected, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_one_banks_vector_relabelled_as_a_sum_is_refused(parties, kind: str) -> None:
    banks, coordinator = parties
    sealed, total = _sealed(parties, kind)
    forged = _relabelled(sealed[1], BANKS, total.contributors, coordinator)
    with pytest.raises(ContributorsError, match="tag slot does not match"):
        banks[0].open(forged, kind=kind, run_id=RUN, round=ROUND)


def test_a_vector_added_to_itself_or_a_dropped_or_foreign_box_is_refused(parties) -> None:
    banks, coordinator = parties
    sealed, total = _sealed(parties, KIND_WEIGHTS)
    tripled = coordinator.combine([sealed[1]] * 3, kind=KIND_WEIGHTS, length=None, run_id=RUN,
                                  round=ROUND)
    with pytest.raises(ContributorsError, match="twice"):
        banks[0].open(tripled, kind=KIND_WEIGHTS, run_id=RUN, round=ROUND)
    with pytest.raises(ContributorsError, match="claims 3 contributions but carries 2"):
        banks[0].open(replace(total, contributors=total.contributors[BOX_BYTES:]),
                      kind=KIND_WEIGHTS, run_id=RUN, round=ROUND)
    other_round = banks[2].seal(_vector(KIND_WEIGHTS, 2), kind=KIND_WEIGHTS, run_id=RUN,
                                round=ROUND + 1)
    swapped = total.contributors[:2 * BOX_BYTES] + other_round.contributors
    for boxes in (swapped, bytes(len(total.contributors)), total.contributors[:-1]):
        with pytest.raises(ContributorsError):
            banks[0].open(replace(total, contributors=boxes), kind=KIND_WEIGHTS, run_id=RUN,
                          round=ROUND)


def test_a_one_party_sum_opens_only_as_what_it_is(parties) -> None:
    """Labelled honestly, a sum of one is opened by the summation (the bank's own check of
    its vector); the bank's policy then refuses it (``min-contributors``, never below 2)."""
    banks, coordinator = parties
    sealed, _ = _sealed(parties, KIND_COUNTS)
    one = coordinator.combine(sealed[1:2], kind=KIND_COUNTS, length=None, run_id=RUN,
                              round=ROUND)
    assert one.parties == 1
    assert np.array_equal(banks[0].open(one, kind=KIND_COUNTS, run_id=RUN, round=ROUND),
                          _vector(KIND_COUNTS, 1))
