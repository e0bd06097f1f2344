"""The banks' shared public state between boosted-tree requests: sealed, compared, forwarded.

Protocol step: after each request every bank returns its tree-growth state (bytes every
honest bank computes identically) through a :class:`StateSealer`; the coordinator checks that
all blobs are byte-identical (:func:`blobs_agree`) and forwards one with the next request; the
bank that receives it opens it, which checks the run id and the sequence number.

- ``plain`` (:class:`PlainStateSealer`): blob = a version byte + the plaintext. The
  coordinator can read it, as it reads plain sums; nothing detects tampering or replay.
- ``paillier`` (:class:`PaillierStateSealer`): AES-SIV under a key derived from the banks'
  shared Paillier private key (:mod:`protocols.aggregation.shared_state`). Security
  assumption: honest-but-curious coordinator, not colluding with a bank; it learns the
  length of each state and whether two states are equal (on purpose), and cannot change a
  blob or move it to another run or step unnoticed.

:func:`bank_state_sealer` chooses by the run's summation scheme (one place, no string
comparison of the aggregation name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from phe.paillier import PaillierPrivateKey

from federation.run.key_store import load_bank_private_key
from federation.steps.secure_sum import summation_scheme
from protocols.aggregation.shared_state import (
    MAX_STATE_BYTES,
    derive_state_key,
    open_state,
    seal_state,
)
from protocols.errors import MalformedMessageError, StateTamperedError

if TYPE_CHECKING:
    from federation.run.config import RunConfig

PLAIN_STATE_VERSION = 0x81
"""First byte of a plain state blob (differs from the sealed format's, so they never mix)."""


@runtime_checkable
class StateSealer(Protocol):
    """A bank's way of sealing the shared state for the coordinator to compare and forward."""

    def seal(self, plaintext: bytes, *, run_id: str, seq: int) -> bytes:
        """The state blob for step ``seq`` of run ``run_id`` (equal states, equal blobs)."""
        ...

    def open(self, blob: bytes, *, run_id: str, seq: int) -> bytes:
        """The state a blob holds, refusing one that does not belong to ``(run_id, seq)``."""
        ...


class PlainStateSealer:
    """Plain runs: the blob is a version byte and the state itself (readable, unprotected)."""

    def seal(self, plaintext: bytes, *, run_id: str, seq: int) -> bytes:
        """``PLAIN_STATE_VERSION || plaintext``; ``run_id`` and ``seq`` are not bound.

        Raises
        ------
        MalformedMessageError
            The state exceeds the size cap.
        """
        if not isinstance(plaintext, bytes):
            raise TypeError("plaintext must be bytes")
        _check_size(len(plaintext))
        return bytes([PLAIN_STATE_VERSION]) + plaintext

    def open(self, blob: bytes, *, run_id: str, seq: int) -> bytes:
        """The state after the version byte.

        Raises
        ------
        StateTamperedError
            The blob is empty or has another version byte (e.g. a sealed Paillier blob).
        MalformedMessageError
            The blob exceeds the size cap.
        """
        if not isinstance(blob, bytes):
            raise TypeError("blob must be bytes")
        _check_size(len(blob) - 1)
        if not blob or blob[0] != PLAIN_STATE_VERSION:
            found = blob[0] if blob else "none"
            raise StateTamperedError(f"plain state blob has version {found}, expected "
                                     f"{PLAIN_STATE_VERSION}; run every node with the same "
                                     "aggregation setting and release")
        return blob[1:]


class PaillierStateSealer:
    """Paillier runs: AES-SIV under a key derived from the shared private key's primes.

    Every bank holding the run's Paillier private key derives the same key, so the banks'
    blobs of equal states are equal and each bank opens the others' blobs; the coordinator,
    holding only the public key, can neither read nor forge them.
    """

    def __init__(self, private_key: PaillierPrivateKey) -> None:
        p, q = sorted((int(private_key.p), int(private_key.q)))
        self._secret = b"".join(len(b).to_bytes(4, "big") + b for b in (_be(p), _be(q)))
        self._keys: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return "PaillierStateSealer(<key redacted>)"

    def _key(self, run_id: str) -> bytes:
        if run_id not in self._keys:
            self._keys[run_id] = derive_state_key(self._secret, run_id=run_id)
        return self._keys[run_id]

    def seal(self, plaintext: bytes, *, run_id: str, seq: int) -> bytes:
        """The AES-SIV blob of the state (see :func:`protocols.aggregation.shared_state.seal_state`)."""
        return seal_state(plaintext, key=self._key(run_id), run_id=run_id, seq=seq)

    def open(self, blob: bytes, *, run_id: str, seq: int) -> bytes:
        """The state, or :class:`StateTamperedError` for a changed, stale or foreign blob."""
        return open_state(blob, key=self._key(run_id), run_id=run_id, seq=seq)


def _be(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _check_size(size: int) -> None:
    if size > MAX_STATE_BYTES:
        raise MalformedMessageError(f"shared state of {size} bytes exceeds the "
                                    f"{MAX_STATE_BYTES}-byte cap; grow fewer nodes per step")


def blobs_agree(blobs: Sequence[bytes]) -> bool:
    """Whether the banks returned byte-identical state blobs (the coordinator's check)."""
    return len(blobs) > 0 and all(blob == blobs[0] for blob in blobs)


def bank_state_sealer(cfg: RunConfig, bank: int) -> StateSealer:
    """Bank ``bank``'s state sealer: AES-SIV when the run has a Paillier key, else plain.

    Raises
    ------
    ConfigError
        The key folder lacks this bank's copy of the Paillier key.
    """
    if summation_scheme(cfg.aggregation).needs_paillier_key:
        return PaillierStateSealer(load_bank_private_key(cfg.keys_dir, bank))
    return PlainStateSealer()
