"""Packing codec: clip, quantise and pack many values into one Paillier plaintext.

Protocol step
-------------
Before encryption each bank turns its float update (or its integer counts) into a few
large integers: every value becomes an unsigned ``bits``-bit slot, and
``slots_per_ciphertext`` slots sit side by side in one plaintext,
``m = sum_i q_i * 2**(i * slot_bits)`` (slot 0 is the least significant). Every slot
reserves ``carry_bits = ceil(log2(max_parties))`` zero bits above its payload, so adding
up to ``max_parties`` packed plaintexts (which is what multiplying Paillier ciphertexts
does) never carries from one slot into the next.

Decoding the *sum* of ``N`` contributions removes the ``N * lo`` offset and rescales.

Security
--------
This module does no cryptography. Clipping, quantisation and packing are public,
data-independent transformations, so they add no leakage beyond the (encrypted) values
themselves; the agreed ``[lo, hi]`` range, ``bits`` and ``max_parties`` are public
parameters. Overflow is refused with :class:`~protocols.errors.PackingOverflowError`,
never wrapped: a wrapped slot would silently corrupt the aggregate.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from protocols.errors import PackingOverflowError, VectorLengthError

__all__ = ["PackingCodec", "CODEC_SCHEMA_VERSION", "PLAINTEXT_MARGIN_BITS"]

CODEC_SCHEMA_VERSION = 1
#: Bits kept free below the key size so every packed plaintext (and sum) is far below n.
PLAINTEXT_MARGIN_BITS = 8
MAX_BITS = 48
MAX_SLOT_BITS = 62
MIN_KEY_BITS = 256
MAX_PARTIES_LIMIT = 1 << 14


@dataclass(frozen=True, slots=True)
class PackingCodec:
    """Agreed parameters of the packed encoding (public configuration of a run).

    Parameters
    ----------
    lo, hi : float
        Clipping range of float values (ignored in integer mode, where it is fixed to
        ``[0, 2**bits - 1]``).
    bits : int
        Quantisation bits per value (payload of one slot), 1..48.
    max_parties : int
        Largest number of contributions that may be summed; sets the carry bits.
    key_bits : int
        Paillier modulus size the plaintexts must fit under.
    integer_mode : bool
        Exact integer mode: values must be ints in ``[0, 2**bits - 1]``.
    schema_version : int
        Version of this parameter set; only 1 exists.
    """

    lo: float = -1.0
    hi: float = 1.0
    bits: int = 16
    max_parties: int = 16
    key_bits: int = 2048
    integer_mode: bool = False
    schema_version: int = CODEC_SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("bits", "max_parties", "key_bits", "schema_version"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"PackingCodec.{name} must be an int, got {type(value).__name__}")
        if not isinstance(self.integer_mode, bool):
            raise TypeError("PackingCodec.integer_mode must be a bool")
        if self.schema_version != CODEC_SCHEMA_VERSION:
            raise ValueError(f"unknown codec schema_version {self.schema_version}; "
                             f"this build reads version {CODEC_SCHEMA_VERSION}")
        if not 1 <= self.bits <= MAX_BITS:
            raise ValueError(f"bits must be in 1..{MAX_BITS}, got {self.bits}")
        if not 1 <= self.max_parties <= MAX_PARTIES_LIMIT:
            raise ValueError(f"max_parties must be in 1..{MAX_PARTIES_LIMIT}, "
                             f"got {self.max_parties}")
        if self.key_bits < MIN_KEY_BITS:
            raise ValueError(f"key_bits must be at least {MIN_KEY_BITS}, got {self.key_bits}")
        self._check_range()
        if self.slot_bits > MAX_SLOT_BITS:
            raise ValueError(f"bits + carry bits = {self.slot_bits} exceeds {MAX_SLOT_BITS}; "
                             "lower bits or max_parties")

    def _check_range(self) -> None:
        for name in ("lo", "hi"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"PackingCodec.{name} must be a number")
            try:
                finite = math.isfinite(value)
            except OverflowError:  # an int beyond the float range
                finite = False
            if not finite:
                raise ValueError(f"PackingCodec.{name} must be finite, got {value!r:.40}")
        if self.integer_mode:
            if float(self.lo) != 0.0 or float(self.hi) != float(self.max_int):
                raise ValueError("integer mode fixes lo=0 and hi=2**bits-1; "
                                 "use PackingCodec.for_integers(...)")
        elif not self.lo < self.hi:
            raise ValueError(f"need lo < hi, got lo={self.lo}, hi={self.hi}")
        elif not math.isfinite(float(self.hi) - float(self.lo)):
            raise ValueError(f"hi - lo overflows a float (lo={self.lo}, hi={self.hi})")

    @classmethod
    def for_integers(cls, bits: int = 16, max_parties: int = 16,
                     key_bits: int = 2048) -> PackingCodec:
        """Codec for exact non-negative integers (sample counts, histogram counts)."""
        return cls(lo=0.0, hi=float((1 << bits) - 1), bits=bits, max_parties=max_parties,
                   key_bits=key_bits, integer_mode=True)

    # ------------------------------------------------------------------ derived sizes
    @property
    def max_int(self) -> int:
        """Largest quantised value of one contribution, ``2**bits - 1``."""
        return (1 << self.bits) - 1

    @property
    def carry_bits(self) -> int:
        """Headroom bits per slot, ``ceil(log2(max_parties))``."""
        return (self.max_parties - 1).bit_length()

    @property
    def slot_bits(self) -> int:
        """Width of one slot: payload plus carry bits."""
        return self.bits + self.carry_bits

    @property
    def slots_per_ciphertext(self) -> int:
        """Slots per plaintext, leaving :data:`PLAINTEXT_MARGIN_BITS` below the modulus."""
        return (self.key_bits - PLAINTEXT_MARGIN_BITS) // self.slot_bits

    @property
    def step(self) -> float:
        """Quantisation step ``(hi - lo) / (2**bits - 1)`` (1.0 in integer mode)."""
        return (float(self.hi) - float(self.lo)) / self.max_int

    @property
    def scheme_id(self) -> str:
        """Scheme id carried by every encrypted vector, e.g. ``paillier-2048-packed16``."""
        kind = "packedint" if self.integer_mode else "packed"
        return f"paillier-{self.key_bits}-{kind}{self.bits}"

    @property
    def digest(self) -> str:
        """Short SHA-256 digest (16 hex chars) of every parameter; equal iff codecs agree."""
        text = "|".join([str(self.schema_version), self.scheme_id, float(self.lo).hex(),
                         float(self.hi).hex(), str(self.max_parties)])
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]

    def n_ciphertexts(self, length: int) -> int:
        """Number of plaintexts needed for ``length`` values."""
        return -(-length // self.slots_per_ciphertext)

    def sum_error_bound(self, n_parties: int, *, stochastic: bool = False) -> float:
        """Largest absolute error of one decoded sum, for inputs already inside ``[lo, hi]``.

        Deterministic rounding moves each value by at most ``step / 2``; stochastic rounding
        by less than ``step``. Errors of ``n_parties`` contributions add up. Integer mode is
        exact (0.0). Clipped inputs additionally lose their distance to the range.
        """
        if self.integer_mode:
            return 0.0
        return n_parties * self.step * (1.0 if stochastic else 0.5)

    # ------------------------------------------------------------------ encode
    def quantize(self, values: Sequence[float] | np.ndarray, *,
                 rounding_rng: np.random.Generator | None = None) -> np.ndarray:
        """Clip and quantise values to unsigned ``bits``-bit integers (``uint64`` array).

        Parameters
        ----------
        values : array-like, 1-D
            Floats (clipped to ``[lo, hi]``), or ints in integer mode (never clipped).
        rounding_rng : numpy.random.Generator, optional
            If given, round stochastically (unbiased); default rounds to nearest.

        Raises
        ------
        PackingOverflowError
            A non-finite float, or in integer mode a value outside ``[0, 2**bits - 1]``.
        TypeError
            Non-integer values in integer mode.
        """
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(f"expected a 1-D vector of values, got shape {arr.shape}")
        if arr.size == 0:
            raise VectorLengthError("refusing to pack an empty vector")
        if self.integer_mode:
            return self._quantize_integers(arr)
        return self._quantize_floats(arr, rounding_rng)

    def _quantize_floats(self, arr: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"expected real numbers, got dtype {arr.dtype}")
        x = arr.astype(np.float64)
        finite = np.isfinite(x)
        if not finite.all():
            idx = int(np.flatnonzero(~finite)[0])
            raise PackingOverflowError(f"value {x[idx]} at index {idx} is not finite; "
                                       "fix the model update before encrypting it")
        scaled = (np.clip(x, self.lo, self.hi) - float(self.lo)) / self.step
        if rng is None:
            q = np.floor(scaled + 0.5)
        else:
            q = np.floor(scaled + rng.random(scaled.shape[0]))
        return np.clip(q, 0, self.max_int).astype(np.uint64)

    def _quantize_integers(self, arr: np.ndarray) -> np.ndarray:
        if arr.dtype.kind == "O":
            items = arr.tolist()
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
                raise TypeError("integer mode needs int values")
            for idx, v in enumerate(items):
                if not 0 <= v <= self.max_int:
                    raise self._int_overflow(idx, v)
            return np.asarray(items, dtype=np.uint64)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"integer mode needs an integer dtype, got {arr.dtype}")
        bad = (arr < 0) | (arr > self.max_int)
        if bad.any():
            idx = int(np.flatnonzero(bad)[0])
            raise self._int_overflow(idx, int(arr[idx]))
        return arr.astype(np.uint64)

    def _int_overflow(self, idx: int, value: int) -> PackingOverflowError:
        return PackingOverflowError(
            f"value {value} at index {idx} is outside [0, {self.max_int}] for {self.bits}-bit "
            "integer packing; use a codec with more bits or rescale the counts")

    def pack_quantized(self, quantized: np.ndarray) -> list[int]:
        """Pack already quantised slot values into plaintext integers (no range clipping)."""
        q = np.asarray(quantized, dtype=np.uint64)
        if q.size and int(q.max()) > self.max_int:
            idx = int(np.argmax(q))
            raise self._int_overflow(idx, int(q[idx]))
        return _slots_to_ints(q, self.slot_bits, self.slots_per_ciphertext)

    def pack(self, values: Sequence[float] | np.ndarray, *,
             rounding_rng: np.random.Generator | None = None) -> list[int]:
        """Quantise and pack one party's values into ``n_ciphertexts(len(values))`` ints."""
        return self.pack_quantized(self.quantize(values, rounding_rng=rounding_rng))

    # ------------------------------------------------------------------ decode
    def unpack_quantized_sum(self, packed: Sequence[int], length: int,
                             n_parties: int) -> np.ndarray:
        """Split summed plaintexts into per-value slot sums (``uint64``), checking bounds.

        Raises
        ------
        VectorLengthError
            ``len(packed)`` does not match ``length``.
        PackingOverflowError
            ``n_parties`` exceeds ``max_parties``, or a slot sum is larger than
            ``n_parties`` contributions can produce (tampering or wrong parameters).
        """
        self._check_parties(n_parties)
        if length < 1 or len(packed) != self.n_ciphertexts(length):
            raise VectorLengthError(
                f"{len(packed)} packed plaintexts cannot hold exactly {length} values "
                f"({self.slots_per_ciphertext} per plaintext)")
        sums = _ints_to_slots(packed, self.slot_bits, self.slots_per_ciphertext)
        if sums[length:].any():
            raise PackingOverflowError("padding slots after the last value are not zero: the "
                                       "sum was tampered with or decoded with the wrong codec")
        sums = sums[:length]
        limit = n_parties * self.max_int
        if sums.size and int(sums.max()) > limit:
            idx = int(np.argmax(sums))
            raise PackingOverflowError(
                f"slot sum {int(sums[idx])} at index {idx} exceeds {limit}, the most "
                f"{n_parties} parties can add; check n_parties and the codec parameters")
        return sums

    def unpack_sum(self, packed: Sequence[int], length: int, n_parties: int) -> np.ndarray:
        """Decode the sum of ``n_parties`` contributions.

        Returns
        -------
        numpy.ndarray
            ``float64`` sums ``n_parties * lo + S * step``; exact ``int64`` sums in integer mode.
        """
        sums = self.unpack_quantized_sum(packed, length, n_parties)
        if self.integer_mode:
            return sums.astype(np.int64)
        return n_parties * float(self.lo) + sums.astype(np.float64) * self.step

    def _check_parties(self, n_parties: int) -> None:
        if isinstance(n_parties, bool) or not isinstance(n_parties, int):
            raise TypeError("n_parties must be an int")
        if n_parties < 1:
            raise ValueError(f"n_parties must be at least 1, got {n_parties}")
        if n_parties > self.max_parties:
            raise PackingOverflowError(
                f"{n_parties} parties exceed the codec headroom of {self.max_parties} "
                f"({self.carry_bits} carry bits); agree a codec with a larger max_parties")


