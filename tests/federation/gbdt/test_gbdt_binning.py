"""Binning from summed fine counts: determinism, federated == pooled, the float32 cut rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from federation.errors import DataError
from federation.ml.gbdt.binning import (
    BinEdges,
    FineGrid,
    bin_matrix,
    column_min_max,
    edges_from_fine_counts,
    federated_edges,
    fine_counts,
    grid_from_mean_std,
    grid_from_min_max,
    pooled_edges,
)

values = st.floats(-1e6, 1e6) | st.sampled_from([0.0, 1.0, 2.0, np.nan])


@st.composite
def partitioned_rows(draw: st.DrawFn) -> tuple[np.ndarray, list[np.ndarray]]:
    """A small matrix with some NaN (never a column without values) and a split of its rows."""
    n, f = draw(st.integers(2, 60)), draw(st.integers(1, 4))
    X = draw(hnp.arrays(np.float64, (n, f), elements=values))
    X[0] = np.nan_to_num(X[0], nan=0.0)
    cuts = sorted(draw(st.lists(st.integers(1, n - 1), max_size=3, unique=True)))
    return X, np.split(X, cuts)


@settings(max_examples=150, deadline=None)
@given(partitioned_rows(), st.integers(2, 40))
def test_federated_edges_equal_pooled_edges(case: tuple[np.ndarray, list[np.ndarray]],
                                            bins: int) -> None:
    X, parts = case
    pooled = pooled_edges(X, bins, cells=64)
    assert federated_edges(parts, bins, cells=64) == pooled
    assert federated_edges(parts[::-1], bins, cells=64) == pooled  # order of parties is moot
    for cuts in pooled.cuts:
        assert len(cuts) <= bins - 1 and list(cuts) == sorted(set(cuts))
        assert all(np.float32(c) == c for c in cuts)


@settings(max_examples=150, deadline=None)
@given(partitioned_rows(), st.integers(2, 40))
def test_codes_follow_the_xgboost_rule(case: tuple[np.ndarray, list[np.ndarray]],
                                       bins: int) -> None:
    X, _ = case
    edges = pooled_edges(X, bins, cells=64)
    codes = bin_matrix(X, edges)
    x32 = X.astype(np.float32)
    for f, cuts in enumerate(edges.cuts):
        missing = np.isnan(X[:, f])
        assert np.all(codes[missing, f] == edges.missing_code)
        for b, cut in enumerate(cuts):  # code <= b  <=>  float32(x) < cuts[b]
            assert np.array_equal(codes[~missing, f] <= b, x32[~missing, f] < np.float32(cut))


def test_fine_counts_add_up_over_parties(uci_with_missing) -> None:
    X = uci_with_missing.X
    mins, maxs = column_min_max(X)
    grid = grid_from_min_max(mins, maxs)
    parts = np.array_split(X, 4)
    summed = np.sum([fine_counts(p, grid) for p in parts], axis=0)
    assert np.array_equal(summed, fine_counts(X, grid))
    assert summed.sum(axis=1).tolist() == (~np.isnan(X)).sum(axis=0).tolist()


def test_edges_are_a_function_of_the_sum_only(uci) -> None:
    grid = grid_from_min_max(*column_min_max(uci.X))
    counts = fine_counts(uci.X, grid)
    first = edges_from_fine_counts(counts, grid, 32)
    assert edges_from_fine_counts(counts.astype(np.float64), grid, 32) == first
    assert all(len(c) <= 31 for c in first.cuts)
    codes = bin_matrix(uci.X, first)
    assert codes.dtype == np.uint8 and codes.max() < 32


def test_quantile_cuts_of_a_known_column() -> None:
    X = np.arange(100, dtype=np.float64).reshape(-1, 1)  # 0..99, cells of width 99/100
    edges = pooled_edges(X, 4, cells=100)
    assert len(edges.cuts[0]) == 3
    counts = np.bincount(bin_matrix(X, edges)[:, 0], minlength=4)
    assert counts.tolist() == [25, 25, 25, 25]


def test_constant_and_two_valued_columns() -> None:
    X = np.column_stack([np.full(10, 3.0), np.r_[np.zeros(7), np.ones(3)]])
    edges = pooled_edges(X, 8)
    assert edges.cuts[0] == ()
    assert len(edges.cuts[1]) == 1 and 0.0 < edges.cuts[1][0] <= 1.0
    assert bin_matrix(X, edges)[:, 1].tolist() == [0] * 7 + [1] * 3


def test_values_outside_the_grid_go_to_the_end_cells() -> None:
    grid = grid_from_mean_std([0.0], [1.0], width=2.0, cells=8)
    counts = fine_counts(np.array([[-100.0], [0.1], [100.0], [np.nan]]), grid)
    assert counts[0, 0] == 1 and counts[0, -1] == 1 and counts.sum() == 3


def test_categorical_columns_get_one_bin_per_category() -> None:
    X = np.array([[0.0, 1.5], [2.0, 2.5], [1.0, np.nan], [np.nan, 0.5], [2.0, 1.0]])
    edges = pooled_edges(X, 4, n_categories=(3, 0))
    assert edges.cuts[0] == () and edges.n_categories == (3, 0)
    assert bin_matrix(X, edges)[:, 0].tolist() == [0, 2, 1, edges.missing_code, 2]
    grid = grid_from_min_max(*column_min_max(X), n_categories=(3, 0), cells=16)
    assert fine_counts(X, grid)[0, :3].tolist() == [1, 1, 2]


@pytest.mark.parametrize("bad", [[[3.0]], [[-1.0]], [[0.5]]])
def test_bad_category_codes_are_refused(bad: list[list[float]]) -> None:
    edges = BinEdges(((),), (3,), 4)
    with pytest.raises(DataError, match="integer codes 0..2"):
        bin_matrix(np.array(bad), edges)


def test_invalid_inputs_are_refused() -> None:
    edges = pooled_edges(np.array([[1.0, 2.0], [3.0, 4.0]]), 4)
    with pytest.raises(DataError, match="infinite"):
        bin_matrix(np.array([[np.inf, 1.0]]), edges)
    with pytest.raises(DataError, match="3 columns"):
        bin_matrix(np.zeros((2, 3)), edges)
    with pytest.raises(DataError, match="2-D"):
        bin_matrix(np.zeros(2), edges)
    with pytest.raises(DataError, match="no values"):
        pooled_edges(np.array([[np.nan, 1.0], [np.nan, 2.0]]), 4)
    grid = grid_from_min_max([0.0], [1.0], cells=8)
    with pytest.raises(DataError, match="shape"):
        edges_from_fine_counts(np.zeros((1, 9)), grid, 4)
    with pytest.raises(DataError, match="non-negative integers"):
        edges_from_fine_counts(np.full((1, 8), 0.5), grid, 4)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(low=(0.0,), high=(-1.0,)), "low <= high"),
    (dict(low=(0.0,), high=(np.inf,)), "finite"),
    (dict(low=(0.0,), high=(1.0, 2.0)), "one low and one high"),
    (dict(low=(0.0,), high=(1.0,), cells=1), "cells"),
    (dict(low=(0.0,), high=(1.0,), n_categories=(300,)), "at most 255"),
    (dict(low=(0.0,), high=(1.0,), n_categories=(2, 0)), "per feature"),
])
def test_bad_grids_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        FineGrid(**kwargs)


@pytest.mark.parametrize(("cuts", "cats", "match"), [
    (((2.0, 1.0),), (0,), "strictly increasing"),
    (((0.1,),), (0,), "float32"),
    (((1.0, 2.0, 3.0, 4.0),), (0,), "at most 3"),
    (((),), (5,), "categor"),
])
def test_bad_edges_are_refused(cuts: tuple, cats: tuple, match: str) -> None:
    with pytest.raises(DataError, match=match):
        BinEdges(cuts, cats, 4)
