"""Fixtures for the encrypted-aggregation tests: small keys for speed, one 2048-bit pair."""

from __future__ import annotations

import random

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
