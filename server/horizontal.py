"""Coordinator workflow of a horizontal run over Flower's Grid (Message API).

Steps: wait for the banks; federated preprocessing (schema union, then combined sealed stats);
then per round: forward the combined sealed model -> banks open it, train locally and seal
``[(n_k/N) w_k, n_k/N]`` -> the coordinator combines the sealed updates -> banks score their
test rows with the new model and seal score histograms -> combined, they come back to the
banks with the next request, and every bank reports the same global AUC/KS. A final step
collects the last round's AUC/KS and, if the run allows it, the released model.

Security: the coordinator only combines sealed vectors. Under ``paillier`` it holds the public
key alone and sees ciphertexts, category names and the global AUC/KS; never a row or a label.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
from flwr.app import Message
from flwr.serverapp import Grid

from federation.config import RunConfig
from federation.key_store import load_public_key
from federation.preprocess import FeatureLayout, Preprocessor, merge_schemas
from federation.records import (
    KEY_HIST_SUM, KEY_STATS_SUM, KEY_WEIGHTS_SUM, MSG_EVALUATE, MSG_FINALIZE, MSG_SCHEMA,
    MSG_STATS, MSG_TRAIN, bank_of, metrics_of, release_of, request_content, schema_of, sealed_of,
)
from federation.secure_sum import (
    KIND_COUNTS, KIND_STATS, KIND_WEIGHTS, PaillierCoordinatorSum, PlainSum, Sealed,
)
from server.errors import FederationError

STEP_TIMEOUT_S = 900.0
JOIN_TIMEOUT_S = 120.0
METRIC_TOLERANCE = 1e-9


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
    """What the coordinator ends up with: sealed aggregates, history, and the released model."""

    run_id: str = ""
    layout: FeatureLayout | None = None
    stats_sum: Sealed | None = None
    weights_sum: Sealed | None = None
    hist_sum: Sealed | None = None
    rounds_done: int = 0
    round_seconds: list[float] = field(default_factory=list)
    history: list[RoundRecord] = field(default_factory=list)
    train_rows: dict[int, int] = field(default_factory=dict)
    preprocessor: Preprocessor | None = None
    weights: list[np.ndarray] = field(default_factory=list)
    histograms: tuple[np.ndarray, np.ndarray] | None = None
    """Summed (bad, good) test-score histograms of the last round (plain aggregation only)."""


Observer = Callable[[str, Message], None]
Combiner = PlainSum | PaillierCoordinatorSum


def coordinator_combiner(cfg: RunConfig) -> Combiner:
    """The coordinator's half of the summation scheme (public key only under Paillier)."""
    if cfg.aggregation == "plain":
        return PlainSum()
    return PaillierCoordinatorSum(load_public_key(cfg.keys_dir), max_parties=cfg.banks)


class Exchange:
    """Sends one request to every bank and collects the replies; errors name the bank."""

    def __init__(self, grid: Grid, nodes: list[int], observer: Observer | None = None) -> None:
        self.grid, self.nodes, self.observer = grid, nodes, observer

    def ask(self, message_type: str, contents: Callable[[], Any]) -> list[Message]:
        requests = [Message(contents(), dst_node_id=n, message_type=message_type)
                    for n in self.nodes]
        self._observe("request", requests)
        replies = list(self.grid.send_and_receive(requests, timeout=STEP_TIMEOUT_S))
        self._observe("reply", replies)
        failed = [r for r in replies if r.has_error()]
        if failed:
            err = failed[0]
            raise FederationError(f"bank node {err.metadata.src_node_id} failed step "
                                  f"'{message_type}': {_reason(err.error.reason)}")
        if len(replies) < len(self.nodes):
            raise FederationError(
                f"step '{message_type}': {len(self.nodes) - len(replies)} of {len(self.nodes)} "
                f"banks did not answer within {STEP_TIMEOUT_S:.0f} s.")
        return sorted(replies, key=lambda r: bank_of(r.content))

    def _observe(self, direction: str, messages: Iterable[Message]) -> None:
        if self.observer is not None:
            for m in messages:
                self.observer(direction, m)


def _reason(text: str | None) -> str:
    """The last meaningful line of a remote error (Flower sends the whole traceback)."""
    lines = [ln.strip() for ln in (text or "unknown error").strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        head, _, tail = line.partition(": ")
        if head.endswith("Error") and tail:
            return tail
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
                f"only {len(nodes)} of {banks} bank nodes joined within {timeout_s:.0f} s.")
        time.sleep(0.05)


def _combine(combiner: Combiner, replies: list[Message], kind: str, run_id: str,
             round_index: int) -> Sealed:
    sealed = [sealed_of(r.content) for r in replies]
    if any(s is None for s in sealed):
        raise FederationError(f"a bank replied without its sealed '{kind}' vector.")
    return combiner.combine(sealed, kind=kind, length=None, run_id=run_id, round=round_index)


