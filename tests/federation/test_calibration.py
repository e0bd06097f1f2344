"""Calibration maths (Platt scaling on logit-bin counts): recovers a known map, matches the
row-level fit, measures on held-out counts, stratified halves, and refuses what it cannot fit."""

from __future__ import annotations

import numpy as np
import pytest

from federation.ml.calibration import (
    CalibrationError,
    PlattMap,
    calibration_counts,
    calibration_rows,
    check_calibration,
    fit_and_hold_out,
    fit_platt,
)
from federation.ml.metrics import score_histograms


def shrunk_scores(rows: int, *, shrink: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from true log-odds z, and a model's probabilities sigmoid(shrink * z)
    (the Taylor-loss LR's logits are shrunk like this)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.4, 1.3, rows)
    y = rng.random(rows) < 1 / (1 + np.exp(-z))
    return y, 1 / (1 + np.exp(-shrink * z))


def test_fit_recovers_the_map_that_undoes_a_shrunk_logit() -> None:
    y, p = shrunk_scores(40_000, shrink=0.25, seed=1)
    pd_map = fit_platt(*score_histograms(y, p))
    assert pd_map.slope == pytest.approx(4.0, rel=0.05)
    assert pd_map.intercept == pytest.approx(0.0, abs=0.06)


def test_binned_fit_equals_row_level_maximum_likelihood() -> None:
    y, p = shrunk_scores(5_000, shrink=0.5, seed=2)
    logit = np.log(p) - np.log1p(-p)
    binned = fit_platt(*score_histograms(y, p))
    a, b = 1.0, 0.0  # row-level Newton on the exact logits
    for _ in range(50):
        q = 1 / (1 + np.exp(-(a * logit + b)))
        grad = np.array([np.sum((q - y) * logit), np.sum(q - y)])
        w = q * (1 - q)
        hess = np.array([[np.sum(w * logit ** 2), np.sum(w * logit)],
                         [np.sum(w * logit), np.sum(w)]])
        a, b = np.array([a, b]) - np.linalg.solve(hess, grad)
    assert binned.slope == pytest.approx(a, abs=0.01)
    assert binned.intercept == pytest.approx(b, abs=0.01)


def test_mean_pd_on_the_fit_rows_equals_their_default_rate() -> None:
    y, p = shrunk_scores(3_000, shrink=0.3, seed=3)
    bad, good = score_histograms(y, p)
    check = check_calibration(fit_platt(bad, good), bad, good)
    assert check.mean_pd == pytest.approx(y.mean(), abs=1e-9)
    assert abs(check.uncalibrated_mean_pd - y.mean()) > 0.05  # the raw model is off


def test_held_out_check_counts_bands_and_brier() -> None:
    y, p = shrunk_scores(20_000, shrink=0.3, seed=4)
    pd_map = fit_platt(*score_histograms(y[:10_000], p[:10_000]))
    bad, good = score_histograms(y[10_000:], p[10_000:])
    check = check_calibration(pd_map, bad, good)
    assert check.rows == 10_000
    assert check.observed_rate == pytest.approx(y[10_000:].mean())
    assert abs(check.mean_pd - check.observed_rate) < 0.01
    calibrated = pd_map.pd_of_probability(p[10_000:])
    brier = np.mean((y[10_000:] - calibrated) ** 2)
    assert check.brier == pytest.approx(brier, abs=1e-3)
    assert check.brier < np.mean((y[10_000:] - p[10_000:]) ** 2)  # better than the raw model
    bands = check.bands
    assert sum(b.rows for b in bands) == 10_000
    assert sum(b.defaults for b in bands) == int(y[10_000:].sum())
    assert len(bands) == 10 and all(800 < b.rows < 1200 for b in bands)
    assert all(b.lo <= b.mean_pd <= b.hi for b in bands)
    assert all(a.hi <= b.lo for a, b in zip(bands, bands[1:], strict=False))
    rates = [b.observed_rate for b in bands]
    assert rates[0] < rates[4] < rates[-1]
    assert all(abs(b.mean_pd - b.observed_rate) < 0.06 for b in bands)


def test_a_bin_heavier_than_a_band_leaves_bands_out_and_keeps_every_row() -> None:
    bad, good = np.zeros(8, np.int64), np.zeros(8, np.int64)
    bad[[2, 6]], good[[2, 6]] = (5, 40), (90, 10)
    check = check_calibration(PlattMap(slope=1.0, intercept=0.0), bad, good, logit_range=4.0)
    assert [b.rows for b in check.bands] == [95, 50]
    assert check.bands[0].hi < check.bands[1].lo


def test_stratified_halves_have_equal_default_rates() -> None:
    y, p = shrunk_scores(1_001, shrink=0.5, seed=5)
    fit = calibration_rows(y)
    assert abs(int(y[fit].sum()) - int(y[~fit].sum())) <= 1
    assert abs(int(fit.sum()) - int((~fit).sum())) <= 1
    bad, good = calibration_counts(y, p)
    expected = score_histograms(y[fit], p[fit])
    assert (bad, good) == (expected[0].tolist(), expected[1].tolist())


def test_fit_and_hold_out_measures_on_the_other_half() -> None:
    y, p = shrunk_scores(8_000, shrink=0.3, seed=6)
    fit = calibration_rows(y)
    held = score_histograms(y, p)
    pd_map, (bad, good) = fit_and_hold_out(*held, *calibration_counts(y, p))
    assert int(bad.sum() + good.sum()) == int((~fit).sum())
    assert int(bad.sum()) == int(y[~fit].sum())
    assert pd_map == fit_platt(*score_histograms(y[fit], p[fit]))
    with pytest.raises(ValueError, match="not part of the held-out"):
        fit_and_hold_out(*score_histograms(y[fit], p[fit]), *held)


@pytest.mark.parametrize("bad_rows, good_rows", [(0, 100), (4, 100), (100, 3)])
def test_too_few_rows_of_a_class_are_refused_with_what_to_do(bad_rows: int,
                                                             good_rows: int) -> None:
    bad, good = np.zeros(16, np.int64), np.zeros(16, np.int64)
    bad[9], good[5] = bad_rows, good_rows
    with pytest.raises(CalibrationError, match="at least 5 of each"):
        fit_platt(bad, good)


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="equal-length"):
        fit_platt(np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="negative"):
        check_calibration(PlattMap(slope=1.0, intercept=0.0), -np.ones(4), np.ones(4))
    with pytest.raises(CalibrationError, match="no held-out rows"):
        check_calibration(PlattMap(slope=1.0, intercept=0.0), np.zeros(4), np.zeros(4))


def test_map_round_trips_and_refuses_non_finite_or_incomplete_parameters() -> None:
    pd_map = PlattMap(slope=2.5, intercept=-0.75)
    assert PlattMap.from_dict(pd_map.as_dict()) == pd_map
    assert pd_map.pd(np.array([0.3]))[0] == pytest.approx(1 / (1 + np.exp(0.0)))
    assert pd_map.pd_of_probability(np.array([0.5]))[0] == pytest.approx(
        1 / (1 + np.exp(0.75)))
    with pytest.raises(ValueError, match="finite"):
        PlattMap(slope=float("nan"), intercept=0.0)
    with pytest.raises(ValueError, match="lacks 'intercept'"):
        PlattMap.from_dict({"slope": 1.0})
