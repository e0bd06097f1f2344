"""End-to-end encrypted aggregation: encrypt, sum, decrypt; mismatches are refused."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.aggregation.packing import PackingCodec
from protocols.aggregation.secure_aggregation import decrypt_sum, encrypt_update, encrypted_sum
from protocols.errors import (
    KeyMismatchError,
    PackingOverflowError,
    ProtocolError,
    SchemeMismatchError,
    StaleRoundError,
    VectorLengthError,
)
from protocols.paillier.keys import key_fingerprint

RUN = "run-test"


def _encrypt_all(updates, pub, codec, table, seed=0, round_=3):
    rng = random.Random(seed)
    return [encrypt_update(u, public_key=pub, codec=codec, run_id=RUN, round=round_, rng=rng,
                           table=table) for u in updates]


@settings(max_examples=100, deadline=None)
@given(lo=st.floats(-10, 10), width=st.floats(0.01, 20), bits=st.integers(4, 24),
       max_parties=st.integers(1, 32), length=st.integers(1, 120), seed=st.integers(0, 2**31),
       data=st.data())
def test_round_trip_float_sum(small_keypair, small_table, lo, width, bits, max_parties, length,
                              seed, data) -> None:
    pub, priv = small_keypair
    codec = PackingCodec(lo=lo, hi=lo + width, bits=bits, max_parties=max_parties, key_bits=512)
    n_parties = data.draw(st.integers(1, max_parties))
    rng = np.random.default_rng(seed)
    updates = [rng.uniform(codec.lo, codec.hi, length) for _ in range(n_parties)]
    total = encrypted_sum(_encrypt_all(updates, pub, codec, small_table, seed), public_key=pub,
                          codec=codec)
    assert total.n_parties == n_parties
    decoded = decrypt_sum(total, private_key=priv, codec=codec, n_parties=n_parties)
    slack = 1e-9 * n_parties * (abs(codec.lo) + abs(codec.hi))
    assert np.max(np.abs(decoded - np.sum(updates, axis=0))) <= (
        codec.sum_error_bound(n_parties) * (1 + 1e-9) + slack)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**16 - 1), min_size=7, max_size=7), min_size=1,
                max_size=10))
def test_round_trip_integer_counts_exact(small_keypair, small_table, updates) -> None:
    pub, priv = small_keypair
    codec = PackingCodec.for_integers(bits=16, max_parties=10, key_bits=512)
    total = encrypted_sum(_encrypt_all(updates, pub, codec, small_table), public_key=pub,
                          codec=codec)
    decoded = decrypt_sum(total, private_key=priv, codec=codec)
    assert decoded.tolist() == np.sum(np.array(updates, dtype=np.int64), axis=0).tolist()


def test_2048_bit_round_trip(big_keypair) -> None:
    pub, priv = big_keypair
    codec = PackingCodec(lo=-1.0, hi=1.0, max_parties=10)
    rng = np.random.default_rng(1)
    updates = [rng.uniform(-1, 1, 150) for _ in range(3)]  # 2 ciphertexts per party
    vectors = [encrypt_update(u, public_key=pub, codec=codec, run_id=RUN, round=0)
               for u in updates]
    assert vectors[0].scheme == "paillier-2048-packed16" and len(vectors[0].ciphertexts) == 2
    decoded = decrypt_sum(encrypted_sum(vectors, public_key=pub, codec=codec), private_key=priv,
                          codec=codec, n_parties=3)
    assert np.max(np.abs(decoded - np.sum(updates, axis=0))) <= codec.sum_error_bound(3) + 1e-12


def test_parallel_decryption_matches(small_keypair, small_table, monkeypatch) -> None:
    import protocols.paillier.decrypt as pd
    pub, priv = small_keypair
    codec = PackingCodec(max_parties=4, key_bits=512)
    updates = [np.linspace(-1, 1, 400), np.linspace(1, -1, 400)]
    total = encrypted_sum(_encrypt_all(updates, pub, codec, small_table), public_key=pub,
                          codec=codec)
    serial = decrypt_sum(total, private_key=priv, codec=codec, processes=1)
    pools = []
    real_pool = pd.ProcessPoolExecutor

    def counting_pool(*args, **kwargs):
        pools.append(1)
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(pd, "PARALLEL_THRESHOLD", 2)
    monkeypatch.setattr(pd, "ProcessPoolExecutor", counting_pool)
    assert np.array_equal(decrypt_sum(total, private_key=priv, codec=codec, processes=2), serial)
    assert pools == [1]


@pytest.fixture()
def vectors(small_keypair, small_table):
    codec = PackingCodec(max_parties=3, key_bits=512)
    return codec, _encrypt_all([np.zeros(30), np.ones(30)], small_keypair[0], codec, small_table)


@pytest.mark.parametrize("change, exc", [
    ({"key_fingerprint": "0" * 64}, KeyMismatchError),
    ({"round": 4}, StaleRoundError),
    ({"run_id": "other"}, StaleRoundError),
    ({"length": 29}, VectorLengthError),
    ({"codec_digest": "0" * 16}, SchemeMismatchError),
    ({"scheme": "paillier-512-packed8"}, SchemeMismatchError),
])
def test_incompatible_vectors_are_not_summed(small_keypair, vectors, change, exc) -> None:
    codec, (a, b) = vectors
    with pytest.raises(exc):
        encrypted_sum([a, dataclasses.replace(b, **change)], public_key=small_keypair[0],
                      codec=codec)


def test_too_many_parties_refused_at_sum(small_keypair, vectors) -> None:
    codec, (a, b) = vectors
    with pytest.raises(PackingOverflowError, match="headroom"):
        encrypted_sum([a, b, a, b], public_key=small_keypair[0], codec=codec)
    with pytest.raises(ProtocolError):
        encrypted_sum([], public_key=small_keypair[0], codec=codec)


def test_decrypt_checks_key_and_party_count(small_keypair, other_small_keypair, vectors) -> None:
    codec, (a, b) = vectors
    total = encrypted_sum([a, b], public_key=small_keypair[0], codec=codec)
    with pytest.raises(KeyMismatchError):
        decrypt_sum(total, private_key=other_small_keypair[1], codec=codec)
    with pytest.raises(ProtocolError, match="expected a sum of 3"):
        decrypt_sum(total, private_key=small_keypair[1], codec=codec, n_parties=3)
    assert total.key_fingerprint == key_fingerprint(small_keypair[0])


def test_codec_key_size_must_match(small_keypair) -> None:
    with pytest.raises(KeyMismatchError):
        encrypt_update([0.0], public_key=small_keypair[0], codec=PackingCodec(), run_id=RUN,
                       round=0)
