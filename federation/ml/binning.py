"""Plain binning and weight of evidence / information value for credit features.

Bins feed the secure WOE/IV of :mod:`protocols.woe.secure_binning` (the credit center bins its
own columns with these helpers; the bank computes WOE/IV from the decrypted counts with
:func:`woe_iv`), and the same functions give the plaintext reference on joined data.

Conventions
-----------
*Numeric bins* are half-open ``[e_k, e_{k+1})`` over the finite values, the last one closed;
ids ``0 .. len(edges) - 2``. *Missing values* (NaN, None, pandas NA) always get their own
bin, id ``len(edges) - 1``, so a column has ``len(edges)`` bins in total (the missing bin
may be empty). Equal values always share a bin; heavy ties can merge quantile bins, so a
column may get fewer bins than asked for.

*Categorical bins*: one bin per category in sorted order, then the missing bin.

*WOE* follows the scorecard convention ``WOE_b = ln(%good_b / %bad_b)`` (positive: lower
risk than average) and ``IV = sum_b (%good_b - %bad_b) * WOE_b``. With ``smoothing = s``,
``%good_b = (good_b + s) / (G + s*k)`` and ``%bad_b = (bad_b + s) / (B + s*k)`` over the
``k`` non-empty bins (``G``, ``B`` the totals): a bin without goods or bads then has a
finite WOE. Empty bins (no rows at all) get WOE 0 and add nothing to the IV.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["quantile_bins", "equal_width_bins", "assign_bins", "categorical_bins",
           "label_counts", "woe_iv"]


def _as_float(x: Any) -> np.ndarray:
    series = pd.to_numeric(pd.Series(np.asarray(x, dtype=object).ravel()), errors="raise")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.any(np.isinf(values)):
        raise ValueError("column holds infinite values; replace them before binning")
    if np.all(np.isnan(values)):
        raise ValueError("column has no non-missing values; drop it before binning")
    return values


def assign_bins(x: Any, edges: np.ndarray) -> np.ndarray:
    """Bin ids of ``x`` for existing ``edges`` (values outside go to the outer bins).

    Parameters
    ----------
    x : array-like
        Numeric values; NaN/None are missing.
    edges : numpy.ndarray
        Increasing edges from :func:`quantile_bins` or :func:`equal_width_bins`.

    Returns
    -------
    numpy.ndarray
        int64 ids; missing values get ``len(edges) - 1``.
    """
    values = np.asarray(pd.to_numeric(pd.Series(np.asarray(x, dtype=object).ravel()))
                        .to_numpy(dtype=np.float64, na_value=np.nan))
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) < 0):
        raise ValueError("edges must be an increasing array of at least two values")
    ids = np.searchsorted(edges[1:-1], values, side="right").astype(np.int64)
    ids[np.isnan(values)] = edges.size - 1
    return ids


def _edges_to_bins(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(edges)
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    return assign_bins(values, edges), edges


def quantile_bins(x: Any, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-frequency bins of the finite values (ties kept together).

    Parameters
    ----------
    x : array-like
        Numeric column; NaN/None are missing.
    n_bins : int
        Requested bins for the finite values (>= 1); ties may yield fewer.

    Returns
    -------
    bin_ids : numpy.ndarray
        int64 ids per row, missing rows ``len(edges) - 1``.
    edges : numpy.ndarray
        Increasing bin edges (minimum, inner cut points, maximum).

    Raises
    ------
    ValueError
        ``n_bins < 1``, no finite value, or an infinite value.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    values = _as_float(x)
    edges = np.nanquantile(values, np.linspace(0.0, 1.0, n_bins + 1))
    return _edges_to_bins(values, edges)


def equal_width_bins(x: Any, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bins of equal width between the finite minimum and maximum (see :func:`quantile_bins`)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    values = _as_float(x)
    edges = np.linspace(np.nanmin(values), np.nanmax(values), n_bins + 1)
    return _edges_to_bins(values, edges)


def categorical_bins(x: Any) -> tuple[np.ndarray, tuple[Any, ...]]:
    """One bin per category (sorted by their text), then one bin for missing values.

    Returns
    -------
    bin_ids : numpy.ndarray
        int64 ids; missing rows get ``len(categories)``.
    categories : tuple
        The category of each bin id below ``len(categories)``.
    """
    series = pd.Series(np.asarray(x, dtype=object).ravel())
    missing = series.isna().to_numpy()
    present = series[~missing]
    categories = tuple(sorted(pd.unique(present), key=lambda v: (str(v), repr(v))))
    lookup = {category: idx for idx, category in enumerate(categories)}
    ids = np.full(len(series), len(categories), dtype=np.int64)
    ids[~missing] = [lookup[v] for v in present]
    return ids, categories


def label_counts(bin_ids: np.ndarray, y: np.ndarray,
                 n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Plaintext bad (``y = 1``) and good (``y = 0``) counts per bin."""
    ids = np.asarray(bin_ids, dtype=np.int64)
    labels = np.asarray(y)
    if ids.shape != labels.shape or not np.all((labels == 0) | (labels == 1)):
        raise ValueError("bin ids and 0/1 labels must have the same shape")
    bad = np.bincount(ids, weights=labels.astype(np.float64), minlength=n_bins)
    rows = np.bincount(ids, minlength=n_bins)
    return bad.astype(np.int64), (rows - bad).astype(np.int64)


def woe_iv(bad_counts: Any, good_counts: Any,
           smoothing: float = 0.5) -> tuple[np.ndarray, float]:
    """Weight of evidence per bin and the information value of the binning.

    Parameters
    ----------
    bad_counts, good_counts : array-like
        Non-negative counts per bin (same length).
    smoothing : float
        Pseudo-count ``s`` added to each non-empty bin's bad and good counts (see the
        module docstring); 0 disables it.

    Returns
    -------
    woe : numpy.ndarray
        ``ln(%good / %bad)`` per bin, 0 for empty bins.
    iv : float
        ``sum (%good - %bad) * woe``.

    Raises
    ------
    ValueError
        Negative counts, no bads or no goods at all, or a zero count with ``smoothing=0``.
    """
    bad = np.asarray(bad_counts, dtype=np.float64)
    good = np.asarray(good_counts, dtype=np.float64)
    if bad.shape != good.shape or bad.ndim != 1 or np.any(bad < 0) or np.any(good < 0):
        raise ValueError("bad and good counts must be non-negative vectors of equal length")
    if smoothing < 0:
        raise ValueError("smoothing must be >= 0")
    if bad.sum() == 0 or good.sum() == 0:
        raise ValueError("WOE needs at least one bad and one good row")
    used = (bad + good) > 0
    k = int(used.sum())
    p_bad = (bad[used] + smoothing) / (bad.sum() + smoothing * k)
    p_good = (good[used] + smoothing) / (good.sum() + smoothing * k)
    if np.any(p_bad == 0) or np.any(p_good == 0):
        raise ValueError("a bin has no bads or no goods; use smoothing > 0 or merge bins")
    woe = np.zeros(bad.shape)
    woe[used] = np.log(p_good / p_bad)
    return woe, float(np.sum((p_good - p_bad) * woe[used]))
