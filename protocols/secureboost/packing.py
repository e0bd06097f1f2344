"""Integer encodings of SecureBoost: one Paillier plaintext per row, several sums per ciphertext.

Maths. Gradients and hessians arrive as integers in units of ``2**-f`` (the bank quantises them,
``|g| <= 2**f``, ``0 <= h <= 2**(f-2)``). A row becomes ``m = g * 2**S + h (mod n)`` with
``S = f + rows_bits`` hessian bits, so that any sum over at most ``2**rows_bits`` rows,
``G * 2**S + H``, is a signed integer of magnitude below ``2**(W-1)``, ``W = S + f + rows_bits
+ 2``: it decodes exactly (centre the residue mod n, then ``H = v mod 2**S``,
``G = (v - H) / 2**S``), negative ``G`` included, with no offset and no row counts.

For the way back the center packs ``k`` sums into one ciphertext by Horner's rule,
``c = (((c_{k-1})^(2**W) * c_{k-2})^(2**W) ...) * c_0``, i.e. ``sum_i v_i 2**(W i)``; the
bank peels the slots off from the lowest, each a centred ``W``-bit residue. ``k * W`` stays
two bits below the key size, so the packed value never wraps modulo ``n``.

Security: the encodings are public; what protects the values is Paillier encryption under the
bank's key (semantic security under DCR). The center never decrypts.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GHPacking", "PackingRangeError"]

SCHEMA_VERSION = 1


class PackingRangeError(ValueError):
    """A value or a number of rows outside what the agreed packing holds."""


@dataclass(frozen=True, slots=True)
class GHPacking:
    """The public encoding of a run (every party must hold the same).

    Parameters
    ----------
    gradient_bits : int
        ``f``: gradients and hessians are integers in units of ``2**-f``.
    rows_bits : int
        At most ``2**rows_bits`` rows are summed (the training rows of the run).
    key_bits : int
        Bit length of the bank's Paillier modulus ``n``.
    """

    gradient_bits: int
    rows_bits: int
    key_bits: int
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("gradient_bits", "rows_bits", "key_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PackingRangeError(f"{name} must be a positive int (got {value!r:.20}).")
        if self.slots_per_ciphertext < 1:
            raise PackingRangeError(f"a {self.key_bits}-bit key cannot hold one sum of "
                                    f"{self.slot_bits} bits; use a larger key or fewer bits.")

    @classmethod
    def for_rows(cls, rows: int, *, gradient_bits: int, key_bits: int) -> GHPacking:
        """The packing for sums over at most ``rows`` rows."""
        return cls(gradient_bits, max(1, int(rows).bit_length()), key_bits)

    @property
    def hessian_bits(self) -> int:
        """``S``: the low bits of a row's plaintext that hold its hessian."""
        return self.gradient_bits + self.rows_bits

    @property
    def slot_bits(self) -> int:
        """``W``: width of one packed sum on the way back."""
        return self.hessian_bits + self.gradient_bits + self.rows_bits + 2

    @property
    def slots_per_ciphertext(self) -> int:
        """Sums per ciphertext on the way back."""
        return (self.key_bits - 2) // self.slot_bits

    def encode_row(self, g: int, h: int, n: int) -> int:
        """One row's plaintext ``g * 2**S + h mod n``."""
        limit = 1 << self.gradient_bits
        if not (-limit <= g <= limit and 0 <= h <= limit >> 2):
            raise PackingRangeError(f"row gradient {g} or hessian {h} is outside the "
                                    f"{self.gradient_bits}-bit range of this packing.")
        return (g * (1 << self.hessian_bits) + h) % n

    def decode_sum(self, residue: int, n: int) -> tuple[int, int]:
        """``(G, H)`` of a decrypted sum (a residue modulo ``n``)."""
        value = residue - n if residue > n // 2 else residue
        return self.split(value)

    def split(self, value: int) -> tuple[int, int]:
        """``(G, H)`` of a signed sum ``G * 2**S + H``."""
        if abs(value) >= 1 << (self.slot_bits - 1):
            raise PackingRangeError("a decrypted sum exceeds its slot; the rows or the values "
                                    "are outside the agreed packing.")
        h = value % (1 << self.hessian_bits)
        return (value - h) >> self.hessian_bits, h

    def unpack(self, residue: int, n: int, count: int) -> list[tuple[int, int]]:
        """The ``count`` ``(G, H)`` sums of one packed ciphertext's plaintext, lowest first."""
        if not 1 <= count <= self.slots_per_ciphertext:
            raise PackingRangeError(f"a packed ciphertext holds 1..{self.slots_per_ciphertext} "
                                    f"sums, not {count}.")
        value = residue - n if residue > n // 2 else residue
        width, out = self.slot_bits, []
        for _ in range(count):
            low = value % (1 << width)
            slot = low - (1 << width) if low >= 1 << (width - 1) else low
            out.append(self.split(slot))
            value = (value - slot) >> width
        if value != 0:
            raise PackingRangeError("a packed ciphertext holds more than its declared sums.")
        return out
