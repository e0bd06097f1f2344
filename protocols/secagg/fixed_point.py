"""Exact signed fixed point in limbs of the plain SecAgg ring ``Z_{2**64}``.

Scheme
------
A value ``v`` becomes ``x = round(v * 2**f) + 2**(W - 1)`` (``W = LIMBS * LIMB_BITS`` bits,
``|round(v * 2**f)| < 2**(W - 1)``), split into ``LIMBS`` little-endian limbs of ``LIMB_BITS``
bits, each one element of ``Z_{2**64}``. A limb is below ``2**48``, so the sum of up to
``2**16`` banks' limbs never wraps modulo ``2**64``: once the masks are removed, the limb sums
rebuild ``sum x`` exactly as a Python integer, and ``(sum x - parties * 2**(W - 1)) * 2**-f``
is the exact sum of the fixed-point values. Statistics whose sums of squares exceed ``2**64``
fit (``W = 144``).

Security
--------
Encoding only; confidentiality comes from the masks added to every limb
(:mod:`protocols.secagg.client`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from protocols.errors import PackingOverflowError, VectorLengthError

__all__ = ["LIMBS", "LIMB_BITS", "FRAC_BITS", "MAX_PARTIES", "encode_limbs", "decode_limb_sum",
           "limb_count"]

LIMBS = 3
LIMB_BITS = 48
FRAC_BITS = 32
MAX_PARTIES = 2**16
_WIDTH = LIMBS * LIMB_BITS
_OFFSET = 1 << (_WIDTH - 1)
_LIMB_MASK = (1 << LIMB_BITS) - 1


def limb_count(n_values: int) -> int:
    """Ring elements that carry ``n_values`` values."""
    return LIMBS * n_values


def encode_limbs(values: Sequence[float] | np.ndarray, *, frac_bits: int = FRAC_BITS,
                 ) -> np.ndarray:
    """``uint64`` limbs of each value (value ``i`` at ``[LIMBS*i, LIMBS*(i+1))``).

    Raises
    ------
    PackingOverflowError
        A value is not finite or does not fit ``W - 1`` bits after scaling.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    fast = _encode_small(arr, frac_bits)
    if fast is not None:
        return fast
    limbs: list[int] = []
    for i, value in enumerate(arr.tolist()):  # Python floats and ints: exact, no numpy scalars
        if not math.isfinite(value):
            raise PackingOverflowError(f"value {i} is not finite; cannot mask it.")
        scaled = int(round(value * (1 << frac_bits)))
        if abs(scaled) >= _OFFSET:
            raise PackingOverflowError(f"value {i} is too large for the {_WIDTH}-bit masked "
                                       "fixed point.")
        x = scaled + _OFFSET
        limbs.extend((x >> (LIMB_BITS * j)) & _LIMB_MASK for j in range(LIMBS))
    return np.array(limbs, dtype=np.uint64)


_SMALL = float(2**62)


def _encode_small(arr: np.ndarray, frac_bits: int) -> np.ndarray | None:
    """:func:`encode_limbs` in numpy when every scaled value is finite and below ``2**62`` in
    magnitude (weights, gradients, counts); None otherwise (the exact Python loop decides).

    Exactly the loop's integers: ``v * 2**f`` is exact in float64, ``np.rint`` rounds half to
    even as Python's ``round`` does, and below ``2**62`` the result is an exact ``int64`` ``s``.
    ``x = s + 2**(W - 1)`` then has the low 96 bits of ``s`` in two's complement (``s & M``,
    ``(s >> 48) & M``, arithmetic shift) as its first two limbs and ``2**47`` (``s >= 0``) or
    ``2**47 - 1`` (``s < 0``, the borrow) as its third."""
    if frac_bits > 62:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.rint(arr * float(1 << frac_bits))
    if not bool(np.all(np.abs(scaled) < _SMALL)):  # also False for NaN and infinities
        return None
    s = scaled.astype(np.int64)
    out = np.empty((s.size, LIMBS), dtype=np.uint64)
    mask = np.int64(_LIMB_MASK)
    out[:, 0] = (s & mask).astype(np.uint64)
    out[:, 1] = ((s >> LIMB_BITS) & mask).astype(np.uint64)
    out[:, 2] = np.where(s < 0, np.uint64((1 << (LIMB_BITS - 1)) - 1),
                         np.uint64(1 << (LIMB_BITS - 1)))
    return out.ravel()


def _decode_small(words: np.ndarray, parties: int, frac_bits: int) -> np.ndarray | None:
    """:func:`decode_limb_sum` in numpy when every total ``T = sum x - parties * 2**(W - 1)``
    is below ``2**96`` in magnitude (and ``parties <= 2**15``); None otherwise.

    The same floats as the exact loop's ``T / 2**f`` (a correctly rounded division): the
    carries are moved up exactly in ``uint64`` (``r0, r1 < 2**48``), the top part
    ``d = l2 - parties * 2**47`` is then 0 or -1, so ``T = (r1 + 2**48 d) * 2**48 + r0`` is
    the sum of two exactly representable floats, rounded once; the division by ``2**f`` is
    exact."""
    if parties > 2**15 or frac_bits > 64:
        return None
    limbs = words.reshape(-1, LIMBS)
    if limbs.size and int(limbs[:, 1:].max()) >= 2**63:  # not an honest sum: the exact loop
        return None
    mask = np.uint64(_LIMB_MASK)
    shift = np.uint64(LIMB_BITS)
    r0 = limbs[:, 0] & mask
    carry = limbs[:, 1] + (limbs[:, 0] >> shift)  # below 2**63 + 2**16: no wrap
    r1 = carry & mask
    top = (limbs[:, 2] + (carry >> shift)).astype(np.int64) - np.int64(parties << (LIMB_BITS - 1))
    if not bool(np.all((top == 0) | (top == -1))):
        return None
    high = (r1.astype(np.float64) + top.astype(np.float64) * float(1 << LIMB_BITS)) \
        * float(1 << LIMB_BITS)
    total: np.ndarray = (high + r0.astype(np.float64)) / float(1 << frac_bits)
    return total


def decode_limb_sum(limb_sums: np.ndarray, *, parties: int, frac_bits: int = FRAC_BITS,
                    ) -> np.ndarray:
    """The float64 sums of ``parties`` encoded vectors from their limb-wise sums.

    Raises
    ------
    VectorLengthError
        The length is not a multiple of ``LIMBS``.
    PackingOverflowError
        ``parties`` outside ``1..MAX_PARTIES``.
    """
    words = np.asarray(limb_sums, dtype=np.uint64).ravel()
    if words.size % LIMBS:
        raise VectorLengthError(f"{words.size} limbs are not a multiple of {LIMBS}")
    if not 1 <= parties <= MAX_PARTIES:
        raise PackingOverflowError(f"a masked sum of {parties} parties cannot be decoded")
    fast = _decode_small(words, parties, frac_bits)
    if fast is not None:
        return fast
    limbs = words.tolist()  # Python ints: the limb sums rebuild each total exactly
    scale = 1 << frac_bits
    offset = parties * _OFFSET
    shifts = [LIMB_BITS * j for j in range(LIMBS)]
    return np.array([(sum(limb << shift for limb, shift in zip(limbs[i:i + LIMBS], shifts,
                                                               strict=True)) - offset) / scale
                     for i in range(0, len(limbs), LIMBS)], dtype=np.float64)
