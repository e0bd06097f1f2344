"""Node histograms: equal to a plain loop, additive over parties, exact under subtraction."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.errors import DataError
from federation.ml.gbdt.binning import bin_matrix, pooled_edges
from federation.ml.gbdt.gradients import logistic_gradients
from federation.ml.gbdt.histograms import node_histograms, subtract_histograms


def loop_histograms(codes, g, h, node_of_row, nodes, n_bins) -> np.ndarray:
    out = np.zeros((len(nodes), codes.shape[1], n_bins + 1, 2))
    for i in range(codes.shape[0]):
        if node_of_row[i] in nodes:
            k = list(nodes).index(node_of_row[i])
            for f in range(codes.shape[1]):
                out[k, f, codes[i, f]] += (g[i], h[i])
    return out


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 40), st.integers(1, 4), st.integers(2, 9), st.integers(0, 2**32 - 1))
def test_histograms_equal_a_plain_loop(rows: int, features: int, n_bins: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_bins + 1, size=(rows, features)).astype(np.uint8)
    g, h = rng.normal(size=rows), rng.random(rows)
    node_of_row = rng.integers(0, 5, size=rows)
    nodes = [4, 1, 2]
    np.testing.assert_allclose(node_histograms(codes, g, h, node_of_row, nodes, n_bins),
                               loop_histograms(codes, g, h, node_of_row, nodes, n_bins),
                               rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def quantised(uci_with_missing):
    """UCI codes with quantised gradients at arbitrary margins, and a 3-node assignment."""
    X, y = uci_with_missing.X, uci_with_missing.y
    codes = bin_matrix(X, pooled_edges(X, 32))
    margins = np.random.default_rng(3).normal(-1.3, 0.7, size=y.size)
    g, h = logistic_gradients(y, margins, bits=30)
    node_of_row = np.where(codes[:, 5] <= 2, 1, 2)  # root 0 split on PAY_0
    return codes, g, h, node_of_row


def test_party_histograms_sum_to_the_pooled_histogram_bit_for_bit(quantised) -> None:
    codes, g, h, node_of_row = quantised
    pooled = node_histograms(codes, g, h, np.zeros_like(node_of_row), [0], 32)
    order = np.random.default_rng(5).permutation(codes.shape[0])
    parties = np.array_split(order, 5)
    summed = sum(node_histograms(codes[p], g[p], h[p], np.zeros(p.size, np.int64), [0], 32)
                 for p in parties[::-1])
    assert np.array_equal(summed, pooled)


def test_sibling_is_exactly_parent_minus_child(quantised) -> None:
    codes, g, h, node_of_row = quantised
    parent = node_histograms(codes, g, h, np.zeros_like(node_of_row), [0], 32)[0]
    left, right = node_histograms(codes, g, h, node_of_row, [1, 2], 32)
    assert np.array_equal(subtract_histograms(parent, left), right)
    assert np.array_equal(subtract_histograms(parent, right), left)


def test_unquantised_gradients_are_not_exact_which_is_why_we_quantise(quantised) -> None:
    codes, _, _, node_of_row = quantised
    rng = np.random.default_rng(1)
    g, h = rng.normal(size=codes.shape[0]) / 3, rng.random(codes.shape[0]) / 7
    parent = node_histograms(codes, g, h, np.zeros_like(node_of_row), [0], 32)[0]
    left, right = node_histograms(codes, g, h, node_of_row, [1, 2], 32)
    assert not np.array_equal(parent - left, right)


def test_root_histogram_of_uci_is_fast(uci) -> None:
    X = np.column_stack([uci.X, uci.X[:, :2]])  # 30,000 rows x 25 features
    codes = bin_matrix(X, pooled_edges(X, 32))
    g, h = logistic_gradients(uci.y, np.zeros(uci.y.size), bits=30)
    start = time.perf_counter()
    node_histograms(codes, g, h, np.zeros(uci.y.size, np.int64), [0], 32)
    assert time.perf_counter() - start < 1.0  # about 20 ms on one core


def test_shape_mismatches_are_refused() -> None:
    codes = np.zeros((3, 2), np.uint8)
    with pytest.raises(DataError, match="one value per row"):
        node_histograms(codes, np.zeros(2), np.zeros(3), np.zeros(3, np.int64), [0], 4)
    with pytest.raises(DataError, match="same edges"):
        subtract_histograms(np.zeros((2, 5, 2)), np.zeros((3, 5, 2)))
    assert node_histograms(codes, np.zeros(3), np.zeros(3), np.zeros(3, np.int64), [], 4).shape \
        == (0, 2, 5, 2)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.integers(1, 4), st.integers(2, 12), st.integers(0, 2**32 - 1))
def test_compact_histograms_drop_only_cells_no_row_can_reach(rows: int, features: int,
                                                             n_bins: int, seed: int) -> None:
    from federation.ml.gbdt.histograms import compact_histograms, expand_histograms

    rng = np.random.default_rng(seed)
    X = rng.integers(0, 1 + rng.integers(1, 6), size=(rows, features)).astype(np.float64)
    X[rng.random(X.shape) < 0.1] = np.nan  # few distinct values and gaps: few used bins
    edges = pooled_edges(X, n_bins)
    codes = bin_matrix(X, edges)
    used = edges.used_codes()
    assert used[np.arange(features)[None, :].repeat(rows, 0), codes].all()
    g, h = rng.normal(size=rows), rng.random(rows)
    full = node_histograms(codes, g, h, np.zeros(rows, np.int64), [0], n_bins)
    small = compact_histograms(full, used)
    assert small.size == int(used.sum()) * 2 <= full.size
    np.testing.assert_array_equal(expand_histograms(small, 1, used), full)
    with pytest.raises(DataError, match="used bins"):
        expand_histograms(small[:-1], 1, used)
