"""The coordinator's roster: work goes only to nodes whose registered key is in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.proto.node_pb2 import NodeInfo

from server.errors import FederationError
from server.horizontal import wait_for_banks
from server.roster import ROSTER_DIR, RosterError, load_roster, rostered_node_ids


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
