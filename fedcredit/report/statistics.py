"""The report's statistics, computed from what a coordinator holds: summed score histograms.

Every function here takes the per-class test-score histograms of ``results.json``
(``score_histograms``: counts of bads and goods in equal logit bins, riskiest bin last) or a
calibration table, never a row. Because every bank adds its counts before the coordinator sees
them, these numbers need no row-level score, label or ID; a bin's rows share one score (the
bin centre), so a cut-off or a band never splits a bin.

* :func:`auc_interval` - DeLong's variance of the AUC, computed from the bins (ties within a
  bin count one half, as in :func:`federation.ml.metrics.auc_ks_from_histograms`);
* :func:`ks_interval` - a stratified bootstrap of the KS (bads and goods resampled apart);
* :func:`cutoff_table`, :func:`approval_table` - approval rate and bad rate when every row
  scoring at least a cut-off is approved;
* :func:`gains_table`, :func:`cap_curve` - lift and cumulative share of bads caught, riskiest
  rows first;
* :func:`histogram_calibration`, :func:`hosmer_lemeshow` - predicted vs observed default rate
  in bands of the model's PD;
* :func:`calibration_in_the_large` - the mean PD against the observed default rate, with the
  gap's standard error if the PDs were right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from federation.ml.credit_metrics import equal_mass_groups
from federation.ml.metrics import auc_ks_from_histograms
from federation.run.results import CalibrationBin
from federation.scorecard.scale import GradeSummary, RiskGrades

CONFIDENCE = 0.95
SMALL_SAMPLE_CLASS_ROWS = 100
"""Fewer bads (or goods) than this among the test rows: the report warns that AUC and KS are
uncertain (a common validation rule of thumb)."""
BOOTSTRAP_RESAMPLES = 2000
APPROVAL_TARGETS = (0.5, 0.7, 0.8, 0.9)
GAIN_GROUPS = 10
Counts = Sequence[float] | Sequence[int] | np.ndarray
"""Per-bin counts: a histogram section's tuple or an array."""


@dataclass(frozen=True, slots=True)
class Interval:
    """A statistic's confidence interval: ``low`` to ``high`` at ``level``, and how."""

    estimate: float
    low: float
    high: float
    level: float
    method: str


def _counts(bad: Counts, good: Counts) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(bad, dtype=np.float64)
    g = np.asarray(good, dtype=np.float64)
    if b.shape != g.shape or b.ndim != 1:
        raise ValueError(f"bad {b.shape} and good {g.shape} counts must be 1-D and equal length.")
    if b.sum() <= 0 or g.sum() <= 0:
        raise ValueError("the histograms need at least one bad and one good row.")
    return b, g


def auc_interval(bad: Counts, good: Counts, *, auc: float | None = None,
                 level: float = CONFIDENCE) -> Interval:
    """DeLong confidence interval of the AUC from per-class histograms (riskiest bin last).

    Each bad's placement is the share of goods scored less risky (half of those in its bin),
    each good's the share of bads scored riskier; the AUC's variance is
    ``var(bad placements) / n_bad + var(good placements) / n_good`` (DeLong et al. 1988).
    ``auc`` centres the interval on the reported AUC (e.g. a row-level one) instead of the
    histograms' own.
    """
    b, g = _counts(bad, good)
    n_b, n_g = b.sum(), g.sum()
    v10 = (np.cumsum(g) - g + 0.5 * g) / n_g  # per bin, for a bad in it
    v01 = (b.sum() - np.cumsum(b) + 0.5 * b) / n_b  # per bin, for a good in it
    hist_auc = float((b * v10).sum() / n_b)
    s10 = float((b * (v10 - hist_auc) ** 2).sum() / max(n_b - 1, 1))
    s01 = float((g * (v01 - hist_auc) ** 2).sum() / max(n_g - 1, 1))
    se = math.sqrt(s10 / n_b + s01 / n_g)
    centre = hist_auc if auc is None else auc
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return Interval(centre, max(0.0, centre - z * se), min(1.0, centre + z * se), level,
                    "DeLong")


