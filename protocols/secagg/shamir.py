"""Shamir t-of-n secret sharing of 32-byte secrets over a 257-bit prime field.

Scheme
------
A secret ``s`` (32 bytes, read as an integer ``< 2**256``) is the constant term of a random
polynomial ``f(x) = s + a_1 x + ... + a_{t-1} x**(t-1)`` over ``GF(P)`` with
``P = 2**256 + 297`` (the smallest prime above ``2**256``, so every 32-byte secret is a field
element without reduction). Share ``i`` (``i = 1..n``) is ``(i, f(i))``. Any ``t`` shares give
``s = f(0)`` by Lagrange interpolation at 0; ``t - 1`` shares are independent uniform field
elements whatever ``s`` is (perfect secrecy, information-theoretic).

Security
--------
The coefficients come from ``rng`` (:class:`random.SystemRandom` by default); a predictable
``rng`` breaks secrecy, so tests alone inject a seeded one. The scheme does not authenticate
shares: a wrong share silently yields a wrong secret. In SecAgg+ shares travel inside AES-GCM
envelopes between two banks (:mod:`protocols.secagg.client`), and a wrong seed shows up as a
wrong sum, not as a leak.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.byte_reader import ByteReader
from protocols.errors import MalformedMessageError, SecretSharingError

__all__ = ["PRIME", "SECRET_BYTES", "Share", "split_secret", "combine_shares",
           "share_to_bytes", "share_from_bytes"]

PRIME = 2**256 + 297
SECRET_BYTES = 32
SHARE_SCHEMA_VERSION = 1
MAX_SHARES = 2**16 - 1
_VALUE_BYTES = 33
SHARE_BYTES = 1 + 2 + _VALUE_BYTES


@dataclass(frozen=True, slots=True)
class Share:
    """One point ``(index, f(index))`` of the sharing polynomial."""

    index: int
    value: int
    schema_version: int = SHARE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("index", "value", "schema_version"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise TypeError(f"Share.{name} must be an int")
        if self.schema_version != SHARE_SCHEMA_VERSION:
            raise ValueError(f"unknown Share schema_version {self.schema_version}")
        if not 1 <= self.index <= MAX_SHARES:
            raise ValueError(f"share index must be in 1..{MAX_SHARES}")
        if not 0 <= self.value < PRIME:
            raise ValueError("share value must be a field element (0 <= value < PRIME)")


def split_secret(secret: bytes, *, threshold: int, indices: Sequence[int],
                 rng: random.Random | None = None) -> tuple[Share, ...]:
    """Split a 32-byte ``secret`` into one share per index (``f(i)`` for ``i`` in ``indices``);
    any ``threshold`` of them recover it.

    Raises
    ------
    ValueError
        ``secret`` is not 32 bytes, indices repeat or leave ``1..65535``, or not
        ``1 <= threshold <= len(indices)``.
    """
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise ValueError(f"the secret must be {SECRET_BYTES} bytes")
    if len(set(indices)) != len(indices) or not all(1 <= i <= MAX_SHARES for i in indices):
        raise ValueError(f"share indices must be distinct and in 1..{MAX_SHARES}")
    if not 1 <= threshold <= len(indices):
        raise ValueError("need 1 <= threshold <= number of shares")
    rng = rng if rng is not None else random.SystemRandom()
    coefficients = [int.from_bytes(secret, "big")]
    coefficients += [rng.randrange(PRIME) for _ in range(threshold - 1)]
    return tuple(Share(index=x, value=_evaluate(coefficients, x)) for x in indices)


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    acc = 0
    for coefficient in reversed(coefficients):
        acc = (acc * x + coefficient) % PRIME
    return acc


def combine_shares(shares: Sequence[Share], *, threshold: int) -> bytes:
    """Recover the 32-byte secret from at least ``threshold`` shares (the first ``threshold``
    distinct indices are used).

    Raises
    ------
    SecretSharingError
        Fewer than ``threshold`` distinct indices, one index with two values, or shares that
        interpolate to a value above ``2**256`` (not a sharing of a 32-byte secret).
    """
    points: dict[int, int] = {}
    for share in shares:
        if points.setdefault(share.index, share.value) != share.value:
            raise SecretSharingError(f"two different shares carry index {share.index}; "
                                     "discard the round's shares and re-run it")
    if len(points) < threshold:
        raise SecretSharingError(f"{len(points)} distinct shares, {threshold} needed; wait for "
                                 "more parties to reveal theirs or abort the round")
    chosen = sorted(points.items())[:threshold]
    secret = 0
    for i, (x_i, y_i) in enumerate(chosen):
        numerator, denominator = 1, 1
        for j, (x_j, _) in enumerate(chosen):
            if i != j:
                numerator = numerator * x_j % PRIME
                denominator = denominator * (x_j - x_i) % PRIME
        secret = (secret + y_i * numerator * pow(denominator, -1, PRIME)) % PRIME
    if secret >= 2 ** (8 * SECRET_BYTES):
        raise SecretSharingError("the shares interpolate to no 32-byte secret (wrong or "
                                 "tampered shares)")
    return secret.to_bytes(SECRET_BYTES, "big")


def share_to_bytes(share: Share) -> bytes:
    """``version (1) | index (2) | value (33)``, big-endian."""
    return (bytes([share.schema_version]) + share.index.to_bytes(2, "big")
            + share.value.to_bytes(_VALUE_BYTES, "big"))


def share_from_bytes(data: bytes) -> Share:
    """Inverse of :func:`share_to_bytes`; :class:`MalformedMessageError` on any bad input."""
    reader = ByteReader(data, "Shamir share")
    share = read_share(reader)
    reader.finish()
    return share


def read_share(reader: ByteReader) -> Share:
    """Read one share from ``reader`` (for the message codecs)."""
    version, index, value = reader.uint(1), reader.uint(2), reader.uint(_VALUE_BYTES)
    try:
        return Share(index=index, value=value, schema_version=version)
    except ValueError as exc:
        raise MalformedMessageError(f"{reader.what}: invalid share ({exc})") from exc
