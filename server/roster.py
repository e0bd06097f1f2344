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
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from flwr.proto.node_pb2 import NodeInfo

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
