"""Calibrated default probabilities from per-class score histograms (Platt scaling).

Step: after training, the run fits a calibration map ``PD = sigmoid(slope * logit + intercept)``
on summed per-class counts of scores in the logit bins of
:func:`federation.ml.metrics.score_histograms` (``fit`` rows: the banks' training rows in a
horizontal run, one half of the held-out rows in a vertical run), and measures it on held-out
rows the map was not fitted on. The scorecard scale is then applied to the calibrated PD
(:mod:`federation.scorecard.scale`, :mod:`federation.scorecard.scoring`).

Why: the vertical Taylor-loss LR's logits are shrunk towards zero (its fixed point is least
squares on ``4 (y - 0.5)``), and FedAvg/boosted trees drift from the base rate, so the model's
raw probabilities are not default probabilities. Platt scaling is a two-parameter logistic
regression of the label on the model's logit; its maximum-likelihood intercept makes the mean
PD on the fit rows equal their default rate exactly.

Maths: with bin centres ``c_j`` (logit), ``b_j`` bad and ``g_j`` good rows in bin ``j``, the map
minimises ``-sum_j [b_j log p_j + g_j log(1 - p_j)]``, ``p_j = sigmoid(a c_j + d)`` by Newton's
method (a 2x2 system). Binning moves a logit by at most half a bin (0.0117 logit with 1,024
bins over [-12, 12]), so the fit equals the row-level fit up to that rounding.

Security assumption (honest-but-curious parties): the fit needs only the summed per-class bin
counts the run already opens for its AUC/KS (horizontal: every bank opens the sealed sum and
fits the same map; the coordinator sees the two map parameters, checks the banks agree, and
the summed test counts the banks release; vertical: the bank, which holds the labels, reports
the counts of one held-out half besides the full held-out counts). No row's score or label
leaves a node; the map's two numbers describe the pooled score distribution, not a row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from federation.errors import DataError
from federation.ml.metrics import HIST_BINS, LOGIT_RANGE, score_histograms

PLATT: Final = "platt"
MIN_CLASS_ROWS: Final = 5
"""Fewest bad and fewest good rows a map is fitted on."""
CALIBRATION_BANDS: Final = 10
"""PD bands (about equal rows) of the calibration table."""
_NEWTON_STEPS: Final = 100
_RIDGE: Final = 1e-9


class CalibrationError(DataError):
    """The fit rows cannot support a calibration map (too few of one class)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlattMap:
    """``PD = sigmoid(slope * logit + intercept)`` (logit: the model's log-odds of default)."""

    slope: float
    intercept: float
    schema_version: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slope) and math.isfinite(self.intercept)):
            raise ValueError(f"calibration map slope {self.slope} / intercept "
                             f"{self.intercept} must be finite numbers.")

    def log_odds(self, logit: np.ndarray) -> np.ndarray:
        """Calibrated log-odds of default for the model's ``logit``."""
        return self.slope * np.asarray(logit, dtype=np.float64) + self.intercept

    def pd(self, logit: np.ndarray) -> np.ndarray:
        """Calibrated probability of default for the model's ``logit``."""
        return _sigmoid(self.log_odds(logit))

    def pd_of_probability(self, probability: np.ndarray) -> np.ndarray:
        """Calibrated PD for the model's raw probability (clipped away from 0 and 1)."""
        p = np.clip(np.asarray(probability, dtype=np.float64), 1e-15, 1 - 1e-15)
        return self.pd(np.log(p) - np.log1p(-p))

    def as_dict(self) -> dict[str, float]:
        """The parameters as results.json's ``calibration.map`` holds them."""
        return {"slope": float(self.slope), "intercept": float(self.intercept)}

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> PlattMap:
        """The map from ``calibration.map`` (``slope``, ``intercept``)."""
        try:
            return cls(slope=float(values["slope"]), intercept=float(values["intercept"]))
        except KeyError as exc:
            raise ValueError(f"calibration map lacks {exc.args[0]!r}; rerun the run to "
                             "rewrite its results.json.") from None


