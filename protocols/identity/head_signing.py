"""Signed audit-chain heads: a bank's witness of the coordinator's log, kept outside it.

Protocol step: with every request the coordinator sends the head of its hash-chained audit
log (the last record's sequence number, round and hash). The bank signs the statement
``(run id, bank, Flower node id, seq, round, head hash)`` with its Ed25519 signing key and
keeps it in its own folder. Later anyone holding the banks' public keys checks each kept head
against the log: a head beyond the log's end means records were cut; a head that is not the
hash of the record at its position means the log was rewritten from there (re-hashing the
chain after an edit does not help: the old hash is in the bank's hands, under its signature).

Security assumption: the bank's signing key stays on its node, and the checker learned the
public keys over an authentic channel. A bank witnesses only the heads it is shown; records
appended after the last request it received (the final record) are witnessed by no bank.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protocols.errors import ProtocolError

SCHEMA_VERSION = 1
DOMAIN = "fedcredit-audit-head-v1"


class InvalidHeadSignatureError(ProtocolError):
    """A kept audit head's signature does not verify under the bank's registered key."""


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The head of an audit log as the coordinator announces it: record ``seq`` (0-based),
    the round that record is about (0 before the first round) and its hash."""

    run_id: str
    seq: int
    round: int
    head: str

    def __post_init__(self) -> None:
        if not isinstance(self.run_id, str) or type(self.seq) is not int or self.seq < 0 \
                or type(self.round) is not int:
            raise ProtocolError("audit head: 'run-id' must be text, 'seq' an integer >= 0 and "
                                "'round' an integer.")
        if not isinstance(self.head, str) or len(self.head) != 64 \
                or not set(self.head) <= set("0123456789abcdef"):
            raise ProtocolError("audit head: 'head' must be a 64-digit SHA-256 hex string.")


@dataclass(frozen=True, slots=True)
class HeadStatement:
    """What a bank's signature over a head covers."""

    head: AuditHead
    bank: int
    node_id: int
    schema_version: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        """Canonical encoding, domain-separated (never confused with an update signature)."""
        doc = {"domain": DOMAIN, "v": self.schema_version, "run": self.head.run_id,
               "seq": self.head.seq, "round": self.head.round, "head": self.head.head,
               "bank": self.bank, "node": self.node_id}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign_head(private_key: Ed25519PrivateKey, statement: HeadStatement) -> bytes:
    """Bank step: Ed25519 signature over the head statement."""
    return private_key.sign(statement.to_bytes())


def verify_head(public_key: Ed25519PublicKey, signature: bytes,
                statement: HeadStatement) -> None:
    """Checker step: raise :class:`InvalidHeadSignatureError` unless the signature verifies."""
    try:
        public_key.verify(bytes(signature), statement.to_bytes())
    except (InvalidSignature, TypeError, ValueError) as exc:
        raise InvalidHeadSignatureError(
            f"bank {statement.bank}: its kept audit head for round {statement.head.round} has "
            "a signature that does not verify (a changed head file, or another bank's key); "
            "check the file against the bank's copy.") from exc
