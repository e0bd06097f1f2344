"""Grouped counts: several small exact counts in one packed value, sized by a public sum bound.

Protocol step
-------------
A bank's score histograms are exact counts of its own rows. The integer codec of
:mod:`protocols.aggregation.packing` gives every count one slot of ``bits + carry`` bits sized
for the largest count *one* bank could send (``2**bits - 1``) times the number of banks. When
every party knows a public bound ``most`` on the **sum** of any one count over all the banks
(for histograms: a bound on the rows of all banks together, from the row total the banks
opened earlier), each count needs only a *field* of ``width = bits(most)`` bits: ``group``
fields sit side by side in one value,

    v = sum_j c_j * 2**(j * width),    0 <= c_j <= most,

and the values go through the ordinary integer codec (``group * width`` bits, its carry bits
above). Adding the banks' values adds every field separately: an honest sum of a field is at
most ``most < 2**width``, so it never carries into the next field. Decoding splits each summed
value back into its fields and refuses a field above ``most`` or a non-zero padding field.

Security
--------
No cryptography here: the grouping is public and data-independent (``most`` is public, every
bank uses the same ``width`` and ``group``), so it reveals nothing beyond the sum it encodes.
A bank's own count above ``most`` is refused when encoding (never wrapped). As with the integer
codec under a shared Paillier key, a bank that deviates can encrypt any plaintext and so corrupt
a sum (this grouping neither adds nor removes that power); a field sum above ``most`` is refused
when decoding, and an honest bank's contributions never make one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocols.errors import PackingOverflowError, VectorLengthError

__all__ = ["CountGroups", "COUNT_GROUPS_SCHEMA_VERSION", "MAX_GROUP_BITS"]

COUNT_GROUPS_SCHEMA_VERSION = 1
MAX_GROUP_BITS = 48
"""Bits of one grouped value: the integer codec's largest ``bits`` (int64-safe sums)."""


@dataclass(frozen=True, slots=True)
class CountGroups:
    """``group`` counts of ``width`` bits each per packed value (public run parameters).

    Parameters
    ----------
    most : int
        Public bound on the sum, over every party, of any one count (and so on each count).
    group : int
        Counts per value; ``group * bits(most)`` must not exceed :data:`MAX_GROUP_BITS`.
    schema_version : int
        Version of this parameter set; only 1 exists.
    """

    most: int
    group: int
    schema_version: int = COUNT_GROUPS_SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("most", "group", "schema_version"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"CountGroups.{name} must be an int, got {type(value).__name__}")
        if self.schema_version != COUNT_GROUPS_SCHEMA_VERSION:
            raise ValueError(f"unknown count-groups schema_version {self.schema_version}; this "
                             f"build reads version {COUNT_GROUPS_SCHEMA_VERSION}")
        if self.most < 1 or self.group < 1:
            raise ValueError(f"need most >= 1 and group >= 1, got most={self.most}, "
                             f"group={self.group}")
        if self.value_bits > MAX_GROUP_BITS:
            raise ValueError(f"{self.group} fields of {self.width} bits exceed "
                             f"{MAX_GROUP_BITS} bits; use a smaller group")

    @property
    def width(self) -> int:
        """Bits of one field: enough for ``most``."""
        return self.most.bit_length()

    @property
    def value_bits(self) -> int:
        """Bits of one grouped value, ``group * width``."""
        return self.group * self.width

    def n_values(self, length: int) -> int:
        """Grouped values that hold ``length`` counts."""
        return -(-length // self.group)

    def pack(self, counts: np.ndarray) -> np.ndarray:
        """One party's counts (integers in ``[0, most]``) as ``n_values(len)`` int64 values.

        Raises
        ------
        PackingOverflowError
            A count is negative or above ``most``.
        TypeError
            The counts are not integers.
        """
        arr = np.asarray(counts)
        if arr.ndim != 1 or arr.size == 0:
            raise VectorLengthError("grouped counts need a non-empty 1-D vector")
        if arr.dtype.kind not in "iu":
            raise TypeError(f"grouped counts need an integer dtype, got {arr.dtype}")
        bad = (arr < 0) | (arr > self.most)
        if bad.any():
            idx = int(np.flatnonzero(bad)[0])
            raise PackingOverflowError(
                f"count at index {idx} is outside [0, {self.most}], the public bound on the "
                "sum of any count over all banks; check the row counts the bound came from")
        fields = np.zeros(self.n_values(arr.size) * self.group, dtype=np.int64)
        fields[:arr.size] = arr
        shifts = np.arange(self.group, dtype=np.int64) * self.width
        packed: np.ndarray = (fields.reshape(-1, self.group) << shifts).sum(axis=1)
        return packed

    def unpack_sums(self, sums: np.ndarray, length: int) -> np.ndarray:
        """Split summed grouped values into ``length`` count sums (int64), checking bounds.

        Raises
        ------
        VectorLengthError
            ``len(sums)`` does not match ``length``.
        PackingOverflowError
            A field sum above ``most``, a sum wider than its fields or a non-zero padding
            field (tampering, or another bound than the one the parties agreed).
        """
        arr = np.asarray(sums, dtype=np.int64)
        if length < 1 or arr.shape != (self.n_values(length),):
            raise VectorLengthError(f"{arr.size} grouped sums cannot hold exactly {length} "
                                    f"counts ({self.group} per value)")
        if (arr < 0).any() or (arr >> self.value_bits).any():
            raise PackingOverflowError("a grouped sum is wider than its fields: it was "
                                       "tampered with or decoded with another bound")
        shifts = np.arange(self.group, dtype=np.int64) * self.width
        fields = ((arr[:, None] >> shifts) & ((1 << self.width) - 1)).reshape(-1)
        if fields[length:].any():
            raise PackingOverflowError("padding fields after the last count are not zero: the "
                                       "sum was tampered with or decoded with another bound")
        fields = fields[:length]
        if fields.size and int(fields.max()) > self.most:
            idx = int(np.argmax(fields))
            raise PackingOverflowError(
                f"count sum at index {idx} exceeds {self.most}, the public bound on any count "
                "summed over all banks; the sum was tampered with")
        return fields
