"""Coordinator workflow of a vertical run (bank + credit center) over Flower's Grid.

Steps: setup (each party checks its file and makes its own Paillier key pair; only the
public keys and row counts come back) -> ECDH-PSI in four relayed stages -> each party aligns
to the intersection and standardises its own columns -> secure WOE/IV binning -> vertical
logistic regression, three relayed phases per mini-batch -> held-out scoring through the
protected path (the bank reports AUC/KS only).

Security: the coordinator relays blinded points, ciphertexts under the parties' own keys and
masked values; it holds no key and never sees a row, a label or an ID.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from flwr.app import Message
from flwr.serverapp import Grid

from federation.run.results import Calibration, Metrics, PsiSummary, VerticalResults
from federation.run.vertical_config import VerticalConfig
from federation.wire.message_types import MessageType
from federation.wire.peer_frames import STEP_OPEN, FrameHeader, new_session_key
from federation.wire.records import StepFields
from federation.wire.vertical import (
    BIN_ENCRYPT_LABELS,
    BIN_OPEN_COUNTS,
    BIN_SUM_PER_BIN,
    PSI_INITIATOR_FINISH,
    PSI_INITIATOR_START,
    PSI_RESPONDER_FINISH,
    PSI_RESPONDER_REPLY,
    ROLE_BANK,
    ROLE_CENTER,
    V_BIN,
    V_ENCRYPT,
    V_GRADIENT,
    V_OPEN,
    V_PREPARE,
    V_PSI,
    V_SCORE,
    V_SETUP,
    V_START,
    V_STREAM,
    V_TREE_APPLY,
    V_TREE_DECIDE,
    V_TREE_GRAD,
    V_TREE_LEVEL,
    V_TREE_SCORE,
    V_TREE_START,
    V_UPDATE,
    Field,
    StepValue,
    batch_fields,
    blob_fields,
    relayed_bytes,
    stage_fields,
    stream_fields,
    unpack_reply,
    vertical_request,
)
from protocols.vertical_lr.config import min_batch_rows
from server.calibration import held_out_calibration
from server.errors import FederationError
from server.exchange import Observer, relay, remote_reason
from server.peer_relay import PeerRelay
from server.results import histogram_section
from server.roster import load_roster, wait_for_banks

STEP_TIMEOUT_S = 1800.0
QUIET_SHARE = 0.5
"""The coordinator first asks for a step's replies after this share of the shortest of the
step's last :data:`QUIET_OF_LAST` round trips (:func:`server.exchange.relay`'s ``quiet_s``):
the three steps of a mini-batch repeat with similar times, and deployed, every pull before
the replies can be there is a request the SuperLink serves for nothing."""
QUIET_OF_LAST = 3


@dataclass
class VerticalResult:
    """What the coordinator learns: sizes, timings, the held-out AUC/KS, the IV table."""

    run_id: str = ""
    bank_rows: int = 0
    center_rows: int = 0
    intersection: int = 0
    psi_seconds: float = 0.0
    train_rows: int = 0
    test_rows: int = 0
    bank_features: list[str] = field(default_factory=list)
    center_features: list[str] = field(default_factory=list)
    iv: dict[str, float] = field(default_factory=dict)
    auc: float = float("nan")
    ks: float = float("nan")
    epoch_seconds: list[float] = field(default_factory=list)
    histograms: tuple[list[int], list[int]] | None = None
    """Per-class held-out score histograms reported by the bank (logit bins)."""
    calibration: Calibration | None = None
    """The calibration map fitted on one held-out half, measured on the other."""
    bytes_relayed: int = 0


def parse_iv(text: str) -> dict[str, float]:
    """The bank's IV table (JSON object of feature -> finite number)."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        table = {str(k): float(v) for k, v in raw.items()}
    except (ValueError, TypeError, RecursionError) as exc:
        raise FederationError(f"the bank's IV table is malformed ({exc}).") from exc
    if not all(math.isfinite(v) for v in table.values()):
        raise FederationError("the bank's IV table holds a non-finite value.")
    return table


