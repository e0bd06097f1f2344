"""Grouped counts: parties' counts grouped under a public sum bound add up field by field,
exactly; counts and field sums above the bound are refused in both directions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.aggregation.count_groups import MAX_GROUP_BITS, CountGroups
from protocols.errors import PackingOverflowError, VectorLengthError


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 2**20), st.integers(1, 12), st.integers(1, 300), st.integers(0, 2**31))
def test_summed_groups_split_into_the_summed_counts(most: int, parties: int, length: int,
                                                     seed: int) -> None:
    width = most.bit_length()
    group = int(np.random.default_rng(seed).integers(1, MAX_GROUP_BITS // width + 1))
    groups = CountGroups(most=most, group=group)
    rng = np.random.default_rng(seed)
    # honest parties: counts whose sum over the parties stays within the bound
    counts = rng.multinomial(most, np.ones(parties) / parties, size=length).T
    counts = (counts * rng.random((parties, length))).astype(np.int64)
    summed = np.sum([groups.pack(c) for c in counts], axis=0)
    assert summed.shape == (groups.n_values(length),)
    assert np.array_equal(groups.unpack_sums(summed, length), counts.sum(axis=0))


def test_a_full_field_on_every_count_round_trips() -> None:
    groups = CountGroups(most=2**15 - 1, group=3)
    counts = np.full(10, 2**15 - 1, dtype=np.int64)
    assert np.array_equal(groups.unpack_sums(groups.pack(counts), 10), counts)


@pytest.mark.parametrize("bad", [-1, 1001])
def test_a_count_outside_the_bound_is_refused_when_packing(bad: int) -> None:
    with pytest.raises(PackingOverflowError, match="index 2"):
        CountGroups(most=1000, group=2).pack(np.array([0, 5, bad], dtype=np.int64))


def test_non_integer_counts_are_refused() -> None:
    with pytest.raises(TypeError):
        CountGroups(most=1000, group=2).pack(np.array([0.5, 1.0]))


def test_a_field_sum_above_the_bound_is_refused_when_unpacking() -> None:
    groups = CountGroups(most=1000, group=2)  # width 10: 1001..1023 fit a field but break it
    summed = groups.pack(np.array([1000, 3], dtype=np.int64)) + 1
    with pytest.raises(PackingOverflowError, match="index 0"):
        groups.unpack_sums(summed, 2)


def test_a_sum_wider_than_its_fields_is_refused() -> None:
    groups = CountGroups(most=1000, group=2)
    with pytest.raises(PackingOverflowError, match="wider"):
        groups.unpack_sums(np.array([1 << 20]), 2)
    with pytest.raises(PackingOverflowError, match="wider"):
        groups.unpack_sums(np.array([-1]), 2)


def test_a_non_zero_padding_field_is_refused() -> None:
    groups = CountGroups(most=1000, group=2)
    summed = groups.pack(np.array([1, 2, 3], dtype=np.int64))
    summed[-1] += 1 << groups.width  # the padding field after the third count
    with pytest.raises(PackingOverflowError, match="padding"):
        groups.unpack_sums(summed, 3)


def test_a_wrong_length_is_refused() -> None:
    groups = CountGroups(most=1000, group=2)
    with pytest.raises(VectorLengthError):
        groups.unpack_sums(groups.pack(np.arange(4)), 5)
    with pytest.raises(VectorLengthError):
        groups.pack(np.array([], dtype=np.int64))


@pytest.mark.parametrize("kwargs", [dict(most=0, group=1), dict(most=5, group=0),
                                    dict(most=2**16, group=3), dict(most=5, group=1,
                                                                    schema_version=2)])
def test_bad_parameters_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        CountGroups(**kwargs)


def test_parameters_must_be_ints() -> None:
    with pytest.raises(TypeError):
        CountGroups(most=True, group=1)
