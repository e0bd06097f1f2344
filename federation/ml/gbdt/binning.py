"""Federated-ready feature binning: quantile cut points from summed counts on a fixed grid.

The step, as a federation runs it:

1. All parties agree on a public :class:`FineGrid`: per numeric feature a range
   ``[low, high]`` (from aggregated minima/maxima, :func:`grid_from_min_max`, or from a
   federated mean and standard deviation, :func:`grid_from_mean_std`) cut into ``cells``
   equal-width cells; per categorical feature its number of categories.
2. Each party computes :func:`fine_counts` of its own rows (an int64 array
   ``[feature, cell]``); the caller sums the parties' arrays (plain or secure sum).
3. Every party (or the coordinator) runs :func:`edges_from_fine_counts` on the sum: the
   result depends only on the sum, so all parties get the same :class:`BinEdges`.
4. Each party bins its rows with :func:`bin_matrix` (uint8 codes).

:func:`federated_edges` runs steps 1-3 for parties held in one process (the sum pluggable);
:func:`pooled_edges` is the same for one party, the centralised baseline.

Conventions
-----------
Values are compared in **float32**, as XGBoost does: a cut point is a float32 value and a
value ``x`` lies in bin ``k`` when exactly ``k`` cut points are ``<= float32(x)``. Bin ``k``
therefore holds ``cuts[k-1] <= x < cuts[k]``, and "bins ``<= b`` go left" is the XGBoost rule
``x < cuts[b]`` goes left. NaN gets the dedicated code ``n_bins`` (the missing bin); at each
split missing values follow a learned default direction.

Categorical features arrive as integer codes ``0 .. k-1`` (NaN = missing), one bin per
category. Splits on them are *one category vs the rest* (the category goes right), which
XGBoost expresses exactly as a categorical split with a one-element category set.

Privacy: the summed fine counts are a histogram of every feature over all parties; the grid
range itself reveals an extreme row when it comes from min/max (prefer mean/std under secure
summation). Fine counts of a single party are never needed by anyone but that party.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from federation.errors import DataError

__all__ = ["SCHEMA_VERSION", "DEFAULT_CELLS", "FineGrid", "BinEdges", "column_min_max",
           "grid_from_min_max", "grid_from_mean_std", "fine_counts", "edges_from_fine_counts",
           "bin_matrix", "plain_sum", "federated_edges", "pooled_edges"]

SCHEMA_VERSION = 1
DEFAULT_CELLS = 1024
Sum = Callable[[Sequence[NDArray[np.float64]]], NDArray[np.float64]]
MAX_CATEGORIES = 255


def as_matrix(X: ArrayLike, n_features: int | None = None) -> NDArray[np.float64]:
    """``X`` as a 2-D float64 array, refusing infinite values and the wrong width.

    Raises
    ------
    DataError
        ``X`` is not 2-D, has another number of columns than expected or holds +-inf.
    """
    values = np.asarray(X, dtype=np.float64)
    if values.ndim != 2:
        raise DataError(f"expected a 2-D matrix of rows x features, got {values.ndim} "
                        "dimension(s); reshape single rows with X.reshape(1, -1).")
    if n_features is not None and values.shape[1] != n_features:
        raise DataError(f"the matrix has {values.shape[1]} columns but the bins were made for "
                        f"{n_features}; pass the same feature columns in the same order.")
    if np.isinf(values).any():
        column = int(np.flatnonzero(np.isinf(values).any(axis=0))[0])
        raise DataError(f"feature column {column} holds infinite values; replace them (e.g. "
                        "by NaN, which counts as missing) before binning.")
    return values


def _float32_values(values: NDArray[np.float64]) -> NDArray[np.float64]:
    return values.astype(np.float32).astype(np.float64)


@dataclass(frozen=True, slots=True)
class FineGrid:
    """The public fine grid every party counts its rows on.

    Parameters
    ----------
    low, high : tuple of float
        Per feature, the range of the equal-width cells (values outside fall into the end
        cells). Ignored (any finite value) for categorical features.
    n_categories : tuple of int
        Per feature, 0 for a numeric feature or its number of categories ``k`` (codes
        ``0..k-1``). Empty means all numeric.
    cells : int
        Cells per numeric feature.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    n_categories: tuple[int, ...] = ()
    cells: int = DEFAULT_CELLS
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise DataError(f"fine grid schema_version {self.schema_version!r:.20} is not "
                            f"supported (this build reads {SCHEMA_VERSION}).")
        if len(self.low) != len(self.high) or not self.low:
            raise DataError("a fine grid needs one low and one high per feature (at least one).")
        if self.n_categories and len(self.n_categories) != len(self.low):
            raise DataError(f"n_categories has {len(self.n_categories)} entries for "
                            f"{len(self.low)} features; give one per feature (0 = numeric).")
        if not 2 <= self.cells <= 2**20:
            raise DataError(f"a fine grid needs 2..{2**20} cells per feature (got {self.cells}).")
        for f, (lo, hi) in enumerate(zip(self.low, self.high, strict=True)):
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise DataError(f"feature {f} has grid range [{lo}, {hi}]; the range must be "
                                "finite with low <= high (is the column entirely missing?).")
        for f, k in enumerate(self.categories):
            if not 0 <= k <= MAX_CATEGORIES:
                raise DataError(f"feature {f} declares {k} categories; at most {MAX_CATEGORIES} "
                                "fit uint8 codes (group rare categories first).")

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.low)

    @property
    def categories(self) -> tuple[int, ...]:
        """Per feature, its number of categories (0 = numeric)."""
        return self.n_categories or (0,) * len(self.low)

    def boundaries(self, feature: int) -> NDArray[np.float64]:
        """The ``cells - 1`` inner cell boundaries of a numeric feature (float32 values)."""
        lo, hi = self.low[feature], self.high[feature]
        inner = lo + (hi - lo) * (np.arange(1, self.cells, dtype=np.float64) / self.cells)
        return _float32_values(inner)


