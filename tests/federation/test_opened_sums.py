"""A bank refuses two different sums of one run that share a contribution: their difference
would be one bank's vector (issue 12, a deviating coordinator)."""

from __future__ import annotations

import numpy as np
import pytest

from federation.steps.opened_sums import OpenedSums, OverlappingSumsError
from federation.steps.secure_sum import KIND_WEIGHTS, PaillierBankSum, PaillierCoordinatorSum
from protocols.paillier.keys import generate_paillier_keypair

RUN = "run-1"


@pytest.fixture(scope="module")
def four_banks():
    public, private = generate_paillier_keypair(512, allow_insecure_test_key=True)
    banks = [PaillierBankSum(private, 4, bank=k) for k in range(4)]
    sealed = [b.seal(np.full(3, b.bank / 8), kind=KIND_WEIGHTS, run_id=RUN, round=2)
              for b in banks]
    return sealed, PaillierCoordinatorSum(public, 4)


def _sum(four_banks, which):
    sealed, coordinator = four_banks
    return coordinator.combine([sealed[k] for k in which], kind=KIND_WEIGHTS, length=None,
                               run_id=RUN, round=2)


def test_the_same_sum_twice_is_fine_a_subset_of_it_is_refused(four_banks) -> None:
    opened = OpenedSums()
    everyone = _sum(four_banks, (0, 1, 2, 3))
    opened.check(everyone, "weights-sum")
    opened.check(_sum(four_banks, (3, 1, 2, 0)), "weights-sum")  # same set, other order
    with pytest.raises(OverlappingSumsError, match="different set of banks"):
        opened.check(_sum(four_banks, (0, 1, 2)), "weights-sum")
    with pytest.raises(OverlappingSumsError):
        opened.check(_sum(four_banks, (1, 2, 3)), "weights-sum")


def test_sums_of_disjoint_contributions_are_independent(four_banks) -> None:
    opened = OpenedSums()
    opened.check(_sum(four_banks, (0, 1)), "weights-sum")
    opened.check(_sum(four_banks, (2, 3)), "weights-sum")
    with pytest.raises(OverlappingSumsError):
        opened.check(_sum(four_banks, (0, 1, 2, 3)), "weights-sum")
