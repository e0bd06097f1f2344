"""The bank labels each sum of a request with the round its steps open it for, and its node
state keeps one round of each kind (issue 14: the memory no longer grows with the rounds)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from flwr.app import Context, RecordDict

from clients import node_state
from clients.sum_checks import OPENED_SUMS, check_sums, opening_round
from federation.run.config import RunConfig
from federation.run.policy import policy_of_node
from federation.steps.opened_sums import OpenedSums, StaleSumError
from federation.steps.secure_sum import (
    KIND_COUNTS,
    KIND_GRADIENTS,
    KIND_STATS,
    KIND_WEIGHTS,
    PaillierBankSum,
    PaillierCoordinatorSum,
    Sealed,
)
from federation.wire.records import KEY_HIST_SUM, KEY_STATS_SUM, KEY_WEIGHTS_SUM, request_content
from federation.wire.trees import KEY_BINS_SUM, KEY_LEVEL_SUM, add_state
from protocols.paillier.keys import generate_paillier_keypair

RUN = "run-1"
CFG = RunConfig(aggregation="paillier", banks=3, release_model=False)


@pytest.fixture(scope="module")
def summed():
    """``summed(kind, round)``: the sum of three banks' vectors of that kind and round."""
    public, private = generate_paillier_keypair(512, allow_insecure_test_key=True)
    banks = [PaillierBankSum(private, 3, bank=k, gradient_bits=20) for k in range(3)]
    coordinator = PaillierCoordinatorSum(public, 3, gradient_bits=20)
    cache: dict[tuple[str, int], Sealed] = {}

    def total(kind: str, rnd: int):
        if (kind, rnd) not in cache:
            sealed = [b.seal(np.ones(2), kind=kind, run_id=RUN, round=rnd) for b in banks]
            cache[kind, rnd] = coordinator.combine(sealed, kind=kind, length=None, run_id=RUN,
                                                   round=rnd)
        return cache[kind, rnd]

    return total


def _context() -> Context:
    return Context(run_id=1, node_id=7, state=RecordDict(), run_config={},
                   node_config={"partition-id": 0})


def test_each_sum_is_labelled_with_the_round_the_bank_opens_it_for(summed) -> None:
    """Statistics and bins: round 0; weights and histograms: the request's round; a tree level:
    the request number of the state blob it comes with (0 without one)."""
    content = request_content(CFG, run_id=RUN, round_index=7)
    assert [opening_round(content, key) for key in (KEY_STATS_SUM, KEY_BINS_SUM,
                                                    KEY_WEIGHTS_SUM, KEY_HIST_SUM,
                                                    KEY_LEVEL_SUM)] == [0, 0, 7, 7, 0]
    add_state(content, b"blob", 5)
    assert opening_round(content, KEY_LEVEL_SUM) == 5


def test_a_request_with_an_older_rounds_sum_is_refused_and_the_state_stays_small(summed) -> None:
    """A coordinator going back to round 2's weights sum after round 3's is refused; over six
    rounds of train requests the memory in the node state stays one round's size."""
    context, policy = _context(), policy_of_node({"partition-id": 0})
    sizes = []
    for rnd in range(1, 7):
        check_sums(request_content(CFG, run_id=RUN, round_index=rnd, sums={
            KEY_STATS_SUM: summed(KIND_STATS, 0), KEY_WEIGHTS_SUM: summed(KIND_WEIGHTS, rnd),
            KEY_HIST_SUM: summed(KIND_COUNTS, rnd)}), policy, context)
        sizes.append(len(pickle.dumps(node_state.get(context, OPENED_SUMS))))
    assert len(set(sizes)) == 1
    memory = node_state.get(context, OPENED_SUMS)
    assert isinstance(memory, OpenedSums)
    assert memory.rounds == {KIND_STATS: 0, KIND_WEIGHTS: 6, KIND_COUNTS: 6}
    with pytest.raises(StaleSumError, match="'weights-sum'"):
        check_sums(request_content(CFG, run_id=RUN, round_index=5, sums={
            KEY_WEIGHTS_SUM: summed(KIND_WEIGHTS, 5)}), policy, context)


def test_a_tree_level_sum_is_checked_at_its_state_blobs_round(summed) -> None:
    """The level sum's round is the blob's, not the request's: after level 4's sum, one of
    level 3 sent with request 9 (labelled by its blob, number 3) is refused."""
    context, policy = _context(), policy_of_node({"partition-id": 0})

    def level(seq: int, blob_seq: int) -> RecordDict:
        return add_state(request_content(CFG, run_id=RUN, round_index=seq, sums={
            KEY_LEVEL_SUM: summed(KIND_GRADIENTS, blob_seq)}), b"blob", blob_seq)

    check_sums(level(4, 3), policy, context)
    check_sums(level(5, 4), policy, context)
    with pytest.raises(StaleSumError, match="'gradients' sum"):
        check_sums(level(9, 3), policy, context)
