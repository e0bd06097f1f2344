"""Integer encodings of the vertical logistic regression (no keys, no ciphertexts).

What is encoded, and at which scale
-----------------------------------
*Features* (standardised floats, prepared by ``federation``) are quantised once per party to
small signed integers ``xq = clip(round(x * 2**6), -640, 640)``: steps of ``2**-6`` and
``|x| <= 10``, i.e. at most 10 bits plus a sign. Both parties train and score on the
quantised values, so the encrypted products below are exact for the model being fitted.

*Per-sample values* (the bank's residual ``d_B``, the center's partial score ``u_C``) are
signed fixed point with :data:`VALUE_FRAC_BITS` fractional bits, one value per Paillier
plaintext::

    encode(v) = round(v * 2**32) mod n,        |v| <= VALUE_LIMIT = 2**20.

A sum ``S = sum_i xq_i * encode(v_i)`` then has the scale ``2**(6 + 32)`` and is decoded
signed: ``S > n/2`` means ``S - n``. Sums stay far below ``n/2`` (below ``2**74`` for a batch
of 1,024 rows against ``n >= 2**2047``), so nothing wraps; decoders still check a bound.

*Masked gradient sums* share plaintexts (:class:`GradientSlotLayout`): each sum ``S`` with
``|S| < 2**b`` becomes the slot value ``S + 2**b + r`` with ``r`` uniform in
``[0, 2**(b + 128))``. That value lies within statistical distance ``2**-127`` of one that
does not depend on ``S``, so whoever decrypts it learns (statistically) nothing about ``S``,
and slots never carry into each other. About 10 sums fit in a 2048-bit plaintext, so the
peer decrypts 2 ciphertexts per batch instead of 20.

*Score slots*: for the scoring path (no homomorphic product needed) several partial scores
share one plaintext in 64-bit slots, ``slot(v) = round(v * 2**32) + 2**63``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from protocols.errors import PackingOverflowError, PlaintextShapeError
from protocols.paillier.fast import RandomSource

__all__ = [
    "FEATURE_FRAC_BITS", "FEATURE_CLIP", "FEATURE_LIMIT", "VALUE_FRAC_BITS", "VALUE_LIMIT",
    "SLOT_BITS", "quantize_features", "dequantize_features", "encode_fixed", "to_signed",
    "decode_fixed", "MASK_STATISTICAL_BITS", "GradientSlotLayout", "gradient_slot_layout",
    "draw_slot_masks", "mask_plaintexts", "check_masked_slots", "unmask_slots",
    "plain_matvec", "slots_per_plaintext",
    "pack_slots", "unpack_slots",
]

FEATURE_FRAC_BITS = 6
FEATURE_CLIP = 10.0
#: Largest ``|xq|``: ``FEATURE_CLIP * 2**FEATURE_FRAC_BITS``.
FEATURE_LIMIT = int(FEATURE_CLIP) << FEATURE_FRAC_BITS
VALUE_FRAC_BITS = 32
#: Largest ``|v|`` accepted for a residual or partial score; beyond it training diverged.
VALUE_LIMIT = float(2**20)
SLOT_BITS = 64
#: Statistical hiding of masked gradient sums: distance ``2**(1 - 128)`` from uniform.
MASK_STATISTICAL_BITS = 128
_SLOT_OFFSET = 1 << (SLOT_BITS - 1)


def quantize_features(x: np.ndarray) -> np.ndarray:
    """Quantise standardised features to ``clip(round(x * 2**6), -640, 640)`` (int64).

    Parameters
    ----------
    x : numpy.ndarray
        Float matrix (rows x features), standardised and imputed by the caller.

    Returns
    -------
    numpy.ndarray
        int64 matrix of the same shape.

    Raises
    ------
    ValueError
        ``x`` is not 2-D or holds NaN or infinite values.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"features must be a 2-D matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("features hold NaN or infinite values; impute and standardise them "
                         "before the vertical protocol")
    scaled = np.rint(arr * (1 << FEATURE_FRAC_BITS))
    return np.clip(scaled, -FEATURE_LIMIT, FEATURE_LIMIT).astype(np.int64)


def dequantize_features(xq: np.ndarray) -> np.ndarray:
    """Float values ``xq / 2**6`` of quantised features."""
    return np.asarray(xq, dtype=np.float64) / (1 << FEATURE_FRAC_BITS)


def _scaled_ints(values: np.ndarray | Sequence[float], frac_bits: int,
                 limit: float) -> list[int]:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise PackingOverflowError("a value to encode is NaN or infinite; training diverged, "
                                   "lower the learning rate")
    if arr.size and float(np.max(np.abs(arr))) > limit:
        raise PackingOverflowError(f"a value to encode exceeds +-{limit:g}; training diverged, "
                                   "lower the learning rate")
    return [int(v) for v in np.rint(arr * float(1 << frac_bits)).astype(np.int64).tolist()]


