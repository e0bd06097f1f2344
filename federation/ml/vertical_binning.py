"""Which bins each party uses for WOE/IV, and the plaintext IV reference.

Each party bins its own raw columns on the aligned training rows: numeric columns by
quantiles or equal widths, text columns by category, missing values in their own bin. The
bank computes the IV of its own columns directly; the center's go through the secure
binning protocol (:mod:`protocols.woe.secure_binning`). :func:`plaintext_iv` is the same
computation on joined plaintext data, the reference the secure path must equal.
"""

from __future__ import annotations

import numpy as np

from federation.data.table import CreditTable
from federation.ml.binning import categorical_bins, equal_width_bins, label_counts, quantile_bins, woe_iv
from protocols.woe.secure_binning import FeatureBins

SMOOTHING = 0.5


def bin_table(table: CreditTable, *, n_bins: int, method: str) -> list[FeatureBins]:
    """Bin ids per row for every usable column (all-missing columns are skipped).

    A numeric column with at most ``n_bins`` distinct values (flags, grades, counts) gets one
    bin per value, so that heavy ties cannot merge its values into one bin.
    """
    numeric = quantile_bins if method == "quantile" else equal_width_bins
    out = []
    for col in table.numeric.columns:
        values = table.numeric[col].to_numpy(dtype=np.float64)
        present = values[~np.isnan(values)]
        if present.size == 0:
            continue
        if np.unique(present).size <= n_bins:
            ids, categories = categorical_bins(np.where(np.isnan(values), None, values))
            out.append(FeatureBins(str(col), ids, len(categories) + 1))
            continue
        ids, edges = numeric(values, n_bins)
        out.append(FeatureBins(str(col), ids, len(edges)))
    for col in table.categorical.columns:
        ids, categories = categorical_bins(table.categorical[col].to_numpy(dtype=object))
        out.append(FeatureBins(str(col), ids, len(categories) + 1))
    return out


def iv_from_counts(bad: np.ndarray, good: np.ndarray) -> float:
    """Information value of one binned feature (smoothed, see ``federation.ml.binning``)."""
    return woe_iv(bad, good, smoothing=SMOOTHING)[1]


def local_iv(table: CreditTable, y: np.ndarray, *, n_bins: int, method: str) -> dict[str, float]:
    """IV of the bank's own columns (it holds labels and features: no protocol needed)."""
    return {f.name: iv_from_counts(*label_counts(f.bin_ids, y, f.n_bins))
            for f in bin_table(table, n_bins=n_bins, method=method)}


def plaintext_iv(bank_train: CreditTable, center_train: CreditTable, *, n_bins: int,
                 method: str) -> dict[str, float]:
    """The IV table computed on joined plaintext data (reference for tests)."""
    y = bank_train.y
    return {**local_iv(bank_train, y, n_bins=n_bins, method=method),
            **local_iv(center_train, y, n_bins=n_bins, method=method)}
