"""The split rule: XGBoost's gain, missing values both ways, and a fixed tie order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.ml.gbdt.binning import BinEdges
from federation.ml.gbdt.histograms import node_histograms
from federation.ml.gbdt.splits import best_splits


def edges_for(n_features: int, n_bins: int, n_categories: tuple[int, ...] = ()) -> BinEdges:
    cats = n_categories or (0,) * n_features
    cuts = tuple(() if k else tuple(float(c) for c in range(1, n_bins)) for k in cats)
    return BinEdges(cuts, cats, n_bins)


def hist_of(codes, g, h, n_bins) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.uint8).reshape(len(g), -1)
    g, h = np.asarray(g, float), np.asarray(h, float)
    return node_histograms(codes, g, h, np.zeros(len(g), np.int64), [0], n_bins)


def brute_force(hist: np.ndarray, edges: BinEdges, l2: float, mcw: float):
    """Every candidate in (feature, bin, missing-left first) order, keeping the first best."""
    def score(g: float, h: float) -> float:
        return g * g / (h + l2) if h + l2 > 0 else 0.0
    total_g, total_h = hist[0, :, 0].sum(), hist[0, :, 1].sum()
    best, best_gain = None, 0.0
    for f in range(edges.n_features):
        k = edges.n_categories[f]
        for b in range(edges.split_bins(f)):
            bins = [c for c in range(edges.n_bins) if (c != b if k else c <= b)]
            for d in (0, 1):
                gl = sum(hist[f, c, 0] for c in bins) + (hist[f, -1, 0] if d == 0 else 0.0)
                hl = sum(hist[f, c, 1] for c in bins) + (hist[f, -1, 1] if d == 0 else 0.0)
                gr, hr = total_g - gl, total_h - hl
                if hl < mcw or hr < mcw:
                    continue
                gain = 0.5 * (score(gl, hl) + score(gr, hr) - score(total_g, total_h))
                if gain > best_gain:
                    best, best_gain = (f, b, d == 0, gain), gain
    return best


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(1, 3), st.integers(2, 5), st.booleans(),
       st.integers(0, 2**32 - 1), st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 1.0, 3.0]))
def test_best_split_is_the_first_best_candidate(rows: int, features: int, n_bins: int,
                                                with_category: bool, seed: int, l2: float,
                                                mcw: float) -> None:
    rng = np.random.default_rng(seed)
    cats = tuple(n_bins if (with_category and f == 0) else 0 for f in range(features))
    edges = edges_for(features, n_bins, cats)
    codes = rng.integers(0, n_bins + 1, size=(rows, features))
    g, h = rng.integers(-3, 4, size=rows), rng.integers(0, 3, size=rows)  # many exact ties
    hist = hist_of(codes, g, h, n_bins)
    if l2 == 0 and mcw == 0:
        mcw = 1.0
    (found,) = best_splits(hist, edges, l2=l2, min_child_weight=mcw)
    expected = brute_force(hist[0], edges, l2, mcw)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert (found.feature, found.bin, found.default_left) == expected[:3]
        assert found.gain == expected[3]


def test_gain_is_xgboost_gain_on_a_known_case() -> None:
    g, h = [-1.0, -1.0, 1.0, 1.0, 1.0], [1.0] * 5
    (split,) = best_splits(hist_of([0, 0, 1, 1, 1], g, h, 2), edges_for(1, 2), l2=1.0,
                           min_child_weight=1.0)
    assert split is not None and (split.feature, split.bin) == (0, 0)
    assert split.gain == 0.5 * (4 / 3 + 9 / 4 - 1 / 6)
    assert (split.left_grad, split.left_hess, split.right_grad, split.right_hess) == (-2, 2, 3, 3)


def test_missing_values_take_the_better_direction() -> None:
    g = [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    codes = [0, 0, 1, 1, 2, 2]  # code 2 = missing (n_bins 2): gradients like the right side
    (split,) = best_splits(hist_of(codes, g, [1.0] * 6, 2), edges_for(1, 2), l2=1.0,
                           min_child_weight=0.0)
    assert split is not None and not split.default_left and split.right_hess == 4.0


def test_ties_go_to_the_lowest_feature_then_bin_then_missing_left() -> None:
    column = np.array([0, 0, 3, 3, 3])
    codes = np.column_stack([column, column])  # identical features; bins 1, 2 empty
    (split,) = best_splits(hist_of(codes, [-1, -1, 1, 1, 1], [1.0] * 5, 4), edges_for(2, 4),
                           l2=1.0, min_child_weight=0.0)
    assert split is not None and (split.feature, split.bin, split.default_left) == (0, 0, True)


def test_min_child_weight_and_useless_splits_leave_a_leaf() -> None:
    hist = hist_of([0, 1], [-1.0, 1.0], [0.25, 0.25], 2)
    assert best_splits(hist, edges_for(1, 2), l2=1.0, min_child_weight=0.5) == [None]
    flat = hist_of([0, 1, 0, 1], [1.0, 1.0, 1.0, 1.0], [1.0] * 4, 2)
    assert best_splits(flat, edges_for(1, 2), l2=1.0, min_child_weight=0.0) == [None]


def test_a_categorical_split_sends_one_category_right() -> None:
    codes = [0, 0, 1, 1, 2, 2]
    g = [-1.0, -1.0, 1.0, 1.0, -1.0, -1.0]  # category 1 differs from 0 and 2
    (split,) = best_splits(hist_of(codes, g, [1.0] * 6, 3), edges_for(1, 3, (3,)), l2=1.0,
                           min_child_weight=0.0)
    assert split is not None and split.bin == 1 and split.right_grad == 2.0