@dataclass(frozen=True, slots=True)
class BinEdges:
    """Cut points of every feature: what turns raw values into bin codes.

    Parameters
    ----------
    cuts : tuple of tuple of float
        Per numeric feature its increasing float32-valued cut points (at most
        ``n_bins - 1``); empty for a categorical feature.
    n_categories : tuple of int
        Per feature, 0 for numeric or its number of categories (at most ``n_bins``).
    n_bins : int
        Value bins per feature (the config's ``bins``); code ``n_bins`` marks missing.
    """

    cuts: tuple[tuple[float, ...], ...]
    n_categories: tuple[int, ...]
    n_bins: int
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise DataError(f"bin edges schema_version {self.schema_version!r:.20} is not "
                            f"supported (this build reads {SCHEMA_VERSION}).")
        if len(self.cuts) != len(self.n_categories) or not self.cuts:
            raise DataError("bin edges need one cut list and one category count per feature.")
        if not 2 <= self.n_bins <= 255:
            raise DataError(f"bin edges need 2..255 value bins (got {self.n_bins}).")
        for f, (cuts, k) in enumerate(zip(self.cuts, self.n_categories, strict=True)):
            values = np.asarray(cuts, dtype=np.float64)
            if k and (cuts or k > self.n_bins):
                raise DataError(f"categorical feature {f} has {k} categories and {len(cuts)} "
                                f"cuts; it needs no cuts and at most {self.n_bins} categories "
                                "(raise --bins or group rare categories).")
            if len(cuts) > self.n_bins - 1 or not np.all(np.isfinite(values)) or np.any(
                    np.diff(values) <= 0) or np.any(_float32_values(values) != values):
                raise DataError(f"feature {f} has invalid cut points; they must be at most "
                                f"{self.n_bins - 1} strictly increasing finite float32 values.")

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.cuts)

    @property
    def missing_code(self) -> int:
        """The bin code of a missing value (``n_bins``)."""
        return self.n_bins

    def split_bins(self, feature: int) -> int:
        """How many split positions the feature offers (cuts, or categories)."""
        return self.n_categories[feature] or len(self.cuts[feature])

    def used_codes(self) -> NDArray[np.bool_]:
        """``[feature, n_bins + 1]``: the bin codes a row can get (public, from the edges alone).

        A numeric feature with ``c`` cuts has codes ``0..c``, a categorical one ``0..k-1``, and
        every feature the missing code; the other histogram cells are zero for every party.
        """
        mask = np.zeros((self.n_features, self.n_bins + 1), dtype=np.bool_)
        for f, (cuts, k) in enumerate(zip(self.cuts, self.n_categories, strict=True)):
            mask[f, :k or len(cuts) + 1] = True
        mask[:, self.missing_code] = True
        return mask


