"""Plain binning helpers and WOE/IV."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.ml.binning import (
    assign_bins,
    categorical_bins,
    equal_width_bins,
    label_counts,
    quantile_bins,
    woe_iv,
)


def test_quantile_bins_equal_frequency_and_missing_bin() -> None:
    x = np.r_[np.arange(100, dtype=float), [np.nan, np.nan]]
    ids, edges = quantile_bins(x, 4)
    assert edges.tolist() == [0.0, 24.75, 49.5, 74.25, 99.0]
    assert np.bincount(ids).tolist() == [25, 25, 25, 25, 2]
    assert ids[-1] == ids[-2] == len(edges) - 1


def test_quantile_bins_keep_ties_together_and_may_merge_bins() -> None:
    x = np.array([0.0] * 80 + [1.0] * 10 + [2.0] * 10)
    ids, edges = quantile_bins(x, 5)
    # the quantiles at 0, 0.2, ..., 0.6 are all 0; the one at 0.8 interpolates 0 and 1
    np.testing.assert_allclose(edges, [0.0, 0.2, 2.0])
    assert set(ids[:80]) == {0} and set(ids[80:]) == {1}
    assert np.bincount(ids, minlength=len(edges)).tolist() == [80, 20, 0]


def test_constant_column_gets_one_bin() -> None:
    ids, edges = quantile_bins([3.0, 3.0, None], 4)
    assert edges.tolist() == [3.0, 3.0] and ids.tolist() == [0, 0, 1]


def test_equal_width_bins() -> None:
    ids, edges = equal_width_bins([0.0, 1.0, 2.5, 5.0, 10.0, None], 4)
    assert edges.tolist() == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert ids.tolist() == [0, 0, 1, 2, 3, 4]


def test_assign_bins_for_new_data() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    assert assign_bins([-5.0, 0.5, 1.0, 7.0, np.nan], edges).tolist() == [0, 0, 1, 1, 2]
    with pytest.raises(ValueError, match="increasing"):
        assign_bins([1.0], np.array([2.0, 1.0]))


def test_bad_numeric_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="no non-missing"):
        quantile_bins([np.nan, None], 3)
    with pytest.raises(ValueError, match="infinite"):
        quantile_bins([1.0, np.inf], 3)
    with pytest.raises(ValueError, match="n_bins"):
        equal_width_bins([1.0], 0)


def test_categorical_bins_sorted_with_missing_last() -> None:
    ids, cats = categorical_bins(pd.Series(["b", "a", None, "b", "c", np.nan]))
    assert cats == ("a", "b", "c")
    assert ids.tolist() == [1, 0, 3, 1, 2, 3]
    ids, cats = categorical_bins([2, 1, 2])
    assert cats == (1, 2) and ids.tolist() == [1, 0, 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1,
                max_size=60).filter(lambda v: any(x is not None for x in v)),
       st.integers(1, 8), st.booleans())
def test_bins_are_monotone_and_cover_every_row(values, n_bins, quantile) -> None:
    ids, edges = (quantile_bins if quantile else equal_width_bins)(values, n_bins)
    assert ids.shape == (len(values),)
    assert ids.min() >= 0 and ids.max() <= len(edges) - 1
    finite = [(v, i) for v, i in zip(values, ids, strict=True) if v is not None]
    for (v1, i1) in finite:
        assert i1 < len(edges) - 1
        for (v2, i2) in finite:
            if v1 <= v2:
                assert i1 <= i2  # monotone; equal values share a bin
    assert all(i == len(edges) - 1 for v, i in zip(values, ids, strict=True) if v is None)


def test_woe_iv_known_answer() -> None:
    bad, good = np.array([10, 30]), np.array([90, 70])
    woe, iv = woe_iv(bad, good, smoothing=0.0)
    expected = [math.log((90 / 160) / (10 / 40)), math.log((70 / 160) / (30 / 40))]
    np.testing.assert_allclose(woe, expected)
    assert iv == pytest.approx((90 / 160 - 10 / 40) * expected[0]
                               + (70 / 160 - 30 / 40) * expected[1])


def test_woe_smoothing_and_empty_bins() -> None:
    woe, iv = woe_iv([0, 5, 0], [10, 5, 0], smoothing=0.5)
    p_bad = np.array([0.5, 5.5]) / 6.0
    p_good = np.array([10.5, 5.5]) / 16.0
    np.testing.assert_allclose(woe[:2], np.log(p_good / p_bad))
    assert woe[2] == 0.0
    assert iv == pytest.approx(float(np.sum((p_good - p_bad) * np.log(p_good / p_bad))))
    with pytest.raises(ValueError, match="smoothing > 0"):
        woe_iv([0, 5], [10, 5], smoothing=0.0)
    with pytest.raises(ValueError, match="one bad and one good"):
        woe_iv([0, 0], [1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        woe_iv([-1, 2], [1, 2])


def test_label_counts() -> None:
    bad, good = label_counts(np.array([0, 1, 1, 2]), np.array([1, 0, 1, 1]), 4)
    assert bad.tolist() == [1, 1, 1, 0] and good.tolist() == [0, 1, 0, 0]
    with pytest.raises(ValueError):
        label_counts(np.array([0, 1]), np.array([2, 0]), 2)
