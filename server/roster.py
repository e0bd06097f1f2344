"""The federation's roster: the only nodes the coordinator sends work to.

The roster is the set of node authentication public keys the federation agreed on, one
OpenSSH ``.pub`` file per node in ``<keys-dir>/roster/`` on the coordinator's machine (the
files the banks sent to be registered). Flower 1.42's Runtime API tells the ServerApp each
connected node's registered key: ``Grid.get_nodes()`` returns ``NodeInfo`` with
``public_key`` (PEM SubjectPublicKeyInfo, ``flwr/superlink/servicer/runtime/runtime_handlers.py``
``get_nodes``; ``flwr/server/superlink/linkstate/sql_linkstate.py`` ``_node_info_from_model``).
So a node registered at the SuperLink but not in the roster is ignored, whoever registered it;
one whose key is in the roster proved it holds the private key when it connected (Flower's
node authentication, ``flwr/superlink/routers/fleet/node_auth.py``).

Without a ``roster/`` folder (simulation, where nodes have no keys) every node is taken.

When a run may start (:func:`wait_for_banks`, :class:`JoinRule`; protocol step: before the
first request, a fresh run's schema step or a resumed run's next round). The coordinator goes
on at once when every bank's node is online. Otherwise it waits up to ``grace_s`` for the
missing ones, then goes on with those online if at least ``required`` (the run's
``min-banks``) are, as a round goes on with its survivors when a bank drops out. It fails
when ``timeout_s`` passes with fewer than ``required``, or once so many banks are known lost
that ``required`` cannot be reached. A fresh run waits the whole join timeout for every bank
(its nodes start at different times, and a bank left out at the start sits out the run); a
resumed run waits :data:`RESUME_GRACE_S` (90 s) only: its nodes were started before it (the
local launcher and ``docs/deployment.md`` start it once they are active again), so a bank
still missing then is down. A bank missing at the start sits out the rest of that run.

Security assumption: only rostered nodes count; going on with ``required`` banks is what
every round already accepts, and each bank still refuses to open a sum of fewer banks than
its own ``[policy] min-contributors``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from flwr.proto.node_pb2 import NodeInfo
from flwr.serverapp import Grid

from server.errors import FederationError

ROSTER_DIR = "roster"


class RosterError(FederationError):
    """The roster folder holds a file that is not a node's public key."""


def _der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_roster(keys_dir: str | Path) -> frozenset[bytes] | None:
    """The roster's keys (DER SubjectPublicKeyInfo), or None when ``keys_dir`` has none."""
    folder = Path(keys_dir) / ROSTER_DIR
    if not str(keys_dir) or not folder.is_dir():
        return None
    keys = set()
    for file in sorted(folder.glob("*.pub")):
        try:
            keys.add(_der(serialization.load_ssh_public_key(file.read_bytes())))
        except (OSError, ValueError, UnsupportedAlgorithm) as exc:
            raise RosterError(f"{file} is not a node's OpenSSH public key ({exc}); put only "
                              "the banks' .pub files in the roster folder.") from exc
    if not keys:
        raise RosterError(f"{folder} holds no .pub file; put the banks' node keys there or "
                          "remove the folder.")
    return frozenset(keys)


def rostered_node_ids(nodes: Iterable[NodeInfo], roster: frozenset[bytes] | None) -> list[int]:
    """Ids of ``nodes`` whose registered key is in ``roster`` (all of them without one)."""
    if roster is None:
        return sorted(int(n.node_id) for n in nodes)
    taken = []
    for node in nodes:
        try:
            key = serialization.load_pem_public_key(bytes(node.public_key))
        except (ValueError, UnsupportedAlgorithm):
            continue  # no key or not PEM: not a rostered node
        if _der(key) in roster:
            taken.append(int(node.node_id))
    return sorted(taken)


JOIN_TIMEOUT_S = 120.0
"""Longest wait for the banks' nodes before the first request."""
RESUME_GRACE_S = 90.0
"""A resumed run's wait for banks beyond ``required``: a bank restarted with the coordinator
may need Flower 1.42's heartbeat patience (2 x 30 s, while its crashed session still counts)
plus a retry of ``fedcredit node`` (10 s) to be active again."""
POLL_S = 0.05


class JoinVerdict(Enum):
    """What the coordinator does with the banks online now."""

    GO = "go"
    WAIT = "wait"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class JoinRule:
    """Wait for ``banks`` nodes; after ``grace_s`` go on with at least ``required``; fail after
    ``timeout_s`` (or once fewer than ``required`` can still come)."""

    banks: int
    required: int
    grace_s: float
    timeout_s: float = JOIN_TIMEOUT_S

    def __post_init__(self) -> None:
        if not 1 <= self.required <= self.banks:
            raise ValueError(f"required must be in 1..{self.banks} (got {self.required}).")
        if not 0 <= self.grace_s <= self.timeout_s:
            raise ValueError("grace_s must be in 0..timeout_s.")

    def verdict(self, online: int, waited_s: float, *, lost: int = 0) -> JoinVerdict:
        """Go, wait or fail with ``online`` banks after ``waited_s``; ``lost`` banks are
        known never to come (their process exited: the local launcher sees that)."""
        if online >= self.banks - lost and online >= self.required:
            return JoinVerdict.GO
        if online >= self.required and waited_s >= self.grace_s:
            return JoinVerdict.GO
        if self.banks - lost < self.required or waited_s >= self.timeout_s:
            return JoinVerdict.FAIL
        return JoinVerdict.WAIT


def wait_for_banks(grid: Grid, banks: int, timeout_s: float = JOIN_TIMEOUT_S, *,
                   roster: frozenset[bytes] | None = None, required: int | None = None,
                   grace_s: float | None = None,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> list[int]:
    """Node ids of the banks to work with, by :class:`JoinRule` (at most ``banks``).

    ``required`` defaults to every bank and ``grace_s`` to ``timeout_s`` (wait for all).
    With a ``roster`` (:mod:`server.roster`) only nodes whose registered key is in it count;
    any other node the SuperLink knows is never sent work.

    Raises
    ------
    FederationError
        Fewer than ``required`` bank nodes were online when the rule gave up.
    """
    rule = JoinRule(banks, banks if required is None else required,
                    timeout_s if grace_s is None else min(grace_s, timeout_s), timeout_s)
    started = clock()
    while True:
        nodes = rostered_node_ids(grid.get_nodes(), roster)[:banks]
        verdict = rule.verdict(len(nodes), clock() - started)
        if verdict is JoinVerdict.GO:
            return nodes
        if verdict is JoinVerdict.FAIL:
            where = "" if roster is None else " from the federation's roster"
            need = "" if rule.required == banks else f" ({rule.required} required)"
            raise FederationError(f"only {len(nodes)} of {banks} bank nodes{where} joined "
                                  f"within {timeout_s:.0f} s{need}; start the missing banks' "
                                  "nodes (fedcredit node), then run again.")
        sleep(POLL_S)