def ks_interval(bad: Counts, good: Counts, *, ks: float | None = None,
                level: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES,
                rng: np.random.Generator | None = None) -> Interval:
    """Stratified bootstrap interval of the KS from per-class histograms.

    Bads and goods are resampled apart (multinomially over the bins, keeping each class's
    size); the interval is the percentile interval of the resampled KS, shifted by the gap
    between ``ks`` (the reported KS, if given) and the histograms' own KS. ``rng`` is seeded
    (0) by default so the report is reproducible.
    """
    b, g = _counts(bad, good)
    rng = rng if rng is not None else np.random.default_rng(0)
    rb = rng.multinomial(int(b.sum()), b / b.sum(), size=resamples).cumsum(axis=1)
    rg = rng.multinomial(int(g.sum()), g / g.sum(), size=resamples).cumsum(axis=1)
    stats = np.abs(rb / rb[:, -1:] - rg / rg[:, -1:]).max(axis=1)
    _, hist_ks = auc_ks_from_histograms(b, g)
    shift = 0.0 if ks is None else ks - hist_ks
    low, high = np.quantile(stats, [0.5 - level / 2, 0.5 + level / 2]) + shift
    return Interval(hist_ks + shift, max(0.0, float(low)), min(1.0, float(high)), level,
                    f"stratified bootstrap, {resamples:,} resamples")


def small_sample(bad: Counts, good: Counts) -> bool:
    """Whether either class has fewer than :data:`SMALL_SAMPLE_CLASS_ROWS` test rows."""
    return min(float(np.sum(bad)), float(np.sum(good))) < SMALL_SAMPLE_CLASS_ROWS


@dataclass(frozen=True, slots=True)
class CutoffRow:
    """Approving every row scoring at least ``cutoff`` points."""

    cutoff: float
    approved: int
    approval_rate: float
    approved_bads: int
    approved_bad_rate: float
    bads_declined: float
    """Share of all bads declined (caught) at this cut-off."""


def _cutoff_row(scores: np.ndarray, b: np.ndarray, g: np.ndarray, cutoff: float) -> CutoffRow:
    keep = scores >= cutoff
    approved, bads = float((b + g)[keep].sum()), float(b[keep].sum())
    return CutoffRow(cutoff, int(round(approved)), approved / float((b + g).sum()),
                     int(round(bads)), bads / approved if approved else math.nan,
                     1.0 - bads / float(b.sum()))


def cutoff_table(bad: Counts, good: Counts, scores: np.ndarray,
                 cutoffs: Sequence[float]) -> list[CutoffRow]:
    """Approval and bad rate at each score cut-off (``scores``: the points of each bin)."""
    b, g = _counts(bad, good)
    return [_cutoff_row(np.asarray(scores), b, g, float(c)) for c in cutoffs]


def approval_table(bad: Counts, good: Counts, scores: np.ndarray, *,
                   targets: Sequence[float] = APPROVAL_TARGETS) -> list[CutoffRow]:
    """The cut-off (a bin's score) approving at least each target share of the rows.

    ``scores`` are the points of each bin, falling as the bins' risk rises.
    """
    b, g = _counts(bad, good)
    share = np.cumsum(b + g) / (b + g).sum()  # least risky first: bins in score order
    rows = []
    for target in targets:
        at = min(int(np.searchsorted(share, target - 1e-12)), b.size - 1)
        rows.append(_cutoff_row(np.asarray(scores), b, g, float(scores[at])))
    return rows


def grade_table_from_scores(grades: RiskGrades, scores: np.ndarray, bad: Counts,
                            good: Counts) -> list[GradeSummary]:
    """Rows, bads and default rate per grade, each bin graded at its score."""
    b, g = _counts(bad, good)
    idx = grades.index(np.asarray(scores))
    k = len(grades.labels)
    counts = np.bincount(idx, weights=b + g, minlength=k)
    bads = np.bincount(idx, weights=b, minlength=k)
    total = max(float(counts.sum()), 1.0)
    out = []
    for i, (label, low, high) in enumerate(grades.bands()):
        n, nb = int(round(counts[i])), int(round(bads[i]))
        out.append(GradeSummary(label, low, high, n, nb, n / total, nb / n if n else math.nan))
    return out


@dataclass(frozen=True, slots=True)
class GainsRow:
    """One group of about equal size, riskiest first: its bads and the bads caught so far."""

    group: int
    rows: int
    bads: int
    bad_rate: float
    cumulative_rows_share: float
    cumulative_bads_share: float
    lift: float


