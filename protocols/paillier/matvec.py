"""Homomorphic maths on Paillier ciphertexts: ``X^T [[v]]`` by buckets, plain adds, packing.

Maths
-----
For ciphertexts ``[[v_i]]`` under one key and small signed integers ``x_i``,
``[[sum_i x_i v_i]] = prod_i [[v_i]]**x_i mod n**2``. One exponentiation per row is what
makes this slow; when the ``x_i`` take few distinct values (quantised features take at
most 1,281) the *bucket method* needs only multiplications:

    B_v = prod_{i: x_i = v} [[v_i]]                (one multiplication per row)
    sum_v v * B_v = sum_j (v_j - v_{j-1}) * R_j     (R_j = B_{v_j} + ... + B_{v_k})

for the distinct values ``0 < v_1 < ... < v_k`` (running products, ~2k multiplications);
negative ``x_i`` go into a second set of buckets whose weighted sum is subtracted with one
modular inverse. Cost per column: ``rows + 2 * buckets`` multiplications mod ``n**2``.

:func:`pack_ciphertexts` puts several results into one plaintext (Horner's rule on the
ciphertexts), so the key holder decrypts fewer ciphertexts.

Security
--------
Pure arithmetic on public ciphertexts: it reveals nothing and adds no randomness. The
result's randomness is a function of the inputs' randomness and ``x``, which the key holder
can recover with the private key: re-randomise (or add a fresh encryption) before the
result leaves the node, as :mod:`protocols.vertical_lr.steps` does.
"""

from __future__ import annotations

import gmpy2
import numpy as np
from gmpy2 import mpz
from phe.paillier import PaillierPublicKey

__all__ = ["encrypted_matvec", "add_plaintexts", "pack_ciphertexts"]


def _bucket_products(column: list[int], cts: list[mpz],
                     nsq: mpz) -> tuple[dict[int, mpz], dict[int, mpz]]:
    """``B_v = prod_{i: x_i = v} c_i`` for ``v > 0`` and ``v < 0`` (keyed by ``|v|``)."""
    pos: dict[int, mpz] = {}
    neg: dict[int, mpz] = {}
    for value, c in zip(column, cts, strict=True):
        if value == 0:
            continue
        buckets, key = (pos, value) if value > 0 else (neg, -value)
        prev = buckets.get(key)
        buckets[key] = c if prev is None else prev * c % nsq
    return pos, neg


def _weighted_bucket_sum(buckets: dict[int, mpz], nsq: mpz) -> mpz:
    """``[[sum_v v * B_v]]`` with running products.

    For the distinct values ``v_1 < ... < v_k``: ``sum_j v_j B_j = sum_j (v_j - v_{j-1})
    R_j`` with the suffix products ``R_j = B_j + ... + B_k`` (``v_0 = 0``), so about ``2k``
    multiplications (plus a short exponentiation for each gap larger than one).
    """
    values = sorted(buckets, reverse=True)
    total, suffix = mpz(1), mpz(1)
    for idx, value in enumerate(values):
        suffix = suffix * buckets[value] % nsq
        gap = value - (values[idx + 1] if idx + 1 < len(values) else 0)
        step = suffix if gap == 1 else gmpy2.powmod(suffix, gap, nsq)
        total = total * step % nsq
    return total


def encrypted_matvec(xq: np.ndarray, ciphertexts: list[int] | tuple[int, ...],
                     public_key: PaillierPublicKey) -> list[int]:
    """``[[xq^T v]]`` from ``[[v_i]]`` and small signed integers ``xq`` (bucket method).

    Per column: one modular multiplication per row with ``xq != 0`` (into the bucket of
    ``|xq|``, separately for both signs), ~2 per distinct ``|xq|`` to weight the buckets,
    and one inverse for the negative part, instead of one exponentiation per row.

    Parameters
    ----------
    xq : numpy.ndarray
        Integer matrix (rows x columns), ``|xq| <= FEATURE_LIMIT`` recommended.
    ciphertexts : sequence of int
        ``[[v_i]]`` under ``public_key``, one per row (validated by the caller).
    public_key : phe.paillier.PaillierPublicKey
        Key of the ciphertexts.

    Returns
    -------
    list of int
        One ciphertext per column, of ``sum_i xq_ij v_i mod n``.
    """
    matrix = np.asarray(xq, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != len(ciphertexts):
        raise ValueError(f"matrix of shape {matrix.shape} for {len(ciphertexts)} ciphertexts")
    nsq = mpz(public_key.nsquare)
    cts = [mpz(c) for c in ciphertexts]
    out = []
    for column in matrix.T.tolist():
        pos, neg = _bucket_products(column, cts, nsq)
        total = _weighted_bucket_sum(pos, nsq)
        if neg:
            total = total * gmpy2.invert(_weighted_bucket_sum(neg, nsq), nsq) % nsq
        out.append(int(total))
    return out


def add_plaintexts(ciphertexts: list[int], plaintexts: list[int],
                   public_key: PaillierPublicKey) -> list[int]:
    """``[[a + m]] = [[a]] * (1 + m n) mod n**2`` (no randomness added)."""
    n = mpz(public_key.n)
    nsq = n * n
    return [int(mpz(c) * (1 + (mpz(m) % n) * n) % nsq) for c, m in zip(ciphertexts, plaintexts, strict=True)]


def pack_ciphertexts(ciphertexts: list[int], slot_bits: int, per: int,
                     public_key: PaillierPublicKey) -> list[int]:
    """``[[sum_k m_k * 2**(slot_bits * k)]]`` for each group of ``per`` ciphertexts.

    Horner's rule, ``acc <- acc**(2**slot_bits) * [[m_k]]`` from the last value down: about
    ``slot_bits`` squarings per value. The caller must make sure the slots cannot carry
    (non-negative slot values below ``2**slot_bits``, e.g. by adding an offset and a mask).
    """
    if per < 1 or slot_bits < 1:
        raise ValueError("per and slot_bits must be positive")
    nsq = mpz(public_key.nsquare)
    shift = mpz(1) << slot_bits
    out = []
    for start in range(0, len(ciphertexts), per):
        group = ciphertexts[start:start + per]
        acc = mpz(group[-1])
        for c in reversed(group[:-1]):
            acc = gmpy2.powmod(acc, shift, nsq) * c % nsq
        out.append(int(acc))
    return out