def _agreed_metrics(replies: list[Message]) -> tuple[float, float] | None:
    """The AUC/KS every bank computed from the same combined histograms (must agree)."""
    values = [metrics_of(r.content) for r in replies]
    if "auc" not in values[0]:
        return None
    aucs = [float(v["auc"]) for v in values]
    kss = [float(v["ks"]) for v in values]
    if max(aucs) - min(aucs) > METRIC_TOLERANCE or max(kss) - min(kss) > METRIC_TOLERANCE:
        raise FederationError("banks opened different evaluation results from the same "
                              "combined histograms; a bank or the channel is faulty.")
    return aucs[0], kss[0]


class HorizontalRun:
    """One run's coordinator state machine (resumable from ``FederatedResult``)."""

    def __init__(self, grid: Grid, cfg: RunConfig, *, state: FederatedResult | None = None,
                 on_round: Callable[[RoundRecord], None] | None = None,
                 on_checkpoint: Callable[[FederatedResult], None] | None = None,
                 observer: Observer | None = None) -> None:
        self.cfg, self.on_round, self.on_checkpoint = cfg, on_round, on_checkpoint
        self.state = state or FederatedResult(run_id=secrets.token_hex(8))
        self.combiner = coordinator_combiner(cfg)
        self.ex = Exchange(grid, wait_for_banks(grid, cfg.banks), observer)

    def request(self, round_index: int, **sums: Sealed | None) -> Any:
        present = {k: v for k, v in sums.items() if v is not None}
        return request_content(self.cfg, run_id=self.state.run_id, round_index=round_index,
                               layout=self.state.layout, sums=present)

    def preprocess(self) -> None:
        """Schema union, then combined sealed stats (skipped when resuming)."""
        st = self.state
        replies = self.ex.ask(MSG_SCHEMA, lambda: self.request(0))
        st.layout = merge_schemas([schema_of(r.content) for r in replies])
        replies = self.ex.ask(MSG_STATS, lambda: self.request(0))
        st.train_rows = {bank_of(r.content): int(metrics_of(r.content)["num-examples"])
                         for r in replies}
        st.stats_sum = _combine(self.combiner, replies, KIND_STATS, st.run_id, 0)

    def one_round(self, rnd: int) -> None:
        """Train, combine, evaluate; record the previous round's metrics."""
        st = self.state
        started = time.perf_counter()
        replies = self.ex.ask(MSG_TRAIN, lambda: self.request(
            rnd, **{KEY_STATS_SUM: st.stats_sum, KEY_WEIGHTS_SUM: st.weights_sum,
                    KEY_HIST_SUM: st.hist_sum}))
        self._record(replies)
        st.weights_sum = _combine(self.combiner, replies, KIND_WEIGHTS, st.run_id, rnd + 1)
        replies = self.ex.ask(MSG_EVALUATE, lambda: self.request(
            rnd + 1, **{KEY_STATS_SUM: st.stats_sum, KEY_WEIGHTS_SUM: st.weights_sum}))
        st.hist_sum = _combine(self.combiner, replies, KIND_COUNTS, st.run_id, rnd + 1)
        st.rounds_done = rnd + 1
        st.round_seconds.append(time.perf_counter() - started)
        if self.on_checkpoint is not None:
            self.on_checkpoint(st)

    def finalize(self) -> None:
        """Last round's metrics and the released model."""
        st = self.state
        replies = self.ex.ask(MSG_FINALIZE, lambda: self.request(
            st.rounds_done, **{KEY_STATS_SUM: st.stats_sum, KEY_WEIGHTS_SUM: st.weights_sum,
                               KEY_HIST_SUM: st.hist_sum}))
        self._record(replies)
        release = release_of(replies[0].content)
        if release is not None:
            st.weights, st.preprocessor = release
        if isinstance(self.combiner, PlainSum) and st.hist_sum is not None:
            opened = self.combiner.open(st.hist_sum, kind=KIND_COUNTS, run_id=st.run_id,
                                        round=st.rounds_done)
            half = opened.size // 2
            st.histograms = (opened[:half].astype(np.int64), opened[half:].astype(np.int64))

    def _record(self, replies: list[Message]) -> None:
        agreed = _agreed_metrics(replies)
        if agreed is None:
            return
        st = self.state
        number = len(st.history) + 1
        record = RoundRecord(number, agreed[0], agreed[1], st.round_seconds[number - 1],
                             len(replies))
        st.history.append(record)
        if self.on_round is not None:
            self.on_round(record)

    def run(self) -> FederatedResult:
        """Preprocess (unless resumed), run the remaining rounds, finalize."""
        if self.state.stats_sum is None:
            self.preprocess()
        for rnd in range(self.state.rounds_done, self.cfg.rounds):
            self.one_round(rnd)
        self.finalize()
        return self.state


def run_horizontal(grid: Grid, cfg: RunConfig, **kwargs: Any) -> FederatedResult:
    """The whole horizontal run (see :class:`HorizontalRun` for the keyword arguments)."""
    return HorizontalRun(grid, cfg, **kwargs).run()
