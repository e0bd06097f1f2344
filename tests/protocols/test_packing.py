"""Packing codec: round trips of summed plaintexts, error bounds and overflow refusal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.aggregation.packing import PLAINTEXT_MARGIN_BITS, PackingCodec
from protocols.errors import PackingOverflowError, VectorLengthError


@st.composite
def float_cases(draw: st.DrawFn) -> tuple[PackingCodec, list[np.ndarray]]:
    lo = draw(st.floats(-100, 100))
    width = draw(st.floats(1e-3, 200))
    codec = PackingCodec(lo=lo, hi=lo + width, bits=draw(st.integers(1, 24)),
                         max_parties=draw(st.integers(1, 64)),
                         key_bits=draw(st.sampled_from([256, 512, 2048])))
    n_parties = draw(st.integers(1, codec.max_parties))
    length = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    updates = [rng.uniform(codec.lo, codec.hi, length) for _ in range(n_parties)]
    return codec, updates


def _packed_sum(codec: PackingCodec, packed: list[list[int]]) -> list[int]:
    # Adding plaintexts is exactly what multiplying Paillier ciphertexts does.
    return [sum(column) for column in zip(*packed, strict=True)]


@settings(max_examples=150, deadline=None)
@given(float_cases(), st.booleans())
def test_float_sum_round_trip_within_bound(case, stochastic) -> None:
    codec, updates = case
    rng = np.random.default_rng(0) if stochastic else None
    packed = [codec.pack(u, rounding_rng=rng) for u in updates]
    assert all(len(p) == codec.n_ciphertexts(len(updates[0])) for p in packed)
    decoded = codec.unpack_sum(_packed_sum(codec, packed), len(updates[0]), len(updates))
    truth = np.sum(updates, axis=0)
    scale = len(updates) * (abs(codec.lo) + abs(codec.hi))
    bound = codec.sum_error_bound(len(updates), stochastic=stochastic) * (1 + 1e-9) + 1e-9 * scale
    assert np.max(np.abs(decoded - truth)) <= bound


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 120), st.data())
def test_integer_sum_is_exact(bits, max_parties, length, data) -> None:
    codec = PackingCodec.for_integers(bits=min(bits, 62 - (max_parties - 1).bit_length()),
                                      max_parties=max_parties, key_bits=512)
    n_parties = data.draw(st.integers(1, max_parties))
    ints = st.lists(st.integers(0, codec.max_int), min_size=length, max_size=length)
    updates = [data.draw(ints) for _ in range(n_parties)]
    packed = [codec.pack(np.array(u, dtype=object)) for u in updates]
    decoded = codec.unpack_sum(_packed_sum(codec, packed), length, n_parties)
    assert decoded.dtype == np.int64
    assert decoded.tolist() == [sum(col) for col in zip(*updates, strict=True)]


def test_known_answer_layout() -> None:
    codec = PackingCodec.for_integers(bits=4, max_parties=2, key_bits=256)
    assert codec.slot_bits == 5
    assert codec.pack([1, 2, 3]) == [1 + (2 << 5) + (3 << 10)]


def test_about_one_hundred_slots_at_2048_bits() -> None:
    codec = PackingCodec(bits=16, max_parties=16, key_bits=2048)
    assert codec.carry_bits == 4
    assert codec.slots_per_ciphertext == 102
    assert codec.slots_per_ciphertext * codec.slot_bits <= 2048 - PLAINTEXT_MARGIN_BITS


def test_values_outside_range_are_clipped() -> None:
    codec = PackingCodec(lo=-1.0, hi=1.0, bits=16, max_parties=2, key_bits=512)
    decoded = codec.unpack_sum(codec.pack([-5.0, 5.0, 0.25]), 3, 1)
    assert decoded[0] == -1.0 and decoded[1] == 1.0
    assert abs(decoded[2] - 0.25) <= codec.step / 2


def test_stochastic_rounding_is_unbiased() -> None:
    codec = PackingCodec(lo=0.0, hi=1.0, bits=4, max_parties=1, key_bits=512)
    value = 0.3 * codec.step
    x = np.full(20_000, value)
    q = codec.quantize(x, rounding_rng=np.random.default_rng(7))
    assert abs(q.mean() * codec.step - value) < 0.05 * codec.step


@pytest.mark.parametrize("bad", [2**16, -1, 10**30])
def test_integer_out_of_range_names_index_and_value(bad: int) -> None:
    codec = PackingCodec.for_integers(bits=16, max_parties=4, key_bits=512)
    with pytest.raises(PackingOverflowError, match=rf"value {bad} at index 2"):
        codec.pack([1, 2, bad, 3])


def test_integer_mode_refuses_floats() -> None:
    codec = PackingCodec.for_integers(bits=8, max_parties=2, key_bits=512)
    with pytest.raises(TypeError):
        codec.pack([1.5, 2.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_floats_are_refused(bad: float) -> None:
    codec = PackingCodec(max_parties=2, key_bits=512)
    with pytest.raises(PackingOverflowError, match="index 1"):
        codec.pack([0.0, bad])


def test_more_parties_than_headroom_is_refused() -> None:
    codec = PackingCodec(max_parties=4, key_bits=512)
    packed = codec.pack([0.5, -0.5])
    with pytest.raises(PackingOverflowError, match="headroom"):
        codec.unpack_sum(packed, 2, 5)


def test_carry_from_too_many_parties_is_detected_even_if_count_is_understated() -> None:
    codec = PackingCodec.for_integers(bits=8, max_parties=4, key_bits=256)
    one = codec.pack([codec.max_int] * codec.slots_per_ciphertext)
    summed = [sum(col) for col in zip(*([one] * 5), strict=True)]  # 5 parties, headroom for 4
    with pytest.raises(PackingOverflowError):
        codec.unpack_sum(summed, codec.slots_per_ciphertext, 4)


def test_slot_sum_above_party_bound_is_detected() -> None:
    codec = PackingCodec.for_integers(bits=8, max_parties=4, key_bits=256)
    packed = codec.pack([255, 255])
    with pytest.raises(PackingOverflowError, match="exceeds 255"):
        codec.unpack_sum([packed[0] * 2], 2, 1)


def test_nonzero_padding_and_wide_plaintexts_are_refused() -> None:
    codec = PackingCodec.for_integers(bits=8, max_parties=2, key_bits=256)
    packed = codec.pack([1])
    with pytest.raises(PackingOverflowError, match="padding"):
        codec.unpack_sum([packed[0] + (1 << codec.slot_bits)], 1, 1)
    with pytest.raises(PackingOverflowError, match="bits"):
        codec.unpack_sum([1 << 255], 1, 1)
    with pytest.raises(PackingOverflowError):
        codec.unpack_sum([-1], 1, 1)


def test_wrong_number_of_plaintexts_is_a_length_error() -> None:
    codec = PackingCodec(max_parties=2, key_bits=256)
    packed = codec.pack(np.zeros(codec.slots_per_ciphertext + 1))
    with pytest.raises(VectorLengthError):
        codec.unpack_sum(packed[:1], codec.slots_per_ciphertext + 1, 1)
    with pytest.raises(VectorLengthError):
        codec.pack([])


@pytest.mark.parametrize("kwargs, exc", [
    ({"lo": 1.0, "hi": 1.0}, ValueError),
    ({"lo": float("nan")}, ValueError),
    ({"bits": 0}, ValueError),
    ({"bits": True}, TypeError),
    ({"max_parties": 0}, ValueError),
    ({"max_parties": 2**14 + 1}, ValueError),
    ({"key_bits": 128}, ValueError),
    ({"schema_version": 2}, ValueError),
    ({"integer_mode": True}, ValueError),
])
def test_invalid_codec_parameters(kwargs: dict, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        PackingCodec(**kwargs)


def test_digest_and_scheme_distinguish_codecs() -> None:
    a = PackingCodec(lo=-1.0, hi=1.0)
    assert a.scheme_id == "paillier-2048-packed16"
    assert PackingCodec.for_integers().scheme_id == "paillier-2048-packedint16"
    assert a.digest == PackingCodec(lo=-1, hi=1).digest
    assert a.digest != PackingCodec(lo=-1.0, hi=2.0).digest
    assert a.digest != PackingCodec(lo=-1.0, hi=1.0, max_parties=8).digest
