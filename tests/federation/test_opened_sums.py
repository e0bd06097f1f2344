"""A bank refuses two different sums of one run that share a contribution: their difference
would be one bank's vector (issue 12, a deviating coordinator). It keeps one round of each
kind and refuses older rounds, so its memory does not grow with the rounds (issue 14)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from federation.steps.opened_sums import (
    OpenedSums,
    OverlappingSumsError,
    StaleSumError,
    box_set,
)
from federation.steps.secure_sum import (
    KIND_STATS,
    KIND_WEIGHTS,
    ContributorsError,
    PaillierBankSum,
    PaillierCoordinatorSum,
    Sealed,
)
from protocols.paillier.keys import generate_paillier_keypair

RUN = "run-1"


@pytest.fixture(scope="module")
def key_pair():
    return generate_paillier_keypair(512, allow_insecure_test_key=True)


@pytest.fixture(scope="module")
def four_banks(key_pair):
    public, private = key_pair
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
    opened.check(everyone, "weights-sum", round=2)
    opened.check(_sum(four_banks, (3, 1, 2, 0)), "weights-sum", round=2)  # same set, other order
    with pytest.raises(OverlappingSumsError, match="different set of banks"):
        opened.check(_sum(four_banks, (0, 1, 2)), "weights-sum", round=2)
    with pytest.raises(OverlappingSumsError):
        opened.check(_sum(four_banks, (1, 2, 3)), "weights-sum", round=2)


def test_sums_of_disjoint_contributions_are_independent(four_banks) -> None:
    opened = OpenedSums()
    opened.check(_sum(four_banks, (0, 1)), "weights-sum", round=2)
    opened.check(_sum(four_banks, (2, 3)), "weights-sum", round=2)
    with pytest.raises(OverlappingSumsError):
        opened.check(_sum(four_banks, (0, 1, 2, 3)), "weights-sum", round=2)


@pytest.fixture(scope="module")
def rounds_of_sums(key_pair):
    """The sum over all four banks in rounds 1-6, a builder of other sums, bank 0's side."""
    public, private = key_pair
    banks = [PaillierBankSum(private, 4, bank=k) for k in range(4)]
    coordinator = PaillierCoordinatorSum(public, 4)

    sealed: dict[tuple[int, str, int], Sealed] = {}  # each bank seals once per round and kind

    def total(rnd: int, which: tuple[int, ...], kind: str = KIND_WEIGHTS):
        for k in which:
            if (rnd, kind, k) not in sealed:
                sealed[rnd, kind, k] = banks[k].seal(np.full(3, k / 8), kind=kind, run_id=RUN,
                                                     round=rnd)
        return coordinator.combine([sealed[rnd, kind, k] for k in which], kind=kind,
                                   length=None, run_id=RUN, round=rnd)

    everyone = {rnd: total(rnd, (0, 1, 2, 3)) for rnd in range(1, 7)}
    return everyone, total, banks[0]


def test_a_sum_of_an_older_round_is_refused_once_a_newer_one_was_handed_over(
        rounds_of_sums) -> None:
    """After round 3's sum, round 2's sums are refused whatever their boxes: the same set
    again, and the subset {0, 1, 2} whose difference with the full round-2 sum is bank 3's
    update (the memory of round 2's boxes is gone, the round rule refuses it instead)."""
    everyone, total, _ = rounds_of_sums
    opened = OpenedSums()
    opened.check(everyone[2], "weights-sum", round=2)
    opened.check(everyone[2], "weights-sum", round=2)  # the same sum again: fine
    opened.check(everyone[3], "weights-sum", round=3)
    with pytest.raises(StaleSumError, match="round 2 after one of round 3"):
        opened.check(total(2, (0, 1, 2)), "weights-sum", round=2)
    with pytest.raises(StaleSumError):
        opened.check(everyone[2], "weights-sum", round=2)
    with pytest.raises(OverlappingSumsError):  # a stale sum is an overlap refusal too
        opened.check(everyone[1], "weights-sum", round=1)
    opened.check(everyone[3], "weights-sum", round=3)  # the latest round still opens
    with pytest.raises(OverlappingSumsError, match="different set of banks"):
        opened.check(total(3, (1, 2, 3)), "weights-sum", round=3)


def test_rounds_are_kept_per_kind(rounds_of_sums) -> None:
    """The statistics (round 0) come with every request: a later round of another kind does
    not make them stale."""
    everyone, total, _ = rounds_of_sums
    stats = total(0, (0, 1, 2, 3), KIND_STATS)
    opened = OpenedSums()
    for rnd in (1, 2):
        opened.check(stats, "stats-sum", round=0)
        opened.check(everyone[rnd], "weights-sum", round=rnd)
    assert opened.rounds == {KIND_STATS: 0, KIND_WEIGHTS: 2}


def test_the_memory_does_not_grow_with_the_rounds(rounds_of_sums) -> None:
    """One round's sets per kind: the pickled memory (what the node state carries with every
    request) is as large after six rounds as after one."""
    everyone, _, _ = rounds_of_sums
    opened = OpenedSums()
    sizes = []
    for rnd in range(1, 7):
        opened.check(everyone[rnd], "weights-sum", round=rnd)
        opened.check(everyone[rnd], "weights-sum", round=rnd)
        sizes.append(len(pickle.dumps(opened)))
        assert len(opened.sets[KIND_WEIGHTS]) == 1
    assert sizes == [sizes[0]] * 6
    assert sizes[0] < 1024  # four boxes' digests, the set digest, the round


def test_a_box_opens_only_for_the_round_it_was_sealed_for(rounds_of_sums) -> None:
    """What the round rule rests on: two sums that share a box share its round, since a box
    of round 2 in a sum opened as round 3 fails (so a stale sum cannot pass as a new one)."""
    everyone, _, bank = rounds_of_sums
    assert bank.open(everyone[2], kind=KIND_WEIGHTS, run_id=RUN, round=2).shape == (3,)
    with pytest.raises(ContributorsError, match="not sealed by a bank for this run"):
        bank.open(everyone[2], kind=KIND_WEIGHTS, run_id=RUN, round=3)
    with pytest.raises(ContributorsError):  # the failure is not remembered as a success
        bank.open(everyone[2], kind=KIND_WEIGHTS, run_id=RUN, round=3)


def test_box_set_is_the_same_for_any_order_of_the_boxes(four_banks) -> None:
    one, other = _sum(four_banks, (0, 1, 2, 3)), _sum(four_banks, (2, 0, 3, 1))
    assert one.contributors != other.contributors
    assert box_set(one.contributors) == box_set(other.contributors)
    assert box_set(_sum(four_banks, (0, 1, 2)).contributors).whole != \
        box_set(one.contributors).whole
    assert len(box_set(one.contributors).digests()) == 4
