"""From a bank's table and the federation's shared preprocessing to boosted-tree inputs.

Trees need no standardisation or imputation: numeric columns go in raw (NaN = missing, which
the trees route by a learned default direction) and each categorical column becomes the index
of its value in the shared vocabulary (NaN when missing or not in the vocabulary). The column
order is the :class:`~federation.ml.preprocess.Preprocessor`'s, so every bank builds the same
matrix layout from the same combined statistics. Runs on the data owner's node; nothing here
is sent anywhere.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

from federation.data.table import CreditTable
from federation.errors import ConfigError
from federation.ml.gbdt.binning import DEFAULT_CELLS, MAX_CATEGORIES, FineGrid, grid_from_mean_std
from federation.ml.preprocess import Preprocessor

GRID_WIDTH = 4.0
"""The fine grid spans the federated mean +- this many standard deviations per column."""
ROW_BLOCK = 40
"""Without an ID column, bank ``k``'s row ``i`` gets the id ``(k << ROW_BLOCK) + i``."""


def tree_categories(prep: Preprocessor) -> tuple[int, ...]:
    """Per tree column: 0 for numeric, the vocabulary size for categorical.

    Raises
    ------
    ConfigError
        A categorical column has more categories than uint8 bin codes hold.
    """
    for col, vocab in prep.categorical:
        if len(vocab) > MAX_CATEGORIES:
            raise ConfigError(f"categorical column '{col}' has {len(vocab)} categories; trees "
                              f"take at most {MAX_CATEGORIES} (group rare categories first).")
    return (0,) * len(prep.numeric) + tuple(len(v) for _, v in prep.categorical)


def tree_feature_names(prep: Preprocessor) -> tuple[str, ...]:
    """One name per column of :func:`tree_matrix` (numeric, then categorical columns)."""
    return tuple(prep.numeric) + tuple(col for col, _ in prep.categorical)


def tree_matrix(table: CreditTable, prep: Preprocessor) -> NDArray[np.float64]:
    """The table as raw tree inputs ``[rows, features]`` in :func:`tree_feature_names` order.

    Raises
    ------
    SchemaError
        A column the federation expects is missing (or not numeric) in this bank's file.
    """
    blocks = [np.zeros((table.n_rows, 0))]
    if prep.numeric:
        blocks.append(prep.numeric_values(table))
    for col, vocab in prep.categorical:
        values = prep.category_values(table, col)
        index = {v: float(i) for i, v in enumerate(vocab)}
        blocks.append(np.array([index.get(v, np.nan) if v is not None else np.nan
                                for v in values], dtype=np.float64).reshape(-1, 1))
    return np.hstack(blocks)


def tree_grid(prep: Preprocessor, cells: int = DEFAULT_CELLS) -> FineGrid:
    """The public fine grid: federated mean +- 4 standard deviations per numeric column."""
    cats = tree_categories(prep)
    means = np.concatenate([np.asarray(prep.means, dtype=np.float64),
                            np.zeros(len(prep.categorical))])
    stds = np.concatenate([np.asarray(prep.stds, dtype=np.float64),
                           np.ones(len(prep.categorical))])
    return grid_from_mean_std(means, np.where(stds > 0, stds, 1.0), width=GRID_WIDTH,
                              n_categories=cats, cells=cells)


def tree_row_ids(table: CreditTable, bank: int) -> NDArray[np.int64]:
    """Non-negative ids keying the row subsample: a 62-bit hash of the ID column when the file
    has one (the same row gets the same id in any run), else ``(bank << 40) + position``."""
    if table.ids is not None:
        return np.array([int.from_bytes(hashlib.blake2b(str(v).encode("utf-8"),
                                                        digest_size=8).digest(), "big") >> 2
                         for v in table.ids], dtype=np.int64)
    return (np.int64(bank) << np.int64(ROW_BLOCK)) + np.arange(table.n_rows, dtype=np.int64)


VALIDATION_SHARE = 10
"""Early stopping holds out about one training row in ``VALIDATION_SHARE``."""
_MIX = np.uint64(0x9E3779B97F4A7C15)


def validation_rows(row_ids: NDArray[np.int64], seed: int) -> NDArray[np.bool_]:
    """Which training rows early stopping holds out for the validation AUC (public rule).

    A seeded mix of each row id (:func:`tree_row_ids`) picks about one row in
    :data:`VALIDATION_SHARE`; every bank applies it to its own rows and the pooled baseline to
    the pooled rows, so both fit the trees on the same rows.
    """
    mixed = (row_ids.astype(np.uint64) ^ np.uint64(seed & 0xFFFFFFFF)) * _MIX
    return np.asarray((mixed >> np.uint64(32)) % np.uint64(VALIDATION_SHARE) == 0)
