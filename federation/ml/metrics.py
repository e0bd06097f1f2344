"""Credit metrics as plain functions on arrays: AUC and KS, exact and from score histograms.

Federated evaluation: each bank bins its test scores (logit scale, :data:`HIST_BINS` bins) per
class and sends only the two count vectors; the coordinator sums them and computes the global
AUC/KS with :func:`auc_ks_from_histograms`. That is the AUC of the union of the banks' test sets
up to ties inside one bin, not an average of per-bank AUCs.
"""

from __future__ import annotations

import numpy as np

HIST_BINS = 1024
LOGIT_RANGE = 12.0


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Exact ROC AUC (Mann-Whitney with tie correction). NaN if one class is absent."""
    y = np.asarray(y).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=np.float64)
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg_rank, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ks_statistic(y: np.ndarray, scores: np.ndarray) -> float:
    """Exact Kolmogorov-Smirnov statistic between the bad and good score distributions."""
    y = np.asarray(y).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if y.all() or (~y).all():
        return float("nan")
    thresholds = np.unique(scores)
    cdf_pos = np.searchsorted(np.sort(scores[y]), thresholds, side="right") / y.sum()
    cdf_neg = np.searchsorted(np.sort(scores[~y]), thresholds, side="right") / (~y).sum()
    return float(np.max(np.abs(cdf_pos - cdf_neg)))


def score_histograms(
    y: np.ndarray, probabilities: np.ndarray, *, bins: int = HIST_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class counts of scores in ``bins`` equal bins of the logit on [-12, 12].

    Returns
    -------
    (bad_counts, good_counts) : tuple of int64 arrays of length ``bins``
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-15, 1 - 1e-15)
    logit = np.log(p) - np.log1p(-p)
    edges = np.linspace(-LOGIT_RANGE, LOGIT_RANGE, bins + 1)
    idx = np.clip(np.searchsorted(edges, logit, side="right") - 1, 0, bins - 1)
    y = np.asarray(y).astype(bool)
    bad = np.bincount(idx[y], minlength=bins).astype(np.int64)
    good = np.bincount(idx[~y], minlength=bins).astype(np.int64)
    return bad, good


def auc_ks_from_histograms(bad: np.ndarray, good: np.ndarray) -> tuple[float, float]:
    """AUC and KS from summed per-class score histograms (ties within a bin count one half)."""
    bad = np.asarray(bad, dtype=np.float64)
    good = np.asarray(good, dtype=np.float64)
    n_bad, n_good = bad.sum(), good.sum()
    if n_bad == 0 or n_good == 0:
        return float("nan"), float("nan")
    good_below = np.cumsum(good) - good
    auc = float((bad * (good_below + 0.5 * good)).sum() / (n_bad * n_good))
    ks = float(np.max(np.abs(np.cumsum(bad) / n_bad - np.cumsum(good) / n_good)))
    return auc, ks
