"""Credit-model metrics beyond AUC/KS, as plain functions on arrays.

Row-level metrics (``y`` is 1 = bad, ``probabilities`` is P(bad)):

* :func:`gini` - accuracy ratio, ``2 * AUC - 1``;
* :func:`brier_score` - mean squared error of P(bad);
* :func:`calibration_by_decile` - predicted vs observed bad rate in ten equal-count groups;
* :func:`population_stability_index` - shift of a score distribution (train vs test, a scored
  file vs the development sample).

Histogram metrics work on the per-class score histograms of :mod:`federation.ml.metrics` (the only
evaluation output that leaves a bank), so the coordinator can draw curves and compare banks
without row-level scores: :func:`roc_curve_from_histograms`, :func:`ks_curve_from_histograms`,
:func:`psi_from_counts`, :func:`psi_against_reference` (a scored file vs the development
sample) and :func:`psi_against_pool` (each bank vs the federation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from federation.ml.metrics import roc_auc

PSI_FLOOR = 1e-4
"""Share given to an empty bin in PSI so the logarithm stays finite (the usual convention)."""
PSI_STABLE, PSI_SHIFTED = 0.10, 0.25
"""Rule-of-thumb PSI bands: < 0.10 stable, 0.10-0.25 some shift, > 0.25 significant shift."""


def _pair(y: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as bool and values as float64, checked to be 1-D and of equal length."""
    y = np.asarray(y)
    values = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or values.ndim != 1 or y.shape != values.shape:
        raise ValueError(f"labels {y.shape} and values {values.shape} must be 1-D and equal length.")
    return y.astype(bool), values


def gini(y: np.ndarray, scores: np.ndarray) -> float:
    """Gini coefficient (accuracy ratio) ``2 * AUC - 1``; NaN if one class is absent.

    Parameters
    ----------
    y : array of 0/1, 1 = bad
    scores : array of float
        Any risk score that increases with the chance of default.
    """
    y, scores = _pair(y, scores)
    return 2.0 * roc_auc(y, scores) - 1.0


def brier_score(y: np.ndarray, probabilities: np.ndarray) -> float:
    """Brier score: mean of ``(p - y)**2`` (0 is perfect; always predicting the base rate r
    gives ``r * (1 - r)``).

    Raises
    ------
    ValueError
        Empty input, or a probability outside [0, 1].
    """
    y, p = _pair(y, probabilities)
    if p.size == 0:
        raise ValueError("brier_score needs at least one row.")
    if np.any((p < 0) | (p > 1)) or np.isnan(p).any():
        raise ValueError("brier_score expects probabilities in [0, 1].")
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True)
class CalibrationTable:
    """Predicted vs observed bad rate per equal-count group, lowest predicted risk first.

    Attributes
    ----------
    group : int array
        1-based group number (1 = lowest predicted risk); empty groups are left out.
    count : int array
    mean_predicted : float array
        Mean P(bad) in the group.
    observed_rate : float array
        Share of bads in the group.
    lower, upper : float array
        Smallest and largest P(bad) in the group.
    """

    group: np.ndarray
    count: np.ndarray
    mean_predicted: np.ndarray
    observed_rate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def rows(self) -> list[dict[str, float]]:
        """The table as plain dicts (for JSON and reports)."""
        return [
            {"group": int(g), "count": int(c), "mean_predicted": float(m),
             "observed_rate": float(o), "lower": float(lo), "upper": float(hi)}
            for g, c, m, o, lo, hi in zip(self.group, self.count, self.mean_predicted,
                                          self.observed_rate, self.lower, self.upper, strict=True)
        ]


def calibration_by_decile(
    y: np.ndarray, probabilities: np.ndarray, *, n_groups: int = 10
) -> CalibrationTable:
    """Calibration table in ``n_groups`` equal-count groups of predicted P(bad).

    Group edges are the quantiles of ``probabilities``, the same rule as scikit-learn's
    ``calibration_curve(strategy="quantile")``, so ``observed_rate`` and ``mean_predicted``
    equal its ``prob_true`` and ``prob_pred``.

    Raises
    ------
    ValueError
        Empty input or ``n_groups < 1``.
    """
    y, p = _pair(y, probabilities)
    if p.size == 0 or n_groups < 1:
        raise ValueError("calibration_by_decile needs rows and n_groups >= 1.")
    edges = np.percentile(p, np.linspace(0, 100, n_groups + 1))
    ids = np.searchsorted(edges[1:-1], p)
    count = np.bincount(ids, minlength=n_groups)
    sums = np.bincount(ids, weights=p, minlength=n_groups)
    bads = np.bincount(ids, weights=y.astype(np.float64), minlength=n_groups)
    keep = count > 0
    lower = np.full(n_groups, np.inf)
    upper = np.full(n_groups, -np.inf)
    np.minimum.at(lower, ids, p)
    np.maximum.at(upper, ids, p)
    return CalibrationTable(
        group=np.arange(1, n_groups + 1)[keep], count=count[keep],
        mean_predicted=sums[keep] / count[keep], observed_rate=bads[keep] / count[keep],
        lower=lower[keep], upper=upper[keep],
    )


