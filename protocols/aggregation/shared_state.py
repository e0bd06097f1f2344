"""Deterministic sealing of the banks' shared tree-growth state (AES-SIV under a bank-only key).

Protocol step
-------------
Between two requests of a boosted-tree run every honest bank computes the same public state
(the splits chosen so far, the nodes still to grow) and returns it as bytes. Each bank seals
it with :func:`seal_state` under a key that only the banks hold; the coordinator compares the
banks' blobs byte for byte, refuses the step when they disagree, and forwards one blob with
the next request; the receiving bank opens it with :func:`open_state`, which checks that it
is unmodified and belongs to this run and this sequence number.

Maths
-----
``key = HKDF-SHA256(secret, salt=None, info=INFO_PREFIX || run_id, length=64)`` (AES-256-SIV,
RFC 5297). ``blob = VERSION || AES-SIV(key, plaintext, AD = [VERSION_TAG, run_id, seq])``: a
16-byte synthetic IV (a CMAC over the associated data and the plaintext) followed by the
AES-CTR ciphertext. The associated-data components are authenticated separately, so
``(run_id, seq)`` pairs cannot be confused by concatenation.

Security
--------
The banks share the secret (derived from the shared Paillier private key); the coordinator
holds none of it: it is honest-but-curious and does not collude with a bank. It learns the
length of each state and whether two states are equal, nothing else. Deterministic
encryption reveals equality on purpose: that is how the coordinator checks that the banks
agree. AES-SIV is misuse-resistant (no nonce to reuse; equal inputs give equal blobs, and
only those). Any change to the blob, or a blob sealed for another run, sequence number or
version, fails with :class:`~protocols.errors.StateTamperedError`; a state above
:data:`MAX_STATE_BYTES` is refused with :class:`~protocols.errors.MalformedMessageError`.
The coordinator can still withhold or delay a blob; banks notice because ``seq`` must advance.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocols.errors import MalformedMessageError, StateTamperedError

__all__ = ["STATE_VERSION", "STATE_KEY_BYTES", "MAX_STATE_BYTES", "derive_state_key",
           "seal_state", "open_state"]

STATE_VERSION = 1
"""First byte of every sealed state blob."""
VERSION_TAG = b"fedcredit-shared-state-v1"
INFO_PREFIX = b"fedcredit shared-state AES-SIV key v1|"
STATE_KEY_BYTES = 64
"""AES-256-SIV key size (two 256-bit halves: CMAC and CTR)."""
MIN_SECRET_BYTES = 16
SIV_TAG_BYTES = 16
MAX_STATE_BYTES = 64 * 1024 * 1024
"""Largest state plaintext sealed or opened (64 MiB)."""
_MAX_SEQ = 2**64 - 1


def derive_state_key(secret: bytes, *, run_id: str) -> bytes:
    """The banks' 64-byte state key of one run, ``HKDF-SHA256(secret, info=... || run_id)``.

    Parameters
    ----------
    secret : bytes
        Key material every bank holds and the coordinator does not (at least 16 bytes).
    run_id : str
        The run the key is for; another run gets an unrelated key.

    Returns
    -------
    bytes
        A :data:`STATE_KEY_BYTES`-byte AES-SIV key.

    Raises
    ------
    TypeError
        ``secret`` is not bytes or ``run_id`` not a str.
    ValueError
        ``secret`` is shorter than 16 bytes.
    """
    if not isinstance(secret, bytes):
        raise TypeError("secret must be bytes")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"secret has {len(secret)} bytes; derive the state key from at least "
                         f"{MIN_SECRET_BYTES} bytes of the banks' shared key material")
    info = INFO_PREFIX + _run_bytes(run_id)
    return HKDF(algorithm=hashes.SHA256(), length=STATE_KEY_BYTES, salt=None,
                info=info).derive(secret)


def seal_state(plaintext: bytes, *, key: bytes, run_id: str, seq: int) -> bytes:
    """Seal one shared state for ``(run_id, seq)``; equal inputs give equal blobs.

    Returns
    -------
    bytes
        ``STATE_VERSION || AES-SIV(key, plaintext, AD = [VERSION_TAG, run_id, seq])``.

    Raises
    ------
    MalformedMessageError
        ``plaintext`` exceeds :data:`MAX_STATE_BYTES`.
    TypeError, ValueError
        Wrong argument types, a key that is not 64 bytes, or ``seq`` outside 0..2**64-1.
    """
    if not isinstance(plaintext, bytes):
        raise TypeError("plaintext must be bytes")
    if len(plaintext) > MAX_STATE_BYTES:
        raise MalformedMessageError(f"shared state of {len(plaintext)} bytes exceeds the "
                                    f"{MAX_STATE_BYTES}-byte cap; grow fewer nodes per step")
    sealed = _cipher(key).encrypt(plaintext, _associated_data(run_id, seq))
    return bytes([STATE_VERSION]) + sealed


def open_state(blob: bytes, *, key: bytes, run_id: str, seq: int) -> bytes:
    """Open a blob :func:`seal_state` made for ``(run_id, seq)`` under ``key``.

    Raises
    ------
    StateTamperedError
        The blob is too short, has another version byte, was changed, or was sealed for
        another run, sequence number or key.
    MalformedMessageError
        The blob exceeds the size cap.
    TypeError, ValueError
        Wrong argument types, a key that is not 64 bytes, or ``seq`` outside 0..2**64-1.
    """
    if not isinstance(blob, bytes):
        raise TypeError("blob must be bytes")
    if len(blob) > 1 + SIV_TAG_BYTES + MAX_STATE_BYTES:
        raise MalformedMessageError(f"sealed state of {len(blob)} bytes exceeds the "
                                    f"{MAX_STATE_BYTES}-byte cap; refuse the coordinator's request")
    cipher, associated = _cipher(key), _associated_data(run_id, seq)
    if len(blob) < 1 + SIV_TAG_BYTES:
        raise StateTamperedError(f"sealed state holds {len(blob)} bytes, fewer than a version "
                                 "byte and an AES-SIV tag; refuse the request and check the "
                                 "coordinator")
    if blob[0] != STATE_VERSION:
        raise StateTamperedError(f"sealed state has version {blob[0]}, this build reads "
                                 f"{STATE_VERSION}; upgrade every node to the same release")
    try:
        return cipher.decrypt(blob[1:], associated)
    except InvalidTag as exc:
        raise StateTamperedError(f"sealed state for run {run_id!r:.60} step {seq} fails "
                                 "authentication (tampered, or from another run or step); "
                                 "refuse the request and check the coordinator") from exc


def _cipher(key: bytes) -> AESSIV:
    if not isinstance(key, bytes):
        raise TypeError("key must be bytes")
    if len(key) != STATE_KEY_BYTES:
        raise ValueError(f"state key has {len(key)} bytes, not {STATE_KEY_BYTES}; "
                         "use derive_state_key(...)")
    return AESSIV(key)


def _run_bytes(run_id: str) -> bytes:
    if not isinstance(run_id, str):
        raise TypeError("run_id must be a str")
    return run_id.encode("utf-8")


def _associated_data(run_id: str, seq: int) -> list[bytes]:
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise TypeError("seq must be an int")
    if not 0 <= seq <= _MAX_SEQ:
        raise ValueError(f"seq must be in 0..2**64-1, got {seq}")
    return [VERSION_TAG, _run_bytes(run_id), seq.to_bytes(8, "big")]
