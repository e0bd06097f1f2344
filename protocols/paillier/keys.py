"""Key ceremony for the shared Paillier key pair of the banks.

Custody model
-------------
The Paillier key pair belongs to the banks, never to the coordinator. One bank generates
it (:func:`generate_paillier_keypair`), stores the private key at rest under a passphrase
(:func:`seal_private_key`), and hands it to each other bank wrapped for that bank's X25519
identity key (:func:`wrap_private_key`, see :mod:`protocols.identity.x25519`). The coordinator
only ever receives the public key (:func:`public_key_to_bytes`). Every bank checks the
fingerprint (:func:`key_fingerprint`) of what it unwraps against the one announced out of
band, because wrapping does not authenticate the sender.

Security
--------
Paillier security rests on DCR and on 2048-bit moduli; smaller keys are refused unless a
test passes ``allow_insecure_test_key=True``. Sealed and wrapped blobs are AES-256-GCM
envelopes (:mod:`protocols.identity.envelopes`); every failure raises
:class:`~protocols.errors.KeyCeremonyError` with a hint for the operator.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from typing import Any, cast

import gmpy2
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from phe import paillier
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.errors import KeyCeremonyError, KeyMismatchError
from protocols.identity.envelopes import (
    DEFAULT_SCRYPT_LOG2_N,
    RandomBytes,
    open_with_passphrase,
    seal_with_passphrase,
    unwrap_as_recipient,
    wrap_for_recipient,
    x25519_public_hex,
)
from protocols.identity.x25519 import (
    BankIdentity,
    generate_identity,
    identity_public_from_bytes,
    identity_public_to_bytes,
    open_identity,
    seal_identity,
)

__all__ = [
    "DEFAULT_KEY_BITS", "generate_paillier_keypair", "key_fingerprint",
    "public_key_to_bytes", "public_key_from_bytes", "private_key_to_bytes",
    "private_key_from_bytes", "seal_private_key", "open_private_key", "wrap_private_key",
    "unwrap_private_key", "check_key_pair", "check_key_size", "x25519_public_key_hex",
    # re-exported from protocols.identity.x25519
    "BankIdentity", "generate_identity", "identity_public_to_bytes",
    "identity_public_from_bytes", "seal_identity", "open_identity",
]

DEFAULT_KEY_BITS = 2048
MIN_KEY_BITS = 256  # smallest modulus generate_paillier_keypair makes (tests only)
KEY_SCHEMA_VERSION = 1
PUBLIC_KIND = "paillier-public-key"
PRIVATE_KIND = "paillier-private-key"


def generate_paillier_keypair(bits: int = DEFAULT_KEY_BITS, *,
                              allow_insecure_test_key: bool = False,
                              ) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """Generate the banks' shared Paillier key pair (``phe``, primes from the OS RNG).

    Raises
    ------
    KeyCeremonyError
        ``bits < 2048`` without ``allow_insecure_test_key=True``.
    """
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError("bits must be an int")
    if bits < DEFAULT_KEY_BITS and not allow_insecure_test_key:
        raise KeyCeremonyError(f"{bits}-bit Paillier keys are insecure; use at least "
                               f"{DEFAULT_KEY_BITS} bits (smaller keys are for tests only)")
    if bits < MIN_KEY_BITS or bits % 8:
        raise KeyCeremonyError(f"key size {bits} is not supported; use a multiple of 8 >= 256")
    # phe is untyped: its generate_paillier_keypair returns Any.
    return cast(tuple[PaillierPublicKey, PaillierPrivateKey],
                paillier.generate_paillier_keypair(n_length=bits))


def key_fingerprint(public_key: PaillierPublicKey) -> str:
    """SHA-256 (hex) over the big-endian bytes of the public modulus ``n``."""
    n = int(public_key.n)
    return hashlib.sha256(n.to_bytes((n.bit_length() + 7) // 8, "big")).hexdigest()


def check_key_pair(public_key: PaillierPublicKey, private_key: PaillierPrivateKey) -> None:
    """Raise :class:`KeyMismatchError` unless ``private_key`` belongs to ``public_key``."""
    if int(private_key.public_key.n) != int(public_key.n):
        raise KeyMismatchError("the private key does not belong to this public key (fingerprint "
                               f"{key_fingerprint(private_key.public_key)[:16]}... vs "
                               f"{key_fingerprint(public_key)[:16]}...); load the right key")


def check_key_size(public_key: PaillierPublicKey, *, role: str,
                   min_bits: int = DEFAULT_KEY_BITS) -> None:
    """Refuse a key whose modulus is shorter than ``min_bits`` (on every load, not only at
    generation: a short ``paillier.pub`` from elsewhere must not be used).

    ``role`` names the key in the message (e.g. ``"the banks' public key (paillier.pub)"``);
    the message never holds a local path, so it may leave the node.

    Raises
    ------
    KeyCeremonyError
        The modulus has fewer than ``min_bits`` bits.
    """
    bits = int(public_key.n).bit_length()
    if bits < min_bits:
        raise KeyCeremonyError(f"{role} has {bits} bits, below the minimum of {min_bits}; "
                               "redo the key ceremony with a key of at least "
                               f"{max(min_bits, DEFAULT_KEY_BITS)} bits")


def _load_json(data: bytes, kind: str) -> dict[str, Any]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, AttributeError, RecursionError) as exc:
        raise KeyCeremonyError(f"not a {kind} file (unreadable JSON); check the path") from exc
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise KeyCeremonyError(f"not a {kind} file; check which file you passed")
    if doc.get("schema_version") != KEY_SCHEMA_VERSION:
        raise KeyCeremonyError(f"unsupported {kind} schema_version; upgrade fedcredit")
    return doc


def _hex_int(doc: dict[str, Any], name: str, kind: str) -> int:
    try:
        value = int(doc[name], 16)
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyCeremonyError(f"{kind} file lacks a valid {name!r}; restore it from "
                               "backup") from exc
    if value <= 1:
        raise KeyCeremonyError(f"{kind} file has an invalid {name!r}; restore it from backup")
    return value


def public_key_to_bytes(public_key: PaillierPublicKey) -> bytes:
    """Serialise the public key (JSON with ``n`` in hex and its fingerprint)."""
    doc = {"schema_version": KEY_SCHEMA_VERSION, "kind": PUBLIC_KIND,
           "n": format(int(public_key.n), "x"), "fingerprint": key_fingerprint(public_key)}
    return json.dumps(doc, sort_keys=True, indent=1).encode("utf-8")


def public_key_from_bytes(data: bytes) -> PaillierPublicKey:
    """Parse :func:`public_key_to_bytes` output; the stored fingerprint must match ``n``."""
    doc = _load_json(data, PUBLIC_KIND)
    n = _hex_int(doc, "n", PUBLIC_KIND)
    if n.bit_length() < MIN_KEY_BITS or n % 2 == 0:
        raise KeyCeremonyError("public key file: the modulus is not a Paillier modulus (even "
                               f"or shorter than {MIN_KEY_BITS} bits); fetch it again from the "
                               "key owner")
    public_key = PaillierPublicKey(n)
    if doc.get("fingerprint") != key_fingerprint(public_key):
        raise KeyCeremonyError("public key file: fingerprint does not match the modulus; the "
                               "file was modified, fetch it again from the key owner")
    return public_key


def private_key_to_bytes(private_key: PaillierPrivateKey) -> bytes:
    """Serialise the private key in clear (JSON ``n, p, q``); seal or wrap it before storing."""
    doc = {"schema_version": KEY_SCHEMA_VERSION, "kind": PRIVATE_KIND,
           "n": format(int(private_key.public_key.n), "x"),
           "p": format(int(private_key.p), "x"), "q": format(int(private_key.q), "x")}
    return json.dumps(doc, sort_keys=True).encode("utf-8")


def private_key_from_bytes(data: bytes) -> PaillierPrivateKey:
    """Parse :func:`private_key_to_bytes` output, checking ``p * q == n`` and ``p != q``.

    Parsed once per process for the same bytes (the primality checks and phe's CRT
    constants cost milliseconds; a simulation process opens the shared key once for each
    bank it hosts, every bank from its own envelope, and gets the same key)."""
    return _private_key_of(bytes(data))


@lru_cache(maxsize=8)
def _private_key_of(data: bytes) -> PaillierPrivateKey:
    doc = _load_json(data, PRIVATE_KIND)
    n, p, q = (_hex_int(doc, name, PRIVATE_KIND) for name in ("n", "p", "q"))
    if (p * q != n or p == q or n.bit_length() < MIN_KEY_BITS or not gmpy2.is_prime(p)
            or not gmpy2.is_prime(q) or gmpy2.gcd(n, (p - 1) * (q - 1)) != 1):
        raise KeyCeremonyError("private key file is inconsistent (p*q != n, or p, q not "
                               "distinct odd primes of a Paillier modulus); restore it from "
                               "backup")
    return PaillierPrivateKey(PaillierPublicKey(n), p, q)


def seal_private_key(private_key: PaillierPrivateKey, passphrase: str, *,
                     random_bytes: RandomBytes = os.urandom,
                     scrypt_log2_n: int = DEFAULT_SCRYPT_LOG2_N) -> bytes:
    """Encrypt the private key for storage at rest (scrypt + AES-256-GCM)."""
    return seal_with_passphrase(private_key_to_bytes(private_key), passphrase,
                                kind=PRIVATE_KIND, random_bytes=random_bytes,
                                scrypt_log2_n=scrypt_log2_n)


def open_private_key(blob: bytes, passphrase: str) -> PaillierPrivateKey:
    """Decrypt a sealed private key; :class:`KeyCeremonyError` on any failure."""
    return private_key_from_bytes(open_with_passphrase(blob, passphrase, kind=PRIVATE_KIND))


def wrap_private_key(private_key: PaillierPrivateKey, recipient: X25519PublicKey, *,
                     random_bytes: RandomBytes = os.urandom) -> bytes:
    """Wrap the private key for another bank's X25519 identity key.

    The key fingerprint and the recipient public key are bound as associated data.
    """
    context = {"fingerprint": key_fingerprint(private_key.public_key)}
    return wrap_for_recipient(private_key_to_bytes(private_key), recipient, kind=PRIVATE_KIND,
                              context=context, random_bytes=random_bytes)


def unwrap_private_key(blob: bytes, identity: X25519PrivateKey, *,
                       expected_fingerprint: str | None = None) -> PaillierPrivateKey:
    """Unwrap a private key sent to this bank's identity key.

    Parameters
    ----------
    expected_fingerprint : str, optional
        Fingerprint announced out of band; checking it authenticates the sender's key.

    Raises
    ------
    KeyCeremonyError
        Wrong recipient, modified envelope, or fingerprint mismatch.
    """
    context, plaintext = unwrap_as_recipient(blob, identity, kind=PRIVATE_KIND)
    private_key = private_key_from_bytes(plaintext)
    fingerprint = key_fingerprint(private_key.public_key)
    if context.get("fingerprint") != fingerprint:
        raise KeyCeremonyError("wrapped key does not match its stated fingerprint; ask the "
                               "sender to wrap the key again")
    if expected_fingerprint is not None and expected_fingerprint != fingerprint:
        raise KeyCeremonyError(f"unwrapped key has fingerprint {fingerprint[:16]}..., not the "
                               f"expected {expected_fingerprint[:16]}...; do not use it and "
                               "contact the key owner")
    return private_key


def x25519_public_key_hex(public_key: X25519PublicKey) -> str:
    """Raw X25519 public key in hex (for logs and out-of-band comparison)."""
    return x25519_public_hex(public_key)