def bin_centres(bins: int = HIST_BINS, *, logit_range: float = LOGIT_RANGE) -> np.ndarray:
    """Logit at the centre of each bin of :func:`federation.ml.metrics.score_histograms`."""
    edges = np.linspace(-logit_range, logit_range, bins + 1)
    return (edges[:-1] + edges[1:]) / 2.0


def fit_platt(bad: np.ndarray, good: np.ndarray, *,
              logit_range: float = LOGIT_RANGE) -> PlattMap:
    """Platt map fitted on per-class logit-bin counts (maximum likelihood, Newton's method).

    Parameters
    ----------
    bad, good
        Counts of bad (default) and good rows per logit bin (equal length).
    logit_range
        The bins cover ``[-logit_range, logit_range]``.

    Returns
    -------
    PlattMap
        Its PDs average to the fit rows' default rate (the intercept's score equation).

    Raises
    ------
    CalibrationError
        Fewer than :data:`MIN_CLASS_ROWS` bad or good rows.
    """
    b, g = _counts(bad, good)
    if b.sum() < MIN_CLASS_ROWS or g.sum() < MIN_CLASS_ROWS:
        raise CalibrationError(
            f"the calibration rows hold {int(b.sum())} defaults and {int(g.sum())} "
            f"non-defaults; a calibration map needs at least {MIN_CLASS_ROWS} of each: use "
            "more rows or a larger test share.")
    x, n = bin_centres(b.size, logit_range=logit_range), b + g
    params = np.array([1.0, 0.0])
    loss = _nll(params, x, b, g)
    for _ in range(_NEWTON_STEPS):
        p = _sigmoid(params[0] * x + params[1])
        grad = np.array([np.sum((n * p - b) * x), np.sum(n * p - b)]) + [_RIDGE * params[0], 0]
        w = n * p * (1 - p)
        hess = np.array([[np.sum(w * x * x) + _RIDGE, np.sum(w * x)],
                         [np.sum(w * x), np.sum(w) + _RIDGE]])
        step = np.linalg.solve(hess, grad)
        shrink = 1.0
        while shrink > 1e-6 and _nll(params - shrink * step, x, b, g) > loss + 1e-12:
            shrink /= 2
        params = params - shrink * step
        loss = _nll(params, x, b, g)
        if np.max(np.abs(shrink * step)) < 1e-10:
            break
    return PlattMap(slope=float(params[0]), intercept=float(params[1]))


def calibration_rows(y: np.ndarray) -> np.ndarray:
    """The held-out rows a vertical run fits its map on (a boolean mask): every other bad row
    and every other good row, in the order of the run's salted split.

    Stratified by class, so the half the map is fitted on and the half it is measured on have
    the same default rate up to one row; the check then measures the map, not how the two
    halves' default rates happened to differ.
    """
    y = np.asarray(y).astype(bool)
    rank = np.empty(y.size, dtype=np.int64)
    for cls in (True, False):
        rank[y == cls] = np.arange(int(np.sum(y == cls)))
    return rank % 2 == 0


def calibration_counts(y: np.ndarray, probability: np.ndarray) -> tuple[list[int], list[int]]:
    """(bad, good) logit-bin counts of the :func:`calibration_rows` half of held-out rows."""
    fit = calibration_rows(y)
    bad, good = score_histograms(np.asarray(y)[fit], np.asarray(probability)[fit])
    return [int(v) for v in bad], [int(v) for v in good]


def fit_and_hold_out(held_bad: np.ndarray, held_good: np.ndarray, fit_bad: np.ndarray,
                     fit_good: np.ndarray, *, logit_range: float = LOGIT_RANGE,
                     ) -> tuple[PlattMap, tuple[np.ndarray, np.ndarray]]:
    """Fit on the calibration half's counts; return the map and the other half's counts
    (all held-out counts minus the fit half's), which it is measured on.

    Raises
    ------
    CalibrationError
        The fit half has too few rows of a class (:func:`fit_platt`).
    ValueError
        The fit counts exceed the held-out counts in some bin.
    """
    hb, hg = _counts(held_bad, held_good)
    fb, fg = _counts(fit_bad, fit_good)
    if hb.shape != fb.shape or (fb > hb).any() or (fg > hg).any():
        raise ValueError("the calibration half's counts are not part of the held-out counts.")
    return fit_platt(fb, fg, logit_range=logit_range), (hb - fb, hg - fg)


