"""Fixtures for the encrypted-aggregation tests: small keys for speed, one 2048-bit pair."""

from __future__ import annotations

import random
from dataclasses import dataclass

import gmpy2
import pytest
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.paillier.fast import RandomizerTable, build_randomizer_table
from protocols.paillier.keys import generate_paillier_keypair

SMALL_KEY_BITS = 512


@pytest.fixture(scope="session")
def small_keypair() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A 512-bit key pair (insecure, tests only)."""
    return generate_paillier_keypair(SMALL_KEY_BITS, allow_insecure_test_key=True)


@pytest.fixture(scope="session")
def other_small_keypair() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A second, unrelated 512-bit key pair for key-mismatch tests."""
    return generate_paillier_keypair(SMALL_KEY_BITS, allow_insecure_test_key=True)


@pytest.fixture(scope="session")
def small_table(small_keypair: tuple[PaillierPublicKey, PaillierPrivateKey]) -> RandomizerTable:
    """Deterministic randomizer table for the small key."""
    return build_randomizer_table(small_keypair[0], rng=random.Random(1))


@pytest.fixture(scope="session")
def big_keypair() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A production-size 2048-bit key pair (used by a handful of tests)."""
    return generate_paillier_keypair(2048)


@dataclass(frozen=True)
class KeyHolderView:
    """What the key holder sees of a ciphertext besides its plaintext: the randomness ``s``
    of ``c = (1 + m n) s**n`` and its cubic residue characters modulo ``p`` and ``q``.

    Keys with ``p = q = 1 (mod 3)``, so that ``Z*_n`` has cubic characters (a quarter of all
    random keys do); used to reproduce the subgroup-randomiser leak.
    """

    private_key: PaillierPrivateKey

    def randomness(self, ciphertext: int) -> int:
        """``s`` with ``c = (1 + m n) s**n mod n**2`` (needs the private key)."""
        p, q = int(self.private_key.p), int(self.private_key.q)
        n = p * q
        lam = (p - 1) * (q - 1) // int(gmpy2.gcd(p - 1, q - 1))
        return int(gmpy2.powmod(ciphertext % n, gmpy2.invert(n, lam), n))

    def cubic_index(self, s: int) -> tuple[int, int]:
        """``(i_p, i_q)`` in ``Z_3**2`` with ``s**((p-1)/3) = zeta_p**i_p`` mod ``p`` (same for q)."""
        return (self._index(s, int(self.private_key.p)), self._index(s, int(self.private_key.q)))

    @staticmethod
    def _index(s: int, prime: int) -> int:
        e = (prime - 1) // 3
        g = next(g for g in range(2, 100) if pow(g, e, prime) != 1)
        zeta = pow(g, e, prime)
        value = pow(s % prime, e, prime)
        return next(i for i in range(3) if pow(zeta, i, prime) == value)


def _prime_1_mod_3(rng: random.Random, bits: int) -> int:
    while True:
        p = int(gmpy2.next_prime(rng.getrandbits(bits) | (1 << (bits - 1))))
        if p % 3 == 1 and p.bit_length() == bits:
            return p


@pytest.fixture(scope="session")
def cubic_keypair() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A 512-bit key pair with ``p = q = 1 (mod 3)`` (insecure, tests only)."""
    rng = random.Random(3)
    p = _prime_1_mod_3(rng, SMALL_KEY_BITS // 2)
    q = _prime_1_mod_3(rng, SMALL_KEY_BITS // 2)
    public = PaillierPublicKey(p * q)
    return public, PaillierPrivateKey(public, p, q)


@pytest.fixture(scope="session")
def key_holder_view(cubic_keypair: tuple[PaillierPublicKey, PaillierPrivateKey]) -> KeyHolderView:
    """The cubic key's holder's view of ciphertexts."""
    return KeyHolderView(cubic_keypair[1])
