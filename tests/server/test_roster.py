"""The coordinator's roster: work goes only to nodes whose registered key is in it; and when a
run may start with the rostered nodes online (a resume goes on without a bank that is down)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.proto.node_pb2 import NodeInfo

from server.errors import FederationError
from server.roster import (
    JOIN_TIMEOUT_S,
    RESUME_GRACE_S,
    ROSTER_DIR,
    JoinRule,
    JoinVerdict,
    RosterError,
    load_roster,
    rostered_node_ids,
    wait_for_banks,
)


def keypair() -> tuple[bytes, bytes]:
    """(OpenSSH public key as a bank sends it, PEM key as the SuperLink reports it)."""
    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    return (public.public_bytes(serialization.Encoding.OpenSSH,
                                serialization.PublicFormat.OpenSSH),
            public.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.SubjectPublicKeyInfo))


class FakeGrid:
    """What the ServerApp's grid reports: every registered, connected node with its key."""

    def __init__(self, nodes: list[NodeInfo]) -> None:
        self.nodes = nodes

    def get_nodes(self) -> list[NodeInfo]:
        return self.nodes


@pytest.fixture()
def federation(tmp_path: Path) -> tuple[Path, list[NodeInfo]]:
    """Two rostered banks and one node registered at the SuperLink outside the roster."""
    (tmp_path / ROSTER_DIR).mkdir()
    nodes = []
    for node_id, name in ((11, "bank-0"), (22, "bank-1"), (33, "stranger")):
        openssh, pem = keypair()
        if name != "stranger":
            (tmp_path / ROSTER_DIR / f"{name}.pub").write_bytes(openssh)
        nodes.append(NodeInfo(node_id=node_id, public_key=pem))
    nodes.append(NodeInfo(node_id=44))  # no key at all
    return tmp_path, nodes


def test_only_rostered_nodes_get_work(federation: tuple[Path, list[NodeInfo]]) -> None:
    keys_dir, nodes = federation
    roster = load_roster(keys_dir)
    assert rostered_node_ids(nodes, roster) == [11, 22]
    assert wait_for_banks(FakeGrid(nodes), 2, roster=roster) == [11, 22]  # type: ignore[arg-type]


def test_a_stranger_never_fills_a_bank_seat(federation: tuple[Path, list[NodeInfo]]) -> None:
    keys_dir, nodes = federation
    with pytest.raises(FederationError, match="2 of 3 bank nodes from the federation's roster"):
        wait_for_banks(FakeGrid(nodes), 3, timeout_s=0.1,  # type: ignore[arg-type]
                       roster=load_roster(keys_dir))


def test_without_a_roster_every_node_counts(tmp_path: Path) -> None:
    assert load_roster(tmp_path) is None
    assert rostered_node_ids([NodeInfo(node_id=5), NodeInfo(node_id=3)], None) == [3, 5]


def test_a_bad_roster_file_is_named(tmp_path: Path) -> None:
    (tmp_path / ROSTER_DIR).mkdir()
    with pytest.raises(RosterError, match="holds no .pub"):
        load_roster(tmp_path)
    (tmp_path / ROSTER_DIR / "bank-0.pub").write_text("not a key")
    with pytest.raises(RosterError, match="bank-0.pub is not a node's OpenSSH public key"):
        load_roster(tmp_path)


GO, WAIT, FAIL = JoinVerdict.GO, JoinVerdict.WAIT, JoinVerdict.FAIL


@pytest.mark.parametrize("online, waited, lost, verdict", [
    (4, 0.0, 0, GO),                       # everyone is there
    (3, 0.0, 0, WAIT),                     # a bank may still come
    (3, RESUME_GRACE_S - 1, 0, WAIT),
    (3, RESUME_GRACE_S, 0, GO),            # grace over: on with min-banks, as a round would
    (2, RESUME_GRACE_S, 0, WAIT),          # below min-banks: keep waiting ...
    (2, JOIN_TIMEOUT_S, 0, FAIL),          # ... until the join timeout
    (3, 1.0, 1, GO),                       # the missing bank is known lost: no need to wait
    (2, 1.0, 2, FAIL),                     # min-banks can no longer be reached
])
def test_a_resume_waits_for_min_banks_not_for_every_bank(online: int, waited: float, lost: int,
                                                           verdict: JoinVerdict) -> None:
    rule = JoinRule(banks=4, required=3, grace_s=RESUME_GRACE_S)
    assert rule.verdict(online, waited, lost=lost) is verdict


def test_a_fresh_run_waits_the_whole_timeout_for_every_bank() -> None:
    rule = JoinRule(banks=4, required=3, grace_s=JOIN_TIMEOUT_S)
    assert rule.verdict(3, JOIN_TIMEOUT_S - 1) is WAIT
    assert rule.verdict(3, JOIN_TIMEOUT_S) is GO
    with pytest.raises(ValueError, match="required"):
        JoinRule(banks=4, required=5, grace_s=0.0)


class GrowingGrid(FakeGrid):
    """Nodes come online one per poll, up to ``limit`` (the rest stay down)."""

    def __init__(self, nodes: list[NodeInfo], limit: int) -> None:
        super().__init__(nodes)
        self.polls, self.limit = 0, limit

    def get_nodes(self) -> list[NodeInfo]:
        self.polls += 1
        return self.nodes[:min(self.polls, self.limit)]


def test_waiting_goes_on_with_the_survivors_after_the_grace() -> None:
    nodes = [NodeInfo(node_id=n) for n in (1, 2, 3, 4)]
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += 1.0

    grid = GrowingGrid(nodes, limit=3)  # bank 4 is down
    taken = wait_for_banks(grid, 4, required=3, grace_s=RESUME_GRACE_S,  # type: ignore[arg-type]
                           clock=lambda: now[0], sleep=sleep)
    assert taken == [1, 2, 3] and now[0] == RESUME_GRACE_S
    now[0] = 0.0
    assert wait_for_banks(GrowingGrid(nodes, limit=4), 4, required=3,  # type: ignore[arg-type]
                          grace_s=RESUME_GRACE_S, clock=lambda: now[0], sleep=sleep) == [1, 2, 3, 4]
    assert now[0] == 3.0  # all four online after four polls: no grace waited
    now[0] = 0.0
    with pytest.raises(FederationError, match="only 2 of 4 bank nodes joined within 120 s "
                                              r"\(3 required\)"):
        wait_for_banks(GrowingGrid(nodes, limit=2), 4, required=3,  # type: ignore[arg-type]
                       grace_s=RESUME_GRACE_S, clock=lambda: now[0], sleep=sleep)
