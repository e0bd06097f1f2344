"""Fast DJN-style encryption: phe compatibility, determinism, modes, refusal to wrap."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phe import EncryptedNumber

from protocols.errors import PackingOverflowError
from protocols.paillier.fast import (
    STATISTICAL_SECURITY_BITS,
    build_randomizer_table,
    encrypt_packed,
    key_holder_table_for,
    randomizer_table_for,
    rerandomize,
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**500), min_size=1, max_size=8), st.integers(0, 2**32))
def test_phe_private_key_decrypts_fast_ciphertexts(small_keypair, small_table, plaintexts,
                                                    seed) -> None:
    pub, priv = small_keypair
    cts = encrypt_packed(plaintexts, pub, rng=random.Random(seed), table=small_table)
    assert [priv.raw_decrypt(c) for c in cts] == plaintexts
    wrapped = [EncryptedNumber(pub, c) for c in cts]
    total = wrapped[0]
    for w in wrapped[1:]:
        total = total + w
    assert priv.raw_decrypt(total.ciphertext(be_secure=False)) == sum(plaintexts) % pub.n


def test_2048_bit_ciphertexts_decrypt_with_phe(big_keypair) -> None:
    pub, priv = big_keypair
    plaintexts = [0, 1, pub.n - 1, random.Random(3).getrandbits(2000)]
    cts = encrypt_packed(plaintexts, pub)  # cached table, system randomness
    assert [priv.raw_decrypt(c) for c in cts] == plaintexts
    assert randomizer_table_for(pub) is randomizer_table_for(pub)
    assert randomizer_table_for(pub).exponent_bits == 2048 + STATISTICAL_SECURITY_BITS


def test_seeded_rng_is_deterministic_and_default_is_fresh(small_keypair, small_table) -> None:
    pub, _ = small_keypair
    a = encrypt_packed([5, 6], pub, rng=random.Random(9), table=small_table)
    b = encrypt_packed([5, 6], pub, rng=random.Random(9), table=small_table)
    c = encrypt_packed([5, 6], pub, table=small_table)
    assert a == b and a != c
    assert len(set(encrypt_packed([5] * 20, pub, table=small_table))) == 20


def test_short_exponent_mode_is_opt_in_and_decrypts(small_keypair) -> None:
    pub, priv = small_keypair
    table = build_randomizer_table(pub, short_exponent=True, rng=random.Random(2))
    assert table.exponent_bits == 256
    with pytest.raises(ValueError, match="short_exponent=True"):
        encrypt_packed([1], pub, table=table)
    cts = encrypt_packed([7, 8], pub, table=table, short_exponent=True)
    assert [priv.raw_decrypt(c) for c in cts] == [7, 8]


def test_rerandomize_keeps_plaintext_and_changes_ciphertext(small_keypair, small_table) -> None:
    pub, priv = small_keypair
    (c,) = encrypt_packed([42], pub, table=small_table)
    fresh = rerandomize(c, small_table)
    assert fresh != c and priv.raw_decrypt(fresh) == 42


def test_plaintexts_outside_zero_n_are_refused(small_keypair, small_table) -> None:
    pub, _ = small_keypair
    for bad in (-1, pub.n, pub.n + 5):
        with pytest.raises(PackingOverflowError):
            encrypt_packed([bad], pub, table=small_table)
    with pytest.raises(TypeError):
        encrypt_packed([1.0], pub, table=small_table)  # type: ignore[list-item]


def test_table_of_another_key_is_refused(small_keypair, other_small_keypair, small_table) -> None:
    with pytest.raises(ValueError, match="another public key"):
        encrypt_packed([1], other_small_keypair[0], table=small_table)


def test_table_memory_is_documented_size(small_keypair, small_table, big_keypair) -> None:
    rows = -(-(512 + STATISTICAL_SECURITY_BITS) // 8)
    assert len(small_table.rows) == rows and len(small_table.rows[0]) == 256
    assert small_table.approx_bytes == rows * 255 * 128
    # the real 2048-bit full-length table (the module docstring's "about 37 MB" is 35.5 MB)
    big = randomizer_table_for(big_keypair[0])
    assert len(big.rows) == -(-(2048 + STATISTICAL_SECURITY_BITS) // 8) == 272
    assert big.approx_bytes == 272 * 255 * 512
    assert sum(len(row) - 1 for row in big.rows) * 512 == big.approx_bytes
    assert 35e6 < big.approx_bytes < 36e6


def test_key_holder_table_gives_the_same_ciphertexts_through_the_crt(small_keypair) -> None:
    pub, priv = small_keypair
    public = build_randomizer_table(pub, rng=random.Random(5))
    holder = build_randomizer_table(pub, rng=random.Random(5), private_key=priv)
    assert holder.crt is not None and holder.rows == ()
    assert holder.approx_bytes < public.approx_bytes
    plaintexts = [0, 1, 99, pub.n - 1]
    same = encrypt_packed(plaintexts, pub, rng=random.Random(8), table=holder)
    assert same == encrypt_packed(plaintexts, pub, rng=random.Random(8), table=public)
    assert [priv.raw_decrypt(c) for c in same] == plaintexts
    short = build_randomizer_table(pub, rng=random.Random(5), private_key=priv,
                                   short_exponent=True)
    cts = encrypt_packed([7], pub, table=short, short_exponent=True)
    assert priv.raw_decrypt(cts[0]) == 7


def test_key_holder_table_of_another_key_is_refused(small_keypair, other_small_keypair) -> None:
    with pytest.raises(ValueError, match="another public key"):
        build_randomizer_table(small_keypair[0], private_key=other_small_keypair[1])


def test_2048_bit_key_holder_table_matches_and_is_cached(big_keypair) -> None:
    pub, priv = big_keypair
    holder = key_holder_table_for(priv)
    assert key_holder_table_for(priv) is holder and holder is not randomizer_table_for(pub)
    assert holder.exponent_bits == 2048 + STATISTICAL_SECURITY_BITS
    cts = encrypt_packed([3, pub.n - 2], pub, table=holder)
    assert [priv.raw_decrypt(c) for c in cts] == [3, pub.n - 2]
    seeded = build_randomizer_table(pub, rng=random.Random(1), private_key=priv)
    plain = build_randomizer_table(pub, rng=random.Random(1))
    assert seeded.randomizer(random.Random(4)) == plain.randomizer(random.Random(4))