def column_min_max(X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-column minimum and maximum of one party's rows, ignoring NaN.

    The federation combines them with an element-wise min and max (not a sum). A column
    without values on this party gives ``(+inf, -inf)``, which the combination ignores.
    """
    values = as_matrix(X)
    present = ~np.isnan(values)
    mins = np.where(present, values, np.inf).min(axis=0, initial=np.inf)
    maxs = np.where(present, values, -np.inf).max(axis=0, initial=-np.inf)
    return mins, maxs


def grid_from_min_max(mins: ArrayLike, maxs: ArrayLike, *, n_categories: Sequence[int] = (),
                      cells: int = DEFAULT_CELLS) -> FineGrid:
    """A fine grid spanning the combined minima and maxima of all parties."""
    lows, highs = np.asarray(mins, dtype=np.float64), np.asarray(maxs, dtype=np.float64)
    cats = tuple(int(k) for k in n_categories) or (0,) * lows.size
    lows = np.where(np.asarray(cats) > 0, 0.0, lows)  # categorical ranges are unused
    highs = np.where(np.asarray(cats) > 0, 0.0, highs)
    return FineGrid(tuple(map(float, lows)), tuple(map(float, highs)), cats, cells)


def grid_from_mean_std(mean: ArrayLike, std: ArrayLike, *, width: float = 4.0,
                       n_categories: Sequence[int] = (), cells: int = DEFAULT_CELLS) -> FineGrid:
    """A fine grid over ``mean +- width * std`` per feature (from a federated mean/std)."""
    mu, sd = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    return grid_from_min_max(mu - width * sd, mu + width * sd, n_categories=n_categories,
                             cells=cells)


def _category_codes(column: NDArray[np.float64], feature: int, k: int) -> NDArray[np.int64]:
    present = column[~np.isnan(column)]
    if present.size and (np.any(present != np.round(present)) or present.min() < 0
                         or present.max() >= k):
        raise DataError(f"categorical feature {feature} must hold integer codes 0..{k - 1} or "
                        "NaN; encode unseen or rare categories before training.")
    return present.astype(np.int64)


def fine_counts(X: ArrayLike, grid: FineGrid) -> NDArray[np.int64]:
    """One party's row counts per fine cell (numeric) or category (categorical).

    Returns
    -------
    numpy.ndarray
        int64 ``[feature, cells]``; missing values are not counted.
    """
    values = as_matrix(X, grid.n_features)
    out = np.zeros((grid.n_features, grid.cells), dtype=np.int64)
    for f, k in enumerate(grid.categories):
        column = values[:, f]
        if k:
            out[f, :k] = np.bincount(_category_codes(column, f, k), minlength=k)
            continue
        present = _float32_values(column[~np.isnan(column)])
        cells = np.searchsorted(grid.boundaries(f), present, side="right")
        out[f] = np.bincount(cells, minlength=grid.cells)
    return out


def _quantile_cuts(counts: NDArray[np.int64], boundaries: NDArray[np.float64],
                   bins: int) -> tuple[float, ...]:
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    if total == 0:
        return ()
    targets = total * np.arange(1, bins, dtype=np.int64)  # k-th cut: cumulative*bins >= N*k
    cells = np.searchsorted(cumulative * bins, targets, side="left")
    cells = np.unique(cells[cells < counts.size - 1])
    cells = cells[cumulative[cells] < total]  # a cut must leave rows on its right
    return tuple(float(v) for v in np.unique(boundaries[cells]))


def edges_from_fine_counts(summed: ArrayLike, grid: FineGrid, bins: int) -> BinEdges:
    """Quantile cut points from the parties' summed fine counts (deterministic).

    For each numeric feature the ``k``-th cut (``k = 1 .. bins-1``) is the upper boundary of
    the first fine cell whose cumulative count reaches ``k/bins`` of the total; repeated
    cuts and cuts with no rows beyond them are dropped, so a feature may get fewer bins.

    Parameters
    ----------
    summed : array-like
        Sum over parties of :func:`fine_counts`, ``[feature, cells]``.
    grid : FineGrid
        The grid the counts were made on.
    bins : int
        Value bins per feature (the config's ``bins``).

    Returns
    -------
    BinEdges
    """
    counts = np.asarray(summed)
    if counts.shape != (grid.n_features, grid.cells) or not np.all(counts >= 0) or not (
            np.all(counts == np.round(counts))):
        raise DataError(f"summed fine counts must be non-negative integers of shape "
                        f"{(grid.n_features, grid.cells)}, got shape {counts.shape}; sum the "
                        "parties' fine_counts on this grid.")
    counts = counts.astype(np.int64)
    cuts = tuple(() if k else _quantile_cuts(counts[f], grid.boundaries(f), bins)
                 for f, k in enumerate(grid.categories))
    return BinEdges(cuts, grid.categories, bins)


def bin_matrix(X: ArrayLike, edges: BinEdges) -> NDArray[np.uint8]:
    """Bin codes of raw rows: ``[row, feature]`` uint8, ``edges.missing_code`` for NaN."""
    values = as_matrix(X, edges.n_features)
    codes = np.empty(values.shape, dtype=np.uint8)
    for f, (cuts, k) in enumerate(zip(edges.cuts, edges.n_categories, strict=True)):
        column = values[:, f]
        missing = np.isnan(column)
        if k:
            _category_codes(column, f, k)
            ids = np.where(missing, 0.0, column).astype(np.int64)
        else:
            ids = np.searchsorted(np.asarray(cuts, dtype=np.float64),
                                  _float32_values(column), side="right")
        codes[:, f] = np.where(missing, edges.missing_code, ids)
    return codes


def plain_sum(arrays: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
    """The cross-party sum of an in-process federation (the identity for one party)."""
    return np.sum(np.stack([np.asarray(a, dtype=np.float64) for a in arrays]), axis=0)


def federated_edges(parts_X: Sequence[ArrayLike], bins: int, *, n_categories: Sequence[int] = (),
                    cells: int = DEFAULT_CELLS, combine: Sum = plain_sum) -> BinEdges:
    """Steps 1-3 for parties in one process: min/max grid, summed fine counts, quantile cuts.

    Parameters
    ----------
    parts_X : sequence of array-like
        Each party's raw rows.
    bins : int
        Value bins per feature.
    n_categories : sequence of int
        Per feature 0 (numeric) or its number of categories.
    cells : int
        Fine-grid cells per numeric feature.
    combine : callable
        The cross-party sum of the fine counts (``np.sum`` over parties by default).

    Returns
    -------
    BinEdges
        The same for any split of the same rows into parties.

    Raises
    ------
    DataError
        A numeric column has no values on any party.
    """
    ranges = [column_min_max(X) for X in parts_X]
    mins = np.minimum.reduce([lo for lo, _ in ranges])
    maxs = np.maximum.reduce([hi for _, hi in ranges])
    cats = tuple(int(k) for k in n_categories) or (0,) * mins.size
    empty = [f for f, k in enumerate(cats) if not k and mins[f] > maxs[f]]
    if empty:
        raise DataError(f"feature column {empty[0]} has no values; drop it before training.")
    grid = grid_from_min_max(mins, maxs, n_categories=cats, cells=cells)
    summed = combine([fine_counts(X, grid).astype(np.float64) for X in parts_X])
    return edges_from_fine_counts(summed, grid, bins)


def pooled_edges(X: ArrayLike, bins: int, *, n_categories: Sequence[int] = (),
                 cells: int = DEFAULT_CELLS) -> BinEdges:
    """The edges a federation of one party derives (the baseline's edges).

    A federation whose parties hold the rows of ``X`` between them gets the same edges: the
    combined min/max and the summed counts are those of the pooled rows.
    """
    return federated_edges([X], bins, n_categories=n_categories, cells=cells)
