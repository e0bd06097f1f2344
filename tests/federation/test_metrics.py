"""Metrics against scikit-learn; histogram AUC/KS against the exact values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score, roc_curve

from federation.ml.metrics import auc_ks_from_histograms, ks_statistic, roc_auc, score_histograms


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(20, 400), st.booleans())
def test_exact_auc_and_ks_match_sklearn(seed: int, n: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    y[:2] = [True, False]
    s = rng.normal(size=n) + y
    if ties:
        s = np.round(s, 1)
    assert np.isclose(roc_auc(y, s), roc_auc_score(y, s))
    fpr, tpr, _ = roc_curve(y, s)
    assert np.isclose(ks_statistic(y, s), np.max(np.abs(tpr - fpr)))


def test_histograms_from_several_banks_give_the_union_auc() -> None:
    rng = np.random.default_rng(3)
    bads, goods, ys, ps = [], [], [], []
    for shift in (0.0, 0.5, -0.7):  # banks with different score populations
        y = rng.random(3000) < 0.2
        p = 1 / (1 + np.exp(-(rng.normal(shift - 1.5, 1, y.size) + 1.2 * y)))
        bad, good = score_histograms(y, p)
        bads.append(bad), goods.append(good), ys.append(y), ps.append(p)
    auc, ks = auc_ks_from_histograms(np.sum(bads, axis=0), np.sum(goods, axis=0))
    y_all, p_all = np.concatenate(ys), np.concatenate(ps)
    assert abs(auc - roc_auc(y_all, p_all)) < 1e-3
    assert abs(ks - ks_statistic(y_all, p_all)) < 5e-3
    mean_of_bank_aucs = np.mean([roc_auc(y, p) for y, p in zip(ys, ps, strict=True)])
    assert abs(mean_of_bank_aucs - auc) > 5e-3  # the union AUC is not the average


def test_single_class_gives_nan() -> None:
    assert np.isnan(roc_auc(np.zeros(5), np.arange(5)))
    assert np.isnan(auc_ks_from_histograms(np.zeros(4), np.ones(4))[0])


def _binned(y: np.ndarray, bins: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    return (np.bincount(bins[y], minlength=n_bins), np.bincount(bins[~y], minlength=n_bins))


@pytest.mark.parametrize("shape", ["usual", "inverted", "crossing"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_histogram_auc_and_ks_equal_sklearns_on_the_binned_scores(shape: str, seed: int) -> None:
    """Scores that are bin numbers lose nothing to binning, so the histogram AUC and KS must
    equal scikit-learn's exactly: with bad rows scoring higher (usual), lower (inverted: the KS
    is the largest gap the other way round) and with crossing score distributions (the largest
    gap may lie on either side)."""
    rng = np.random.default_rng(seed)
    n_bins, n = 64, 3000
    y = rng.random(n) < 0.25
    if shape == "usual":
        center, spread = 32 + 6 * y, np.full(n, 8.0)
    elif shape == "inverted":
        center, spread = 32 - 6 * y, np.full(n, 8.0)
    else:  # bad rows: wide around the middle; good rows: narrow and a little above it
        center, spread = np.where(y, 30.0, 35.0), np.where(y, 14.0, 4.0)
    bins = np.clip(np.round(rng.normal(center, spread)), 0, n_bins - 1).astype(np.int64)
    auc, ks = auc_ks_from_histograms(*_binned(y, bins, n_bins))
    fpr, tpr, _ = roc_curve(y, bins)
    assert auc == pytest.approx(roc_auc_score(y, bins), abs=1e-12)
    assert ks == pytest.approx(np.max(np.abs(tpr - fpr)), abs=1e-12)
    if shape == "inverted":
        assert auc < 0.5 and ks > 0.2
    if shape == "crossing":
        gaps = tpr - fpr
        assert gaps.max() > 0.05 and gaps.min() < -0.05  # the curves do cross
