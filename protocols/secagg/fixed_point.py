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
    limbs = words.tolist()  # Python ints: the limb sums rebuild each total exactly
    scale = 1 << frac_bits
    offset = parties * _OFFSET
    shifts = [LIMB_BITS * j for j in range(LIMBS)]
    return np.array([(sum(limb << shift for limb, shift in zip(limbs[i:i + LIMBS], shifts,
                                                               strict=True)) - offset) / scale
                     for i in range(0, len(limbs), LIMBS)], dtype=np.float64)
