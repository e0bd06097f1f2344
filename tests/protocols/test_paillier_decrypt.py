"""CRT decryption: equals phe, and the process pool gives the same answer in order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.paillier.decrypt import CrtDecryptionKey, decrypt_raw_many
from protocols.paillier.fast import encrypt_packed


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**511))
def test_crt_decrypt_equals_phe(small_keypair, small_table, plaintext) -> None:
    pub, priv = small_keypair
    plaintext %= pub.n
    (c,) = encrypt_packed([plaintext], pub, table=small_table)
    assert CrtDecryptionKey.from_private_key(priv).decrypt(c) == priv.raw_decrypt(c) == plaintext


def test_process_pool_matches_in_process(small_keypair, small_table) -> None:
    pub, priv = small_keypair
    plaintexts = [random.Random(i).getrandbits(500) for i in range(40)]
    cts = encrypt_packed(plaintexts, pub, table=small_table)
    assert decrypt_raw_many(cts, priv, processes=1) == plaintexts
    assert decrypt_raw_many(cts, priv, processes=2, parallel_threshold=2) == plaintexts


def test_invalid_process_count(small_keypair) -> None:
    with pytest.raises(ValueError):
        decrypt_raw_many([1], small_keypair[1], processes=0)


def test_secret_and_bulky_fields_stay_out_of_repr(small_keypair, small_table) -> None:
    _, priv = small_keypair
    text = repr(CrtDecryptionKey.from_private_key(priv))
    assert str(priv.p) not in text and "redacted" in text
    assert len(repr(small_table)) < 200
