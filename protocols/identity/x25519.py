"""X25519 identity keys of the banks (used to receive the wrapped Paillier private key).

Security
--------
Each bank generates its identity key pair locally and publishes only the public half
(``identity.pub``). The private half is stored sealed under a passphrase. Binding a public
identity key to a bank is an out-of-band step (compare the hex over a trusted channel);
this module does not authenticate names.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from protocols.errors import KeyCeremonyError
from protocols.identity.envelopes import (
    DEFAULT_SCRYPT_LOG2_N,
    RandomBytes,
    open_with_passphrase,
    seal_with_passphrase,
    x25519_public_hex,
)

__all__ = ["BankIdentity", "generate_identity", "identity_public_to_bytes",
           "identity_public_from_bytes", "seal_identity", "open_identity"]

IDENTITY_SCHEMA_VERSION = 1
PUBLIC_KIND = "x25519-identity-public"
PRIVATE_KIND = "x25519-identity-private"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class BankIdentity:
    """Public identity of a bank: a name and its raw 32-byte X25519 public key (hex)."""

    name: str
    public_key_hex: str
    schema_version: int = IDENTITY_SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError("bank name must be 1-64 chars of letters, digits, '_', '.', '-'")
        if self.schema_version != IDENTITY_SCHEMA_VERSION:
            raise ValueError(f"unknown identity schema_version {self.schema_version}")
        if not isinstance(self.public_key_hex, str) or not re.fullmatch(
                r"[0-9a-f]{64}", self.public_key_hex):
            raise ValueError("public_key_hex must be 64 lowercase hex characters")

    @property
    def public_key(self) -> X25519PublicKey:
        """The X25519 public key object."""
        return X25519PublicKey.from_public_bytes(bytes.fromhex(self.public_key_hex))


def generate_identity(*, random_bytes: RandomBytes = os.urandom) -> X25519PrivateKey:
    """New X25519 identity private key (32 bytes from ``random_bytes``, OS RNG by default)."""
    return X25519PrivateKey.from_private_bytes(random_bytes(32))


def identity_public_to_bytes(name: str, private_or_public: X25519PrivateKey | X25519PublicKey,
                             ) -> bytes:
    """Serialise the public identity (JSON with name and hex key)."""
    public = (private_or_public.public_key() if isinstance(private_or_public, X25519PrivateKey)
              else private_or_public)
    identity = BankIdentity(name=name, public_key_hex=x25519_public_hex(public))
    doc = {"schema_version": identity.schema_version, "kind": PUBLIC_KIND,
           "name": identity.name, "public_key": identity.public_key_hex}
    return json.dumps(doc, sort_keys=True, indent=1).encode("utf-8")


def identity_public_from_bytes(data: bytes) -> BankIdentity:
    """Parse an ``identity.pub`` file; :class:`KeyCeremonyError` if it is not one."""
    try:
        doc = json.loads(data.decode("utf-8"))
        if doc.get("kind") != PUBLIC_KIND:
            raise ValueError("wrong kind")
        return BankIdentity(name=doc["name"], public_key_hex=doc["public_key"],
                            schema_version=doc["schema_version"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError,
            RecursionError) as exc:
        raise KeyCeremonyError("not a bank identity public key file; pass the recipient's "
                               "identity.pub") from exc


def seal_identity(name: str, private_key: X25519PrivateKey, passphrase: str, *,
                  random_bytes: RandomBytes = os.urandom,
                  scrypt_log2_n: int = DEFAULT_SCRYPT_LOG2_N) -> bytes:
    """Store the identity private key (and the bank name) sealed under a passphrase."""
    BankIdentity(name=name, public_key_hex=x25519_public_hex(private_key.public_key()))
    raw = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    payload = json.dumps({"name": name, "private_key": raw.hex()}).encode("utf-8")
    return seal_with_passphrase(payload, passphrase, kind=PRIVATE_KIND,
                                random_bytes=random_bytes, scrypt_log2_n=scrypt_log2_n)


def open_identity(blob: bytes, passphrase: str) -> tuple[str, X25519PrivateKey]:
    """Open a sealed identity; return ``(bank name, private key)``."""
    payload = open_with_passphrase(blob, passphrase, kind=PRIVATE_KIND)
    try:
        doc = json.loads(payload.decode("utf-8"))
        name = doc["name"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError("invalid bank name")
        return name, X25519PrivateKey.from_private_bytes(bytes.fromhex(doc["private_key"]))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise KeyCeremonyError("sealed identity has an unreadable payload; restore it from "
                               "backup") from exc