def psi_from_counts(
    expected: np.ndarray, actual: np.ndarray, *, floor: float = PSI_FLOOR
) -> float:
    """Population stability index between two binned distributions over the same bins.

    ``PSI = sum((a_i - e_i) * ln(a_i / e_i))`` with ``e_i``, ``a_i`` the bin shares; a share of 0
    is replaced by ``floor``. Symmetric in its two arguments.

    Raises
    ------
    ValueError
        Different lengths, negative counts, or an empty distribution.
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1:
        raise ValueError(f"PSI needs two 1-D count vectors of equal length ({e.shape} vs {a.shape}).")
    if (e < 0).any() or (a < 0).any() or e.sum() <= 0 or a.sum() <= 0:
        raise ValueError("PSI needs non-negative counts with a positive total in each.")
    e_share = np.maximum(e / e.sum(), floor)
    a_share = np.maximum(a / a.sum(), floor)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def population_stability_index(
    expected: np.ndarray, actual: np.ndarray, *, n_bins: int = 10, floor: float = PSI_FLOOR
) -> float:
    """PSI of ``actual`` scores against ``expected`` scores (e.g. test vs train).

    Bins are the ``n_bins`` quantile groups of ``expected`` (deciles by default), open at both
    ends so every ``actual`` value falls in one; then :func:`psi_from_counts`.
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.ndim != 1 or a.ndim != 1 or e.size == 0 or a.size == 0:
        raise ValueError("population_stability_index needs two non-empty 1-D score arrays.")
    inner = np.unique(np.percentile(e, np.linspace(0, 100, n_bins + 1))[1:-1])
    e_counts = np.bincount(np.searchsorted(inner, e, side="right"), minlength=inner.size + 1)
    a_counts = np.bincount(np.searchsorted(inner, a, side="right"), minlength=inner.size + 1)
    return psi_from_counts(e_counts, a_counts, floor=floor)


def psi_against_reference(
    reference_counts: np.ndarray, actual_counts: np.ndarray, *, n_bins: int = 10,
    floor: float = PSI_FLOOR,
) -> float:
    """PSI of a distribution against a reference, both as counts over the same fine bins.

    The fine bins (e.g. the 2048 logit bins of a score histogram) are first merged into about
    ``n_bins`` groups of equal reference mass (:func:`equal_mass_groups`), the histogram
    analogue of binning at the reference's deciles.
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    act = np.asarray(actual_counts, dtype=np.float64)
    if ref.shape != act.shape or ref.ndim != 1:
        raise ValueError(f"PSI needs two count vectors over the same bins ({ref.shape} vs {act.shape}).")
    groups = equal_mass_groups(ref, n_bins)
    size = int(groups.max()) + 1 if groups.size else 0
    return psi_from_counts(np.bincount(groups, weights=ref, minlength=size),
                           np.bincount(groups, weights=act, minlength=size), floor=floor)


def psi_against_pool(
    counts_by_party: Mapping[str, np.ndarray], *, n_bins: int = 10, floor: float = PSI_FLOOR
) -> dict[str, float]:
    """Each party's PSI against the pooled distribution (each bank vs the federation).

    Parameters
    ----------
    counts_by_party : mapping of name -> 1-D counts over the same fine bins
        E.g. every bank's test-score histogram (bad + good counts).
    n_bins : int
        Groups of equal pooled mass the fine bins are merged into.
    """
    if not counts_by_party:
        raise ValueError("psi_against_pool needs at least one party's counts.")
    pooled = np.sum([np.asarray(c, dtype=np.float64) for c in counts_by_party.values()], axis=0)
    return {name: psi_against_reference(pooled, c, n_bins=n_bins, floor=floor)
            for name, c in counts_by_party.items()}


def equal_mass_groups(counts: np.ndarray, n_groups: int) -> np.ndarray:
    """Group index per fine bin so that groups hold about equal shares of ``counts``.

    Bins are never split, so with heavy ties a group may hold more than 1/n_groups.
    """
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total <= 0:
        return np.zeros(c.size, dtype=np.int64)
    before = (np.cumsum(c) - c) / total
    raw = np.minimum((before * n_groups).astype(np.int64), n_groups - 1)
    _, dense = np.unique(raw, return_inverse=True)
    return dense.astype(np.int64)


def roc_curve_from_histograms(bad: np.ndarray, good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC points from per-class histograms of a risk score (higher bin = riskier).

    Returns
    -------
    (fpr, tpr) : float arrays starting at (0, 0) and ending at (1, 1); cutting above each bin
        from the riskiest down, ``tpr`` is the share of bads flagged, ``fpr`` of goods.
    """
    bad = np.asarray(bad, dtype=np.float64)[::-1]
    good = np.asarray(good, dtype=np.float64)[::-1]
    if bad.sum() <= 0 or good.sum() <= 0:
        raise ValueError("ROC needs at least one bad and one good in the histograms.")
    tpr = np.concatenate([[0.0], np.cumsum(bad) / bad.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(good) / good.sum()])
    return fpr, tpr


def ks_curve_from_histograms(bad: np.ndarray, good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative shares of bads and goods up to each bin (lowest risk first).

    ``max(abs(cum_good - cum_bad))`` is the KS statistic of
    :func:`federation.ml.metrics.auc_ks_from_histograms`.
    """
    bad = np.asarray(bad, dtype=np.float64)
    good = np.asarray(good, dtype=np.float64)
    if bad.sum() <= 0 or good.sum() <= 0:
        raise ValueError("KS needs at least one bad and one good in the histograms.")
    return np.cumsum(bad) / bad.sum(), np.cumsum(good) / good.sum()
