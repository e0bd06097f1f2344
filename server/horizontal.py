"""Coordinator workflow of a horizontal run over Flower's Grid (Message API).

Steps: wait for the banks; federated preprocessing (schema union, summed stats); then per
round: send global weights -> banks train locally -> FedAvg of their weights (weighted by
row counts) -> banks score their test rows -> summed score histograms give the global AUC/KS.

Security (plain aggregation): the coordinator sees each bank's weights, stats vector and
histograms, never a row or a label.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
from flwr.app import Message
from flwr.serverapp import Grid

from federation.aggregation import weighted_mean
from federation.config import RunConfig
from federation.metrics import auc_ks_from_histograms
from federation.preprocess import Preprocessor, combine_stats, merge_schemas
from federation.records import (
    MSG_EVALUATE, MSG_SCHEMA, MSG_STATS, MSG_TRAIN, metrics_of, request_content, schema_of,
    vector_of, weights_of,
)
from federation.training import make_model
from server.errors import FederationError

STEP_TIMEOUT_S = 900.0
JOIN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RoundRecord:
    """Federated evaluation after one round."""

    round: int
    auc: float
    ks: float
    seconds: float
    banks: int


@dataclass
class FederatedResult:
    """What the coordinator ends up with (weights are the global model, not any bank's)."""

    preprocessor: Preprocessor | None = None
    weights: list[np.ndarray] = field(default_factory=list)
    history: list[RoundRecord] = field(default_factory=list)
    train_rows: dict[int, int] = field(default_factory=dict)
    test_rows: dict[int, int] = field(default_factory=dict)
    histograms: tuple[np.ndarray, np.ndarray] | None = None
    """Summed (bad, good) test-score histograms of the last round (logit bins)."""


Observer = Callable[[str, Message], None]


class Exchange:
    """Sends one request to every bank and collects the replies; errors name the bank."""

    def __init__(self, grid: Grid, nodes: list[int], observer: Observer | None = None) -> None:
        self.grid, self.nodes, self.observer = grid, nodes, observer

    def ask(self, message_type: str, contents: Callable[[], object]) -> list[Message]:
        requests = [
            Message(contents(), dst_node_id=node, message_type=message_type) for node in self.nodes
        ]
        self._observe("request", requests)
        replies = list(self.grid.send_and_receive(requests, timeout=STEP_TIMEOUT_S))
        self._observe("reply", replies)
        failed = [r for r in replies if r.has_error()]
        if failed:
            err = failed[0]
            raise FederationError(
                f"bank node {err.metadata.src_node_id} failed step '{message_type}': "
                f"{_reason(err.error.reason)}"
            )
        if len(replies) < len(self.nodes):
            raise FederationError(
                f"step '{message_type}': {len(self.nodes) - len(replies)} of {len(self.nodes)} "
                f"banks did not answer within {STEP_TIMEOUT_S:.0f} s."
            )
        return sorted(replies, key=lambda r: metrics_of(r.content)[0])

    def _observe(self, direction: str, messages: Iterable[Message]) -> None:
        if self.observer is not None:
            for m in messages:
                self.observer(direction, m)


def _reason(text: str | None) -> str:
    """The last meaningful line of a remote error (Flower sends the whole traceback)."""
    lines = [ln.strip() for ln in (text or "unknown error").strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error:" in line or "error:" in line:
            return line.split(": ", 1)[1] if line.split(": ", 1)[0].endswith("Error") else line
    return lines[-1]


def wait_for_banks(grid: Grid, banks: int, timeout_s: float = JOIN_TIMEOUT_S) -> list[int]:
    """Node ids of the first ``banks`` banks to connect; error if they do not all join."""
    deadline = time.monotonic() + timeout_s
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= banks:
            return nodes[:banks]
        if time.monotonic() > deadline:
            raise FederationError(
                f"only {len(nodes)} of {banks} bank nodes joined within {timeout_s:.0f} s."
            )
        time.sleep(0.05)


def federated_preprocessor(cfg: RunConfig, ex: Exchange, result: FederatedResult) -> Preprocessor:
    """Schema union, then summed stats vectors -> shared preprocessing."""
    replies = ex.ask(MSG_SCHEMA, lambda: request_content(cfg))
    layout = merge_schemas([schema_of(r.content) for r in replies])
    replies = ex.ask(MSG_STATS, lambda: request_content(cfg, layout=layout))
    for r in replies:
        bank, n = metrics_of(r.content)
        result.train_rows[bank] = n
    total = np.sum([vector_of(r.content)[0] for r in replies], axis=0)
    return combine_stats(layout, total)


def run_horizontal(
    grid: Grid,
    cfg: RunConfig,
    *,
    on_round: Callable[[RoundRecord], None] | None = None,
    observer: Observer | None = None,
) -> FederatedResult:
    """The whole horizontal run; ``on_round`` is called after each round's evaluation."""
    result = FederatedResult()
    ex = Exchange(grid, wait_for_banks(grid, cfg.banks), observer)
    prep = federated_preprocessor(cfg, ex, result)
    result.preprocessor = prep
    weights = make_model(cfg, prep.n_features).get_weights()
    for rnd in range(cfg.rounds):
        started = time.perf_counter()
        replies = ex.ask(MSG_TRAIN, lambda: request_content(cfg, round_index=rnd, prep=prep,
                                                            weights=weights))
        weights = weighted_mean([(weights_of(r.content), metrics_of(r.content)[1])
                                 for r in replies])
        replies = ex.ask(MSG_EVALUATE, lambda: request_content(cfg, round_index=rnd, prep=prep,
                                                               weights=weights))
        bad = np.sum([vector_of(r.content)[0] for r in replies], axis=0)
        good = np.sum([vector_of(r.content)[1] for r in replies], axis=0)
        for r in replies:
            bank, n = metrics_of(r.content)
            result.test_rows[bank] = n
        auc, ks = auc_ks_from_histograms(bad, good)
        result.histograms = (bad, good)
        record = RoundRecord(rnd + 1, auc, ks, time.perf_counter() - started, len(replies))
        result.history.append(record)
        if on_round is not None:
            on_round(record)
    result.weights = weights
    return result
