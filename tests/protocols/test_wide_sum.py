"""The wide codec (preprocessing statistics): values packed in 256-bit slots, exact sums of up
to 2**16 banks, refused when out of range; an older release's one-value-a-ciphertext vector
still decodes."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.aggregation import wide_sum as ws
from protocols.errors import MalformedMessageError, PackingOverflowError, VectorLengthError
from protocols.paillier.fast import encrypt_packed
from protocols.paillier.keys import generate_paillier_keypair, key_fingerprint

Pair = tuple[PaillierPublicKey, PaillierPrivateKey]


@pytest.fixture(scope="module")
def mid_keypair() -> Pair:
    """1024 bits (tests only): three slots a plaintext."""
    return generate_paillier_keypair(1024, allow_insecure_test_key=True)


def _exact_sum(vectors: list[list[float]]) -> list[float]:
    """What the codec promises: the sum of the banks' fixed-point integers, rounded once."""
    return [sum(round(v * 2**ws.FRAC_BITS) for v in column) / float(2**ws.FRAC_BITS)
            for column in zip(*vectors, strict=True)]


wide = st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e30,
                           max_value=1e30),
                 st.integers(-2**60, 2**60).map(float),
                 st.sampled_from([0.0, -0.0, 0.5 / 2**32, -(0.5 / 2**32), 1e-300]))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), length=st.integers(1, 10), banks=st.integers(1, 5))
def test_packed_sums_are_exact(mid_keypair: Pair, data: st.DataObject, length: int,
                               banks: int) -> None:
    public_key, private_key = mid_keypair
    vectors = [data.draw(st.lists(wide, min_size=length, max_size=length)) for _ in range(banks)]
    sealed = [ws.encrypt_wide(v, public_key=public_key, run_id="r", round=0) for v in vectors]
    assert len(sealed[0].ciphertexts) == math.ceil(length / 3) == ws.plaintexts_for(length,
                                                                                  public_key)
    total = ws.sum_wide([ws.wide_from_bytes(ws.wide_to_bytes(s)) for s in sealed],
                        public_key=public_key)
    ws.validate_wide(total, public_key=public_key, expected_length=length, run_id="r", round=0)
    assert total.n_parties == banks
    assert ws.decrypt_wide(total, private_key=private_key).tolist() == _exact_sum(vectors)


def test_a_production_key_packs_seven_values_a_ciphertext(big_keypair: Pair) -> None:
    public_key, private_key = big_keypair
    values = [float(i) * 1e15 - 3.25 for i in range(71)]  # a 100-bank stats vector's size
    vec = ws.encrypt_wide(values, public_key=public_key, run_id="r", round=0)
    assert ws.slots_per_plaintext(public_key) == 7 and len(vec.ciphertexts) == 11
    assert ws.decrypt_wide(vec, private_key=private_key).tolist() == _exact_sum([values])


def test_the_most_banks_at_the_widest_values_still_sum_exactly(mid_keypair: Pair) -> None:
    """2**16 contributions of the largest allowed |s|: no slot carries into the next."""
    public_key, private_key = mid_keypair
    top = (2**ws.OFFSET_BITS - 1) / 2**ws.FRAC_BITS  # rounds to 2**206, just inside
    vec = ws.encrypt_wide([top * (1 - 2**-52), -top * (1 - 2**-52), 1.0], public_key=public_key,
                          run_id="r", round=0)
    nsq = int(public_key.n) ** 2
    many = replace(vec, ciphertexts=tuple(pow(c, ws.MAX_PARTIES, nsq) for c in vec.ciphertexts),
                   n_parties=ws.MAX_PARTIES)
    got = ws.decrypt_wide(many, private_key=private_key)
    assert got.tolist() == [v * ws.MAX_PARTIES for v in
                            _exact_sum([[top * (1 - 2**-52), -top * (1 - 2**-52), 1.0]])]


def test_out_of_range_values_and_sums_are_refused(mid_keypair: Pair) -> None:
    public_key, private_key = mid_keypair
    with pytest.raises(PackingOverflowError, match="too large for the wide codec"):
        ws.encrypt_wide([2.0**210], public_key=public_key, run_id="r", round=0)
    with pytest.raises(PackingOverflowError, match="not finite"):
        ws.encrypt_wide([1.0, float("inf")], public_key=public_key, run_id="r", round=0)
    vec = ws.encrypt_wide([1.0, 2.0], public_key=public_key, run_id="r", round=0)
    # a slot sum beyond what its claimed contributions allow (one bank claimed as a sum of 0
    # others is refused by the dataclass; claiming fewer parties than summed is caught here)
    doubled = ws.sum_wide([vec, vec], public_key=public_key)
    with pytest.raises(PackingOverflowError, match="outside the range"):
        ws.decrypt_wide(replace(doubled, n_parties=1), private_key=private_key)
    garbage = replace(vec, ciphertexts=tuple(encrypt_packed([int(public_key.n) - 1],
                                                            public_key)))
    with pytest.raises(PackingOverflowError, match="overflows its slots"):
        ws.decrypt_wide(garbage, private_key=private_key)


def test_the_ciphertext_count_must_match_the_values(mid_keypair: Pair) -> None:
    public_key, _ = mid_keypair
    vec = ws.encrypt_wide([1.0] * 4, public_key=public_key, run_id="r", round=0)  # 2 cts
    with pytest.raises(VectorLengthError, match="packs 4 values into 1 ciphertexts"):
        ws.validate_wide(replace(vec, ciphertexts=vec.ciphertexts[:1]), public_key=public_key,
                         expected_length=4, run_id="r", round=0)
    with pytest.raises(MalformedMessageError, match="number of values"):
        replace(vec, n_values=0)


def test_an_older_releases_vector_still_decodes(mid_keypair: Pair) -> None:
    """Schema 1 (a checkpoint of the release before): ``round(v * 2**f) mod n``, one a
    ciphertext; its bytes as that release wrote them."""
    public_key, private_key = mid_keypair
    n = int(public_key.n)
    values = [1.5, -2.25, 1e12]
    cts = encrypt_packed([round(v * 2**ws.FRAC_BITS) % n for v in values], public_key)
    hex_cts = ",".join(f'"{c:x}"' for c in cts)
    old = ('{"scheme":"paillier-wide-fixed32","v":1,"fp":"' + key_fingerprint(public_key)
           + '","run":"r","round":0,"parties":1,"c":[' + hex_cts + ']}').encode()
    vec = ws.wide_from_bytes(old)
    assert not vec.packed and vec.length == 3
    ws.validate_wide(vec, public_key=public_key, expected_length=3, run_id="r", round=0)
    total = ws.sum_wide([vec, vec], public_key=public_key)
    assert ws.decrypt_wide(total, private_key=private_key).tolist() == [3.0, -4.5, 2e12]
    assert ws.wide_from_bytes(ws.wide_to_bytes(total)) == total
