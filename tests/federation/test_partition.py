"""Partitioners: disjoint, complete, reproducible, and skewed the way they say."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.data.partition import partition_rows, split_banks
from federation.errors import ConfigError

RNG = np.random.default_rng(0)
Y = (RNG.random(5000) < 0.22).astype(np.int8)
SIZE = RNG.lognormal(10, 1, 5000)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["iid", "dirichlet", "by-column"]), st.integers(1, 8), st.integers(0, 99))
def test_partitions_are_disjoint_complete_and_seeded(scheme: str, banks: int, seed: int) -> None:
    parts = partition_rows(Y, banks, scheme, seed=seed, alpha=1.0, column=SIZE)
    joined = np.concatenate(parts)
    assert len(parts) == banks
    assert np.array_equal(np.sort(joined), np.arange(Y.size))
    again = partition_rows(Y, banks, scheme, seed=seed, alpha=1.0, column=SIZE)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_dirichlet_small_alpha_skews_labels() -> None:
    iid = [Y[p].mean() for p in partition_rows(Y, 5, "iid", seed=0)]
    skew = [Y[p].mean() for p in partition_rows(Y, 5, "dirichlet", seed=0, alpha=0.2)]
    assert np.std(skew) > 3 * np.std(iid)


def test_by_column_gives_quantile_ranges() -> None:
    parts = partition_rows(Y, 4, "by-column", seed=0, column=SIZE)
    maxima = [SIZE[p].max() for p in parts]
    minima = [SIZE[p].min() for p in parts]
    assert all(maxima[i] <= minima[i + 1] for i in range(3))


def test_train_test_split_is_stratified_and_disjoint() -> None:
    for split in split_banks(Y, 3, "iid", seed=4, test_fraction=0.3):
        assert not set(split.train) & set(split.test)
        assert abs(Y[split.test].mean() - Y[split.train].mean()) < 0.02
        assert abs(len(split.test) / (len(split.test) + len(split.train)) - 0.3) < 0.01


@pytest.mark.parametrize("kwargs, message", [
    ({"banks": 0, "scheme": "iid"}, "at least 1"),
    ({"banks": 3, "scheme": "round-robin"}, "unknown partition"),
    ({"banks": 3, "scheme": "by-column"}, "--partition-col"),
    ({"banks": 300, "scheme": "iid"}, "use fewer banks"),
])
def test_bad_settings_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        partition_rows(Y, seed=0, **kwargs)