class VerticalRun:
    """One vertical run's coordinator."""

    def __init__(self, grid: Grid, cfg: VerticalConfig, *,
                 on_progress: Callable[[str, int, int], None] | None = None,
                 observer: Observer | None = None) -> None:
        self.grid, self.cfg, self.observer = grid, cfg, observer
        self.on_progress = on_progress or (lambda *_: None)
        self.nodes = wait_for_banks(grid, 2, roster=load_roster(cfg.keys_dir))
        self.role_node: dict[str, int] = {}
        self.result = VerticalResult(run_id=secrets.token_hex(8))
        self.took: dict[str, list[float]] = {}
        """Each step's last round trips in seconds (the quiet time before its first pull)."""

    def exchange(self, step: MessageType, asks: Mapping[str, Mapping[str, StepValue]], *,
                 on_replies: Callable[[list[Message]], None] | None = None,
                 ) -> dict[str, StepFields]:
        """Send ``step`` to each named role (in parallel) with its fields; return the replies'
        (``on_replies`` sees them as they come in)."""
        message_type = step.message_type
        requests = [Message(vertical_request(self.cfg, fields), dst_node_id=self.role_node[r],
                            message_type=message_type) for r, fields in asks.items()]
        self._observe("request", requests)
        recent = self.took.setdefault(message_type, [])
        started = time.monotonic()
        replies = relay(self.grid, requests, timeout_s=STEP_TIMEOUT_S,
                        quiet_s=QUIET_SHARE * min(recent, default=0.0), on_replies=on_replies)
        recent[:] = [*recent, time.monotonic() - started][-QUIET_OF_LAST:]
        self._observe("reply", replies)
        by_node = {m.metadata.src_node_id: m for m in replies}
        out = {}
        for role in asks:
            reply = by_node.get(self.role_node[role])
            if reply is None:
                raise FederationError(f"the {role} did not answer step '{message_type}'.")
            if reply.has_error():
                raise FederationError(f"the {role} failed step '{message_type}': "
                                      f"{remote_reason(reply.error.reason)}")
            out[role] = unpack_reply(reply.content)
            self.result.bytes_relayed += relayed_bytes(reply.content)
        return out

    def _staged(self, step: MessageType, role: str, stage: int,
                blob: bytes | None = None) -> StepFields:
        """One stage of a relayed step (PSI, binning) at one party: its reply fields."""
        return self.exchange(step, {role: stage_fields(stage, blob)})[role]

    def _observe(self, direction: str, messages: list[Message]) -> None:
        if self.observer is not None:
            for m in messages:
                self.observer(direction, m)

    def setup(self) -> dict[str, bytes]:
        """Roles, row counts and the parties' public keys."""
        self.role_node = {f"node{i}": n for i, n in enumerate(self.nodes)}
        replies = self.exchange(V_SETUP, {name: {} for name in self.role_node})
        roles = {r.text(Field.ROLE): self.role_node[name] for name, r in replies.items()}
        if set(roles) != {ROLE_BANK, ROLE_CENTER}:
            raise FederationError(f"a vertical run needs one bank and one center node, got "
                                  f"roles {sorted(r.text(Field.ROLE) for r in replies.values())}.")
        self.role_node = roles
        by_role = {r.text(Field.ROLE): r for r in replies.values()}
        self.result.bank_rows = by_role[ROLE_BANK].int(Field.ROWS)
        self.result.center_rows = by_role[ROLE_CENTER].int(Field.ROWS)
        self._check_batch_before_psi()
        return {role: r.blob(Field.PUBLIC_KEY) for role, r in by_role.items()}

    def _check_batch_before_psi(self) -> None:
        """Refuse a batch larger than any intersection of the two files could train on, before
        the PSI spends minutes (an intersection has at most the smaller file's rows)."""
        if self.cfg.model != "lr":
            return
        rows = min(self.result.bank_rows, self.result.center_rows)
        most = math.ceil(rows * (1.0 - self.cfg.test_fraction))
        if self.cfg.batch_size > most:
            raise FederationError(
                f"--batch-size {self.cfg.batch_size} is larger than the training rows any "
                f"intersection of these files can give (at most about {most}: {rows} rows x "
                f"(1 - test fraction {self.cfg.test_fraction:g})); use --batch-size {most} "
                "or less.")

    def psi(self) -> None:
        """Four relayed PSI stages; both parties learn the intersection, we its size."""
        started = time.perf_counter()
        first = self._staged(V_PSI, ROLE_BANK, PSI_INITIATOR_START)
        second = self._staged(V_PSI, ROLE_CENTER, PSI_RESPONDER_REPLY, first.blob(Field.BLOB))
        third = self._staged(V_PSI, ROLE_BANK, PSI_INITIATOR_FINISH, second.blob(Field.BLOB))
        fourth = self._staged(V_PSI, ROLE_CENTER, PSI_RESPONDER_FINISH, third.blob(Field.BLOB))
        if third.int(Field.SIZE) != fourth.int(Field.SIZE):
            raise FederationError("bank and center found intersections of different sizes.")
        self.result.intersection = third.int(Field.SIZE)
        self.result.psi_seconds = time.perf_counter() - started

    def prepare(self) -> None:
        """Both parties align, split and standardise; they must agree on the row counts."""
        run = {Field.RUN_ID: self.result.run_id}
        replies = self.exchange(V_PREPARE, {ROLE_BANK: run, ROLE_CENTER: run})
        bank, center = replies[ROLE_BANK], replies[ROLE_CENTER]
        if (bank.int(Field.TRAIN_ROWS), bank.int(Field.TEST_ROWS)) != (
                center.int(Field.TRAIN_ROWS), center.int(Field.TEST_ROWS)):
            raise FederationError("bank and center split the intersection differently.")
        self.result.train_rows = bank.int(Field.TRAIN_ROWS)
        self.result.test_rows = bank.int(Field.TEST_ROWS)
        self.result.bank_features = bank.texts(Field.FEATURES)
        self.result.center_features = center.texts(Field.FEATURES)

    def start(self, public_keys: dict[str, bytes]) -> int:
        """Agree the public LR config and hand each party its peer's public key."""
        res = self.result
        least = min_batch_rows(len(res.bank_features), len(res.center_features))
        if self.cfg.model == "lr" and least <= res.train_rows < self.cfg.batch_size:
            raise FederationError(
                f"--batch-size {self.cfg.batch_size} is larger than the {res.train_rows} "
                f"training rows of the intersection; use --batch-size between {least} and "
                f"{res.train_rows}.")
        if self.cfg.model == "lr" and (self.cfg.batch_size < least or res.train_rows < least):
            raise FederationError(
                f"batch size {self.cfg.batch_size} is too small for {len(res.center_features)} "
                f"center columns: the first batch's gradient would pin down the labels, so "
                f"use --batch-size of at least {least} (and at least {least} training rows; "
                f"there are {res.train_rows}).")
        common: dict[str, StepValue] = {
            Field.RUN_ID: res.run_id, Field.ROWS: res.train_rows,
            Field.BANK_FEATURES: len(res.bank_features),
            Field.CENTER_FEATURES: len(res.center_features)}
        replies = self.exchange(V_START, {
            ROLE_BANK: {**common, Field.PEER_PUBLIC_KEY: public_keys[ROLE_CENTER]},
            ROLE_CENTER: {**common, Field.PEER_PUBLIC_KEY: public_keys[ROLE_BANK]}})
        return replies[ROLE_BANK].int(Field.BATCHES)

    def binning(self) -> None:
        """Secure WOE/IV: encrypted labels to the center, encrypted bin sums to the bank."""
        labels = self._staged(V_BIN, ROLE_BANK, BIN_ENCRYPT_LABELS)
        sums = self._staged(V_BIN, ROLE_CENTER, BIN_SUM_PER_BIN, labels.blob(Field.BLOB))
        table = self._staged(V_BIN, ROLE_BANK, BIN_OPEN_COUNTS, sums.blob(Field.BLOB))
        self.result.iv = parse_iv(table.text(Field.IV_JSON))

    def train(self, batches: int) -> None:
        """Vertical LR: per batch encrypt -> gradient -> open (relayed crosswise)."""
        if self.cfg.transport == "stream":
            self.train_streamed(batches)
            return
        res = self.result
        opened: dict[str, bytes] = {}
        self.on_progress("batch", 0, self.cfg.epochs * batches)
        for epoch in range(self.cfg.epochs):
            started = time.perf_counter()
            for batch in range(batches):
                opened = self._batch(epoch, batch, opened)
                self.on_progress("batch", epoch * batches + batch + 1, self.cfg.epochs * batches)
            res.epoch_seconds.append(time.perf_counter() - started)
        self.exchange(V_UPDATE, {r: {Field.OPENED: opened[r]} for r in opened})

    def train_streamed(self, batches: int) -> None:
        """Vertical LR, transport "stream": per epoch one ``V_STREAM`` message per party, the
        batches' messages through this coordinator's relay (:mod:`server.peer_relay`), a fresh
        session key per epoch; then the final update (each party holds its opened gradient)."""
        res, total = self.result, self.cfg.epochs * batches
        self.on_progress("batch", 0, total)
        for epoch in range(self.cfg.epochs):
            done = [epoch * batches]

            def count(header: FrameHeader, done: list[int] = done) -> None:
                if header.step == STEP_OPEN and header.sender == ROLE_BANK:
                    done[0] += 1
                    self.on_progress("batch", min(done[0], total), total)

            key = new_session_key()
            started = time.perf_counter()
            with PeerRelay(key, host=self.cfg.relay_host, port=self.cfg.relay_port,
                           on_frame=count) as peers:

                def failed(replies: list[Message], peers: PeerRelay = peers) -> None:
                    if any(m.has_error() for m in replies):  # the peer would wait in vain
                        peers.close()

                try:
                    self.exchange(V_STREAM, {r: stream_fields(epoch, peers.host, peers.port, key)
                                             for r in (ROLE_BANK, ROLE_CENTER)},
                                  on_replies=failed)
                except FederationError as exc:
                    why = f" (relay: {'; '.join(peers.errors)})" if peers.errors else ""
                    raise FederationError(f"{exc}{why}") from exc
            res.bytes_relayed += peers.bytes_forwarded
            res.epoch_seconds.append(time.perf_counter() - started)
        self.exchange(V_UPDATE, {ROLE_BANK: {}, ROLE_CENTER: {}})

    def _batch(self, epoch: int, batch: int, opened: dict[str, bytes]) -> dict[str, bytes]:
        first = self.exchange(V_ENCRYPT, {
            r: batch_fields(epoch, batch, opened=opened.get(r)) for r in (ROLE_BANK, ROLE_CENTER)})
        second = self.exchange(V_GRADIENT, {
            ROLE_BANK: batch_fields(epoch, batch, blob=first[ROLE_CENTER].blob(Field.BLOB)),
            ROLE_CENTER: batch_fields(epoch, batch, blob=first[ROLE_BANK].blob(Field.BLOB))})
        third = self.exchange(V_OPEN, {
            ROLE_BANK: batch_fields(epoch, batch, blob=second[ROLE_CENTER].blob(Field.BLOB)),
            ROLE_CENTER: batch_fields(epoch, batch, blob=second[ROLE_BANK].blob(Field.BLOB))})
        # what the bank opened is the center's gradient, and vice versa
        return {ROLE_CENTER: third[ROLE_BANK].blob(Field.BLOB),
                ROLE_BANK: third[ROLE_CENTER].blob(Field.BLOB)}

    def boost(self, public_keys: dict[str, bytes]) -> None:
        """SecureBoost: per tree the bank's encrypted (g, h); per level the center's encrypted
        sums -> the bank's decisions -> the center's partitions at its own splits."""
        res = self.result
        shape = self.exchange(V_TREE_START, {ROLE_CENTER: {
            Field.PEER_PUBLIC_KEY: public_keys[ROLE_BANK]}})[ROLE_CENTER]
        self.exchange(V_TREE_START, {ROLE_BANK: {
            Field.POSITIONS: shape.counts(Field.POSITIONS),
            Field.CATEGORICAL: shape.counts(Field.CATEGORICAL)}})
        for tree in range(self.cfg.trees):
            started = time.perf_counter()
            grad = self.exchange(V_TREE_GRAD, {ROLE_BANK: {}})[ROLE_BANK]
            level: dict[str, StepValue] = {Field.BLOB: grad.blob(Field.BLOB),
                                           Field.ASSIGNMENT: grad.blob(Field.ASSIGNMENT),
                                           Field.BUILD: grad.counts(Field.BUILD)}
            while True:
                sums = self.exchange(V_TREE_LEVEL, {ROLE_CENTER: level})[ROLE_CENTER]
                decided = self.exchange(V_TREE_DECIDE, {ROLE_BANK: {
                    Field.BLOB: sums.blob(Field.BLOB), Field.COUNT: sums.int(Field.COUNT)}})
                splits = decided[ROLE_BANK].text(Field.SPLITS)
                applied = self.exchange(V_TREE_APPLY, {ROLE_CENTER: {Field.SPLITS: splits}})
                center = applied[ROLE_CENTER]
                bank = self.exchange(V_TREE_APPLY, {ROLE_BANK: {
                    Field.SPLIT_IDS: center.counts(Field.SPLIT_IDS),
                    Field.BLOB: center.blob(Field.BLOB)}})[ROLE_BANK]
                if bank.int(Field.DONE):
                    break
                level = {Field.ASSIGNMENT: bank.blob(Field.ASSIGNMENT),
                         Field.BUILD: bank.counts(Field.BUILD)}
            res.epoch_seconds.append(time.perf_counter() - started)
            self.on_progress("tree", tree + 1, self.cfg.trees)

    def score_trees(self) -> None:
        """Held-out AUC/KS: the center answers the branches at its own splits."""
        center = self.exchange(V_TREE_SCORE, {ROLE_CENTER: {}})[ROLE_CENTER]
        bank = self.exchange(V_TREE_SCORE, {ROLE_BANK: blob_fields(
            center.blob(Field.BLOB))})[ROLE_BANK]
        self.result.auc = bank.number(Field.AUC)
        self.result.ks = bank.number(Field.KS)
        self._held_out(bank)

    def score(self) -> None:
        """Held-out AUC/KS through the protected scoring path."""
        center = self.exchange(V_SCORE, {ROLE_CENTER: {}})[ROLE_CENTER]
        bank = self.exchange(V_SCORE, {ROLE_BANK: blob_fields(center.blob(Field.BLOB))})[ROLE_BANK]
        self.result.auc = bank.number(Field.AUC)
        self.result.ks = bank.number(Field.KS)
        self._held_out(bank)

    def _held_out(self, bank: StepFields) -> None:
        """The bank's held-out histograms, and the calibration fitted on their first half."""
        self.result.histograms = (bank.counts(Field.HIST_BAD), bank.counts(Field.HIST_GOOD))
        fit = ((bank.counts(Field.CAL_BAD), bank.counts(Field.CAL_GOOD))
               if Field.CAL_BAD in bank else None)
        self.result.calibration = held_out_calibration(self.result.histograms, fit)

    def run(self) -> VerticalResult:
        """The whole vertical run."""
        self.on_progress("setup", 0, 1)
        public_keys = self.setup()
        self.on_progress("psi", 0, 1)
        self.psi()
        self.prepare()
        batches = self.start(public_keys)
        self.on_progress("binning", 0, 1)
        self.binning()
        if self.cfg.model == "secureboost":
            self.boost(public_keys)
            self.score_trees()
        else:
            self.train(batches)
            self.score()
        return self.result


def result_payload(cfg: VerticalConfig, result: VerticalResult) -> VerticalResults:
    """What the coordinator of a vertical run knows, as results.json stores it (no baselines:
    those need both parties' files)."""
    return VerticalResults(
        run_id=result.run_id,
        psi=PsiSummary(bank_rows=result.bank_rows, center_rows=result.center_rows,
                       intersection=result.intersection, seconds=result.psi_seconds),
        federated=Metrics(auc=result.auc, ks=result.ks),
        score_histograms=histogram_section(result.histograms),
        calibration=result.calibration,
        iv=dict(result.iv), epochs=cfg.epochs, epoch_seconds=tuple(result.epoch_seconds),
        train_rows=result.train_rows, test_rows=result.test_rows,
        bank_features=tuple(result.bank_features),
        center_features=tuple(result.center_features),
        bytes_relayed=result.bytes_relayed, key_bits=cfg.key_bits,
        config=cfg.to_user_config(),
    )
