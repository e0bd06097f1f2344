"""Metrics against scikit-learn; histogram AUC/KS against the exact values."""

from __future__ import annotations

import numpy as np
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
