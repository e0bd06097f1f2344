"""Encrypted aggregation of bank updates: the safe surface apps call.

Protocol
--------
1. Each bank ``k``: ``encrypt_update(values_k, public_key=pk, codec=codec, run_id, round)``
   -> :class:`EncryptedVector` (clip, quantise, pack, encrypt with fresh randomness).
2. Coordinator: validate each received vector
   (:func:`protocols.aggregation.validation.validate_encrypted_vector`), then
   ``encrypted_sum(vectors, public_key=pk, codec=codec)`` multiplies ciphertexts
   slot-wise modulo ``n**2``, which adds the packed plaintexts.
3. Each bank: ``decrypt_sum(total, private_key=sk, codec=codec, n_parties=N)`` -> the sum
   of the ``N`` updates as a numpy array (CRT decryption, process pool for large vectors).

Security
--------
Honest-but-curious coordinator that never holds the private key: it sees only
ciphertexts and public metadata, so it learns nothing about any update (DCR assumption,
see :mod:`protocols.paillier.fast`). The banks share one key pair, so a bank that obtains
another bank's individual ciphertext (e.g. by colluding with the coordinator) can decrypt
it: the scheme protects updates from the coordinator and outsiders, not from
coordinator + bank collusion. Decrypted sums reveal exactly the aggregate, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from gmpy2 import mpz
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.aggregation.encrypted_vector import EncryptedVector
from protocols.aggregation.packing import PackingCodec
from protocols.aggregation.validation import check_codec
from protocols.errors import (
    KeyMismatchError,
    PackingOverflowError,
    ProtocolError,
    SchemeMismatchError,
    StaleRoundError,
    VectorLengthError,
)
from protocols.paillier.decrypt import decrypt_raw_many
from protocols.paillier.fast import RandomizerTable, RandomSource, encrypt_packed
from protocols.paillier.keys import key_fingerprint

PlaintextMask = Callable[[list[int]], list[int]]
"""Maps packed plaintexts to masked ones modulo ``n`` (SecAgg+ under Paillier)."""

__all__ = ["EncryptedVector", "encrypt_update", "encrypted_sum", "decrypt_sum"]


def _check_codec_key(codec: PackingCodec, public_key: PaillierPublicKey) -> None:
    key_bits = int(public_key.n).bit_length()
    if codec.key_bits != key_bits:
        raise KeyMismatchError(f"codec is for {codec.key_bits}-bit keys but the public key has "
                               f"{key_bits} bits; agree the codec with the key size")


def encrypt_update(values: Sequence[float] | np.ndarray, *, public_key: PaillierPublicKey,
                   codec: PackingCodec, run_id: str, round: int,
                   rng: RandomSource | None = None, table: RandomizerTable | None = None,
                   short_exponent: bool = False,
                   rounding_rng: np.random.Generator | None = None,
                   mask: PlaintextMask | None = None) -> EncryptedVector:
    """Step 1 (bank): clip, quantise, pack and encrypt one update.

    Parameters
    ----------
    values : array-like, 1-D
        Flattened update (floats), or ints in ``[0, 2**bits - 1]`` for an integer codec.
    public_key : phe.paillier.PaillierPublicKey
        The banks' shared public key.
    codec : PackingCodec
        Agreed codec; ``codec.key_bits`` must equal the key size.
    run_id, round : str, int
        Bound into the message so the receiver can refuse replays and stragglers.
    rng : RandomSource, optional
        Encryption randomness; :class:`random.SystemRandom` by default (tests only inject).
    table : RandomizerTable, optional
        Precomputed fixed-base table; the cached one for the key by default.
    short_exponent : bool
        Opt-in faster mode resting on the short-exponent assumption
        (:mod:`protocols.paillier.fast`).
    rounding_rng : numpy.random.Generator, optional
        Enables unbiased stochastic rounding.
    mask : callable, optional
        SecAgg+ under Paillier: maps the packed plaintexts to masked ones (modulo ``n``)
        before encryption (:mod:`protocols.secagg.paillier_masking`).

    Raises
    ------
    PackingOverflowError
        Non-finite floats, or integers outside the codec range.
    KeyMismatchError
        Codec and key sizes differ.
    """
    _check_codec_key(codec, public_key)
    plaintexts = codec.pack(values, rounding_rng=rounding_rng)
    if mask is not None:
        plaintexts = mask(plaintexts)
    ciphertexts = encrypt_packed(plaintexts, public_key, rng=rng, table=table,
                                 short_exponent=short_exponent)
    return EncryptedVector(scheme=codec.scheme_id, key_fingerprint=key_fingerprint(public_key),
                           codec_digest=codec.digest, run_id=run_id, round=round,
                           length=int(np.asarray(values).shape[0]),
                           ciphertexts=tuple(ciphertexts), n_parties=1)


def _check_compatible(vectors: Sequence[EncryptedVector], fingerprint: str) -> None:
    first = vectors[0]
    for idx, vec in enumerate(vectors):
        if not isinstance(vec, EncryptedVector):
            raise TypeError(f"vectors[{idx}] is not an EncryptedVector")
        if vec.key_fingerprint != fingerprint:
            raise KeyMismatchError(f"vectors[{idx}] was encrypted under key "
                                   f"{vec.key_fingerprint[:16]}..., not {fingerprint[:16]}...")
        if (vec.scheme, vec.codec_digest) != (first.scheme, first.codec_digest):
            raise SchemeMismatchError(f"vectors[{idx}] uses scheme {vec.scheme}/"
                                      f"{vec.codec_digest}, vectors[0] {first.scheme}/"
                                      f"{first.codec_digest}")
        if (vec.run_id, vec.round) != (first.run_id, first.round):
            raise StaleRoundError(f"vectors[{idx}] is from run {vec.run_id!r} round "
                                  f"{vec.round}, vectors[0] from {first.run_id!r} round "
                                  f"{first.round}")
        if (vec.length, len(vec.ciphertexts)) != (first.length, len(first.ciphertexts)):
            raise VectorLengthError(f"vectors[{idx}] has {vec.length} values, vectors[0] "
                                    f"{first.length}")


def encrypted_sum(vectors: Sequence[EncryptedVector], *, public_key: PaillierPublicKey,
                  codec: PackingCodec) -> EncryptedVector:
    """Step 2 (coordinator): homomorphic sum, ``prod_k c_k mod n**2`` per ciphertext.

    Validate each vector on receipt first (ciphertexts in ``Z*_{n**2}``, run, round); this
    function checks that all vectors agree with each other, the key and the codec.

    Raises
    ------
    KeyMismatchError, SchemeMismatchError, StaleRoundError, VectorLengthError
        Vectors that cannot be summed together.
    PackingOverflowError
        More summed contributions than ``codec.max_parties``: slots would carry.
    """
    if not vectors:
        raise ProtocolError("encrypted_sum needs at least one vector")
    _check_codec_key(codec, public_key)
    _check_compatible(vectors, key_fingerprint(public_key))
    n_parties = sum(vec.n_parties for vec in vectors)
    if n_parties > codec.max_parties:
        raise PackingOverflowError(f"summing {n_parties} contributions exceeds the codec "
                                   f"headroom of {codec.max_parties} parties; refusing to wrap")
    for vec in vectors:
        check_codec(vec, codec)
    n = mpz(public_key.n)
    nsq = n * n
    totals = [mpz(c) for c in vectors[0].ciphertexts]
    for vec in vectors[1:]:
        totals = [t * c % nsq for t, c in zip(totals, vec.ciphertexts, strict=True)]
    first = vectors[0]
    return EncryptedVector(scheme=first.scheme, key_fingerprint=first.key_fingerprint,
                           codec_digest=first.codec_digest, run_id=first.run_id,
                           round=first.round, length=first.length,
                           ciphertexts=tuple(int(t) for t in totals), n_parties=n_parties)


def decrypt_sum(vector: EncryptedVector, *, private_key: PaillierPrivateKey,
                codec: PackingCodec, n_parties: int | None = None,
                processes: int = 2, memo: bool = False) -> np.ndarray:
    """Step 3 (bank): decrypt and decode the sum of ``n_parties`` updates.

    Parameters
    ----------
    vector : EncryptedVector
        Output of :func:`encrypted_sum` (validated on receipt).
    private_key : phe.paillier.PaillierPrivateKey
        The banks' shared private key.
    codec : PackingCodec
        The agreed codec.
    n_parties : int, optional
        Number of contributions the bank expects; must equal ``vector.n_parties``.
    processes : int
        Worker processes for large vectors (small ones stay in-process).
    memo : bool
        Answer ciphertexts this process opened before from memory (a sum every bank of a
        process opens, or one bank opens twice; :mod:`protocols.paillier.decrypt`). Same
        plaintexts, same checks.

    Returns
    -------
    numpy.ndarray
        ``float64`` sums, or exact ``int64`` sums for an integer codec.

    Raises
    ------
    KeyMismatchError
        The vector is for another key.
    ProtocolError
        ``n_parties`` disagrees with the vector.
    PackingOverflowError
        A slot sum is impossible for ``n_parties`` honest contributions.
    """
    public_key = private_key.public_key
    _check_codec_key(codec, public_key)
    if vector.key_fingerprint != key_fingerprint(public_key):
        raise KeyMismatchError("this sum was encrypted under another key; load the key whose "
                               f"fingerprint starts {vector.key_fingerprint[:16]}")
    check_codec(vector, codec)
    if n_parties is None:
        n_parties = vector.n_parties
    elif n_parties != vector.n_parties:
        raise ProtocolError(f"expected a sum of {n_parties} updates but the vector holds "
                            f"{vector.n_parties}; check which banks took part in the round")
    plaintexts = decrypt_raw_many(vector.ciphertexts, private_key, processes=processes,
                                  memo=memo)
    return codec.unpack_sum(plaintexts, vector.length, n_parties)
