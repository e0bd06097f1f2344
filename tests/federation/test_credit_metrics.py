"""Credit metrics against scikit-learn, hand-computed PSI values and the histogram metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from federation.ml.credit_metrics import (
    brier_score,
    calibration_by_decile,
    equal_mass_groups,
    gini,
    ks_curve_from_histograms,
    population_stability_index,
    psi_against_pool,
    psi_against_reference,
    psi_from_counts,
    roc_curve_from_histograms,
)
from federation.ml.metrics import auc_ks_from_histograms, score_histograms


def _sample(seed: int, n: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = [1, 0]
    p = 1 / (1 + np.exp(-(rng.normal(-1, 1, n) + 1.3 * y)))
    return y, (np.round(p, 2) if ties else p)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(20, 500), st.booleans())
def test_gini_and_brier_match_sklearn(seed: int, n: int, ties: bool) -> None:
    y, p = _sample(seed, n, ties)
    assert math.isclose(gini(y, p), 2 * roc_auc_score(y, p) - 1, abs_tol=1e-12)
    assert math.isclose(brier_score(y, p), brier_score_loss(y, p), abs_tol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(30, 800), st.booleans(), st.sampled_from([5, 10, 20]))
def test_calibration_matches_sklearn_quantile_curve(seed: int, n: int, ties: bool, groups: int) -> None:
    y, p = _sample(seed, n, ties)
    table = calibration_by_decile(y, p, n_groups=groups)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=groups, strategy="quantile")
    np.testing.assert_allclose(table.observed_rate, prob_true, atol=1e-12)
    np.testing.assert_allclose(table.mean_predicted, prob_pred, atol=1e-12)
    assert table.count.sum() == n
    eps = 1e-12  # a mean of equal values may differ from them in the last bit
    assert np.all(table.lower - eps <= table.mean_predicted)
    assert np.all(table.mean_predicted <= table.upper + eps)
    assert np.all(np.diff(table.mean_predicted) >= -eps)  # group 1 = lowest predicted risk


def test_calibration_rows_are_plain() -> None:
    y, p = _sample(1, 200, False)
    rows = calibration_by_decile(y, p).rows()
    assert len(rows) == 10 and rows[0]["group"] == 1 and sum(r["count"] for r in rows) == 200
    assert isinstance(rows[0]["observed_rate"], float)


def test_psi_hand_computed_example() -> None:
    # shares 0.5/0.5 -> 0.25/0.75: (0.25-0.5) ln(0.25/0.5) + (0.75-0.5) ln(0.75/0.5)
    expected = 0.25 * math.log(2) + 0.25 * math.log(1.5)
    assert math.isclose(psi_from_counts([50, 50], [25, 75]), expected, rel_tol=1e-12)
    assert math.isclose(expected, 0.2746530721670274, rel_tol=1e-12)
    assert psi_from_counts([10, 20, 30], [1, 2, 3]) == 0.0
    assert math.isclose(psi_from_counts([50, 50], [25, 75]), psi_from_counts([25, 75], [50, 50]))


def test_psi_empty_bin_uses_the_floor() -> None:
    value = psi_from_counts([50, 50, 0], [40, 40, 20], floor=1e-4)
    e, a = np.array([0.5, 0.5, 1e-4]), np.array([0.4, 0.4, 0.2])
    assert math.isclose(value, float(np.sum((a - e) * np.log(a / e))), rel_tol=1e-12)


def test_psi_on_scores_train_vs_test() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=20_000)
    assert population_stability_index(train, train) == 0.0
    assert population_stability_index(train, rng.normal(size=20_000)) < 0.01
    shifted = population_stability_index(train, rng.normal(0.5, 1, 20_000))
    assert shifted > 0.2
    # the deciles of `train` are the bins: every bin of a shifted sample counted by hand
    edges = np.percentile(train, np.arange(10, 100, 10))
    test = rng.normal(0.3, 1.2, 5000)
    e = np.bincount(np.searchsorted(edges, train, side="right"), minlength=10)
    a = np.bincount(np.searchsorted(edges, test, side="right"), minlength=10)
    assert math.isclose(population_stability_index(train, test), psi_from_counts(e, a))


def test_each_bank_against_the_federation() -> None:
    rng = np.random.default_rng(2)
    def hist(shift: float) -> np.ndarray:
        p = 1 / (1 + np.exp(-rng.normal(-1.5 + shift, 1, 4000)))
        bad, good = score_histograms(np.zeros(p.size), p)
        return bad + good
    psi = psi_against_pool({f"bank {i}": hist(0) for i in range(4)} | {"bank 4": hist(1.0)})
    assert psi["bank 4"] > 0.25 and max(psi[f"bank {i}"] for i in range(4)) < 0.1
    same = hist(0)
    assert psi_against_reference(same, same) == 0.0


def test_equal_mass_groups_are_ordered_and_balanced() -> None:
    counts = np.random.default_rng(4).integers(0, 20, 2048)
    groups = equal_mass_groups(counts, 10)
    assert groups.min() == 0 and groups.max() == 9 and np.all(np.diff(groups) >= 0)
    mass = np.bincount(groups, weights=counts) / counts.sum()
    assert np.all(np.abs(mass - 0.1) < 0.01)


def test_histogram_curves_agree_with_histogram_auc_ks() -> None:
    y, p = _sample(7, 5000, False)
    bad, good = score_histograms(y, p)
    auc, ks = auc_ks_from_histograms(bad, good)
    fpr, tpr = roc_curve_from_histograms(bad, good)
    assert math.isclose(float(np.trapezoid(tpr, fpr)), auc, abs_tol=1e-12)
    cum_bad, cum_good = ks_curve_from_histograms(bad, good)
    assert math.isclose(float(np.max(np.abs(cum_bad - cum_good))), ks, abs_tol=1e-12)
    sk_fpr, sk_tpr, _ = roc_curve(y, p)  # the binned curve stays close to the exact one
    assert abs(np.interp(0.3, fpr, tpr) - np.interp(0.3, sk_fpr, sk_tpr)) < 0.01


@pytest.mark.parametrize("call", [
    lambda: brier_score([0, 1], [0.5, 1.5]),
    lambda: brier_score([0, 1, 1], [0.5, 0.5]),
    lambda: gini(np.zeros((2, 2)), np.zeros((2, 2))),
    lambda: calibration_by_decile([], []),
    lambda: psi_from_counts([1, 2], [1, 2, 3]),
    lambda: psi_from_counts([0, 0], [1, 2]),
    lambda: psi_from_counts([1, -1], [1, 2]),
    lambda: population_stability_index([], [1.0]),
    lambda: psi_against_pool({}),
    lambda: roc_curve_from_histograms([0, 0], [1, 2]),
    lambda: ks_curve_from_histograms([1, 2], [0, 0]),
])
def test_bad_input_is_a_value_error(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_single_class_gini_is_nan() -> None:
    assert math.isnan(gini(np.zeros(4), np.arange(4.0)))
