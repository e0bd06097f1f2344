"""SecAgg+ masks under packed Paillier: no single ciphertext decrypts to an update.

Protocol
--------
With the shared Paillier key ``(n, sk)`` and a :class:`~protocols.secagg.config.MaskingConfig`
whose modulus is ``n`` and whose length is the number of packed plaintexts:

1. bank ``u``: ``encrypt_masked_update`` packs its update into plaintexts ``m_u`` (as
   :func:`protocols.aggregation.secure_aggregation.encrypt_update` does), masks them,
   ``y_u = m_u + PRG(b_u) ± PRG(s_uv) mod n`` (:meth:`MaskingClient.mask`), and encrypts
   ``y_u`` with fresh randomness;
2. coordinator: ``encrypted_sum`` multiplies the ciphertexts, so the product encrypts
   ``sum y_u = sum m_u + R (mod n)``; after the unmask round it computes ``R``
   (:func:`protocols.secagg.unmasking.residual_mask`) and ``remove_masks`` multiplies each
   ciphertext by ``(1 + (n - R_i) n)``, an encryption of ``-R_i``, leaving an encryption of
   the exact packed sum;
3. banks: :func:`~protocols.aggregation.secure_aggregation.decrypt_sum` as before.

Security
--------
Against the coordinator alone, as without masks (it never decrypts). Against the coordinator
plus up to ``t - 1`` banks *holding the private key*: a bank that decrypts another bank's single
ciphertext reads ``y_u``, which is ``m_u`` plus a mask uniform modulo ``n`` (the pairwise masks
with honest neighbours stay secret, see :mod:`protocols.secagg.client`), so it learns nothing
about ``m_u``; only the product over all survivors, with ``R`` removed, opens to a sum. A bank
is therefore no decryption oracle for single updates. ``remove_masks`` is deterministic and
public (``R`` is known to the coordinator anyway), so it adds no leakage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gmpy2 import mpz
from phe.paillier import PaillierPublicKey

from protocols.aggregation.encrypted_vector import EncryptedVector
from protocols.aggregation.packing import PackingCodec
from protocols.errors import KeyMismatchError, VectorLengthError
from protocols.paillier.fast import RandomizerTable, RandomSource, encrypt_packed
from protocols.paillier.keys import key_fingerprint
from protocols.secagg.client import MaskingClient
from protocols.secagg.messages import SealedShares

__all__ = ["encrypt_masked_update", "remove_masks", "remove_residual"]


def _check_config(client: MaskingClient, public_key: PaillierPublicKey, n_plaintexts: int,
                  ) -> None:
    if client.config.modulus != int(public_key.n):
        raise KeyMismatchError("the masking ring is not Z_n of this Paillier key; agree the "
                               "MaskingConfig with the key")
    if client.config.length != n_plaintexts:
        raise VectorLengthError(f"the masking config is for {client.config.length} "
                                f"plaintexts, the update packs into {n_plaintexts}")


def encrypt_masked_update(values: Sequence[float] | np.ndarray, *, client: MaskingClient,
                          sealed: Sequence[SealedShares], public_key: PaillierPublicKey,
                          codec: PackingCodec, rng: RandomSource | None = None,
                          table: RandomizerTable | None = None,
                          rounding_rng: np.random.Generator | None = None) -> EncryptedVector:
    """Step 1 (bank): pack, mask modulo ``n`` and encrypt one update.

    Parameters
    ----------
    values : array-like, 1-D
        The update (floats, or ints for an integer codec).
    client : MaskingClient
        This bank's masking state after :meth:`MaskingClient.share_keys`.
    sealed : sequence of SealedShares
        The share envelopes the coordinator routed to this bank.
    public_key, codec, rng, table, rounding_rng
        As for :func:`protocols.aggregation.secure_aggregation.encrypt_update`.

    Returns
    -------
    EncryptedVector
        Encryption of the masked plaintexts; alone it decrypts to uniform noise modulo ``n``.
    """
    plaintexts = codec.pack(values, rounding_rng=rounding_rng)
    _check_config(client, public_key, len(plaintexts))
    masked = [int(y) for y in client.mask(plaintexts, sealed)]
    ciphertexts = encrypt_packed(masked, public_key, rng=rng, table=table)
    config = client.config
    return EncryptedVector(scheme=codec.scheme_id, key_fingerprint=key_fingerprint(public_key),
                           codec_digest=codec.digest, run_id=config.run_id, round=config.round,
                           length=int(np.asarray(values).shape[0]),
                           ciphertexts=tuple(ciphertexts), n_parties=1)


def remove_masks(total: EncryptedVector, residual: np.ndarray, *,
                 public_key: PaillierPublicKey) -> EncryptedVector:
    """Step 2 (coordinator): ``c_i * (1 + (n - R_i) n) mod n**2``, i.e. subtract ``R``.

    Raises
    ------
    KeyMismatchError
        ``total`` is under another key.
    VectorLengthError
        ``residual`` has another length than the ciphertexts.
    """
    if total.key_fingerprint != key_fingerprint(public_key):
        raise KeyMismatchError("the summed vector is under another key")
    if len(residual) != len(total.ciphertexts):
        raise VectorLengthError(f"residual mask has {len(residual)} elements for "
                                f"{len(total.ciphertexts)} ciphertexts")
    cleared = remove_residual(total.ciphertexts, residual, public_key=public_key)
    return EncryptedVector(scheme=total.scheme, key_fingerprint=total.key_fingerprint,
                           codec_digest=total.codec_digest, run_id=total.run_id,
                           round=total.round, length=total.length, ciphertexts=cleared,
                           n_parties=total.n_parties)


def remove_residual(ciphertexts: Sequence[int], residual: Sequence[int] | np.ndarray, *,
                    public_key: PaillierPublicKey) -> tuple[int, ...]:
    """Step 2 over raw ciphertexts (packed or one value each): ``c_i * (1 + (n - R_i) n)``.

    Raises
    ------
    VectorLengthError
        ``residual`` has another length than ``ciphertexts``.
    """
    if len(residual) != len(ciphertexts):
        raise VectorLengthError(f"residual mask has {len(residual)} elements for "
                                f"{len(ciphertexts)} ciphertexts")
    n = mpz(public_key.n)
    nsq = n * n
    return tuple(int(mpz(c) * (1 + ((-int(r)) % n) * n) % nsq)
                 for c, r in zip(ciphertexts, residual, strict=True))
