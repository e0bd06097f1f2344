"""Provisioning the banks' Ed25519 signing keys in a deployment, and the registry of them.

Each bank runs ``fedcredit keys init-signing`` in its own ``bank-<k>/`` key folder: the private
key is sealed under the bank's passphrase (scrypt + AES-256-GCM, mode 0600) and never leaves
it; ``signing.pub`` (this module's format, ``fedcredit-signing-pub`` version 1) goes to whoever
assembles the registry. ``fedcredit keys signing-registry`` builds ``signing-registry.json``
from every bank's ``signing.pub``; the coordinator and every bank hold a copy. As with the
identity keys, each ``signing.pub`` must reach the assembler over an authentic channel
(compare its fingerprint, :func:`SigningPublic.fingerprint`, over a second channel).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from protocols.errors import KeyCeremonyError
from protocols.identity.envelopes import DEFAULT_SCRYPT_LOG2_N, seal_with_passphrase
from protocols.identity.signing import public_key_from_hex, public_key_hex

PUB_FORMAT = "fedcredit-signing-pub"
SCHEMA_VERSION = 1
SIGNING_KIND = "fedcredit-ed25519-signing-key"
"""The sealed envelope's authenticated kind (the loader in key_store checks it)."""


@dataclass(frozen=True, slots=True)
class SigningPublic:
    """One bank's public signing key, as ``signing.pub`` carries it."""

    name: str
    bank: int
    key_hex: str
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise KeyCeremonyError(f"signing.pub has version {self.schema_version}; this "
                                   f"release reads version {SCHEMA_VERSION}.")
        if type(self.bank) is not int or self.bank < 0:
            raise KeyCeremonyError("signing.pub names no bank index >= 0; recreate it with "
                                   "`fedcredit keys init-signing --bank-index K`.")
        public_key_from_hex(self.key_hex)  # an Ed25519 key, or a named error

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the raw public key (compare it over a second channel)."""
        return hashlib.sha256(bytes.fromhex(self.key_hex)).hexdigest()


def signing_public_to_bytes(pub: SigningPublic) -> bytes:
    """``signing.pub`` as JSON."""
    return json.dumps({"format": PUB_FORMAT, "v": pub.schema_version, "name": pub.name,
                       "bank": pub.bank, "key": pub.key_hex}, indent=1).encode("utf-8")


def signing_public_from_bytes(data: bytes) -> SigningPublic:
    """Inverse of :func:`signing_public_to_bytes`; a malformed file raises KeyCeremonyError."""
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != PUB_FORMAT:
            raise ValueError("not a signing.pub")
        return SigningPublic(str(doc["name"]), doc["bank"], str(doc["key"]), doc["v"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise KeyCeremonyError("this is not a fedcredit signing.pub file; use the file "
                               "`fedcredit keys init-signing` wrote.") from exc


def new_signing_key(name: str, bank: int, passphrase: str, *,
                    scrypt_log2_n: int = DEFAULT_SCRYPT_LOG2_N) -> tuple[bytes, SigningPublic]:
    """A fresh Ed25519 key: (sealed private key, its public half)."""
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    sealed = seal_with_passphrase(raw, passphrase, kind=SIGNING_KIND, scrypt_log2_n=scrypt_log2_n)
    return sealed, SigningPublic(name, bank, public_key_hex(key.public_key()))


def registry_to_bytes(pubs: Iterable[SigningPublic]) -> bytes:
    """``signing-registry.json`` (``{"<bank>": "<key hex>"}``) from every bank's public key.

    Raises
    ------
    KeyCeremonyError
        Two files claim the same bank index, or the same key serves two banks.
    """
    registry: dict[str, str] = {}
    for pub in pubs:
        if str(pub.bank) in registry:
            raise KeyCeremonyError(f"two signing.pub files claim bank {pub.bank}; each bank "
                                   "index must appear once.")
        if pub.key_hex in registry.values():
            raise KeyCeremonyError(f"bank {pub.bank} ({pub.name}) reuses another bank's "
                                   "signing key; each bank makes its own.")
        registry[str(pub.bank)] = pub.key_hex
    if not registry:
        raise KeyCeremonyError("no signing.pub given; pass every bank's file.")
    return json.dumps(dict(sorted(registry.items(), key=lambda kv: int(kv[0]))),
                      indent=1).encode("utf-8")
