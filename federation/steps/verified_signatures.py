"""A process's memory of the Ed25519 signatures it has verified (banks' masking steps).

Protocol step (bank, SecAgg+ steps 1 and 3): a bank verifies its neighbours' signed adverts
before sharing keys, and every signature on the survivor list before it reveals shares
(:mod:`federation.steps.masking`). Every bank verifies the *same* signatures: each of ``N``
banks checks the ``N`` banks' signatures over one survivor list, ``N**2`` verifications per
masked sum. In a simulation one Ray process hosts many banks, so it verified each signature
once per bank it hosts.

:func:`verify_once` verifies a signature the first time a process sees the exact triple
(signer's public key, signature, signed statement) and remembers that it verified; a later
call with the same triple returns at once. Verification is deterministic in that triple, so
the answer is the one verifying again would give; a signature that fails is never remembered
and fails again every time. The memory holds SHA-256 digests of verified triples only (no
key, no secret), :data:`MEMO_SIZE` of them, oldest forgotten first.

Security assumption: SHA-256 is collision resistant (two triples with one digest would let a
remembered verification answer for another); the memory lives in the verifying process.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocols.identity.signing import UpdateStatement, verify_update

MEMO_SIZE = 1 << 16
"""Digests remembered per process (32 bytes each, ~5 MB with the dictionary): a 1,000-bank
round's survivor-list signatures fit twice over."""

_VERIFIED: OrderedDict[bytes, None] = OrderedDict()
_LOCK = threading.Lock()


def _digest(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bytes:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = bytes(signature)
    return hashlib.sha256(b"".join((len(raw).to_bytes(4, "big"), raw,
                                    len(signature).to_bytes(4, "big"), signature,
                                    message))).digest()


def verify_once(public_key: Ed25519PublicKey, signature: bytes,
                statement: UpdateStatement, *, encoded: bytes | None = None) -> None:
    """:func:`~protocols.identity.signing.verify_update`, answered from memory when this
    process verified the same key, signature and statement before. ``encoded``: the
    statement's ``to_bytes()`` when the caller has it already
    (:func:`~protocols.identity.signing.encodings_by_bank`).

    Raises
    ------
    InvalidSignatureError
        The signature does not verify (never remembered: it is checked again next time).
    """
    digest = _digest(public_key, signature,
                     statement.to_bytes() if encoded is None else encoded)
    with _LOCK:
        if digest in _VERIFIED:
            _VERIFIED.move_to_end(digest)
            return
    verify_update(public_key, signature, statement)
    with _LOCK:
        _VERIFIED[digest] = None
        while len(_VERIFIED) > MEMO_SIZE:
            _VERIFIED.popitem(last=False)


def forget_all() -> None:
    """Empty the memory (tests)."""
    with _LOCK:
        _VERIFIED.clear()
