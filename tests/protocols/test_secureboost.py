"""SecureBoost encodings and steps: exact (G, H) sums through Paillier, packed both ways."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.paillier.keys import generate_paillier_keypair
from protocols.secureboost.packing import GHPacking, PackingRangeError
from protocols.secureboost.steps import (
    CenterLookup,
    SplitLookupError,
    bank_encrypt_gradients,
    bank_open_histograms,
    center_histograms,
    compress_sums,
)

F = 20


@pytest.fixture(scope="module")
def keys():
    return generate_paillier_keypair(512, allow_insecure_test_key=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**F, 2**F), st.integers(0, 2**(F - 2))), min_size=1,
                max_size=64))
def test_sums_of_rows_decode_exactly(rows) -> None:
    n = (1 << 509) + 1
    packing = GHPacking.for_rows(64, gradient_bits=F, key_bits=510)
    total = sum(packing.encode_row(g, h, n) for g, h in rows) % n
    assert packing.decode_sum(total, n) == (sum(g for g, _ in rows), sum(h for _, h in rows))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_packed_sums_unpack_exactly(data) -> None:
    packing = GHPacking.for_rows(1000, gradient_bits=F, key_bits=512)
    k = packing.slots_per_ciphertext
    sums = data.draw(st.lists(st.tuples(st.integers(-1000 * 2**F, 1000 * 2**F),
                                        st.integers(0, 250 * 2**F)), min_size=1, max_size=k))
    value = sum((g * (1 << packing.hessian_bits) + h) << (packing.slot_bits * i)
                for i, (g, h) in enumerate(sums))
    n = (1 << 511) + 187
    assert packing.unpack(value % n, n, len(sums)) == sums


def test_out_of_range_rows_are_refused() -> None:
    packing = GHPacking.for_rows(10, gradient_bits=F, key_bits=512)
    with pytest.raises(PackingRangeError):
        packing.encode_row(2**F + 1, 0, 2**511)
    with pytest.raises(PackingRangeError):
        packing.encode_row(0, -1, 2**511)
    with pytest.raises(PackingRangeError):
        GHPacking.for_rows(10, gradient_bits=F, key_bits=32)


def test_center_sums_through_paillier_equal_the_plain_sums(keys) -> None:
    public, private = keys
    rng = np.random.default_rng(0)
    rows = 300
    g = rng.integers(-2**F, 2**F, rows)
    h = rng.integers(0, 2**(F - 2), rows)
    codes = rng.integers(0, 5, (rows, 2)).astype(np.uint8)
    assignment = rng.integers(0, 3, rows).astype(np.int64)
    packing = GHPacking.for_rows(rows, gradient_bits=F, key_bits=512)
    cts = bank_encrypt_gradients(g, h, public_key=public, packing=packing, rng=random.Random(1))
    sums = center_histograms(cts, codes, assignment, [2, 0], 6, public_key=public)
    packed = compress_sums(sums, public_key=public, packing=packing)
    assert len(packed) < len(sums)
    G, H = bank_open_histograms(packed, len(sums), private_key=private, packing=packing)
    i = 0
    for node in (2, 0):
        for f in range(2):
            for code in range(6):
                mask = (assignment == node) & (codes[:, f] == code)
                assert (G[i], H[i]) == (g[mask].sum(), h[mask].sum())
                i += 1


def test_the_center_refuses_split_ids_it_never_issued() -> None:
    lookup = CenterLookup()
    assert lookup.get(lookup.record(1, 3)) == (1, 3)
    with pytest.raises(SplitLookupError):
        lookup.get(7)


def test_packed_sums_do_not_carry_the_banks_own_randomness(cubic_keypair,
                                                           key_holder_view) -> None:
    """The bank reads a returned ciphertext's randomness with its private key; a bare packing
    of its own per-row ciphertexts carried ``prod_k (prod_{i in bin k} s_i)**(2**(W k))``,
    which tells it which rows are in which of the center's bins."""
    public, private = cubic_keypair
    rng = np.random.default_rng(4)
    rows = 40
    g, h = rng.integers(-2**F, 2**F, rows), rng.integers(0, 2**(F - 2), rows)
    codes = rng.integers(0, 3, (rows, 1)).astype(np.uint8)
    packing = GHPacking.for_rows(rows, gradient_bits=F, key_bits=int(public.n).bit_length())
    cts = bank_encrypt_gradients(g, h, public_key=public, packing=packing, rng=random.Random(2))
    sums = center_histograms(cts, codes, np.zeros(rows, np.int64), [0], 3, public_key=public)
    packed = compress_sums(sums, public_key=public, packing=packing, rng=random.Random(3))
    assert len(packed) == 1
    n, own = int(public.n), [key_holder_view.randomness(c) for c in cts]
    bare = 1
    for i, code in enumerate(codes[:, 0].tolist()):
        bare = bare * pow(own[i], 1 << (packing.slot_bits * code), n) % n
    assert key_holder_view.randomness(packed[0]) != bare
    G, H = bank_open_histograms(packed, 3, private_key=private, packing=packing)
    assert [int(G[k]) for k in range(3)] == [int(g[codes[:, 0] == k].sum()) for k in range(3)]
    assert [int(H[k]) for k in range(3)] == [int(h[codes[:, 0] == k].sum()) for k in range(3)]


def test_bank_refuses_more_sums_than_declared(keys) -> None:
    public, private = keys
    packing = GHPacking.for_rows(10, gradient_bits=F, key_bits=512)
    cts = bank_encrypt_gradients(np.arange(4), np.arange(4), public_key=public, packing=packing,
                                 rng=random.Random(1))
    packed = compress_sums(cts, public_key=public, packing=packing)  # 4 sums in one
    with pytest.raises(PackingRangeError, match="more than its declared"):
        bank_open_histograms(packed, 2, private_key=private, packing=packing)