@dataclass(frozen=True, slots=True, kw_only=True)
class BandCounts:
    """One PD band of held-out rows: its PD range, rows, defaults and mean calibrated PD."""

    lo: float
    hi: float
    rows: int
    defaults: int
    mean_pd: float

    @property
    def observed_rate(self) -> float:
        """The band's default rate."""
        return self.defaults / self.rows


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationCheck:
    """The calibrated map measured on held-out rows (every number from their bin counts)."""

    rows: int
    mean_pd: float
    observed_rate: float
    brier: float
    uncalibrated_mean_pd: float
    bands: tuple[BandCounts, ...]


def check_calibration(pd_map: PlattMap, bad: np.ndarray, good: np.ndarray, *,
                      logit_range: float = LOGIT_RANGE,
                      bands: int = CALIBRATION_BANDS) -> CalibrationCheck:
    """Mean calibrated PD, default rate, Brier score and PD bands of held-out rows.

    Every row of a bin gets the PD of the bin centre. Bands hold about equal rows, in
    increasing PD; a bin is never split, so a band is empty only when one bin holds more
    rows than a band should, and empty bands are left out.

    Raises
    ------
    CalibrationError
        The held-out counts hold no row.
    """
    b, g = _counts(bad, good)
    n = b + g
    total = int(n.sum())
    if total == 0:
        raise CalibrationError("no held-out rows to measure the calibration on.")
    x = bin_centres(b.size, logit_range=logit_range)
    pd = pd_map.pd(x)
    brier = float(np.sum(b * (1 - pd) ** 2 + g * pd ** 2) / total)
    return CalibrationCheck(
        rows=total, mean_pd=float(np.sum(n * pd) / total), observed_rate=float(b.sum() / total),
        brier=brier, uncalibrated_mean_pd=float(np.sum(n * _sigmoid(x)) / total),
        bands=_bands(pd, b, g, bands))


def _bands(pd: np.ndarray, b: np.ndarray, g: np.ndarray, bands: int) -> tuple[BandCounts, ...]:
    order = np.argsort(pd, kind="stable")
    pd, b, g = pd[order], b[order], g[order]
    n = b + g
    before = np.cumsum(n) - n
    group = np.minimum((before * bands // n.sum()).astype(np.int64), bands - 1)
    out = []
    for k in range(bands):
        inside = (group == k) & (n > 0)
        rows = int(n[inside].sum())
        if rows == 0:
            continue
        out.append(BandCounts(lo=float(pd[inside].min()), hi=float(pd[inside].max()), rows=rows,
                              defaults=int(b[inside].sum()),
                              mean_pd=float(np.sum(n[inside] * pd[inside]) / rows)))
    return tuple(out)


def _counts(bad: np.ndarray, good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(bad, dtype=np.float64)
    g = np.asarray(good, dtype=np.float64)
    if b.shape != g.shape or b.ndim != 1:
        raise ValueError(f"bad {b.shape} and good {g.shape} counts must be equal-length vectors.")
    if (b < 0).any() or (g < 0).any():
        raise ValueError("bin counts must not be negative.")
    return b, g


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64))))


def _nll(params: np.ndarray, x: np.ndarray, b: np.ndarray, g: np.ndarray) -> float:
    z = params[0] * x + params[1]
    # -log sigmoid(z) = logaddexp(0, -z); -log(1 - sigmoid(z)) = logaddexp(0, z)
    return float(np.sum(b * np.logaddexp(0, -z) + g * np.logaddexp(0, z))
                 + 0.5 * _RIDGE * params[0] ** 2)
