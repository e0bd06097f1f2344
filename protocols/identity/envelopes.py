"""Authenticated envelopes for secret key material: passphrase sealing and X25519 wrapping.

Two recipes, both AES-256-GCM over a JSON header that is bound as associated data (so no
header field - kind, KDF parameters, key fingerprint, recipient - can be swapped):

* :func:`seal_with_passphrase` - at-rest storage: key = scrypt(passphrase, salt).
* :func:`wrap_for_recipient` - key transport to another bank: ephemeral X25519 with the
  recipient's identity key, key = HKDF-SHA256(shared secret, salt = ephemeral || recipient).

Security
--------
Confidentiality and integrity rest on AES-GCM with a fresh 96-bit nonce and a fresh key
per envelope (fresh salt or ephemeral key), on scrypt's cost for guessed passphrases, and
on X25519 (CDH) for wrapping. Wrapping gives no sender authentication: the recipient must
check the key fingerprint it unwraps against the one agreed out of band. Input is
authenticated, so every failure raises :class:`~protocols.errors.KeyCeremonyError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocols.errors import KeyCeremonyError

__all__ = [
    "RandomBytes", "seal_with_passphrase", "open_with_passphrase", "wrap_for_recipient",
    "unwrap_as_recipient", "x25519_public_hex", "DEFAULT_SCRYPT_LOG2_N",
]

RandomBytes = Callable[[int], bytes]
ENVELOPE_SCHEMA_VERSION = 1
PASSPHRASE_SCHEME = "scrypt-aes256gcm"
WRAP_SCHEME = "x25519-hkdf-sha256-aes256gcm"
DEFAULT_SCRYPT_LOG2_N = 17  # 128 MiB, ~0.5 s per open; files sealed with 15 still open
# (each envelope records its own cost in its authenticated header)
MIN_SCRYPT_LOG2_N, MAX_SCRYPT_LOG2_N = 10, 20
MIN_PASSPHRASE_CHARS = 8
_HKDF_INFO = b"fedcredit/key-wrap/v1"


def _canonical(header: Mapping[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _encode(header: dict[str, Any], ciphertext: bytes) -> bytes:
    return _canonical({**header, "ciphertext": base64.b64encode(ciphertext).decode("ascii")})


def _decode(blob: bytes, scheme: str, kind: str) -> tuple[dict[str, Any], bytes]:
    try:
        doc = json.loads(blob.decode("utf-8"))
        ciphertext = base64.b64decode(doc.pop("ciphertext"), validate=True)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError,
            binascii.Error, RecursionError) as exc:
        raise KeyCeremonyError(f"not a {kind} envelope (unreadable); check the file path "
                               "or restore the file from backup") from exc
    if doc.get("schema_version") != ENVELOPE_SCHEMA_VERSION or doc.get("scheme") != scheme:
        raise KeyCeremonyError(f"unsupported envelope version or scheme for {kind}; upgrade "
                               "fedcredit or re-export the key")
    if doc.get("kind") != kind:
        raise KeyCeremonyError(f"this file holds a {doc.get('kind')!r}, expected a {kind!r}; "
                               "check which file you passed")
    return doc, ciphertext


def _hex_field(doc: Mapping[str, Any], name: str, size: int, kind: str) -> bytes:
    try:
        raw = bytes.fromhex(doc[name])
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyCeremonyError(f"{kind} envelope lacks a valid {name!r}; the file is "
                               "damaged, restore it from backup") from exc
    if len(raw) != size:
        raise KeyCeremonyError(f"{kind} envelope field {name!r} has the wrong size; the "
                               "file is damaged, restore it from backup")
    return raw


def _passphrase_bytes(passphrase: str) -> bytes:
    if not isinstance(passphrase, str):
        raise TypeError("passphrase must be a str")
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise KeyCeremonyError(f"passphrase is shorter than {MIN_PASSPHRASE_CHARS} "
                               "characters; choose a longer one")
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _scrypt_key(passphrase: str, salt: bytes, log2_n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=8, p=1).derive(
        _passphrase_bytes(passphrase))


def seal_with_passphrase(plaintext: bytes, passphrase: str, *, kind: str,
                         random_bytes: RandomBytes = os.urandom,
                         scrypt_log2_n: int = DEFAULT_SCRYPT_LOG2_N) -> bytes:
    """Encrypt ``plaintext`` for storage under a passphrase (scrypt + AES-256-GCM).

    ``kind`` names the content (e.g. ``"paillier-private-key"``) and is authenticated.
    ``random_bytes`` supplies salt and nonce (``os.urandom`` unless a test injects one).
    """
    if not MIN_SCRYPT_LOG2_N <= scrypt_log2_n <= MAX_SCRYPT_LOG2_N:
        raise ValueError(f"scrypt_log2_n must be in {MIN_SCRYPT_LOG2_N}..{MAX_SCRYPT_LOG2_N}")
    salt, nonce = random_bytes(16), random_bytes(12)
    header = {"schema_version": ENVELOPE_SCHEMA_VERSION, "scheme": PASSPHRASE_SCHEME,
              "kind": kind, "kdf": {"log2_n": scrypt_log2_n, "r": 8, "p": 1,
                                    "salt": salt.hex()}, "nonce": nonce.hex()}
    key = _scrypt_key(passphrase, salt, scrypt_log2_n)
    return _encode(header, AESGCM(key).encrypt(nonce, plaintext, _canonical(header)))


def open_with_passphrase(blob: bytes, passphrase: str, *, kind: str) -> bytes:
    """Decrypt a :func:`seal_with_passphrase` envelope.

    Raises
    ------
    KeyCeremonyError
        Wrong passphrase, modified file, wrong kind or unreadable envelope.
    """
    header, ciphertext = _decode(blob, PASSPHRASE_SCHEME, kind)
    kdf = header.get("kdf")
    if not isinstance(kdf, dict) or (kdf.get("r"), kdf.get("p")) != (8, 1):
        raise KeyCeremonyError(f"{kind} envelope has unsupported KDF parameters")
    log2_n = kdf.get("log2_n")
    if type(log2_n) is not int or not MIN_SCRYPT_LOG2_N <= log2_n <= MAX_SCRYPT_LOG2_N:
        raise KeyCeremonyError(f"{kind} envelope has an out-of-range scrypt cost")
    key = _scrypt_key(passphrase, _hex_field(kdf, "salt", 16, kind), log2_n)
    try:
        return AESGCM(key).decrypt(_hex_field(header, "nonce", 12, kind), ciphertext,
                                   _canonical(header))
    except InvalidTag as exc:
        raise KeyCeremonyError(f"cannot open the {kind}: wrong passphrase or the file was "
                               "modified; check the passphrase or restore the file from "
                               "backup") from exc


def x25519_public_hex(public_key: X25519PublicKey) -> str:
    """Raw 32-byte X25519 public key as lowercase hex."""
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _wrap_key(shared: bytes, ephemeral_hex: str, recipient_hex: str) -> bytes:
    salt = bytes.fromhex(ephemeral_hex) + bytes.fromhex(recipient_hex)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(shared)


def wrap_for_recipient(plaintext: bytes, recipient: X25519PublicKey, *, kind: str,
                       context: Mapping[str, str],
                       random_bytes: RandomBytes = os.urandom) -> bytes:
    """Encrypt ``plaintext`` so only the holder of ``recipient``'s private key can read it.

    ``context`` (e.g. the key fingerprint) is stored in clear and authenticated together
    with the recipient public key, so an envelope cannot be re-labelled or redirected.
    """
    ephemeral = X25519PrivateKey.from_private_bytes(random_bytes(32))
    nonce = random_bytes(12)
    recipient_hex = x25519_public_hex(recipient)
    ephemeral_hex = x25519_public_hex(ephemeral.public_key())
    header = {"schema_version": ENVELOPE_SCHEMA_VERSION, "scheme": WRAP_SCHEME, "kind": kind,
              "context": dict(context), "recipient": recipient_hex,
              "ephemeral": ephemeral_hex, "nonce": nonce.hex()}
    key = _wrap_key(ephemeral.exchange(recipient), ephemeral_hex, recipient_hex)
    return _encode(header, AESGCM(key).encrypt(nonce, plaintext, _canonical(header)))


def unwrap_as_recipient(blob: bytes, identity: X25519PrivateKey, *,
                        kind: str) -> tuple[dict[str, str], bytes]:
    """Open a :func:`wrap_for_recipient` envelope; return ``(context, plaintext)``.

    Raises
    ------
    KeyCeremonyError
        Envelope for another recipient, modified, or unreadable.
    """
    header, ciphertext = _decode(blob, WRAP_SCHEME, kind)
    own_hex = x25519_public_hex(identity.public_key())
    _hex_field(header, "recipient", 32, kind)
    if header["recipient"] != own_hex:
        raise KeyCeremonyError(f"this {kind} was wrapped for another bank's identity key; "
                               "ask the sender to wrap it for your identity.pub")
    ephemeral = X25519PublicKey.from_public_bytes(_hex_field(header, "ephemeral", 32, kind))
    context = header.get("context")
    if not isinstance(context, dict):
        raise KeyCeremonyError(f"{kind} envelope lacks its context; the file is damaged")
    try:
        key = _wrap_key(identity.exchange(ephemeral), header["ephemeral"], own_hex)
        plaintext = AESGCM(key).decrypt(_hex_field(header, "nonce", 12, kind), ciphertext,
                                        _canonical(header))
    except (InvalidTag, ValueError) as exc:
        raise KeyCeremonyError(f"cannot unwrap the {kind}: the file was modified or is "
                               "corrupt; ask the sender to wrap the key again") from exc
    return context, plaintext
