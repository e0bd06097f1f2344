"""The exact fixed-point grid of boosted-tree gradient sums (summation kind ``gradients``).

Every value a bank seals as ``gradients`` must be a multiple of ``2**-f`` (``f`` = the run's
public ``gradient_bits``) with ``|v| < 2**GRADIENT_VALUE_BITS``; its integer ``x = v * 2**f``
then fits a signed slot of ``s = f + GRADIENT_VALUE_BITS + 1`` bits (:func:`gradient_slot_bits`;
packed as ``x + 2**(s - 1)``, :func:`gradient_offset`). Anything off the grid, too large, NaN or
infinite is refused, never rounded; a sum of ``2**53`` units or more, which float64 cannot
hold, is refused on decoding. So an opened sum equals the float64 sum of the plain values bit
for bit (:mod:`federation.steps.secure_sum` packs and sums these integers).

Errors name the index and the rule, never the value (they may leave the bank's node).
"""

from __future__ import annotations

import numpy as np

from federation.errors import ConfigError
from protocols.errors import ProtocolError

__all__ = ["MAX_GRADIENT_BITS", "GRADIENT_VALUE_BITS", "FLOAT64_EXACT_LIMIT", "GradientGridError",
           "gradient_slot_bits", "gradient_offset", "gradient_units", "gradients_from_units",
           "check_gradient_bits", "off_grid"]

MAX_GRADIENT_BITS = 30
"""Finer gradients would need packed slots wider than the codec's 48 bits."""
GRADIENT_VALUE_BITS = 17
"""One contribution of a ``gradients`` vector is below ``2**17`` in absolute value (a bank's
gradient sum over at most 131,072 rows of a node, its score counts, its validation loss)."""
FLOAT64_EXACT_LIMIT = 1 << 53
"""A gradient sum of this many ``2**-f`` units or more is not exact in float64; refused."""


class GradientGridError(ProtocolError):
    """A gradient value or sum is off the ``2**-f`` grid, out of range or not finite."""


def gradient_slot_bits(gradient_bits: int) -> int:
    """Packed slot width of one ``gradients`` value at ``gradient_bits`` (sign included)."""
    return check_gradient_bits(gradient_bits) + GRADIENT_VALUE_BITS + 1


def gradient_offset(gradient_bits: int) -> int:
    """The offset ``2**(s - 1)`` that makes a signed slot value unsigned."""
    return 1 << (gradient_slot_bits(gradient_bits) - 1)


def check_gradient_bits(bits: int) -> int:
    """``bits`` when it is a valid ``gradient-bits`` setting (1..30), else ConfigError."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_GRADIENT_BITS:
        raise ConfigError(f"setting 'gradient-bits' is {bits!r:.40}; choose an int in "
                          f"1..{MAX_GRADIENT_BITS}.")
    return bits


def gradient_units(values: np.ndarray, *, gradient_bits: int) -> np.ndarray:
    """The exact integers ``x = v * 2**gradient_bits`` of gradient values (``int64``).

    Parameters
    ----------
    values : numpy.ndarray
        Float gradient or hessian sums, each a multiple of ``2**-gradient_bits``.
    gradient_bits : int
        The run's public quantisation ``f``.

    Returns
    -------
    numpy.ndarray
        ``int64`` integers with ``|x| < gradient_offset(gradient_bits)``.

    Raises
    ------
    GradientGridError
        A value is not finite, not on the grid, or too large for one slot.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    bad = off_grid(arr, gradient_bits, gradient_offset(gradient_bits))
    if bad.any():
        idx = int(np.flatnonzero(bad)[0])
        raise GradientGridError(
            f"gradient value at index {idx} is not a finite multiple of "
            f"2**-{gradient_bits} below 2**{GRADIENT_VALUE_BITS}; round the "
            "gradients with the run's gradient bits, or lower --gradient-bits.")
    return np.ldexp(arr, gradient_bits).astype(np.int64)


def off_grid(values: np.ndarray, gradient_bits: int, limit: int) -> np.ndarray:
    """Mask of values that are not finite multiples of ``2**-f`` below ``limit * 2**-f``."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.ldexp(values, check_gradient_bits(gradient_bits))  # exact power-of-two scaling
        return np.asarray(~np.isfinite(scaled) | (np.abs(scaled) >= limit)
                          | (scaled != np.trunc(scaled)))


def gradients_from_units(units: np.ndarray, *, gradient_bits: int) -> np.ndarray:
    """The float64 values ``x * 2**-gradient_bits`` of exact integer sums, refusing inexact ones.

    Raises
    ------
    GradientGridError
        A sum reaches ``2**53`` units, which float64 cannot hold exactly.
    """
    ints = np.asarray(units, dtype=np.int64)
    over = np.abs(ints) >= FLOAT64_EXACT_LIMIT
    if over.any():
        idx = int(np.flatnonzero(over)[0])
        raise GradientGridError(
            f"gradient sum at index {idx} reaches 2**53 units of 2**-{gradient_bits}, beyond "
            "exact float64; lower --gradient-bits or use fewer rows per node.")
    return np.ldexp(ints.astype(np.float64), -check_gradient_bits(gradient_bits))
