"""Sending one request to every bank and admitting their replies.

A reply is admitted when it arrived before the deadline, carries no error, and its sealed
vector is signed by the bank it claims to come from (its key in the run's signing registry,
which every run must have), for this run, step, round and the Flower node it arrived from, and
is the first such update from that bank. Everything else is
recorded as a dropout or a rejection with a named reason; the step goes on as long as at
least ``required`` banks were admitted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flwr.app import Message
from flwr.serverapp import Grid

from federation.wire.message_types import MessageType
from federation.wire.records import (
    KEY_SEALED,
    KEY_SEALED_EVAL,
    KEY_SIGNATURE,
    KEY_SIGNATURE_EVAL,
    bank_of,
    sealed_of,
    signature_of,
)
from protocols.errors import ProtocolError
from protocols.identity.signing import ReplayGuard, statement_for, verify_update
from server.errors import FederationError

Observer = Callable[[str, Message], None]


RELAY_POLL_S = 0.01
"""How often the coordinator first asks for the replies of a step. Flower's
``send_and_receive`` sleeps 0.1 s (simulation) or 3 s (deployment) between pulls, which every
step pays (half of it on average; a vertical LR three times per mini-batch); a pull is one
look-up in the SuperLink's state (in memory, or one request to a deployed SuperLink)."""
RELAY_POLL_SHARE = 0.05
"""Later pulls wait this share of the time the step has taken (a reply is late by at most 5 %
of its step), up to :data:`RELAY_POLL_MAX_S`: few pulls for a deployed step of seconds."""
RELAY_POLL_MAX_S = 0.25


def relay(grid: Grid, requests: list[Message], *, timeout_s: float = 1800.0,
          poll_s: float = RELAY_POLL_S, quiet_s: float = 0.0,
          clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep,
          on_replies: Callable[[list[Message]], None] | None = None) -> list[Message]:
    """Push ``requests`` and pull their replies (every ``poll_s`` at first, then every 5 % of
    the time waited) until all are in or ``timeout_s`` has passed (then the replies so far;
    the caller names who is missing). ``on_replies`` sees each pull's new replies.

    ``quiet_s``: no pull before this many seconds after the push (a step that always took
    longer: each early pull of a deployed step is a request the SuperLink serves for nothing,
    beside the parties' work on the same cores); then the schedule above, counted from the
    push."""
    waiting = set(grid.push_messages(requests))
    replies: list[Message] = []
    started = clock()
    if quiet_s > 0.0:
        sleep(min(quiet_s, timeout_s))
    while waiting:
        got = list(grid.pull_messages(waiting))
        replies.extend(got)
        if got and on_replies is not None:
            on_replies(got)
        waiting.difference_update(m.metadata.reply_to_message_id for m in got)
        waited = clock() - started
        if not waiting or waited > timeout_s:
            break
        sleep(min(RELAY_POLL_MAX_S, max(poll_s, RELAY_POLL_SHARE * waited)))
    return replies


@dataclass
class StepOutcome:
    """Admitted replies (sorted by bank) and what was left out, with reasons."""

    replies: list[Message]
    dropped: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


_FLOWER_ERROR = re.compile(r"^<class '[\w.]+'>:<'(.*)'>$", re.DOTALL)


def remote_reason(text: str | None) -> str:
    """The last meaningful line of a remote error (Flower sends the whole traceback, or
    ``<class 'X'>:<'message'>``; a bank's policy refusal arrives as its one line)."""
    text = text or "unknown error"
    wrapped = _FLOWER_ERROR.match(text.strip())
    if wrapped and "Message: " not in text:
        text = wrapped.group(1)
    if "Message: " in text:  # Flower's ClientAppException wrapper
        return text.rsplit("Message: ", 1)[1].strip().rstrip(">").strip().strip("'\"").strip()
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        head, _, tail = line.partition(": ")
        if head.endswith("Error") and tail:
            return tail
    return lines[-1]


