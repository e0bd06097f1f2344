"""Wire messages of SecAgg+ and their codecs (``x_to_bytes`` / ``x_from_bytes``).

Every message starts with ``kind (1) | schema version (1) | round tag (16)``, so a message of
another step, version, run or round is refused before its body is read. Decoders read through
:class:`protocols.byte_reader.ByteReader`: every malformed input raises
:class:`~protocols.errors.MalformedMessageError` and nothing else.

Security
--------
Messages are not signed here: the coordinator routes them, and an honest-but-curious
coordinator is assumed (an active one that forges adverts needs the signatures and the
consistency round of Bell et al., see docs/security.md). Shares travel only inside
:class:`SealedShares` (AES-GCM under a pairwise X25519 key the coordinator does not hold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocols.byte_reader import ByteReader
from protocols.errors import MalformedMessageError
from protocols.secagg.config import TAG_BYTES
from protocols.secagg.shamir import Share, read_share, share_to_bytes

__all__ = ["KeyAdvert", "SealedShares", "UnmaskRequest", "UnmaskReply", "MaskedInput",
           "MESSAGE_SCHEMA_VERSION", "message_to_bytes", "message_from_bytes"]

MESSAGE_SCHEMA_VERSION = 1
KEY_BYTES = 32
MAX_SEALED_BYTES = 1024


def _check_common(sender: int, tag: bytes, version: int, what: str) -> None:
    if isinstance(sender, bool) or not isinstance(sender, int) or not 0 <= sender < 2**16:
        raise ValueError(f"{what}: party ids are ints in 0..65535")
    if not isinstance(tag, bytes) or len(tag) != TAG_BYTES:
        raise ValueError(f"{what}: the round tag must be {TAG_BYTES} bytes")
    if version != MESSAGE_SCHEMA_VERSION:
        raise ValueError(f"{what}: unknown schema_version {version}")


def _check_ids(ids: tuple[int, ...], what: str) -> None:
    if not isinstance(ids, tuple) or len(set(ids)) != len(ids) or any(
            isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 2**16 for i in ids):
        raise ValueError(f"{what}: party lists are tuples of distinct ints in 0..65535")


@dataclass(frozen=True, slots=True)
class KeyAdvert:
    """Round 0: a bank's two fresh X25519 public keys (share encryption, pairwise masks)."""

    sender: int
    tag: bytes
    cipher_public: bytes
    mask_public: bytes
    schema_version: int = MESSAGE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_common(self.sender, self.tag, self.schema_version, "KeyAdvert")
        for key in (self.cipher_public, self.mask_public):
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ValueError("KeyAdvert: public keys are 32 raw bytes")


@dataclass(frozen=True, slots=True)
class SealedShares:
    """Round 1: ``sender``'s shares of its two secrets for ``recipient``, AES-GCM sealed."""

    sender: int
    recipient: int
    tag: bytes
    sealed: bytes
    schema_version: int = MESSAGE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_common(self.sender, self.tag, self.schema_version, "SealedShares")
        _check_ids((self.recipient,), "SealedShares")
        if not isinstance(self.sealed, bytes) or not 28 <= len(self.sealed) <= MAX_SEALED_BYTES:
            raise ValueError("SealedShares: sealed payload of 28..1024 bytes expected")


@dataclass(frozen=True, slots=True)
class MaskedInput:
    """Round 2 (plain ring ``Z_{2**k}``): ``y_u = x_u + masks mod M`` as ``uint64``."""

    sender: int
    tag: bytes
    values: np.ndarray
    schema_version: int = MESSAGE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_common(self.sender, self.tag, self.schema_version, "MaskedInput")
        if not isinstance(self.values, np.ndarray) or self.values.dtype != np.uint64 or (
                self.values.ndim != 1 or self.values.size == 0):
            raise ValueError("MaskedInput: values must be a non-empty 1-D uint64 array")


@dataclass(frozen=True, slots=True)
class UnmaskRequest:
    """Round 3 (coordinator -> bank): which of its neighbours survived and which dropped."""

    recipient: int
    tag: bytes
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    schema_version: int = MESSAGE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_common(self.recipient, self.tag, self.schema_version, "UnmaskRequest")
        _check_ids(self.survivors, "UnmaskRequest")
        _check_ids(self.dropped, "UnmaskRequest")


@dataclass(frozen=True, slots=True)
class UnmaskReply:
    """Round 3 (bank -> coordinator): self-mask shares of survivors, key shares of dropouts."""

    sender: int
    tag: bytes
    seed_shares: tuple[tuple[int, Share], ...]
    key_shares: tuple[tuple[int, Share], ...]
    schema_version: int = MESSAGE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check_common(self.sender, self.tag, self.schema_version, "UnmaskReply")
        for group in (self.seed_shares, self.key_shares):
            _check_ids(tuple(owner for owner, _ in group), "UnmaskReply")
            if not all(isinstance(share, Share) for _, share in group):
                raise TypeError("UnmaskReply: shares must be Share objects")
        if {o for o, _ in self.seed_shares} & {o for o, _ in self.key_shares}:
            raise ValueError("UnmaskReply: a reply never holds both shares of one peer")


