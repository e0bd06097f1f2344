"""The masked fixed point: numpy fast paths give exactly the integers and floats of the exact
Python loops (which stay the reference and the path for wide values)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import PackingOverflowError
from protocols.secagg import fixed_point as fp


def _reference_limbs(values: list[float], frac_bits: int = fp.FRAC_BITS) -> list[int]:
    """The exact loop: Python ints all the way."""
    limbs: list[int] = []
    for value in values:
        x = int(round(value * (1 << frac_bits))) + (1 << (fp.LIMBS * fp.LIMB_BITS - 1))
        limbs.extend((x >> (fp.LIMB_BITS * j)) & ((1 << fp.LIMB_BITS) - 1)
                     for j in range(fp.LIMBS))
    return limbs


def _reference_sum(words: list[int], parties: int, frac_bits: int = fp.FRAC_BITS) -> list[float]:
    offset = parties << (fp.LIMBS * fp.LIMB_BITS - 1)
    return [(sum(w << (fp.LIMB_BITS * j) for j, w in enumerate(words[i:i + fp.LIMBS])) - offset)
            / (1 << frac_bits) for i in range(0, len(words), fp.LIMBS)]


values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-2.0**29, max_value=2.0**29),
    st.integers(-2**40, 2**40).map(lambda k: k / 2.0**33),  # ties of the rounding, both signs
    st.floats(allow_nan=False, allow_infinity=False, min_value=-2.0**100, max_value=2.0**100),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 2.0**30, -(2.0**30), 2.0**31, -(2.0**31)]),
)


@settings(max_examples=300, deadline=None)
@given(vector=st.lists(values, min_size=1, max_size=40))
def test_encoding_is_the_exact_loops(vector: list[float]) -> None:
    assert fp.encode_limbs(vector).tolist() == _reference_limbs(vector)


@settings(max_examples=200, deadline=None)
@given(vectors=st.lists(st.lists(values, min_size=3, max_size=3), min_size=1, max_size=6),
       copies=st.sampled_from([1, 7, 1000, 2**15]))
def test_decoding_a_sum_is_the_exact_loops(vectors: list[list[float]], copies: int) -> None:
    total = np.zeros(3 * fp.LIMBS, dtype=np.uint64)
    for v in vectors:  # each vector counted ``copies`` times: many banks, few encodings
        total += fp.encode_limbs(v) * np.uint64(copies)
    parties = len(vectors) * copies
    if parties > fp.MAX_PARTIES:
        return
    got = fp.decode_limb_sum(total, parties=parties)
    assert got.tolist() == _reference_sum(total.tolist(), parties)


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.integers(0, 2**64 - 1), min_size=3, max_size=3),
       parties=st.integers(1, fp.MAX_PARTIES))
def test_any_words_decode_as_the_exact_loop_decodes_them(words: list[int], parties: int) -> None:
    """A coordinator or bank sending garbage gets the same garbage either way."""
    got = fp.decode_limb_sum(np.array(words, dtype=np.uint64), parties=parties)
    assert got.tolist() == _reference_sum(words, parties)


def test_what_the_fast_paths_leave_to_the_loops_still_fails_named() -> None:
    with pytest.raises(PackingOverflowError, match="not finite"):
        fp.encode_limbs([1.0, float("nan")])
    with pytest.raises(PackingOverflowError, match="too large"):
        fp.encode_limbs([2.0**120])
    assert fp._encode_small(np.array([2.0**31]), fp.FRAC_BITS) is None  # 2**63: the loop
    assert fp._decode_small(np.zeros(3, dtype=np.uint64), 2**16, fp.FRAC_BITS) is None
