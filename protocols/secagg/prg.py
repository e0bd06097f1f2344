"""The ring the masks live in, and mask expansion from a 32-byte seed.

Scheme
------
Masks are vectors over ``Z_M``. Two rings are used:

* ``M = 2**k`` (``k <= 64``) for plain SecAgg on fixed-point integers: vectors are ``uint64``
  arrays and reduction is a bit mask (numpy wraps ``uint64`` sums modulo ``2**64``);
* ``M = n`` (the Paillier modulus) for masks under encryption: each packed plaintext gets a
  mask modulo ``n`` before it is encrypted, so the coordinator's homomorphic product adds the
  masks modulo ``n`` too and they cancel in the full sum. Vectors are ``object`` arrays of
  Python ints.

``expand(seed, length, label)`` is ``AES-256-CTR`` (zero IV) keyed with
``HKDF-SHA256(seed, info=label)``: the label binds the mask to its purpose (self mask or
pairwise mask) and to the run and round, so one seed never yields the same keystream twice.
An element of ``Z_{2**k}`` takes ``k`` keystream bits; an element of ``Z_n`` takes
``bits(n) + 128`` bits reduced modulo ``n`` (statistical distance below ``2**-128`` from
uniform).

Security
--------
Masks are indistinguishable from uniform as long as AES is a PRF and the seed is secret and
uniform (a fresh 32-byte seed, or an X25519 shared secret passed through HKDF). A uniform mask
added modulo ``M`` hides the input perfectly (one-time pad over ``Z_M``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["MaskRing", "SEED_BYTES", "STATISTICAL_BITS"]

SEED_BYTES = 32
STATISTICAL_BITS = 128
MAX_WORD_BITS = 64


def _keystream(seed: bytes, label: bytes, size: int) -> bytes:
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise ValueError(f"a mask seed must be {SEED_BYTES} bytes")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(seed)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    return encryptor.update(bytes(size)) + encryptor.finalize()


@dataclass(frozen=True, slots=True)
class MaskRing:
    """``Z_M`` with vector operations; ``M = 2**k`` (``1 <= k <= 64``) or an odd modulus > 2**64.

    Parameters
    ----------
    modulus : int
        ``M``; a power of two uses fast ``uint64`` arrays, anything else Python-int arrays.
    """

    modulus: int

    def __post_init__(self) -> None:
        if isinstance(self.modulus, bool) or not isinstance(self.modulus, int):
            raise TypeError("MaskRing.modulus must be an int")
        if self.modulus < 2:
            raise ValueError("MaskRing.modulus must be at least 2")
        if self.is_word and self.modulus.bit_length() - 1 > MAX_WORD_BITS:
            raise ValueError("a power-of-two modulus may have at most 64 bits")
        if not self.is_word and self.modulus.bit_length() <= MAX_WORD_BITS:
            raise ValueError("a modulus that is not a power of two must exceed 2**64 "
                             "(a Paillier n)")

    @property
    def is_word(self) -> bool:
        """Whether ``M`` is a power of two (``uint64`` vectors)."""
        return self.modulus & (self.modulus - 1) == 0

    @property
    def element_bits(self) -> int:
        """Bits of keystream that make one element."""
        if self.is_word:
            return self.modulus.bit_length() - 1
        return self.modulus.bit_length() + STATISTICAL_BITS

    def _word_mask(self) -> np.uint64:
        return np.uint64((self.modulus - 1) & (2**64 - 1))

    def expand(self, seed: bytes, length: int, *, label: bytes) -> np.ndarray:
        """The mask vector of ``length`` elements for ``seed`` under ``label``."""
        if self.is_word:
            stream = _keystream(seed, label, 8 * length)
            return np.frombuffer(stream, dtype="<u8").astype(np.uint64) & self._word_mask()
        size = (self.element_bits + 7) // 8
        stream = _keystream(seed, label, size * length)
        out = np.empty(length, dtype=object)
        for i in range(length):
            out[i] = int.from_bytes(stream[i * size:(i + 1) * size], "big") % self.modulus
        return out

    def zeros(self, length: int) -> np.ndarray:
        """The zero vector."""
        if self.is_word:
            return np.zeros(length, dtype=np.uint64)
        out = np.empty(length, dtype=object)
        out[:] = 0
        return out

    def element(self, values: np.ndarray | list[int]) -> np.ndarray:
        """Reduce integers into the ring (``ValueError`` if one is negative or not an int)."""
        if self.is_word:
            arr = np.asarray(values)
            if arr.dtype.kind not in "ui" or (arr.dtype.kind == "i" and arr.size and arr.min() < 0):
                raise ValueError("ring elements must be non-negative integers")
            return arr.astype(np.uint64) & self._word_mask()
        items = [int(v) for v in values]
        if any(v < 0 for v in items):
            raise ValueError("ring elements must be non-negative integers")
        out = np.empty(len(items), dtype=object)
        out[:] = [v % self.modulus for v in items]
        return out

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a + b mod M``."""
        out: np.ndarray = (a + b) & self._word_mask() if self.is_word else (a + b) % self.modulus
        return out

    def sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a - b mod M``."""
        out: np.ndarray = (a - b) & self._word_mask() if self.is_word else (a - b) % self.modulus
        return out