def _slots_to_ints(q: np.ndarray, slot_bits: int, slots: int) -> list[int]:
    """Place ``q[k*slots + i]`` at bit offset ``i * slot_bits`` of plaintext ``k``."""
    n_ct = -(-q.size // slots)
    grid = np.zeros(n_ct * slots, dtype=np.uint64)
    grid[: q.size] = q
    grid = grid.reshape(n_ct, slots)[:, ::-1]  # most significant slot first
    shifts = np.arange(slot_bits - 1, -1, -1, dtype=np.uint64)
    bits = ((grid[:, :, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    bits = bits.reshape(n_ct, slots * slot_bits)
    pad = (-bits.shape[1]) % 8
    if pad:
        bits = np.concatenate([np.zeros((n_ct, pad), dtype=np.uint8), bits], axis=1)
    rows = np.packbits(bits, axis=1)
    return [int.from_bytes(row.tobytes(), "big") for row in rows]


def _ints_to_slots(packed: Sequence[int], slot_bits: int, slots: int) -> np.ndarray:
    """Inverse of :func:`_slots_to_ints`; refuses integers wider than the slots."""
    total = slots * slot_bits
    nbytes = (total + 7) // 8
    chunks = []
    for idx, value in enumerate(packed):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"packed plaintext {idx} is not an int")
        if value < 0 or value.bit_length() > total:
            raise PackingOverflowError(
                f"packed plaintext {idx} has {value.bit_length()} bits, more than the "
                f"{total} its slots hold: a slot overflowed or the codec is wrong")
        chunks.append(value.to_bytes(nbytes, "big"))
    raw = np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(len(chunks), nbytes)
    bits = np.unpackbits(raw, axis=1)[:, nbytes * 8 - total:]
    bits = bits.reshape(len(chunks), slots, slot_bits).astype(np.uint64)
    weights = np.left_shift(np.uint64(1), np.arange(slot_bits - 1, -1, -1, dtype=np.uint64))
    values = bits @ weights
    return values[:, ::-1].reshape(-1)
