"""Signed, round-bound updates: Ed25519 signatures and a replay guard.

Protocol step: each bank signs every sealed vector it sends over the statement
``(run id, step, round, bank, Flower node id, key fingerprint, SHA-256 of the payload)``; the
coordinator verifies it against the bank's registered public key, with the node id it saw the
reply come from (``src_node_id``), and refuses an update whose signature is wrong, that belongs
to another run, that replays an earlier round or step, that another node relays, or that
duplicates one the same bank already sent in this step.

Security assumption: each bank's Ed25519 signing key stays on its node and the coordinator
learned the public keys over an authentic channel (the key ceremony). Signatures bind
updates to their origin and context; they do not make a bank's update correct.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocols.errors import ProtocolError, StaleRoundError

SCHEMA_VERSION = 2
DOMAIN = "fedcredit-update-v2"
"""Version 2 binds the Flower node id of the sender (version 1 did not)."""


class InvalidSignatureError(ProtocolError):
    """An update's signature does not verify under the sending bank's registered key."""


class DuplicateUpdateError(ProtocolError):
    """A bank sent a second update for the same step and round."""


@dataclass(frozen=True)
class UpdateStatement:
    """What a bank's signature covers."""

    run_id: str
    step: str
    round: int
    bank: int
    node_id: int
    key_fingerprint: str
    payload_sha256: str
    schema_version: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        """Canonical encoding, domain-separated."""
        doc = {"domain": DOMAIN, "v": self.schema_version, "run": self.run_id, "step": self.step,
               "round": self.round, "bank": self.bank, "node": self.node_id,
               "fp": self.key_fingerprint,
               "payload": self.payload_sha256}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


_BANK_PREFIX = b'{"bank":'


def with_bank(statement: UpdateStatement, bank: int) -> UpdateStatement:
    """The same statement signed by ``bank`` (``dataclasses.replace`` without its field
    introspection: a bank builds one per survivor it checks)."""
    return UpdateStatement(statement.run_id, statement.step, statement.round, bank,
                           statement.node_id, statement.key_fingerprint,
                           statement.payload_sha256, statement.schema_version)


def encodings_by_bank(statement: UpdateStatement, banks: list[int]) -> list[bytes]:
    """``replace(statement, bank=b).to_bytes()`` for each ``b`` of ``banks``, encoding the
    rest of the statement once ("bank" is the first key of the canonical encoding): a bank
    checks every survivor's signature over the same list, the statements differing only in
    the signer."""
    rest = with_bank(statement, 0).to_bytes()
    head = _BANK_PREFIX + b"0,"
    if not rest.startswith(head):  # the encoding changed: no shortcut
        return [with_bank(statement, bank).to_bytes() for bank in banks]
    tail = rest[len(head) - 1:]
    return [b"%s%d%s" % (_BANK_PREFIX, bank, tail) for bank in banks]


def statement_for(*, run_id: str, step: str, round: int, bank: int, node_id: int,
                  key_fingerprint: str, payload: bytes) -> UpdateStatement:
    """The statement over an actual payload, sent from Flower node ``node_id``."""
    return UpdateStatement(run_id, step, round, bank, node_id, key_fingerprint,
                           hashlib.sha256(payload).hexdigest())


def sign_update(private_key: Ed25519PrivateKey, statement: UpdateStatement) -> bytes:
    """Bank step: Ed25519 signature over the statement."""
    return private_key.sign(statement.to_bytes())


def verify_update(public_key: Ed25519PublicKey, signature: bytes,
                  statement: UpdateStatement) -> None:
    """Coordinator step: raise :class:`InvalidSignatureError` unless the signature verifies."""
    try:
        public_key.verify(bytes(signature), statement.to_bytes())
    except (InvalidSignature, TypeError, ValueError) as exc:
        raise InvalidSignatureError(
            f"bank {statement.bank}: signature of its '{statement.step}' update for round "
            f"{statement.round} does not verify for the node it came from; the update is dropped "
            "(check that the bank uses the signing key registered in the key ceremony)."
        ) from exc


def public_key_hex(public_key: Ed25519PublicKey) -> str:
    """Raw public key as hex (for registries)."""
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def public_key_from_hex(text: str) -> Ed25519PublicKey:
    """Inverse of :func:`public_key_hex`."""
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except ValueError as exc:
        raise ProtocolError(f"registered signing key {text[:16]!r}... is not an Ed25519 "
                            "public key; redo the key ceremony for that bank.") from exc


@dataclass
class ReplayGuard:
    """Refuses updates of another run, of a round already closed, or sent twice."""

    run_id: str
    seen: set[tuple[str, int, int]] = field(default_factory=set)

    def check(self, statement: UpdateStatement, *, expected_step: str,
              expected_round: int) -> None:
        """Raise StaleRoundError or DuplicateUpdateError; otherwise remember the update."""
        if statement.run_id != self.run_id:
            raise StaleRoundError(f"bank {statement.bank}: update belongs to run "
                                  f"{statement.run_id!r}, not {self.run_id!r}; dropped.")
        if (statement.step, statement.round) != (expected_step, expected_round):
            raise StaleRoundError(
                f"bank {statement.bank}: '{statement.step}' update for round {statement.round} "
                f"arrived during '{expected_step}' of round {expected_round} (replay or "
                "straggler); dropped.")
        key = (statement.step, statement.round, statement.bank)
        if key in self.seen:
            raise DuplicateUpdateError(f"bank {statement.bank} already sent its "
                                       f"'{statement.step}' update for round "
                                       f"{statement.round}; the duplicate is dropped.")
        self.seen.add(key)