def gains_table(bad: Counts, good: Counts, *,
                groups: int = GAIN_GROUPS) -> list[GainsRow]:
    """Gains and lift in ``groups`` groups of about equal size, riskiest rows first."""
    b, g = _counts(bad, good)
    b, g = b[::-1], g[::-1]
    ids = equal_mass_groups(b + g, groups)
    n = int(ids.max()) + 1
    rows_in = np.bincount(ids, weights=b + g, minlength=n)
    bads_in = np.bincount(ids, weights=b, minlength=n)
    overall = b.sum() / (b + g).sum()
    out = []
    for k in range(n):
        if rows_in[k] <= 0:
            continue
        rate = bads_in[k] / rows_in[k]
        out.append(GainsRow(k + 1, int(round(rows_in[k])), int(round(bads_in[k])), float(rate),
                            float(rows_in[: k + 1].sum() / (b + g).sum()),
                            float(bads_in[: k + 1].sum() / b.sum()), float(rate / overall)))
    return out


def cap_curve(bad: Counts, good: Counts) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative accuracy profile: (share of rows, share of bads), riskiest rows first."""
    b, g = _counts(bad, good)
    b, g = b[::-1], g[::-1]
    x = np.concatenate([[0.0], np.cumsum(b + g) / (b + g).sum()])
    y = np.concatenate([[0.0], np.cumsum(b) / b.sum()])
    return x, y


@dataclass(frozen=True, slots=True)
class CumulativeGrade:
    """A grade and every better grade together: rows, bads and their bad rate."""

    grade: str
    rows: int
    bads: int
    bad_rate: float


def cumulative_grades(rows: Sequence[GradeSummary]) -> list[CumulativeGrade]:
    """Rows, bads and bad rate of this grade and all better ones (approving down to it)."""
    out, n, bads = [], 0, 0
    for r in rows:
        n, bads = n + r.count, bads + (r.bads or 0)
        out.append(CumulativeGrade(r.grade, n, bads, bads / n if n else math.nan))
    return out


def grades_monotone(rows: Sequence[GradeSummary]) -> bool:
    """Whether the non-empty grades' default rates rise (or stay) from best to worst."""
    rates = [r.default_rate for r in rows if r.count and not math.isnan(r.default_rate)]
    return all(a <= b for a, b in zip(rates, rates[1:], strict=False))


INVERSION_Z = 1.96
"""An inversion with a smaller two-proportion z statistic is within sampling error (5 %)."""


@dataclass(frozen=True, slots=True)
class GradeInversion:
    """Two adjacent populated grades whose default rates fall from the worse to the better.

    ``z`` is the two-proportion z statistic of the difference (pooled rate); below
    :data:`INVERSION_Z` the grades' default rates are not separated beyond chance, so the
    inversion says the two grades are one in risk, not that the order is reversed.
    """

    better: GradeSummary
    worse: GradeSummary
    z: float

    @property
    def significant(self) -> bool:
        """Whether the reversed order is beyond sampling error (two-sided 5 %)."""
        return self.z >= INVERSION_Z


def grade_inversions(rows: Sequence[GradeSummary]) -> list[GradeInversion]:
    """Every pair of adjacent populated grades whose default rate falls from worse to better."""
    filled = [r for r in rows if r.count and r.bads is not None and not math.isnan(r.default_rate)]
    out = []
    for better, worse in zip(filled, filled[1:], strict=False):
        if better.default_rate > worse.default_rate:
            pooled = ((better.bads or 0) + (worse.bads or 0)) / (better.count + worse.count)
            se = math.sqrt(pooled * (1 - pooled) * (1 / better.count + 1 / worse.count))
            diff = better.default_rate - worse.default_rate
            out.append(GradeInversion(better, worse, math.inf if se == 0 else diff / se))
    return out


CalibrationBand = CalibrationBin
"""Rows with a PD in ``[lo, hi]``: their mean PD and observed default rate (the results
file's calibration bin, also for bands the report computes from raw histograms)."""