Message = KeyAdvert | SealedShares | MaskedInput | UnmaskRequest | UnmaskReply
_KINDS: dict[type, int] = {KeyAdvert: 1, SealedShares: 2, MaskedInput: 3, UnmaskRequest: 4,
                           UnmaskReply: 5}


def _ids_to_bytes(ids: tuple[int, ...]) -> bytes:
    return len(ids).to_bytes(2, "big") + b"".join(i.to_bytes(2, "big") for i in ids)


def _read_ids(reader: ByteReader) -> tuple[int, ...]:
    """A count, then that many big-endian 16-bit ids (read in one piece: a survivor list names
    every bank of a session)."""
    count = reader.uint(2)
    return tuple(np.frombuffer(reader.take(2 * count), dtype=">u2").tolist())


def survivors_to_bytes(ids: tuple[int, ...] | list[int]) -> bytes:
    """Canonical bytes of a survivor list (step 2b signs them): sorted, distinct 16-bit ids."""
    ordered = tuple(sorted({int(i) for i in ids}))
    _check_ids(ordered, "survivor list")
    return _ids_to_bytes(ordered)


def survivors_from_bytes(data: bytes) -> tuple[int, ...]:
    """The survivor list of :func:`survivors_to_bytes`; MalformedMessageError unless canonical."""
    reader = ByteReader(data, "survivor list")
    ids = _read_ids(reader)
    reader.finish()
    if list(ids) != sorted(set(ids)):
        raise MalformedMessageError("survivor list is not sorted and distinct")
    return ids


def _shares_to_bytes(group: tuple[tuple[int, Share], ...]) -> bytes:
    return len(group).to_bytes(2, "big") + b"".join(
        owner.to_bytes(2, "big") + share_to_bytes(share) for owner, share in group)


def _read_shares(reader: ByteReader) -> tuple[tuple[int, Share], ...]:
    return tuple((reader.uint(2), read_share(reader)) for _ in range(reader.uint(2)))


def message_to_bytes(message: Message) -> bytes:
    """Serialise any SecAgg+ message: ``kind | version | tag | party id | body``."""
    head = bytes([_KINDS[type(message)], message.schema_version]) + message.tag
    if isinstance(message, KeyAdvert):
        body = message.sender.to_bytes(2, "big") + message.cipher_public + message.mask_public
    elif isinstance(message, SealedShares):
        body = (message.sender.to_bytes(2, "big") + message.recipient.to_bytes(2, "big")
                + len(message.sealed).to_bytes(2, "big") + message.sealed)
    elif isinstance(message, MaskedInput):
        body = (message.sender.to_bytes(2, "big") + message.values.size.to_bytes(4, "big")
                + message.values.astype("<u8").tobytes())
    elif isinstance(message, UnmaskRequest):
        body = (message.recipient.to_bytes(2, "big") + _ids_to_bytes(message.survivors)
                + _ids_to_bytes(message.dropped))
    else:
        body = (message.sender.to_bytes(2, "big") + _shares_to_bytes(message.seed_shares)
                + _shares_to_bytes(message.key_shares))
    return head + body


def message_from_bytes(data: bytes) -> Message:
    """Inverse of :func:`message_to_bytes`; any malformed input -> ``MalformedMessageError``."""
    reader = ByteReader(data, "SecAgg+ message")
    kind, version, tag = reader.uint(1), reader.uint(1), reader.take(TAG_BYTES)
    party = reader.uint(2)
    try:
        message: Message
        if kind == 1:
            message = KeyAdvert(party, tag, reader.take(KEY_BYTES), reader.take(KEY_BYTES),
                                version)
        elif kind == 2:
            message = SealedShares(party, reader.uint(2), tag, reader.take(reader.uint(2)),
                                   version)
        elif kind == 3:
            values = np.frombuffer(reader.take(8 * reader.uint(4)), dtype="<u8")
            message = MaskedInput(party, tag, values.astype(np.uint64), version)
        elif kind == 4:
            message = UnmaskRequest(party, tag, _read_ids(reader), _read_ids(reader), version)
        elif kind == 5:
            message = UnmaskReply(party, tag, _read_shares(reader), _read_shares(reader),
                                  version)
        else:
            raise MalformedMessageError(f"unknown SecAgg+ message kind {kind}")
    except (ValueError, TypeError) as exc:
        raise MalformedMessageError(f"invalid SecAgg+ message ({exc}); the sender must "
                                    "re-send it") from exc
    reader.finish()
    return message
