"""Fuzz unpacking of decrypted sums: any plaintext ends in a decoded sum or a named error."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from protocols.aggregation.packing import MAX_SLOT_BITS, PackingCodec
from protocols.errors import FedCreditError

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def codecs(draw: st.DrawFn) -> PackingCodec:
    bits = draw(st.integers(1, 48))
    max_parties = draw(st.integers(1, 2 ** min(14, MAX_SLOT_BITS - bits)))
    key_bits = draw(st.sampled_from([256, 512, 1024, 2048]))
    if draw(st.booleans()):
        return PackingCodec.for_integers(bits, max_parties, key_bits)
    lo = draw(st.floats(-1e6, 1e6))
    return PackingCodec(lo, lo + draw(st.floats(1e-3, 1e6)), bits, max_parties, key_bits)


def plaintexts(codec: PackingCodec) -> st.SearchStrategy[int]:
    """Plaintexts as a tampered or misdecoded sum could hold them."""
    total = codec.slots_per_ciphertext * codec.slot_bits
    return st.one_of(st.integers(0, 2**total - 1), st.integers(), st.integers(-2**64, -1),
                     st.integers(2**total, 2**(total + 70)), st.sampled_from([0, 2**total - 1]))


@settings(FUZZ, max_examples=600)
@given(data=st.data())
def test_unpack_sum_decodes_or_raises_named_errors(data) -> None:
    codec = data.draw(codecs())
    packed = data.draw(st.lists(plaintexts(codec), max_size=5))
    length = data.draw(st.one_of(st.integers(-3, 3 * codec.slots_per_ciphertext + 3),
                                 st.integers(-2**64, 2**64)))
    n_parties = data.draw(st.one_of(st.integers(1, codec.max_parties + 2), st.integers(1, 2**40)))
    # the valid input parses (a decoder refusing everything fails here)
    assert codec.unpack_sum(codec.pack_quantized(np.zeros(3, dtype=np.uint64)), 3, 1).shape == (3,)
    try:
        sums = codec.unpack_sum(packed, length, n_parties)
    except FedCreditError:
        return
    assert sums.shape == (length,)
    if codec.integer_mode:
        assert (sums >= 0).all() and (sums <= n_parties * codec.max_int).all()
    else:
        assert np.isfinite(sums).all()


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_unpack_sum_refuses_parties_beyond_the_headroom(data) -> None:
    codec = data.draw(codecs())
    assume(codec.max_parties < 2**14)
    packed = codec.pack_quantized(np.zeros(3, dtype=np.uint64))
    assert codec.unpack_sum(packed, 3, codec.max_parties).shape == (3,)  # within the headroom
    try:
        codec.unpack_sum(packed, 3, codec.max_parties + data.draw(st.integers(1, 2**20)))
    except FedCreditError:
        return
    raise AssertionError("a sum of more parties than the carry bits allow was decoded")