def histogram_calibration(bad: Counts, good: Counts, *, logit_range: float,
                          bands: int = GAIN_GROUPS) -> tuple[list[CalibrationBand], float]:
    """PD bands of about equal size from the histograms, and the Brier score.

    Each bin's rows take the PD of the bin centre (the logit bins are 0.023 logit wide, so
    the Brier score is exact to about 1e-4).
    """
    b, g = _counts(bad, good)
    edges = np.linspace(-logit_range, logit_range, b.size + 1)
    pd = 1.0 / (1.0 + np.exp(-(edges[:-1] + edges[1:]) / 2.0))
    n = b + g
    brier = float((b * (1 - pd) ** 2 + g * pd ** 2).sum() / n.sum())
    ids = equal_mass_groups(n, bands)
    out = []
    for k in range(int(ids.max()) + 1):
        sel = (ids == k) & (n > 0)
        rows = float(n[sel].sum())
        if rows <= 0:
            continue
        out.append(CalibrationBand(lo=float(pd[sel].min()), hi=float(pd[sel].max()),
                                   rows=int(round(rows)), defaults=int(round(b[sel].sum())),
                                   mean_pd=float((n * pd)[sel].sum() / rows),
                                   observed_rate=float(b[sel].sum() / rows)))
    return out, brier


@dataclass(frozen=True, slots=True)
class HosmerLemeshow:
    """Hosmer-Lemeshow statistic over PD bands and its p-value (``bands - 2`` degrees)."""

    statistic: float
    dof: int
    p_value: float


def hosmer_lemeshow(rows: Sequence[int], defaults: Sequence[int],
                    mean_pd: Sequence[float]) -> HosmerLemeshow | None:
    """``sum (O - E)^2 / (E (1 - E / n))`` over bands; None with fewer than 3 usable bands."""
    n = np.asarray(rows, dtype=np.float64)
    o = np.asarray(defaults, dtype=np.float64)
    p = np.clip(np.asarray(mean_pd, dtype=np.float64), 1e-12, 1 - 1e-12)
    keep = n > 0
    if int(keep.sum()) < 3:
        return None
    e = n[keep] * p[keep]
    stat = float(((o[keep] - e) ** 2 / (e * (1 - p[keep]))).sum())
    dof = int(keep.sum()) - 2
    return HosmerLemeshow(stat, dof, chi2_survival(stat, dof))


@dataclass(frozen=True, slots=True)
class LargeCalibration:
    """Calibration in the large: ``gap = mean PD - observed rate`` over ``rows`` rows, and its
    standard error ``se`` if every row defaulted with its PD (``sqrt(sum p (1 - p)) / rows``,
    each band's rows at the band's mean PD, which slightly overstates it)."""

    rows: int
    gap: float
    se: float

    @property
    def z(self) -> float:
        return self.gap / self.se if self.se > 0 else math.inf

    @property
    def within_sampling_error(self) -> bool:
        """|z| < 2: the observed rate is what right PDs would give about 95 % of the time."""
        return abs(self.z) < 2.0

    def rows_for(self, tolerance: float) -> int:
        """Held-out rows at which two standard errors equal ``tolerance`` (same PD mix)."""
        per_row_var = (self.se * self.rows) ** 2 / self.rows
        return math.ceil(per_row_var * (2.0 / tolerance) ** 2)


def calibration_in_the_large(rows: Sequence[int], defaults: Sequence[int],
                             mean_pd: Sequence[float]) -> LargeCalibration | None:
    """The gap of the mean PD to the observed default rate over bands; None with no rows."""
    n = np.asarray(rows, dtype=np.float64)
    p = np.asarray(mean_pd, dtype=np.float64)
    total = float(n.sum())
    if total <= 0:
        return None
    gap = float((n * p).sum() - float(np.sum(defaults))) / total
    se = math.sqrt(float((n * p * (1 - p)).sum())) / total
    return LargeCalibration(int(round(total)), gap, se)


def chi2_survival(x: float, dof: int) -> float:
    """P(X > x) for a chi-squared variable with integer ``dof`` (closed form, stdlib only).

    Even ``dof``: ``exp(-x/2) sum_{i<dof/2} (x/2)^i / i!``; odd: ``erfc(sqrt(x/2))`` plus
    ``exp(-x/2) sum_{i=1}^{(dof-1)/2} (x/2)^(i-1/2) / Gamma(i+1/2)``.
    """
    if dof < 1:
        raise ValueError(f"chi-squared needs at least 1 degree of freedom (got {dof}).")
    if x <= 0:
        return 1.0
    h = x / 2.0
    if dof % 2 == 0:
        terms = sum(math.exp(i * math.log(h) - h - math.lgamma(i + 1)) for i in range(dof // 2))
        return min(1.0, terms)
    terms = sum(math.exp((i - 0.5) * math.log(h) - h - math.lgamma(i + 0.5))
                for i in range(1, (dof - 1) // 2 + 1))
    return min(1.0, math.erfc(math.sqrt(h)) + terms)