class Exchange:
    """One coordinator's channel to its banks for the whole run."""

    def __init__(self, grid: Grid, nodes: list[int], *, run_id: str, key_fingerprint: str,
                 registry: dict[int, Ed25519PublicKey], timeout_s: float,
                 observer: Observer | None = None) -> None:
        self.grid, self.nodes, self.observer = grid, nodes, observer
        self.registry, self.fingerprint, self.timeout_s = registry, key_fingerprint, timeout_s
        self.guard = ReplayGuard(run_id)
        self.run_id = run_id

    def ask(self, step: MessageType, contents: Callable[[], Any], *, required: int,
            sealed_round: int | None = None,
            extra: Callable[[int, Any], Any] | None = None,
            only: Collection[int] | None = None,
            evaluation: tuple[MessageType, int] | None = None) -> StepOutcome:
        """Send ``contents()`` to every bank (or the nodes in ``only``) as ``step``; admit
        replies; fail below ``required``.

        ``evaluation`` (step, round): each reply also carries that step's sealed vector
        (``sealed-eval``), admitted only with its own valid signature for that step and round.

        ``extra(node, content)`` adds what only that node receives (its SecAgg+ envelopes).
        Each reply is matched to the bank node by the request it answers
        (``reply_to_message_id``), so an error the SuperLink sends for an unreachable node is
        recorded under that node, not the SuperLink's id. Dropouts, rejections and signatures
        name the step by its ``message_type``.
        """
        message_type = step.message_type
        nodes = self.nodes if only is None else [n for n in self.nodes if n in set(only)]
        requests = self._requests(message_type, contents, extra, nodes)
        self._observe("request", requests)
        replies = self._round_trip(requests)
        self._observe("reply", replies)
        asked = {r.metadata.message_id: r.metadata.dst_node_id for r in requests}
        outcome = StepOutcome([])
        answered = set()
        for reply in replies:
            node = asked.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)
            answered.add(node)
            self._admit(reply, message_type, sealed_round, outcome, node=node,
                        evaluation=evaluation)
        for node in nodes:
            if node not in answered:
                outcome.dropped.append({"node": node, "step": message_type,
                                        "reason": f"no answer within {self.timeout_s:.0f} s"})
        if len(outcome.replies) < required:
            reasons = "; ".join(f"node {d['node']}: {d['reason']}"
                                for d in outcome.dropped + outcome.rejected)
            raise FederationError(f"step '{message_type}': only {len(outcome.replies)} of "
                                  f"{len(nodes)} banks usable, {required} required ({reasons}).")
        outcome.replies.sort(key=lambda r: bank_of(r.content))
        return outcome

    def _round_trip(self, requests: list[Message]) -> list[Message]:
        """Push the step's requests and pull their replies (:func:`relay`)."""
        return relay(self.grid, requests, timeout_s=self.timeout_s)

    def _requests(self, message_type: str, contents: Callable[[], Any],
                  extra: Callable[[int, Any], Any] | None = None,
                  nodes: list[int] | None = None) -> list[Message]:
        """One request per bank node (contents built afresh for each)."""
        return [Message(contents() if extra is None else extra(n, contents()), dst_node_id=n,
                        message_type=message_type)
                for n in (self.nodes if nodes is None else nodes)]

    def _admit(self, reply: Message, step: str, sealed_round: int | None,
               outcome: StepOutcome, *, node: int,
               evaluation: tuple[MessageType, int] | None = None) -> None:
        if reply.has_error():
            outcome.dropped.append({"node": node, "step": step,
                                    "reason": remote_reason(reply.error.reason)})
            return
        try:
            if sealed_round is not None:
                self._check_signature(reply, step, sealed_round)
            if evaluation is not None:
                self._check_signature(reply, evaluation[0].message_type, evaluation[1],
                                      keys=(KEY_SEALED_EVAL, KEY_SIGNATURE_EVAL))
        except ProtocolError as exc:
            outcome.rejected.append({"node": node, "step": step,
                                     "error": type(exc).__name__, "reason": str(exc)})
            return
        outcome.replies.append(reply)

    def _check_signature(self, reply: Message, step: str, sealed_round: int, *,
                         keys: tuple[str, str] = (KEY_SEALED, KEY_SIGNATURE)) -> None:
        """Signature over (claimed run, step, round, bank, sending node, key, payload), then
        the replay guard; ``keys``: the records of the sealed vector and its signature."""
        sealed = sealed_of(reply.content, keys[0])
        if sealed is None:
            raise ProtocolError(f"reply lacks its sealed vector ('{keys[0]}').")
        bank = bank_of(reply.content)
        if bank not in self.registry:
            raise ProtocolError(f"bank {bank} has no registered signing key; refusing its update.")
        claim = signature_of(reply.content, keys[1])
        statement = statement_for(run_id=claim.run_id, step=claim.step, round=claim.round,
                                  bank=bank, node_id=reply.metadata.src_node_id,
                                  key_fingerprint=self.fingerprint,
                                  payload=sealed.payload)
        verify_update(self.registry[bank], claim.signature, statement)
        self.guard.check(statement, expected_step=step, expected_round=sealed_round)

    def _observe(self, direction: str, messages: Iterable[Message]) -> None:
        if self.observer is not None:
            for m in messages:
                self.observer(direction, m)
