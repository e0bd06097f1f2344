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
from dataclasses import dataclass, field
from typing import Any, Callable

from flwr.app import Message
from flwr.serverapp import Grid

from federation.wire.records import StepFields
from federation.wire.vertical import KEY_VSTEP, ROLE_BANK, ROLE_CENTER, vertical_request
from federation.run.vertical_config import VerticalConfig
from server.errors import FederationError
from server.exchange import Observer, remote_reason
from server.horizontal import wait_for_banks
from server.results import histogram_section

STEP_TIMEOUT_S = 1800.0


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
        self.nodes = wait_for_banks(grid, 2)
        self.role_node: dict[str, int] = {}
        self.result = VerticalResult(run_id=secrets.token_hex(8))

    def exchange(self, message_type: str,
                 asks: dict[str, dict[str, Any]]) -> dict[str, StepFields]:
        """Send one request per named role (in parallel) and return their reply fields."""
        requests = [Message(vertical_request(self.cfg, **fields), dst_node_id=self.role_node[r],
                            message_type=message_type) for r, fields in asks.items()]
        self._observe("request", requests)
        replies = list(self.grid.send_and_receive(requests, timeout=STEP_TIMEOUT_S))
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
            record = reply.content.get(KEY_VSTEP)
            out[role] = StepFields(record)
            self.result.bytes_relayed += sum(len(v) for v in dict(record).values()
                                             if isinstance(v, bytes))
        return out

    def _observe(self, direction: str, messages: list[Message]) -> None:
        if self.observer is not None:
            for m in messages:
                self.observer(direction, m)

    def setup(self) -> dict[str, bytes]:
        """Roles, row counts and the parties' public keys."""
        self.role_node = {f"node{i}": n for i, n in enumerate(self.nodes)}
        replies = self.exchange("query.v_setup", {name: {} for name in self.role_node})
        roles = {r.text("role"): self.role_node[name] for name, r in replies.items()}
        if set(roles) != {ROLE_BANK, ROLE_CENTER}:
            raise FederationError(f"a vertical run needs one bank and one center node, got "
                                  f"roles {sorted(r.text('role') for r in replies.values())}.")
        self.role_node = roles
        by_role = {r.text("role"): r for r in replies.values()}
        self.result.bank_rows = by_role[ROLE_BANK].int("rows")
        self.result.center_rows = by_role[ROLE_CENTER].int("rows")
        return {role: r.blob("public_key") for role, r in by_role.items()}

    def psi(self) -> None:
        """Four relayed PSI stages; both parties learn the intersection, we its size."""
        started = time.perf_counter()
        step = lambda role, stage, **kw: self.exchange(  # noqa: E731
            "query.v_psi", {role: {"stage": stage, **kw}})[role]
        first = step(ROLE_BANK, 1)
        second = step(ROLE_CENTER, 2, blob=first.blob("blob"))
        third = step(ROLE_BANK, 3, blob=second.blob("blob"))
        fourth = step(ROLE_CENTER, 4, blob=third.blob("blob"))
        if third.int("size") != fourth.int("size"):
            raise FederationError("bank and center found intersections of different sizes.")
        self.result.intersection = third.int("size")
        self.result.psi_seconds = time.perf_counter() - started

    def prepare(self) -> None:
        """Both parties align, split and standardise; they must agree on the row counts."""
        both = {ROLE_BANK: {"run-id": self.result.run_id},
                ROLE_CENTER: {"run-id": self.result.run_id}}
        replies = self.exchange("query.v_prepare", both)
        bank, center = replies[ROLE_BANK], replies[ROLE_CENTER]
        if (bank.int("train_rows"), bank.int("test_rows")) != (
                center.int("train_rows"), center.int("test_rows")):
            raise FederationError("bank and center split the intersection differently.")
        self.result.train_rows, self.result.test_rows = bank.int("train_rows"), bank.int("test_rows")
        self.result.bank_features = bank.texts("features")
        self.result.center_features = center.texts("features")

    def start(self, public_keys: dict[str, bytes]) -> int:
        """Agree the public LR config and hand each party its peer's public key."""
        res = self.result
        common = {"run-id": res.run_id, "rows": res.train_rows,
                  "bank-features": len(res.bank_features),
                  "center-features": len(res.center_features)}
        replies = self.exchange("query.v_start", {
            ROLE_BANK: {**common, "peer-public-key": public_keys[ROLE_CENTER]},
            ROLE_CENTER: {**common, "peer-public-key": public_keys[ROLE_BANK]}})
        return replies[ROLE_BANK].int("batches")

    def binning(self) -> None:
        """Secure WOE/IV: encrypted labels to the center, encrypted bin sums to the bank."""
        step = lambda role, stage, **kw: self.exchange(  # noqa: E731
            "query.v_bin", {role: {"stage": stage, **kw}})[role]
        labels = step(ROLE_BANK, 1)
        sums = step(ROLE_CENTER, 2, blob=labels.blob("blob"))
        table = step(ROLE_BANK, 3, blob=sums.blob("blob"))
        self.result.iv = parse_iv(table.text("iv_json"))

    def train(self, batches: int) -> None:
        """Vertical LR: per batch encrypt -> gradient -> open (relayed crosswise)."""
        res = self.result
        opened: dict[str, bytes] = {}
        for epoch in range(self.cfg.epochs):
            started = time.perf_counter()
            for batch in range(batches):
                opened = self._batch(epoch, batch, opened)
                self.on_progress("batch", epoch * batches + batch + 1, self.cfg.epochs * batches)
            res.epoch_seconds.append(time.perf_counter() - started)
        self.exchange("train.v_update", {r: {"opened": opened[r]} for r in opened})

    def _batch(self, epoch: int, batch: int, opened: dict[str, bytes]) -> dict[str, bytes]:
        where = {"epoch": epoch, "batch": batch}
        first = self.exchange("train.v_encrypt", {
            r: {**where, **({"opened": opened[r]} if r in opened else {})}
            for r in (ROLE_BANK, ROLE_CENTER)})
        second = self.exchange("train.v_gradient", {
            ROLE_BANK: {**where, "blob": first[ROLE_CENTER].blob("blob")},
            ROLE_CENTER: {**where, "blob": first[ROLE_BANK].blob("blob")}})
        third = self.exchange("train.v_open", {
            ROLE_BANK: {**where, "blob": second[ROLE_CENTER].blob("blob")},
            ROLE_CENTER: {**where, "blob": second[ROLE_BANK].blob("blob")}})
        # what the bank opened is the center's gradient, and vice versa
        return {ROLE_CENTER: third[ROLE_BANK].blob("blob"),
                ROLE_BANK: third[ROLE_CENTER].blob("blob")}

    def score(self) -> None:
        """Held-out AUC/KS through the protected scoring path."""
        center = self.exchange("query.v_score", {ROLE_CENTER: {}})[ROLE_CENTER]
        bank = self.exchange("query.v_score", {ROLE_BANK: {"blob": center.blob("blob")}})
        self.result.auc = bank[ROLE_BANK].number("auc")
        self.result.ks = bank[ROLE_BANK].number("ks")
        self.result.histograms = (bank[ROLE_BANK].counts("hist_bad"),
                                  bank[ROLE_BANK].counts("hist_good"))

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
        self.train(batches)
        self.score()
        return self.result


def result_payload(cfg: VerticalConfig, result: VerticalResult) -> dict[str, Any]:
    """What the coordinator of a vertical run knows, as results.json stores it (no baselines:
    those need both parties' files)."""
    return {
        "mode": "vertical", "run_id": result.run_id,
        "psi": {"bank_rows": result.bank_rows, "center_rows": result.center_rows,
                "intersection": result.intersection, "seconds": result.psi_seconds},
        "federated": {"auc": result.auc, "ks": result.ks},
        **histogram_section(result.histograms),
        "iv": result.iv, "epochs": cfg.epochs, "epoch_seconds": result.epoch_seconds,
        "train_rows": result.train_rows, "test_rows": result.test_rows,
        "bank_features": result.bank_features, "center_features": result.center_features,
        "bytes_relayed": result.bytes_relayed, "key_bits": cfg.key_bits,
        "config": cfg.to_user_config(),
    }
