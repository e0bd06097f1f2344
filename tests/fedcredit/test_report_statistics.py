"""The report's statistics from score histograms, against row-level computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from fedcredit.report.statistics import (
    CalibrationBand,
    approval_table,
    auc_interval,
    calibration_in_the_large,
    cap_curve,
    chi2_survival,
    cumulative_grades,
    cutoff_table,
    gains_table,
    grade_table_from_scores,
    grades_monotone,
    histogram_calibration,
    hosmer_lemeshow,
    ks_interval,
    small_sample,
)
from federation.ml.metrics import LOGIT_RANGE, auc_ks_from_histograms, roc_auc, score_histograms
from federation.scorecard.scale import (
    GradeSummary,
    RiskGrades,
    ScorecardScale,
    grade_table_from_histograms,
    histogram_bin_scores,
)


def delong_rows(y: np.ndarray, s: np.ndarray) -> float:
    """DeLong's standard error of the AUC from rows (the textbook O(n^2) form)."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return math.sqrt(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)


def calibrated_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from their own PDs, so the PDs are calibrated by construction."""
    rng = np.random.default_rng(seed)
    pd = 1 / (1 + np.exp(-rng.normal(-1.5, 1.2, n)))
    return (rng.random(n) < pd).astype(int), pd


def test_delong_from_histograms_equals_the_row_level_formula() -> None:
    y, pd = calibrated_sample(400, 1)
    bad, good = score_histograms(y, pd)
    edges = np.linspace(-LOGIT_RANGE, LOGIT_RANGE, bad.size + 1)
    binned = np.searchsorted(edges, np.log(pd / (1 - pd)), side="right")  # rows as bin ids
    interval = auc_interval(bad, good)
    hist_auc, _ = auc_ks_from_histograms(bad, good)
    assert interval.estimate == pytest.approx(hist_auc)
    assert interval.estimate == pytest.approx(roc_auc(y, binned), abs=1e-12)
    half = (interval.high - interval.low) / 2
    assert half == pytest.approx(1.959964 * delong_rows(y, binned), rel=1e-5)
    centred = auc_interval(bad, good, auc=0.8)
    assert (centred.low + centred.high) / 2 == pytest.approx(0.8)


def test_intervals_narrow_with_more_rows_and_hold_the_estimate() -> None:
    widths = []
    for n in (300, 3000):
        y, pd = calibrated_sample(n, 2)
        bad, good = score_histograms(y, pd)
        auc, ks = auc_interval(bad, good), ks_interval(bad, good)
        assert auc.low < auc.estimate < auc.high and ks.low <= ks.estimate <= ks.high
        widths.append((auc.high - auc.low, ks.high - ks.low))
    assert widths[1][0] < widths[0][0] / 2 and widths[1][1] < widths[0][1] / 2


def test_ks_bootstrap_is_seeded_and_centred_on_the_reported_ks() -> None:
    y, pd = calibrated_sample(500, 3)
    bad, good = score_histograms(y, pd)
    assert ks_interval(bad, good) == ks_interval(bad, good)
    _, ks = auc_ks_from_histograms(bad, good)
    shifted = ks_interval(bad, good, ks=ks + 0.01)
    plain = ks_interval(bad, good)
    assert shifted.estimate == pytest.approx(ks + 0.01)
    assert shifted.low == pytest.approx(plain.low + 0.01)


def test_small_sample_rule() -> None:
    assert small_sample([99] + [0] * 3, [500] + [0] * 3)
    assert not small_sample([100, 0], [0, 100])


def test_cut_offs_count_the_rows_at_or_above_the_score() -> None:
    scale = ScorecardScale()
    bad = np.zeros(1024)
    good = np.zeros(1024)
    good[100], bad[100] = 8, 2    # low risk: high score
    good[600], bad[600] = 4, 6    # high risk: low score
    scores = histogram_bin_scores(scale, 1024, logit_range=LOGIT_RANGE)
    between = (scores[100] + scores[600]) / 2
    low, mid = cutoff_table(bad, good, scores, [scores[600] - 1, between])
    assert (low.approved, low.approval_rate, low.bads_declined) == (20, 1.0, 0.0)
    assert (mid.approved, mid.approved_bads, mid.approval_rate) == (10, 2, 0.5)
    assert mid.approved_bad_rate == pytest.approx(0.2) and mid.bads_declined == pytest.approx(0.75)
    half, *_ = approval_table(bad, good, scores, targets=(0.5,))
    assert half.cutoff == pytest.approx(scores[100]) and half.approval_rate == 0.5


def test_gains_reach_every_bad_and_average_lift_is_one() -> None:
    y, pd = calibrated_sample(2000, 4)
    bad, good = score_histograms(y, pd)
    rows = gains_table(bad, good)
    assert 8 <= len(rows) <= 10 and rows[-1].cumulative_bads_share == pytest.approx(1.0)
    assert sum(r.rows for r in rows) == 2000 and sum(r.bads for r in rows) == y.sum()
    assert rows[0].lift > 1 > rows[-1].lift
    assert sum(r.lift * r.rows for r in rows) / 2000 == pytest.approx(1.0)
    x, caught = cap_curve(bad, good)
    assert x[0] == caught[0] == 0 and x[-1] == caught[-1] == 1 and np.all(np.diff(caught) >= 0)


def test_histogram_calibration_of_calibrated_pds_lies_near_the_diagonal() -> None:
    y, pd = calibrated_sample(20000, 5)
    bad, good = score_histograms(y, pd)
    bands, brier = histogram_calibration(bad, good, logit_range=LOGIT_RANGE)
    assert brier == pytest.approx(np.mean((pd - y) ** 2), abs=2e-4)
    assert len(bands) >= 8 and sum(b.rows for b in bands) == 20000
    for b in bands:
        assert b.lo <= b.mean_pd <= b.hi
        assert abs(b.observed_rate - b.mean_pd) < 0.03, b
    hl = hosmer_lemeshow([b.rows for b in bands], [b.defaults for b in bands],
                         [b.mean_pd for b in bands])
    assert hl is not None and hl.p_value > 0.01
    # the same rows scored with PDs twice too high: far from the diagonal, HL rejects
    bad2, good2 = score_histograms(y, np.minimum(2 * pd, 0.99))
    bands2, _ = histogram_calibration(bad2, good2, logit_range=LOGIT_RANGE)
    hl2 = hosmer_lemeshow([b.rows for b in bands2], [b.defaults for b in bands2],
                          [b.mean_pd for b in bands2])
    assert hl2 is not None and hl2.p_value < 1e-6


@pytest.mark.parametrize(("x", "dof"), [(0.4, 1), (3.2, 8), (12.5, 8), (7.0, 3), (30.0, 7)])
def test_chi2_survival_matches_scipy(x: float, dof: int) -> None:
    assert chi2_survival(x, dof) == pytest.approx(chi2.sf(x, dof), rel=1e-9)


def test_calibration_in_the_large_gap_and_standard_error() -> None:
    y, pd = calibrated_sample(20000, 7)
    bad, good = score_histograms(y, pd)
    bands, _ = histogram_calibration(bad, good, logit_range=LOGIT_RANGE)
    rows, defaults = [b.rows for b in bands], [b.defaults for b in bands]
    large = calibration_in_the_large(rows, defaults, [b.mean_pd for b in bands])
    assert large is not None and large.rows == 20000
    assert large.gap == pytest.approx(pd.mean() - y.mean(), abs=1e-3)
    # the standard error is that of a mean of Bernoulli(p) draws: close to the exact one
    assert large.se == pytest.approx(math.sqrt(np.sum(pd * (1 - pd))) / 20000, rel=0.05)
    assert large.within_sampling_error
    # 4x the rows halve the standard error, so a 1-point check needs ~(2 se / 0.01)^2 x rows
    assert large.rows_for(0.01) == math.ceil((2 * large.se / 0.01) ** 2 * 20000 - 1e-9)
    # PDs 3 points too high on every band: far beyond sampling error, and said so
    high = calibration_in_the_large(rows, defaults, [b.mean_pd + 0.03 for b in bands])
    assert high is not None and high.gap == pytest.approx(large.gap + 0.03)
    assert high.z > 5 and not high.within_sampling_error
    assert calibration_in_the_large([0, 0], [0, 0], [0.1, 0.2]) is None


def test_hosmer_lemeshow_needs_three_bands() -> None:
    assert hosmer_lemeshow([10, 10], [1, 2], [0.1, 0.2]) is None
    assert isinstance(CalibrationBand(lo=0, hi=1, rows=1, defaults=0, mean_pd=0.5,
                                      observed_rate=0.0).mean_pd, float)


def test_grades_from_bin_scores_equal_the_scorecard_grades_of_the_histograms() -> None:
    y, pd = calibrated_sample(3000, 6)
    bad, good = score_histograms(y, pd)
    scale, grades = ScorecardScale(), RiskGrades()
    ours = grade_table_from_scores(grades, histogram_bin_scores(scale, 1024), bad, good)
    assert ours == grade_table_from_histograms(grades, scale, bad, good)


def test_cumulative_grades_and_monotone_rates() -> None:
    rows = [GradeSummary("A", 560, math.inf, 50, 1, 0.5, 0.02),
            GradeSummary("B", 540, 560, 0, 0, 0.0, math.nan),
            GradeSummary("C", -math.inf, 540, 50, 9, 0.5, 0.18)]
    cum = cumulative_grades(rows)
    assert [(c.rows, c.bads) for c in cum] == [(50, 1), (50, 1), (100, 10)]
    assert cum[-1].bad_rate == pytest.approx(0.1)
    assert grades_monotone(rows)
    assert not grades_monotone([rows[2], rows[0]])
