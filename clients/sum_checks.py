"""The bank's checks of the combined sums a request carries, before it reads any data.

Thin, like the handlers: the rules live in :mod:`federation.run.policy` (``min-contributors``)
and :mod:`federation.steps.opened_sums` (no two overlapping different sums, rounds of a kind
only forward); this module finds the sums in a request, labels each with the round the bank
will open it for, and keeps the bank's memory in its Flower node state.
"""

from __future__ import annotations

from typing import Any

from flwr.app import Context

from clients import node_state
from federation.run.policy import BankPolicy, check_contributors
from federation.steps.opened_sums import OpenedSums
from federation.wire.records import (
    KEY_HIST_SUM,
    KEY_STATS_SUM,
    KEY_WEIGHTS_SUM,
    sealed_of,
    step_of,
)
from federation.wire.trees import KEY_BINS_SUM, KEY_LEVEL_SUM, state_of

SUM_KEYS = (KEY_STATS_SUM, KEY_WEIGHTS_SUM, KEY_HIST_SUM, KEY_BINS_SUM, KEY_LEVEL_SUM)
"""Every combined sealed vector a request may carry (FedAvg and boosted trees)."""

OPENED_SUMS = "opened-sums"
"""Node-state name of this bank's :class:`OpenedSums` for the current run."""


def opening_round(content: Any, key: str) -> int:
    """The round bank steps open the sum under ``key`` of a request for (its boxes' round).

    Statistics and bins: round 0 (``open_preprocessing``, ``open_tree_context``); weights and
    score histograms: the request's round (``open_weights``), the round the histograms
    evaluate (``histogram_metrics``, ``open_released_histograms``: the step record's
    ``hist-round``, the request's round when it names none); a tree level: the request
    number of the state blob the request carries, 0 without one (``tree_bank._decide`` opens
    it at ``state.seq``, which ``_open_state`` requires to equal the blob's number). Must stay
    equal to those steps' rounds: the memory of :class:`OpenedSums` drops older rounds on this label.
    """
    if key in (KEY_STATS_SUM, KEY_BINS_SUM):
        return 0
    if key == KEY_LEVEL_SUM:
        blob = state_of(content)
        return 0 if blob is None else blob[1]
    if key == KEY_HIST_SUM:
        return step_of(content).histograms_round
    return step_of(content).round


def check_sums(content: Any, policy: BankPolicy, context: Context) -> None:
    """Refuse a request carrying a sum of fewer banks than the policy's ``min-contributors``
    (the count is verified again when the sum is opened), a sum that overlaps another sum
    of this Flower run without being the same, or a sum of an older round of its kind than one
    already handed over (:mod:`federation.steps.opened_sums`; the memory lives in this node's
    Flower state, whatever run id the requests claim). Before any data is read."""
    opened = node_state.get(context, OPENED_SUMS) if node_state.has(context, OPENED_SUMS) \
        else None
    if not isinstance(opened, OpenedSums):
        opened = OpenedSums()
    for key in SUM_KEYS:
        sealed = sealed_of(content, key)
        if sealed is not None:
            check_contributors(policy, sealed.parties, key)
            opened.check(sealed, key, round=opening_round(content, key))
    node_state.put(context, **{OPENED_SUMS: opened})
