"""Checks a receiver runs on every :class:`EncryptedVector` before using it.

Protocol step
-------------
The coordinator validates each bank's vector on receipt (before :func:`encrypted_sum`),
and each bank validates the summed vector before decrypting it.

Security
--------
Metadata is not authenticated, so it is checked against what the receiver expects: the
agreed public key (fingerprint), run and round (against replays and stragglers), length
and codec. Each ciphertext must lie in ``Z*_{n**2}``: a value sharing a factor with ``n``
would leak the factorisation to whoever computes a gcd, and zero or out-of-range values
could make the sum undecryptable.
"""

from __future__ import annotations

import gmpy2
from gmpy2 import mpz
from phe.paillier import PaillierPublicKey

from protocols.aggregation.encrypted_vector import EncryptedVector
from protocols.aggregation.packing import PackingCodec
from protocols.errors import (
    InvalidCiphertextError,
    KeyMismatchError,
    PackingOverflowError,
    SchemeMismatchError,
    StaleRoundError,
    VectorLengthError,
)
from protocols.paillier.keys import key_fingerprint

__all__ = ["validate_encrypted_vector", "check_ciphertexts", "check_codec"]


def check_ciphertexts(ciphertexts: tuple[int, ...], public_key: PaillierPublicKey) -> None:
    """Raise :class:`InvalidCiphertextError` unless each ``c`` is in ``Z*_{n**2}``.

    That is ``0 < c < n**2`` and ``gcd(c, n) == 1``.
    """
    n = mpz(public_key.n)
    nsq = n * n
    for idx, c in enumerate(ciphertexts):
        if not 0 < c < nsq:
            raise InvalidCiphertextError(f"ciphertext {idx} is outside (0, n^2); drop this "
                                         "vector and ask the sender to re-encrypt")
        if gmpy2.gcd(mpz(c), n) != 1:
            raise InvalidCiphertextError(f"ciphertext {idx} is not a unit mod n^2; drop this "
                                         "vector and report the sender")


def check_codec(vector: EncryptedVector, codec: PackingCodec) -> None:
    """Scheme id, codec digest and ciphertext count must match ``codec``."""
    if vector.scheme != codec.scheme_id or vector.codec_digest != codec.digest:
        raise SchemeMismatchError(
            f"vector uses scheme {vector.scheme} / codec {vector.codec_digest}, expected "
            f"{codec.scheme_id} / {codec.digest}; all banks must use the agreed codec")
    expected = codec.n_ciphertexts(vector.length)
    if len(vector.ciphertexts) != expected:
        raise VectorLengthError(f"vector of {vector.length} values carries "
                                f"{len(vector.ciphertexts)} ciphertexts, expected {expected}")
    if vector.n_parties > codec.max_parties:
        raise PackingOverflowError(f"vector sums {vector.n_parties} parties, more than the "
                                   f"codec headroom of {codec.max_parties}")


def _check_key(vector: EncryptedVector, public_key: PaillierPublicKey) -> None:
    fingerprint = key_fingerprint(public_key)
    if vector.key_fingerprint != fingerprint:
        raise KeyMismatchError(f"vector was encrypted under key {vector.key_fingerprint[:16]}..., "
                               f"expected {fingerprint[:16]}...; the sender uses another key")
    if vector.key_bits != int(public_key.n).bit_length():
        raise KeyMismatchError(f"scheme {vector.scheme} names {vector.key_bits}-bit keys, "
                               f"but the public key has {int(public_key.n).bit_length()} bits")


def validate_encrypted_vector(vector: EncryptedVector, *, public_key: PaillierPublicKey,
                              expected_length: int, run_id: str, round: int,
                              codec: PackingCodec | None = None) -> EncryptedVector:
    """Check a received vector against the receiver's expectations; return it unchanged.

    Raises
    ------
    KeyMismatchError
        Another key fingerprint or key size.
    StaleRoundError
        Another run id or round.
    VectorLengthError
        Another logical length (or, with ``codec``, ciphertext count).
    SchemeMismatchError
        With ``codec``: another scheme id or codec parameters.
    PackingOverflowError
        With ``codec``: more summed parties than its headroom.
    InvalidCiphertextError
        A ciphertext outside ``Z*_{n**2}``.
    """
    _check_key(vector, public_key)
    if vector.run_id != run_id or vector.round != round:
        raise StaleRoundError(f"vector belongs to run {vector.run_id!r} round {vector.round}, "
                              f"expected run {run_id!r} round {round}; dropping it")
    if vector.length != expected_length:
        raise VectorLengthError(f"vector has {vector.length} values, expected {expected_length}")
    if codec is not None:
        check_codec(vector, codec)
    check_ciphertexts(vector.ciphertexts, public_key)
    return vector
