"""One party's rows in a vertical run: load, align to the PSI intersection, split, prepare.

Runs on the party's own node; only counts and column names ever leave it. Both parties
order the intersection by ID and split it into train/test by a keyed hash of the ID with the
run id, so they agree on rows without exchanging anything else. Each party standardises its
own columns on its own training rows (it holds every row of those columns).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from federation.data.quality import assert_ready
from federation.data.table import CreditTable, load_credit_csv
from federation.errors import DataError
from federation.ml.preprocess import Preprocessor, pooled_preprocessor
from federation.ml.tree_features import tree_categories, tree_matrix
from federation.run.config import resolve_data_path


@dataclass(frozen=True)
class AlignedParty:
    """A party's prepared matrices for the intersection (train and test rows, ID order)."""

    role: str
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    feature_names: tuple[str, ...]
    preprocessor: Preprocessor
    train_table: CreditTable
    tree_train: np.ndarray
    """Raw tree features of the training rows (NaN = missing, categories as codes)."""
    tree_test: np.ndarray
    """Raw tree features of the test rows."""
    tree_categories: tuple[int, ...]
    """Per tree feature 0 (numeric) or its number of categories."""


def load_party(path: str | Path, *, id_col: str, target: str | None,
               positive_label: str | None = None) -> CreditTable:
    """The party's file (bank: with target; center: features only), checked before joining."""
    table = load_credit_csv(resolve_data_path(path), target=target, id_col=id_col,
                            positive_label=positive_label or None)
    if table.ids is None:
        raise DataError(f"{path}: no ID column '{id_col}'; vertical runs need the entity key.")
    assert_ready(table)
    return table


def entity_ids(table: CreditTable) -> np.ndarray:
    """The table's entity keys; a table without an ID column cannot take part in a vertical run."""
    if table.ids is None:
        raise DataError(f"{table.source}: no ID column; vertical runs need the entity key.")
    return table.ids


def split_is_test(ids: np.ndarray, *, run_salt: str, test_fraction: float) -> np.ndarray:
    """Test-row mask from a keyed hash of each ID (same answer at both parties)."""
    cut = int(test_fraction * 2**32)
    return np.array([int.from_bytes(hashlib.sha256(f"{run_salt}|{i}".encode()).digest()[:4],
                                    "big") < cut for i in ids], dtype=bool)


def align(table: CreditTable, positions: np.ndarray) -> CreditTable:
    """Rows of the intersection, ordered by ID (the order both parties use)."""
    positions = np.asarray(positions, dtype=np.int64)
    order = positions[np.argsort(entity_ids(table)[positions], kind="stable")]
    return table.subset(order)


def prepare(table: CreditTable, role: str, *, run_salt: str, test_fraction: float) -> AlignedParty:
    """Split the aligned table and standardise its columns on the training rows (for LR); the
    raw tree features (gaps kept as NaN, categories as codes) for SecureBoost."""
    is_test = split_is_test(entity_ids(table), run_salt=run_salt, test_fraction=test_fraction)
    if is_test.all() or not is_test.any():
        raise DataError(f"{table.source}: the intersection is too small to hold out a test part.")
    train, test = table.subset(np.flatnonzero(~is_test)), table.subset(np.flatnonzero(is_test))
    prep = pooled_preprocessor([train])
    labelled = table.labelled
    return AlignedParty(role, prep.transform(train).astype(np.float64),
                        prep.transform(test).astype(np.float64),
                        train.y if labelled else None, test.y if labelled else None,
                        tuple(prep.feature_names), prep, train,
                        tree_matrix(train, prep), tree_matrix(test, prep), tree_categories(prep))