def encode_fixed(values: np.ndarray | Sequence[float], n: int, *,
                 frac_bits: int = VALUE_FRAC_BITS,
                 limit: float = VALUE_LIMIT) -> list[int]:
    """Signed fixed point ``round(v * 2**frac_bits) mod n`` for each value.

    Raises
    ------
    PackingOverflowError
        A value is not finite or ``|v| > limit``.
    """
    return [m % n for m in _scaled_ints(values, frac_bits, limit)]


def to_signed(m: int, n: int) -> int:
    """Representative of ``m mod n`` in ``(-n/2, n/2]``."""
    m %= n
    return m - n if m > n // 2 else m


def decode_fixed(plaintexts: Sequence[int], n: int, *, frac_bits: int = VALUE_FRAC_BITS,
                 bound: int | None = None) -> np.ndarray:
    """Inverse of :func:`encode_fixed` (also for sums at a larger ``frac_bits``).

    Parameters
    ----------
    plaintexts : sequence of int
        Values mod ``n``.
    bound : int, optional
        Largest plausible ``|m|`` before scaling; default ``min(n // 4, 2**1000)``.

    Raises
    ------
    PackingOverflowError
        A signed value exceeds ``bound`` (it wrapped, or was made under another key).
    """
    limit = min(n // 4 if bound is None else bound, 2**1000)
    out = []
    for idx, m in enumerate(plaintexts):
        signed = to_signed(int(m), n)
        if abs(signed) > limit:
            raise PackingOverflowError(f"decoded value {idx} is outside the plausible range; "
                                       "it was made under another key - rerun the step")
        out.append(math.ldexp(float(signed), -frac_bits))
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class GradientSlotLayout:
    """How masked gradient sums share a plaintext.

    ``|S| < 2**bound_bits`` for every sum over the batch; a slot of ``slot_bits =
    bound_bits + MASK_STATISTICAL_BITS + 1`` bits holds ``S + 2**bound_bits + r`` with
    ``r < 2**(bound_bits + MASK_STATISTICAL_BITS)``, without carry into the next slot.
    """

    bound_bits: int
    slot_bits: int
    per_plaintext: int

    def n_plaintexts(self, count: int) -> int:
        """Plaintexts (ciphertexts) needed for ``count`` sums."""
        return -(-count // self.per_plaintext)


def gradient_slot_layout(rows: int, n: int) -> GradientSlotLayout:
    """Slot layout for gradient sums over ``rows`` rows under modulus ``n``.

    A sum is ``S = sum_i xq_i * (u_i + 4 d_i)`` in fixed point, so
    ``|S| <= rows * FEATURE_LIMIT * 5 * VALUE_LIMIT * 2**VALUE_FRAC_BITS``.
    """
    if rows < 1:
        raise ValueError("rows must be positive")
    bound = rows * FEATURE_LIMIT * 5 * (int(VALUE_LIMIT) << VALUE_FRAC_BITS)
    bound_bits = bound.bit_length()
    slot_bits = bound_bits + MASK_STATISTICAL_BITS + 1
    per = (int(n).bit_length() - 1) // slot_bits
    if per < 1:
        raise PackingOverflowError(f"a {int(n).bit_length()}-bit key cannot hold one "
                                   f"{slot_bits}-bit masked slot; use a larger key")
    return GradientSlotLayout(bound_bits, slot_bits, per)


def draw_slot_masks(count: int, layout: GradientSlotLayout,
                    rng: RandomSource | None = None) -> tuple[int, ...]:
    """``count`` masks uniform in ``[0, 2**(bound_bits + MASK_STATISTICAL_BITS))``.

    ``rng`` defaults to :class:`random.SystemRandom`; a seeded rng is for tests only.
    """
    rng = rng if rng is not None else random.SystemRandom()
    bits = layout.bound_bits + MASK_STATISTICAL_BITS
    return tuple(rng.getrandbits(bits) for _ in range(count))


def mask_plaintexts(masks: Sequence[int], layout: GradientSlotLayout) -> list[int]:
    """Packed ``sum_k (r_k + 2**bound_bits) * 2**(slot_bits * k)`` per plaintext."""
    offset, width, per = 1 << layout.bound_bits, layout.slot_bits, layout.per_plaintext
    out = []
    for start in range(0, len(masks), per):
        packed = 0
        for k, r in enumerate(masks[start:start + per]):
            packed |= (int(r) + offset) << (width * k)
        out.append(packed)
    return out


def check_masked_slots(plaintexts: Sequence[int], count: int, layout: GradientSlotLayout, *,
                       kind: str = "masked gradient") -> None:
    """Refuse decrypted plaintexts that hold more than ``count`` masked slots.

    An honest peer's plaintext ``idx`` is ``sum_k (S_k + 2**bound_bits + r_k) *
    2**(slot_bits * k)`` over its ``min(per_plaintext, count - idx * per_plaintext)`` slots,
    each below ``2**slot_bits``, so every bit above them is zero. The opening party checks
    this before it returns anything: a peer that packs other values into the spare bits or
    into extra slots (e.g. 31 of the opener's own residual ciphertexts in 64-bit slots) is
    refused. What fits inside the allowed slots cannot be told from a masked sum (see
    ``docs/security.md``).

    Raises
    ------
    PlaintextShapeError
        Another number of plaintexts, or a plaintext with bits beyond its slots.
    """
    if len(plaintexts) != layout.n_plaintexts(count):
        raise PlaintextShapeError(f"{kind}: {len(plaintexts)} plaintexts for {count} masked "
                                  "sums; refusing to return them - the peer deviates from "
                                  "the protocol, stop the run")
    per = layout.per_plaintext
    for idx, packed in enumerate(plaintexts):
        slots = min(per, count - idx * per)
        if int(packed) >> (layout.slot_bits * slots):
            raise PlaintextShapeError(f"{kind}: plaintext {idx} holds data beyond its {slots} "
                                      f"masked slots of {layout.slot_bits} bits; refusing to "
                                      "return it - the peer deviates from the protocol, stop "
                                      "the run")


def unmask_slots(plaintexts: Sequence[int], masks: Sequence[int],
                 layout: GradientSlotLayout) -> list[int]:
    """Signed sums ``S_k = slot_k - 2**bound_bits - r_k`` from decrypted masked plaintexts.

    Raises
    ------
    PackingOverflowError
        A plaintext or a sum is outside its range (another key, other masks or a
        tampered reply).
    """
    if len(plaintexts) != layout.n_plaintexts(len(masks)):
        raise PackingOverflowError(f"{len(plaintexts)} plaintexts for {len(masks)} masked sums")
    width, per, offset = layout.slot_bits, layout.per_plaintext, 1 << layout.bound_bits
    slot_mask = (1 << width) - 1
    sums = []
    for idx, packed in enumerate(plaintexts):
        group = masks[idx * per:(idx + 1) * per]
        if int(packed) >> (width * len(group)):
            raise PackingOverflowError(f"masked plaintext {idx} has data beyond its slots; "
                                       "the peer used another key - rerun the batch")
        for k, r in enumerate(group):
            value = ((int(packed) >> (width * k)) & slot_mask) - offset - int(r)
            if abs(value) >= offset:
                raise PackingOverflowError("an unmasked gradient sum is out of range; the peer "
                                           "used other masks or another key - rerun the batch")
            sums.append(value)
    return sums


def plain_matvec(xq: np.ndarray, values: Sequence[int]) -> list[int]:
    """Exact ``xq^T v`` in Python integers (no int64 overflow), one entry per column."""
    matrix = np.asarray(xq, dtype=np.int64)
    if matrix.shape[0] != len(values):
        raise ValueError(f"{matrix.shape[0]} rows but {len(values)} values")
    vals = [int(v) for v in values]
    return [sum(map(int.__mul__, col, vals)) for col in matrix.T.tolist()]


def slots_per_plaintext(n: int) -> int:
    """How many :data:`SLOT_BITS`-bit slots fit below ``n`` (31 for a 2048-bit key)."""
    return (int(n).bit_length() - 1) // SLOT_BITS


def pack_slots(values: np.ndarray | Sequence[float], n: int) -> list[int]:
    """Pack fixed-point values into plaintexts, ``slot(v) = round(v * 2**32) + 2**63``."""
    ints = _scaled_ints(values, VALUE_FRAC_BITS, VALUE_LIMIT)
    per = slots_per_plaintext(n)
    out = []
    for start in range(0, len(ints), per):
        packed = 0
        for k, m in enumerate(ints[start:start + per]):
            packed |= (m + _SLOT_OFFSET) << (SLOT_BITS * k)
        out.append(packed)
    return out


def unpack_slots(plaintexts: Sequence[int], count: int, n: int) -> np.ndarray:
    """Inverse of :func:`pack_slots`: the first ``count`` values.

    Raises
    ------
    PackingOverflowError
        A plaintext does not hold ``count`` valid slots (another key or a tampered message).
    """
    per = slots_per_plaintext(n)
    if len(plaintexts) != -(-count // per):
        raise PackingOverflowError(f"{len(plaintexts)} plaintexts cannot hold {count} slots")
    mask = (1 << SLOT_BITS) - 1
    ints: list[int] = []
    for idx, packed in enumerate(plaintexts):
        take = min(per, count - idx * per)
        if packed >> (SLOT_BITS * take):
            raise PackingOverflowError(f"plaintext {idx} has data beyond its slots; it was "
                                       "made with another key - ask the sender to resend")
        ints.extend(((packed >> (SLOT_BITS * k)) & mask) - _SLOT_OFFSET for k in range(take))
    return np.ldexp(np.asarray(ints, dtype=np.float64), -VALUE_FRAC_BITS)
