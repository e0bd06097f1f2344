"""Admission of bank replies: forged, replayed, foreign-run and duplicate updates are rejected
with a named reason and the step carries on; too few usable replies stop it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.steps.secure_sum import KIND_COUNTS, KIND_WEIGHTS, PlainSum
from federation.wire.records import (
    KEY_SEALED_EVAL,
    STEP_EVALUATE,
    STEP_TRAIN,
    SignatureClaim,
    bank_of,
    reply_content,
    sealed_of,
    signature_of,
)
from protocols.identity.signing import sign_update, statement_for
from server.errors import FederationError
from server.exchange import Exchange

KEYS = {bank: Ed25519PrivateKey.generate() for bank in range(4)}
REGISTRY = {bank: key.public_key() for bank, key in KEYS.items()}


def signed_reply(bank: int, *, run_id: str = "run", step: str = "train", rnd: int = 2,
                 key: Ed25519PrivateKey | None = None, node: int | None = None,
                 value: float = 1.0, signed_for: int | None = None):
    """A bank's reply arriving from ``node`` (default 100 + bank), signed for the node
    ``signed_for`` (default: the one it arrives from)."""
    node = 100 + bank if node is None else node
    sealed = PlainSum().seal(np.full(3, value), kind=KIND_WEIGHTS, run_id=run_id, round=rnd)
    stmt = statement_for(run_id=run_id, step=step, round=rnd, bank=bank,
                         node_id=node if signed_for is None else signed_for,
                         key_fingerprint="plain", payload=sealed.payload)
    claim = SignatureClaim(run_id, step, rnd, sign_update(key or KEYS[bank], stmt))
    content = reply_content(bank=bank, n_examples=10, sealed=sealed, signature=claim)
    return SimpleNamespace(content=content, has_error=lambda: False,
                           metadata=SimpleNamespace(src_node_id=node, reply_to_message_id=""))


class FakeGrid:
    def __init__(self, replies):
        self.replies = replies

    def send_and_receive(self, messages, timeout=None):
        return self.replies


class OfflineExchange(Exchange):
    """Builds no Flower messages (they need a running Flower run context)."""

    def _requests(self, message_type, contents, extra=None, nodes=None):
        return []

    def _round_trip(self, requests):
        return self.grid.send_and_receive(requests)


def exchange(replies, nodes=(100, 101, 102, 103)) -> Exchange:
    return OfflineExchange(FakeGrid(replies), list(nodes), run_id="run", key_fingerprint="plain",
                    registry=REGISTRY, timeout_s=5)


def ask(ex: Exchange, required: int = 2):
    from flwr.app import RecordDict
    return ex.ask(STEP_TRAIN, lambda: RecordDict(), required=required, sealed_round=2)


def test_valid_replies_are_admitted_in_bank_order() -> None:
    out = ask(exchange([signed_reply(2), signed_reply(0), signed_reply(1), signed_reply(3)]))
    assert [r.content["metrics"]["bank"] for r in out.replies] == [0, 1, 2, 3]
    assert not out.dropped and not out.rejected


def test_forged_replayed_foreign_and_duplicate_updates_are_rejected() -> None:
    replies = [
        signed_reply(0),
        signed_reply(1, key=Ed25519PrivateKey.generate()),  # forged
        signed_reply(2, rnd=1),  # replay from an earlier round
        signed_reply(3, run_id="other-run"),  # another run
        signed_reply(0, node=104, value=2.0),  # second update from bank 0
    ]
    out = ask(exchange(replies, nodes=(100, 101, 102, 103, 104)), required=1)
    assert [r.content["metrics"]["bank"] for r in out.replies] == [0]
    errors = {d["node"]: d["error"] for d in out.rejected}
    assert errors == {101: "InvalidSignatureError", 102: "StaleRoundError",
                      103: "StaleRoundError", 104: "DuplicateUpdateError"}


def test_a_signed_reply_relayed_by_another_node_or_unsigned_is_refused() -> None:
    """The signature binds the Flower node the reply comes from: bank 1's genuine signed
    update, sent by node 102 (a malicious bank, or a coordinator replaying it as another
    node's), does not verify; an unsigned update is refused too (no registry-less path)."""
    from federation.wire.records import reply_content as unsigned_content

    sealed = PlainSum().seal(np.full(3, 1.0), kind=KIND_WEIGHTS, run_id="run", round=2)
    unsigned = SimpleNamespace(content=unsigned_content(bank=3, n_examples=10, sealed=sealed),
                               has_error=lambda: False,
                               metadata=SimpleNamespace(src_node_id=103, reply_to_message_id=""))
    replies = [signed_reply(0), signed_reply(1, node=102, signed_for=101), unsigned]
    out = ask(exchange(replies), required=1)
    assert [r.content["metrics"]["bank"] for r in out.replies] == [0]
    errors = {d["node"]: d["error"] for d in out.rejected}
    assert errors == {102: "InvalidSignatureError", 103: "InvalidSignatureError"}


def test_a_reply_replayed_in_a_later_round_is_refused() -> None:
    """Round 1's genuinely signed update, replayed from the same node in round 2."""
    out = ask(exchange([signed_reply(0), signed_reply(1, rnd=1)]), required=1)
    assert {d["node"]: d["error"] for d in out.rejected} == {101: "StaleRoundError"}


def scoring_reply(bank: int, *, eval_step: str = "evaluate", eval_round: int = 1,
                  eval_key: Ed25519PrivateKey | None = None, with_scores: bool = True):
    """A train reply of round 2 that also carries its scores of round 1's model, signed for
    ``eval_step`` of ``eval_round`` with ``eval_key`` (default: the bank's own key)."""
    reply = signed_reply(bank)
    if not with_scores:
        return reply
    sealed = PlainSum().seal(np.full(4, 3.0), kind=KIND_COUNTS, run_id="run", round=1)
    stmt = statement_for(run_id="run", step=eval_step, round=eval_round, bank=bank,
                         node_id=100 + bank, key_fingerprint="plain", payload=sealed.payload)
    claim = SignatureClaim("run", eval_step, eval_round,
                           sign_update(eval_key or KEYS[bank], stmt))
    reply.content = reply_content(bank=bank, n_examples=10, sealed=sealed_of(reply.content),
                                  signature=signature_of(reply.content),
                                  evaluation=(sealed, claim))
    return reply


def test_a_train_reply_that_scores_is_admitted_only_with_its_own_signed_scores() -> None:
    """A train request that also asks for the scores of the model it carries: each reply's
    sealed scores must be signed by the bank for the evaluate step of that round, apart from
    its update (a forged, missing, or re-labelled score vector gets the whole reply refused)."""
    replies = [scoring_reply(0), scoring_reply(1, eval_key=Ed25519PrivateKey.generate()),
               scoring_reply(2, with_scores=False), scoring_reply(3, eval_round=2)]
    from flwr.app import RecordDict
    out = exchange(replies).ask(STEP_TRAIN, lambda: RecordDict(), required=1, sealed_round=2,
                                evaluation=(STEP_EVALUATE, 1))
    assert [bank_of(r.content) for r in out.replies] == [0]
    assert sealed_of(out.replies[0].content, KEY_SEALED_EVAL).kind == KIND_COUNTS
    errors = {d["node"]: d["error"] for d in out.rejected}
    assert errors == {101: "InvalidSignatureError", 102: "ProtocolError",
                      103: "StaleRoundError"}


def test_missing_and_failed_banks_are_dropouts_until_too_few_remain() -> None:
    failed = SimpleNamespace(has_error=lambda: True, content=None,
                             error=SimpleNamespace(reason="ClientAppException Message: disk full"),
                             metadata=SimpleNamespace(src_node_id=101, reply_to_message_id=""))
    out = ask(exchange([signed_reply(0), failed, signed_reply(2)]), required=2)
    assert len(out.replies) == 2
    reasons = {d["node"]: d["reason"] for d in out.dropped}
    assert reasons[101] == "disk full" and "no answer" in reasons[103]
    with pytest.raises(FederationError, match="only 2 of 4 banks usable, 3 required"):
        ask(exchange([signed_reply(0), failed, signed_reply(2)]), required=3)


class AddressedExchange(Exchange):
    """Requests with message ids, as the grid sets them when it pushes them."""

    def _requests(self, message_type, contents, extra=None, nodes=None):
        return [SimpleNamespace(metadata=SimpleNamespace(message_id=f"m{n}", dst_node_id=n))
                for n in (self.nodes if nodes is None else nodes)]

    def _round_trip(self, requests):
        return self.grid.send_and_receive(requests)


def test_an_unreachable_node_is_recorded_under_its_own_id_not_the_superlinks() -> None:
    """Flower answers for a node it cannot reach with an error reply from the SuperLink
    (node id 1); the exchange matches it to the request it answers."""
    unavailable = SimpleNamespace(has_error=lambda: True, content=None,
                                  error=SimpleNamespace(reason="Node Unavailable"),
                                  metadata=SimpleNamespace(src_node_id=1,
                                                           reply_to_message_id="m102"))
    ex = AddressedExchange(FakeGrid([signed_reply(0), signed_reply(1), unavailable,
                                     signed_reply(3)]), [100, 101, 102, 103], run_id="run",
                           key_fingerprint="plain", registry=REGISTRY, timeout_s=5)
    out = ask(ex)
    assert out.dropped == [{"node": 102, "step": "train", "reason": "Node Unavailable"}]


def test_only_the_named_nodes_are_asked() -> None:
    ex = AddressedExchange(FakeGrid([signed_reply(0), signed_reply(2)]), [100, 101, 102, 103],
                           run_id="run", key_fingerprint="plain", registry=REGISTRY, timeout_s=5)
    from flwr.app import RecordDict
    out = ex.ask(STEP_TRAIN, lambda: RecordDict(), required=2, sealed_round=2, only=[100, 102])
    assert len(out.replies) == 2 and out.dropped == []  # 101 and 103 were not asked


class _PushPullGrid:
    """Answers every pushed request after ``pulls`` pulls (a grid without send_and_receive)."""

    def __init__(self, pulls: int) -> None:
        self.pulls, self.pulled = pulls, 0

    def push_messages(self, messages):
        self.sent = list(messages)
        return [m.metadata.message_id for m in self.sent]

    def pull_messages(self, ids):
        self.pulled += 1
        if self.pulled < self.pulls:
            return []
        replies = []
        for request in self.sent:
            reply = signed_reply(request.metadata.dst_node_id - 100,
                                 node=request.metadata.dst_node_id)
            reply.metadata.reply_to_message_id = request.metadata.message_id
            replies.append(reply)
        return replies


def test_a_step_pushes_and_pulls_itself() -> None:
    """The exchange pushes and pulls through :func:`server.exchange.relay` (short, growing
    sleeps; tested in tests/server/test_vertical.py), not Flower's ``send_and_receive`` with its
    fixed 3 s between pulls when deployed: this grid has no ``send_and_receive``."""
    grid = _PushPullGrid(pulls=3)
    ex = Exchange(grid, [100, 101], run_id="run", key_fingerprint="plain",  # type: ignore[arg-type]
                  registry=REGISTRY, timeout_s=5)
    ex._requests = AddressedExchange._requests.__get__(ex)  # type: ignore[method-assign]
    from flwr.app import RecordDict
    out = ex.ask(STEP_TRAIN, lambda: RecordDict(), required=2, sealed_round=2)
    assert len(out.replies) == 2 and grid.pulled == 3 and not out.dropped
